"""The ``quantize`` pass for Loihi: conv exponents (trap 3) and placed thresholds, end to end.

A small conv network goes through the front pipeline and ``quantize(target="loihi")``; the
checks are on what the emitted program needs (no negative conv exponent, thresholds recorded as
exact or not for the right reason) and that the result runs in the ``loihi`` reference mode.
"""

from __future__ import annotations

import numpy as np

from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.shapes import output_shape
from snncc.ir.types import Kind, TensorType
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.quant.common import mantissa_exponent
from snncc.reference import run

T, B = 4, 3
V_TH = 1000.0  # large: the 17-bit vth limit sets the conv stream's scale to 2^6, so w·c < 64


def _add(g: Graph, name: str, op: O.Op, *srcs: str) -> str:
    shape = output_shape(op, [g.type(s).shape for s in srcs])
    g.add(name, op, TensorType(shape, Kind.CURRENT, None, not isinstance(op, O.TimeMean)))
    for src, port in zip(srcs, op.in_ports, strict=True):
        g.connect(src, name, port)
    return name


def _graph(rng: np.random.Generator) -> Graph:
    """x -> conv0 (host) -> lif0 -> conv1 -> lif1 (leaky) -> flatten -> fc -> if2 -> mean."""
    g = Graph("q")
    g.meta["timesteps"] = T
    g.add("x", O.Input(shape=(2, 6, 6)), TensorType((2, 6, 6)))
    g.inputs.append("x")
    _add(g, "conv0", O.Conv2d(weight=rng.normal(size=(4, 2, 3, 3)), padding=(1, 1)), "x")
    _add(g, "lif0", O.LIF(tau=2.0), "conv0")
    _add(g, "conv1", O.Conv2d(weight=rng.uniform(-1, 1, (4, 4, 3, 3)), padding=(1, 1)), "lif0")
    _add(g, "lif1", O.LIF(tau=2.0, v_threshold=V_TH), "conv1")
    _add(g, "flat", O.Reshape((4 * 36,)), "lif1")
    _add(g, "fc", O.Linear(weight=rng.uniform(-1, 1, (5, 4 * 36))), "flat")
    _add(g, "if2", O.IF(v_threshold=V_TH), "fc")
    _add(g, "rate", O.TimeMean(), "if2")
    g.outputs.append("rate")
    return g


def _quantized(rng: np.random.Generator) -> tuple[Graph, Graph]:
    front, _ = run_pipeline(_graph(rng), FRONT_PIPELINE)
    out, _ = run_pipeline(front, [quantize], PassContext(config={"target": "loihi"}))
    return front, out


def test_conv_exponent_is_folded_never_negative() -> None:
    front, g = _quantized(np.random.default_rng(0))
    conv, fc = g.node_meta("conv1")["quant"], g.node_meta("fc")["quant"]
    assert conv["scale"] == 64.0  # 2^17 / (V_TH * tau) = 65.5 -> 2^6
    # The same weights on a Dense path would take a negative exponent (finer mantissas) ...
    w = np.asarray(front.op("conv1").weight) * conv["scale"]
    _, dense_e = mantissa_exponent(w, -128, 127, -7, 8, "conv1")
    assert dense_e < 0
    # ... but Lava's Conv ignores weight_exp, so the conv keeps e >= 0 folded into its weights.
    assert conv["weight_exp"] == 0 and conv["exp_folded_into_weights"] is True
    np.testing.assert_array_equal(g.op("conv1").weight, np.rint(w).astype(np.int64))
    assert "exp_folded_into_weights" not in fc


def test_thresholds_are_placed_per_membrane_granule() -> None:
    _, g = _quantized(np.random.default_rng(0))
    leaky, if2 = g.node_meta("lif1")["quant"], g.node_meta("if2")["quant"]
    # lif1: conv1's integer weights include odd ones, so a_in is any integer and u = a_in << 6
    # a multiple of 64; the halving leak (dv = 2048) costs a bit per step, so over T = 4 steps
    # v is a multiple of 64 / 2^3 = 8. theta_v = 64 * 64 * 2 * 1000 = 8,192,000 (a multiple of
    # 8); vth = round((8,192,000 - 8) / 64) = 128000 fires from 8,192,008: 8 late, not exact.
    assert g.meta["timesteps"] == 4
    assert np.any(g.op("conv1").weight % 2)
    assert (leaky["membrane_granule"], leaky["vth"], leaky["fire_shift_v"]) == (8, 128000, 8)
    assert leaky["threshold_exact"] is False
    assert g.op("lif1").vth == 128000
    # if2: no leak (gain 1, scale 2^17 / 1000 = 131 -> 2^7); fc has weight_exp 1, so every a_in
    # is even and v a multiple of 2 << 6 = 128 (on the 64-grid): vth = 128 * 1000 - 1 = 127999
    # is exact (fires from v = 128,000 * 64, SpikingJelly's first value).
    assert if2["scale"] == 128.0 and g.node_meta("fc")["quant"]["weight_exp"] == 1
    assert (if2["membrane_granule"], if2["vth"], if2["threshold_exact"]) == (128, 127999, True)


def test_quantized_graph_runs_in_loihi_mode() -> None:
    rng = np.random.default_rng(1)
    _, g = _quantized(rng)
    x = rng.normal(0.5, 1.0, (T, B, 2, 6, 6))
    res = run(g, {"x": x}, "loihi")
    assert res.outputs["rate"].shape == (B, 5)
    for name in ("lif0", "lif1", "if2"):
        assert set(np.unique(res.spikes[name])) <= {0, 1}, name
    assert res.spikes["lif0"].any()
