"""``ExactProgram``: a quantized spike graph as a ``torch.nn.Module`` computing its integer program.

One general mechanism, no model-specific code: at construction every node of the graph gets a
:class:`~snncc.torch_exact.base.Kernel` from the mode's builder table (the twin of the
reference interpreter's kernel table for that mode); ``forward`` walks the nodes in topological
order on whole ``[T, B, *shape]`` tensors, as :func:`snncc.reference.run` does, and frees each
value once its last consumer has run. Neurons loop over T inside their kernel, vectorised over
batch and neurons; every other op is one vectorised call over ``T·B``.

Exactness (why the spikes equal the reference's, neuron by neuron and step by step):

- deployed values are integers held exactly: neuron state in int64, synaptic sums in float64
  below 2^53 (guarded per call), SpiNNaker ring buffers as complex128 pairs of such integers;
- the integer operations are the reference's, in its order (truncation toward zero, wrap,
  saturation, strict and non-strict thresholds, s16.15 round-to-nearest);
- the host part (encoding conv, readout) is float64 like the reference. Its element-wise
  operations give the same bits; its float sums can differ from numpy's in the last bit, so a
  host current lying within an ulp of a rounding boundary of ``rint(x · host_scale)`` could in
  principle enter the chip one ``a_in`` unit apart (never observed; the tests would catch it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.ops import Op
from snncc.ir.verify import lint_or_raise
from snncc.torch_exact import loihi_ops, spinnaker_ops
from snncc.torch_exact.base import UNSUPPORTED, Builder, NodeInfo, RunCtx
from snncc.torch_exact.float_ops import KERNELS as FLOAT_KERNELS

# Target neurons have one integer semantics in every mode, as in the reference.
_FLOAT = {**FLOAT_KERNELS, **loihi_ops.NEURON_KERNELS, **spinnaker_ops.NEURON_KERNELS}
#: Numeric modes with a builder table (the reference interpreter's modes).
MODES: dict[str, dict[type[Op], Builder]] = {
    "float": _FLOAT,
    "loihi": loihi_ops.KERNELS,
    "spinnaker": spinnaker_ops.KERNELS,
}
BAD_INPUT = "TEX001"


def _bad(message: str, hint: str | None = None) -> SnnccError:
    return SnnccError(message, code=BAD_INPUT, hint=hint, exit_code=2)


def mode_of(graph: Graph) -> str:
    """The reference mode a graph runs in: its quantize target's, else ``"float"``."""
    target = (graph.meta.get("quant") or {}).get("target")
    if target is None:
        return "float"
    from snncc import targets

    return targets.get(str(target)).reference_mode


@dataclass
class ExactResult:
    """What a forward produced (the twin of :class:`snncc.reference.RunResult`).

    ``outputs``: graph output -> tensor; ``spikes``: neuron node -> uint8 ``[T, B, *shape]``
    (a spike is a non-zero output: 0/1, or an ExpG-IF payload); ``values``: the kept nodes.
    """

    outputs: dict[str, torch.Tensor]
    spikes: dict[str, torch.Tensor]
    values: dict[str, torch.Tensor]
    timesteps: int
    batch: int
    mode: str

    def spike_counts(self) -> dict[str, torch.Tensor]:
        """Neuron node -> int64 ``[B, *shape]``: spikes summed over T."""
        return {n: s.sum(dim=0, dtype=torch.int64) for n, s in self.spikes.items()}

    def firing_rates(self) -> dict[str, float]:
        """Neuron node -> mean spikes per neuron per step."""
        return {n: float(s.double().mean()) if s.numel() else 0.0 for n, s in self.spikes.items()}


