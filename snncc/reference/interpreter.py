"""``snncc.reference.run``: execute a spike graph in numpy, the oracle every backend must match.

The interpreter walks ``graph.topo_order()`` once and evaluates every node on whole arrays:
per-step values are ``[T, B, *shape]``, static values (after ``TimeMean``) ``[B, *shape]``.
Stateless ops are vectorised over those leading axes; neurons loop over T inside their kernel.
Evaluating node by node (rather than step by step) is exact because the IR has no recurrence
except through ``Delay``, which is itself a shift along T.

Numeric modes are a dispatch point: ``mode`` selects a kernel table. ``"float"`` (float64)
reproduces the PyTorch model: identical spikes, outputs within 1e-5. ``"loihi"`` is the
bit-accurate Lava fixed-point arithmetic of a graph quantized for Loihi (24-bit u/v with wrap
and saturation, 12-bit decays truncated toward zero, the strict ``v > vth << 6`` test), and
``"spinnaker"`` the s16.15 arithmetic of sPyNNaker (saturating 16-bit ring buffers, ``V >=
V_thresh``); their kernels are in :mod:`snncc.reference.loihi_kernels` and
:mod:`snncc.reference.spinnaker_kernels`, pinned by the trap tests. An integer mode given a float
neuron (an unquantized graph) raises ``REF003``; an unknown mode ``REF002``.

Error codes: ``REF001`` bad inputs (names, shapes, batch, timesteps), ``REF002`` unknown or
unimplemented mode, ``REF003`` an op the mode cannot evaluate, ``REF004`` bad ``record`` argument;
all exit code 2. A kernel result of the wrong shape is an internal error (``REF900``, exit 70).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.ops import Op
from snncc.ir.verify import lint_or_raise
from snncc.reference import loihi_kernels, spinnaker_kernels
from snncc.reference.context import UNSUPPORTED, Kernel, KernelCtx
from snncc.reference.feeds import timesteps_of, validate_feeds
from snncc.reference.float_kernels import KERNELS as FLOAT_KERNELS

# Target neurons (made by the quantize pass) have one integer semantics, the same in every mode.
FLOAT_KERNELS.update({**loihi_kernels.NEURON_KERNELS, **spinnaker_kernels.NEURON_KERNELS})
#: Numeric modes with a kernel table.
MODES: dict[str, dict[type[Op], Kernel]] = {
    "float": FLOAT_KERNELS,
    "loihi": loihi_kernels.KERNELS,
    "spinnaker": spinnaker_kernels.KERNELS,
}
#: Modes that are designed but not implemented yet.
PLANNED_MODES: tuple[str, ...] = ()
#: What ``run(..., record=...)`` keeps in ``RunResult.values``.
RECORD_MODES = ("neurons", "all")


@dataclass
class RunResult:
    """What a reference run produced.

    - ``outputs``: graph output name -> array (``[T, B, *shape]`` or ``[B, *shape]`` if static);
    - ``spikes``: neuron node -> ``uint8`` array ``[T, B, *shape]`` of 0/1;
    - ``values``: node -> float64 array, for every node with ``record="all"``, else only the
      outputs and the neurons (intermediate arrays are freed as soon as no consumer needs them).
    """

    outputs: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    timesteps: int
    batch: int
    mode: str = "float"

    def spike_counts(self) -> dict[str, np.ndarray]:
        """Neuron node -> ``int64`` ``[B, *shape]``: spikes summed over T (what backends report)."""
        return {n: s.sum(axis=0, dtype=np.int64) for n, s in self.spikes.items()}

    def firing_rates(self) -> dict[str, float]:
        """Neuron node -> mean spikes per neuron per step, over the batch (a quick health check)."""
        return {n: float(s.mean()) if s.size else 0.0 for n, s in self.spikes.items()}


def _kernels(mode: str) -> dict[type[Op], Kernel]:
    if mode in MODES:
        return MODES[mode]
    if mode in PLANNED_MODES:
        raise SnnccError(
            f"reference mode {mode!r}: mode not implemented yet",
            code="REF002",
            hint=f"use one of {sorted(MODES)}",
            exit_code=2,
        )
    raise SnnccError(
        f"unknown reference mode {mode!r}",
        code="REF002",
        hint=f"modes are {sorted(MODES) + list(PLANNED_MODES)}",
        exit_code=2,
    )


def _check_graph(graph: Graph, kernels: dict[type[Op], Kernel], mode: str) -> None:
    """Lint, then make sure every op has a kernel in this mode (all missing ones at once)."""
    lint_or_raise(graph, "reference run")
    missing = sorted({graph.op(n).kind for n in graph.nodes() if type(graph.op(n)) not in kernels})
    if missing:
        raise SnnccError(
            f"reference mode {mode!r} has no kernel for op(s) {missing}",
            code=UNSUPPORTED,
            exit_code=2,
        )


def _blas_single_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread for the run, when ``threadpoolctl`` is installed.

    Why: the interpreter issues many mid-sized matrix products (one per convolution), for which
    waking BLAS worker threads costs more than the arithmetic. On a loaded 2-core machine
    multi-threaded OpenBLAS made ``spikingformer-tiny`` at ``B = 8`` five times slower (0.43 s
    against 0.08 s). One thread also makes the summation order independent of the thread count,
    which suits an oracle. Without ``threadpoolctl`` (optional) the run uses BLAS defaults.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _expected_shape(graph: Graph, name: str, timesteps: int, batch: int) -> tuple[int, ...]:
    t = graph.type(name)
    lead = (timesteps, batch) if t.temporal else (batch,)
    return lead + tuple(t.shape)


def _evaluate(
    graph: Graph,
    kernels: dict[type[Op], Kernel],
    feeds: dict[str, np.ndarray],
    timesteps: int,
    batch: int,
    keep: set[str],
) -> dict[str, np.ndarray]:
    """Evaluate every node in topological order; returns the values of the ``keep`` nodes."""
    pending = {n: len(graph.users(n)) for n in graph.nodes()}
    values: dict[str, np.ndarray] = {}
    for name in graph.topo_order():
        op, ty = graph.op(name), graph.type(name)
        drivers = graph.inputs_of(name)
        ctx = KernelCtx(
            node=name,
            lead=2 if ty.temporal else 1,
            timesteps=timesteps,
            batch=batch,
            out_type=ty,
            feed=feeds.get(name),
            meta=graph.node_meta(name),
        )
        y = kernels[type(op)](op, [values[d] for d in drivers], ctx)
        want = _expected_shape(graph, name, timesteps, batch)
        if y.shape != want:
            raise SnnccError(
                f"internal: {op.kind} kernel for node {name!r} returned shape {list(y.shape)}, "
                f"type says {list(want)}",
                code="REF900",
                exit_code=70,
            )
        values[name] = y
        for d in drivers:
            pending[d] -= 1
            if pending[d] == 0 and d not in keep:
                del values[d]
    return {n: v for n, v in values.items() if n in keep}


def run(
    graph: Graph,
    inputs: Mapping[str, np.ndarray],
    mode: str = "float",
    *,
    record: str = "neurons",
) -> RunResult:
    """Execute ``graph`` on ``inputs`` for ``T = graph.meta["timesteps"]`` steps.

    ``inputs`` maps each graph input name to ``[T, B, *shape]`` (``Input.temporal=True``) or
    ``[B, *shape]`` (a static sample presented at every step). ``mode`` is ``"float"``;
    ``"loihi"`` and ``"spinnaker"`` are not implemented yet and raise ``REF002``. ``record`` is
    ``"neurons"`` (keep outputs and neuron spikes) or ``"all"`` (keep every node's value).
    """
    kernels = _kernels(mode)
    if record not in RECORD_MODES:
        raise SnnccError(
            f"record={record!r} is not one of {list(RECORD_MODES)}", code="REF004", exit_code=2
        )
    _check_graph(graph, kernels, mode)
    timesteps = timesteps_of(graph, inputs)
    feeds, batch = validate_feeds(graph, inputs, timesteps)
    neurons = [n for n in graph.nodes() if graph.op(n).NEURON]
    keep = set(graph.nodes()) if record == "all" else set(graph.outputs) | set(neurons)
    with _blas_single_thread():
        values = _evaluate(graph, kernels, feeds, timesteps, batch, keep)
    # Broadcast views (static inputs repeated over T) become real arrays before they leave.
    values = {n: np.ascontiguousarray(v) for n, v in values.items()}
    return RunResult(
        outputs={n: values[n] for n in graph.outputs},
        # A spike is a non-zero output: 0/1 for LIF/IF, the bit-weighted event for ExpGIF.
        spikes={n: (values[n] != 0).astype(np.uint8) for n in neurons},
        values=values,
        timesteps=timesteps,
        batch=batch,
        mode=mode,
    )
