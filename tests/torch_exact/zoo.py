"""Programs the torch_exact tests share: every tiny zoo family that quantizes, made to fire.

A freshly initialised zoo model is nearly silent after its first layer, which would make a
spike-equality test vacuous. :func:`lively_graph` therefore sets each float neuron's threshold
(LIF/IF ``v_threshold``, ExpG-IF ``theta``), in graph order, so that it fires about
``TARGET_RATE`` of the time on calibration data; dividing a threshold by ``k`` is the same neuron
as multiplying its input weights by ``k`` (``v_reset = 0`` or soft reset), i.e. a rescaled random
model. The graph is then quantized; the tests assert that the *integer* program fires 5–50 %.

The family list is the registry's (every ``*-tiny`` name), so a family that starts to quantize
for a target is picked up without editing the tests; one that does not quantize yet is skipped
with the quantizer's own reason (xfail would hide a regression as well).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from snncc.analysis.feeds import to_feeds
from snncc.data.digits import digits
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind
from snncc.models import registry
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.reference import run
from snncc.reference.context import KernelCtx
from snncc.reference.float_kernels import KERNELS as FLOAT_KERNELS

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "examples/checkpoints/spikingformer-tiny-digits.pt"
TARGETS = ("loihi", "spinnaker")
TARGET_RATE = 0.2
RATE_RANGE = (0.05, 0.5)
SAMPLES = 4

#: Every tiny configuration in the registry: one per family.
TINY = sorted(n for n in registry.names() if n.endswith("-tiny"))
#: What quantized when these tests were written: a failure here is a regression, not a skip.
QUANTIZES = {
    "loihi": {
        "elastic-spikformer-tiny", "elastic-spikingformer-tiny", "ge2mst-tiny", "lsformer-tiny",
        "sdt-tiny", "spikformer-tiny", "spikingformer-tiny", str(CHECKPOINT),
    },
    "spinnaker": {
        "elastic-spikingformer-tiny", "spikformer-tiny", "spikingformer-tiny", str(CHECKPOINT),
    },
}  # fmt: skip
#: Families a target refuses by design, with the code (docs/cli.md and docs/spinnaker.md say why).
REFUSED: dict[str, dict[str, str]] = {
    "loihi": {},
    "spinnaker": {"ge2mst-tiny": "QNT002", "lsformer-tiny": "QNT008", "sdt-tiny": "QNT001"},
}


def _threshold_field(op: O.Op) -> str | None:
    if isinstance(op, (O.LIF, O.IF)):
        return "v_threshold"
    if isinstance(op, O.ExpGIF):
        return "theta"
    return None


def _tune(g: Graph, calib: dict[str, np.ndarray], rates: dict[str, float]) -> dict[str, float]:
    """Bisect each float neuron's threshold (log scale) to fire ``rates[n]`` (default
    ``TARGET_RATE``) on ``calib``; returns the rate each neuron reached."""
    reached: dict[str, float] = {}
    for n in g.topo_order():
        op = g.op(n)
        field = _threshold_field(op)
        if field is None:
            continue
        x = run(g, calib, "float", record="all").values[g.inputs_of(n)[0]]
        ctx = KernelCtx(n, 2, x.shape[0], x.shape[1], g.type(n))
        lo, hi = -14.0, 14.0
        want = rates.get(n, TARGET_RATE)
        for _ in range(28):
            mid = (lo + hi) / 2
            y = FLOAT_KERNELS[type(op)](op.replace(**{field: 2.0**mid}), [x], ctx)
            lo, hi = (mid, hi) if (y != 0).mean() > want else (lo, mid)
        g.set_op(n, op.replace(**{field: float(2.0**hi)}))
        y = FLOAT_KERNELS[type(op)](g.op(n), [x], ctx)
        reached[n] = float((y != 0).mean())
    return reached


def _neuron_sources(g: Graph, n: str) -> set[str]:
    """The neurons whose spikes reach ``n`` through non-neuron ops only."""
    found: set[str] = set()
    todo = list(g.inputs_of(n))
    while todo:
        d = todo.pop()
        if g.op(d).NEURON:
            found.add(d)
        else:
            todo.extend(g.inputs_of(d))
    return found


def _lively(g: Graph, calib: dict[str, np.ndarray]) -> Graph:
    """Tune to ``TARGET_RATE``; a neuron that cannot reach it (fed by products of sparse
    spikes, e.g. attention) gets livelier sources (rate 0.4) and everything is tuned again."""
    tuned = g.copy()
    reached = _tune(tuned, calib, {})
    starved = [n for n, r in reached.items() if r < TARGET_RATE / 2]
    if not starved:
        return tuned
    rates = {s: 0.4 for n in starved for s in _neuron_sources(g, n)}
    tuned = g.copy()
    _tune(tuned, calib, rates)
    return tuned


def samples(g: Graph, kind: str, n: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """``n`` samples in the model's layout: ``digits`` (test split) or ``random``."""
    shape = tuple(int(s) for s in g.meta["input_shape"])
    if kind == "digits":
        x, _ = digits("test", size=shape[-1])
        return x[:n].astype(np.float64)
    rng = np.random.default_rng(seed)
    if g.op(g.inputs[0]).kind_in is Kind.SPIKE:
        return (rng.random((n, *shape)) < 0.2).astype(np.float64)
    return rng.standard_normal((n, *shape))


def input_kinds(g: Graph) -> tuple[str, ...]:
    """``digits`` where the model takes ``[1, s, s]`` images, and always ``random``."""
    shape = tuple(g.meta["input_shape"])
    is_image = len(shape) == 3 and shape[0] == 1 and shape[1] == shape[2]
    return ("digits", "random") if is_image else ("random",)


@functools.cache
def front_graph(ref: str) -> Graph:
    """``ref`` (zoo name or checkpoint) traced, through the front passes."""
    from snncc.loading import resolve_model, to_graph

    g, _ = run_pipeline(to_graph(resolve_model(ref)), FRONT_PIPELINE)
    return g


@functools.cache
def lively_graph(name: str) -> Graph:
    """The random-weight tiny model ``name`` with thresholds tuned to fire (float graph)."""
    g = front_graph(name)
    kind = input_kinds(g)[0]
    calib = to_feeds(g, samples(g, kind, 8, seed=1))
    return _lively(g, calib)


@functools.cache
def _quantized(ref: str, target: str) -> Graph | str:
    g = (front_graph(ref) if ref == str(CHECKPOINT) else lively_graph(ref)).copy()
    try:
        q, _ = run_pipeline(g, [quantize], PassContext(config={"target": target}))
    except SnnccError as e:
        return f"{ref} does not quantize for {target}: {e.code} {e.message[:200]}"
    return q


def refusal_code(ref: str, target: str) -> str | None:
    """The diagnostic code ``ref`` is refused with on ``target``, None when it quantizes."""
    q = _quantized(ref, target)
    return q.split(": ")[1].split(" ")[0] if isinstance(q, str) else None


def quantized(ref: str, target: str) -> Graph:
    """The quantized graph of ``ref`` for ``target``.

    A model that fails to quantize fails the test: in :data:`QUANTIZES` it is a regression;
    otherwise, if the refusal is a documented one, the caller should not have asked (the zoo
    test asserts those refusals separately), and a new refusal must be documented first.
    """
    q = _quantized(ref, target)
    if isinstance(q, str):
        if ref in QUANTIZES[target]:
            pytest.fail(f"regression: {q}")
        pytest.fail(f"not in QUANTIZES or REFUSED (add it to one): {q}")
    return q
