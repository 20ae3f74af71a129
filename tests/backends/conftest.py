"""Programs the backend tests share: the digits checkpoint and a random spikingformer-tiny.

Each fixture is the quantized, lowered and balanced graph with three test digits as input, plus
the ``loihi`` reference run of every node (``record="all"``): the oracle a backend must match
population by population. The random model's thresholds are set so that every neuron fires
about a fifth of the time on digits (random weights alone leave the network silent after the
first layer, which would make an equality test vacuous); for a LIF with ``v_reset = 0`` a
threshold divided by ``k`` is the same neuron as its input weights multiplied by ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from snncc.backends.lower.passes import SPEC_KEY, balance_latency, lower
from snncc.backends.lower.spec import ProgramSpec
from snncc.data.digits import digits
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.reference import RunResult, run
from snncc.reference.context import KernelCtx
from snncc.reference.float_kernels import KERNELS as FLOAT_KERNELS

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "examples/checkpoints/spikingformer-tiny-digits.pt"
SAMPLES = 3
TARGET_RATE = 0.2


@dataclass
class Program:
    """A lowered program with its inputs and the reference run it must reproduce."""

    name: str
    graph: Graph
    spec: ProgramSpec
    inputs: dict[str, np.ndarray]
    reference: RunResult

    def reference_spikes(self, node: str) -> np.ndarray:
        """The reference's spikes of a population node, ``[T, B, *shape]`` uint8."""
        return (self.reference.values[node] != 0).astype(np.uint8)

    def assert_lively(self, rates: dict[str, float]) -> None:
        """Guard against a vacuous comparison: all populations fire, most 5-50 % of the time."""
        silent = [n for n, r in rates.items() if r == 0]
        assert not silent, f"{self.name}: silent populations {silent}"
        lively = [n for n, r in rates.items() if 0.05 <= r <= 0.5]
        assert len(lively) >= 0.6 * len(rates), f"{self.name}: firing rates {rates}"


def _front(ref: str) -> Graph:
    from snncc.loading import resolve_model, to_graph

    g, _ = run_pipeline(to_graph(resolve_model(ref)), FRONT_PIPELINE)
    return g


def _tune_thresholds(g: Graph, calib: dict[str, np.ndarray], rate: float) -> Graph:
    """Set each LIF's threshold, in graph order, so it fires ``rate`` of the time on ``calib``."""
    for n in g.topo_order():
        op = g.op(n)
        if not isinstance(op, O.LIF):
            continue
        x = run(g, calib, "float", record="all").values[g.inputs_of(n)[0]]
        ctx = KernelCtx(n, 2, x.shape[0], x.shape[1], g.type(n))
        lo, hi = -12.0, 12.0  # log2 of the threshold
        for _ in range(30):
            mid = (lo + hi) / 2
            fired = FLOAT_KERNELS[O.LIF](op.replace(v_threshold=2.0**mid), [x], ctx).mean()
            lo, hi = (mid, hi) if fired > rate else (lo, mid)
        g.set_op(n, op.replace(v_threshold=float(2.0**hi)))
    return g


def _program(name: str, g: Graph) -> Program:
    ctx = PassContext(config={"target": "loihi", "require_program": True})
    q, ctx = run_pipeline(g, [quantize, lower, balance_latency], ctx)
    x, _ = digits("test")
    inputs = {q.inputs[0]: x[:SAMPLES]}
    return Program(name, q, ctx.config[SPEC_KEY], inputs, run(q, inputs, "loihi", record="all"))


@pytest.fixture(scope="session")
def digits_program() -> Program:
    """The committed digits checkpoint (spikingformer-tiny, trained)."""
    return _program("digits", _front(str(CHECKPOINT)))


@pytest.fixture(scope="session")
def random_program() -> Program:
    """spikingformer-tiny with seeded random weights and thresholds tuned to fire."""
    g = _front("spikingformer-tiny")
    x, _ = digits("train")
    return _program("random", _tune_thresholds(g, {g.inputs[0]: x[:8]}, TARGET_RATE))
