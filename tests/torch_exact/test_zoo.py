"""Every zoo family, both targets: the torch program's spikes equal the reference's, exactly.

For each tiny family that quantizes (the registry's list, see ``zoo.py``) and for the committed
digits checkpoint, on digits (where the model takes images) and on random inputs: every neuron's
spike train equals the ``loihi``/``spinnaker`` reference mode's, neuron by neuron and step by
step; every deployed synaptic value (``a_in`` sums, ring-buffer pairs) is the same integer; the
host readout agrees to float64 rounding. Random-weight models are tuned to fire, and the test
asserts that every population of the integer program fires 5–50 % of the time, so equality is
not the trivial equality of silent networks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snncc.analysis.feeds import to_feeds
from snncc.ir.graph import Graph
from snncc.reference import RunResult, run
from snncc.torch_exact import ExactProgram, ExactResult

from .zoo import (
    CHECKPOINT,
    RATE_RANGE,
    REFUSED,
    TARGETS,
    TINY,
    input_kinds,
    quantized,
    refusal_code,
    samples,
)

CASES = [(name, t) for name in TINY for t in TARGETS if name not in REFUSED[t]] + [
    (str(CHECKPOINT), t) for t in TARGETS
]
REFUSALS = [(name, t, code) for t in TARGETS for name, code in sorted(REFUSED[t].items())]
IDS = [f"{n.split('/')[-1]}-{t}" for n, t in CASES]


def _first_difference(want: np.ndarray, got: np.ndarray) -> str:
    idx = tuple(int(i) for i in np.argwhere(want != got)[0])
    return f"first at [t, b, ...] = {list(idx)}: reference {want[idx]}, torch {got[idx]}"


def assert_same_program(q: Graph, ref: RunResult, res: ExactResult) -> None:
    """Spikes identical per neuron and step; deployed integers identical; readout close."""
    assert set(res.spikes) == set(ref.spikes)
    for n, want in ref.spikes.items():
        got = res.spikes[n].cpu().numpy()
        assert got.shape == want.shape, n
        assert np.array_equal(got, want), f"{n}: {_first_difference(want, got)}"
    for n, want in ref.values.items():
        got = res.values[n].cpu().numpy()
        if "quant" in q.node_meta(n) or q.op(n).NEURON:
            assert np.array_equal(got, want), f"{n}: {_first_difference(want, got)}"
        else:
            scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
            assert np.max(np.abs(got - want), initial=0.0) <= 1e-9 * scale, n


@pytest.mark.parametrize(("ref", "target", "code"), REFUSALS)
def test_documented_refusals(ref: str, target: str, code: str) -> None:
    """A family a target refuses by design is refused with its documented code (not skipped)."""
    assert refusal_code(ref, target) == code


@pytest.mark.parametrize(("ref", "target"), CASES, ids=IDS)
def test_spikes_equal_the_reference(ref: str, target: str) -> None:
    q = quantized(ref, target)
    prog = ExactProgram(q)
    assert prog.mode == target
    for kind in input_kinds(q):
        x = samples(q, kind)
        want = run(q, to_feeds(q, x), target, record="all")
        got = prog(prog.feeds(x), record="all")
        assert_same_program(q, want, got)
        rates = got.firing_rates()
        assert rates == want.firing_rates()
        silent = [n for n, r in rates.items() if r == 0]
        assert not silent, f"{kind}: silent populations {silent}"
        if ref != str(CHECKPOINT):  # random weights, tuned: every population 5-50 %
            lo, hi = RATE_RANGE
            off = {n: round(r, 3) for n, r in rates.items() if not lo <= r <= hi}
            assert not off, f"{kind}: populations firing outside {RATE_RANGE}: {off}"
        for n, c in got.spike_counts().items():
            assert torch.equal(c.cpu(), torch.from_numpy(want.spike_counts()[n])), n