class ExactProgram(nn.Module):
    """The integer program of a quantized graph as a torch module (see the module docstring).

    Requires: a graph that lints; ``mode`` one of :data:`MODES` (default :func:`mode_of`).
    Ensures:  ``forward(inputs)`` gives the spikes :func:`snncc.reference.run` gives in the same
              mode, neuron by neuron and step by step, on CPU or CUDA (``.to(device)``).
    """

    def __init__(
        self,
        graph: Graph,
        mode: str | None = None,
        *,
        table: dict[type[Op], Builder] | None = None,
    ) -> None:
        super().__init__()
        self.mode = mode_of(graph) if mode is None else mode
        if self.mode not in MODES:
            raise SnnccError(
                f"unknown mode {self.mode!r}", code="TEX002", hint=f"modes are {sorted(MODES)}"
            )
        table = MODES[self.mode] if table is None else table  # a variant table (train.py)
        lint_or_raise(graph, "torch_exact")
        kinds = {type(graph.op(n)): graph.op(n).kind for n in graph.nodes()}
        missing = sorted(kind for cls, kind in kinds.items() if cls not in table)
        if missing:
            raise SnnccError(
                f"torch_exact mode {self.mode!r} has no kernel for op(s) {missing}",
                code=UNSUPPORTED,
                exit_code=2,
            )
        self.graph = graph.copy()
        self.order = self.graph.topo_order()
        self.drivers = [self.graph.inputs_of(n) for n in self.order]
        self.neurons = [n for n in self.order if self.graph.op(n).NEURON]
        self.kernels = nn.ModuleList(self._build(n, table) for n in self.order)
        self.register_buffer("_anchor", torch.zeros(0, dtype=torch.float64), persistent=False)

    def _build(self, name: str, table: dict[type[Op], Builder]) -> nn.Module:
        g = self.graph
        ty = g.type(name)
        info = NodeInfo(
            node=name,
            lead=2 if ty.temporal else 1,
            out_type=ty,
            in_types=tuple(g.type(d) for d in g.inputs_of(name)),
            meta=g.node_meta(name),
        )
        return table[type(g.op(name))](g.op(name), info)

    @property
    def device(self) -> torch.device:
        """Where the program's buffers (and so its computation) live."""
        return self.get_buffer("_anchor").device

    @property
    def timesteps(self) -> int:
        return int(self.graph.meta["timesteps"])

    def feeds(self, x: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        """Model-layout samples ``[B, *input_shape]`` -> feeds (``snncc.analysis.feeds``'s rule)."""
        g = self.graph
        if len(g.inputs) != 1:
            raise _bad(f"feeds() needs a graph with one input, got {list(g.inputs)}")
        t = torch.as_tensor(x, dtype=torch.float64, device=self.device)
        axis = g.meta.get("time_axis")
        if axis is not None:
            t = torch.movedim(t, int(axis), 0)
        elif g.op(g.inputs[0]).temporal:
            t = t.expand((self.timesteps,) + tuple(t.shape))
        return {g.inputs[0]: t}

    def _validate(self, inputs: Mapping[str, object]) -> tuple[dict[str, torch.Tensor], int]:
        g = self.graph
        names = set(inputs)
        if names != set(g.inputs):
            raise _bad(
                f"inputs {sorted(names)} do not match the graph's inputs {list(g.inputs)}",
                hint="pass one tensor per graph input (or use program.feeds(x))",
            )
        feeds: dict[str, torch.Tensor] = {}
        batch = -1
        for name in g.inputs:
            op = g.op(name)
            t = torch.as_tensor(inputs[name], dtype=torch.float64, device=self.device)
            lead = (self.timesteps,) if op.temporal else ()
            want = lead + (-1,) + tuple(op.shape)
            ok = t.dim() == len(want) and all(
                w in (-1, s) for w, s in zip(want, t.shape, strict=True)
            )
            b = int(t.shape[len(lead)]) if ok else -1
            if not ok or (batch >= 0 and b != batch):
                raise _bad(
                    f"input {name!r}: expected shape {list(want)} (-1 = batch, shared by all "
                    f"inputs), got {list(t.shape)}"
                )
            feeds[name], batch = t, b
        return feeds, batch

    def forward(
        self, inputs: Mapping[str, torch.Tensor | np.ndarray], record: str = "neurons"
    ) -> ExactResult:
        """Run every sample of ``inputs`` (the reference's layout) for ``T`` steps."""
        if record not in ("neurons", "all"):
            raise _bad(f"record={record!r} is not one of ['neurons', 'all']")
        feeds, batch = self._validate(inputs)
        g, T = self.graph, self.timesteps
        keep = set(self.order) if record == "all" else set(g.outputs) | set(self.neurons)
        pending = {n: len(g.users(n)) for n in self.order}
        values: dict[str, torch.Tensor] = {}
        for name, drivers, kernel in zip(self.order, self.drivers, self.kernels, strict=True):
            run = RunCtx(timesteps=T, batch=batch, feed=feeds.get(name))
            y = kernel([values[d] for d in drivers], run)
            ty = g.type(name)
            want = ((T, batch) if ty.temporal else (batch,)) + tuple(ty.shape)
            if tuple(y.shape) != want:
                raise SnnccError(
                    f"internal: {g.op(name).kind} kernel for node {name!r} returned shape "
                    f"{list(y.shape)}, type says {list(want)}",
                    code="TEX900",
                    exit_code=70,
                )
            values[name] = y
            for d in drivers:
                pending[d] -= 1
                if pending[d] == 0 and d not in keep:
                    del values[d]
        kept = {n: v for n, v in values.items() if n in keep}
        return ExactResult(
            outputs={n: kept[n] for n in g.outputs},
            spikes={n: (kept[n] != 0).to(torch.uint8) for n in self.neurons},
            values=kept,
            timesteps=T,
            batch=batch,
            mode=self.mode,
        )
