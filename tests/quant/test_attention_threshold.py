"""Threshold placement on the membrane's lattice: the attention neuron (docs/fidelity.md §3.2).

Spikingformer's ``attn_lif`` reads ``Q Kᵀ V · 0.125``: integer counts times the multiplier 128
(``a_in`` units). With a delta synapse and a halving leak over T = 4 its membrane is always a
multiple of 1024 v-units and lands *exactly* on the threshold (``v = 65536`` for a count of 8).
SpikingJelly fires there (``V >= v_th``), Lava only on ``v > vth << 6``: the old placement,
which assumed a leaky membrane takes every integer value, chose ``vth = 1024`` and missed those
spikes; on the analysed granule ``vth = 1023`` is exact. Both tests compare against the float
rule written out here, and show that the old placement differed.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np

from snncc.analysis.feeds import to_feeds
from snncc.data.digits import digits
from snncc.ir import ops as O
from snncc.loading import resolve_model, to_graph
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.quant.loihi import membrane_granule, place_threshold
from snncc.reference.context import KernelCtx
from snncc.reference.feeds import validate_feeds
from snncc.reference.interpreter import MODES
from snncc.reference.loihi_kernels import lif_trace

T = 4
CHECKPOINT = "examples/checkpoints/spikingformer-tiny-digits.pt"


def _float_lif(x: np.ndarray, v_th: float) -> np.ndarray:
    """SpikingJelly's LIF (tau 2, decay_input, hard reset to 0) over ``x [T, ...]``: exact here,
    since every value is a dyadic rational with few bits."""
    h = np.zeros(x.shape[1:])
    out = []
    for t in range(x.shape[0]):
        h = h + (x[t] - h) / 2.0
        s = h >= v_th
        h = np.where(s, 0.0, h)
        out.append(s)
    return np.stack(out)


def test_membrane_on_the_threshold_every_count_sequence() -> None:
    # Every sequence of counts 0..8 over T = 4 steps: X = 0.125 · count, v_th = 0.5. The scale
    # c = 1024 makes the multiplier 0.125 · c = 128 = 2^7 and theta = c · tau · v_th = 1024.
    counts = np.array(list(itertools.product(range(9), repeat=T))).T  # [T, 9^4]
    want = _float_lif(0.125 * counts, 0.5)
    granule = membrane_granule(4095, 2048, np.zeros(1, np.int64), 6, input_exp=7, steps=T)
    assert granule == 1024
    th = place_threshold(Fraction(1024), granule)
    assert (th.vth, th.exact, th.fire_at, th.wanted) == (1023, True, 65536, 65536)
    _, v, got = lif_trace(128 * counts, 4095, 2048, th.vth)
    assert not np.any(v % granule)  # the lattice holds on every trace
    np.testing.assert_array_equal(got.astype(bool), want)
    # The placement that assumed every integer reachable (granule 1): vth 1024, misses v = 65536.
    old = place_threshold(Fraction(1024), 1)
    assert old.vth == 1024
    _, _, before = lif_trace(128 * counts, 4095, 2048, old.vth)
    assert (want & ~before.astype(bool)).any()  # spikes it missed (and later ones it moved)


def _teacher_forced(g, feeds: dict[str, np.ndarray], forced: dict[str, np.ndarray]):  # noqa: ANN001, ANN202
    """Every neuron's own output in the graph's mode, each fed the forced spikes of every
    neuron before it (what ``benchmarks/fidelity_drift.py`` calls local)."""
    mode = g.meta.get("quant", {}).get("target", "float")
    kernels = MODES[mode]
    feeds, b = validate_feeds(g, feeds, T)
    own, seen = {}, {}
    for n in g.topo_order():
        ty = g.type(n)
        ctx = KernelCtx(n, 2 if ty.temporal else 1, T, b, ty, feeds.get(n), g.node_meta(n))
        own[n] = kernels[type(g.op(n))](g.op(n), [seen[d] for d in g.inputs_of(n)], ctx)
        seen[n] = forced.get(n, own[n])
    return own


def test_digits_attention_neurons_have_no_local_drift() -> None:
    front, _ = run_pipeline(to_graph(resolve_model(CHECKPOINT)), FRONT_PIPELINE)
    q, _ = run_pipeline(front.copy(), [quantize], PassContext(config={"target": "loihi"}))
    assert int(q.meta["timesteps"]) == T
    x, _ = digits("test")
    x = x[:64].astype(np.float64)
    fv = _teacher_forced(front, to_feeds(front, x), {})
    neurons = [n for n in front.topo_order() if front.op(n).NEURON]
    forced = {n: fv[n] for n in neurons}
    attn = [n for n in neurons if n.endswith("attn_lif")]
    assert len(attn) == 2
    old = q.copy()
    for n in attn:
        meta = q.node_meta(n)["quant"]
        placed = (meta["membrane_granule"], meta["vth"], meta["threshold_exact"])
        assert placed == (1024, 1023, True)
        assert isinstance(q.op(n), O.LoihiLIF)
        old.set_op(n, q.op(n).replace(vth=1024))  # the granule-1 placement
    fq = to_feeds(q, x)
    local, before = _teacher_forced(q, fq, forced), _teacher_forced(old, fq, forced)
    for n in attn:
        assert fv[n].any()
        np.testing.assert_array_equal(local[n], fv[n])  # local drift 0
        assert (before[n] != fv[n]).any(), n  # and it was not before
