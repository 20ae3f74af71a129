"""The ``loihi`` kernels against Lava ``fixed_pt`` (docs/hardware-semantics.md §0.2, §2.1-§2.3).

Every expected number below is either copied from the measured tables of hardware-semantics.md
(lava-nc 0.10.0) or worked out by hand from its pseudo-code, with the arithmetic in a comment;
none comes from running the code under test. The ``runtime`` tests then run real Lava on random
leaky parameters and compare spike by spike (skipped without the runtime environment, failing
under ``CI=true``).
"""

from __future__ import annotations

import numpy as np
import pytest

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.types import Kind
from snncc.reference import run
from snncc.reference.loihi_kernels import (
    conv_weights,
    dense_input,
    dense_weights,
    effective_bias,
    lif_trace,
    shift_sum,
)
from snncc.runtime.bridge import run_in_runtime

LAVA_SMOKE = "snncc.backends.lava.runtime.smoke"


def _pulse(value: int, at: int, steps: int) -> np.ndarray:
    """``a_in`` of one neuron: ``value`` at step index ``at``, 0 elsewhere; shape ``[T, 1]``."""
    a = np.zeros((steps, 1), np.int64)
    a[at, 0] = value
    return a


# -- LIF decays (§2.1 measured table, trap 1) ------------------------------------------------------
def test_du0_still_decays_one_4096th_per_step() -> None:
    # Table row "du = 0, dv = 0, one input of weight 100": the input reaches the LIF one step
    # after the spike (Dense), hence the leading 0. 25588 = 19194 + 6394 (dv = 0 integrates u).
    u, v, s = lif_trace(_pulse(100, 1, 5), du=0, dv=0, vth=100000)
    assert u[:, 0].tolist() == [0, 6400, 6398, 6396, 6394]
    assert v[:, 0].tolist() == [0, 6400, 12798, 19194, 25588]
    assert not s.any()


def test_decay_truncates_toward_zero_for_negative_current() -> None:
    # -6400 * 4095 / 4096 = -6398.44 -> -6398 toward zero (floor would give -6399);
    # -6398 * 4095 / 4096 = -6396.44 -> -6396.
    u, _, _ = lif_trace(_pulse(-100, 0, 3), du=0, dv=0, vth=0)
    assert u[:, 0].tolist() == [-6400, -6398, -6396]


def test_du_minus1_is_no_decay_and_du_4095_is_a_delta_synapse() -> None:
    u, v, _ = lif_trace(_pulse(100, 1, 4), du=-1, dv=0, vth=100000)
    assert u[:, 0].tolist() == [0, 6400, 6400, 6400]
    assert v[:, 0].tolist() == [0, 6400, 12800, 19200]
    u, v, _ = lif_trace(_pulse(100, 1, 4), du=4095, dv=0, vth=100000)
    assert u[:, 0].tolist() == [0, 6400, 0, 0]
    assert v[:, 0].tolist() == [0, 6400, 6400, 6400]


def test_du_dv_2048_row() -> None:
    u, v, _ = lif_trace(_pulse(100, 0, 4), du=2048, dv=2048, vth=100000)
    assert u[:, 0].tolist() == [6400, 3198, 1598, 798]
    assert v[:, 0].tolist() == [6400, 6398, 4797, 3196]


def test_dv_4095_keeps_one_4096th() -> None:
    # v = 6400, then trunc(6400 / 4096) = 1, then trunc(1 / 4096) = 0.
    _, v, _ = lif_trace(_pulse(100, 0, 3), du=4095, dv=4095, vth=100000)
    assert v[:, 0].tolist() == [6400, 1, 0]


def test_per_neuron_decays_broadcast() -> None:
    # Neuron 0 gets du = -1 (no decay), neuron 1 du = 0 (decays): the two rows above, side by side.
    a = np.zeros((3, 2), np.int64)
    a[0] = 100
    u, _, _ = lif_trace(a, du=np.array([-1, 0]), dv=0, vth=100000)
    assert u.tolist() == [[6400, 6400], [6400, 6398], [6400, 6396]]


# -- bias and strict threshold (§2.1 table, trap 6) ------------------------------------------------
def test_bias_grows_one_per_step_and_strict_threshold_fires_at_129_and_258() -> None:
    # bias_mant = 1, bias_exp = 0 is 1 v-unit per step (NOT x64); vth = 2 is 128 v-units and
    # Lava fires on v > 128: v = 128 at step 128 does not fire, v = 129 at step 129 does.
    _, v, s = lif_trace(np.zeros((300, 1), np.int64), du=4095, dv=0, vth=2, bias_mant=1)
    steps = (np.flatnonzero(s[:, 0]) + 1).tolist()
    assert steps == [129, 258]
    assert v[127, 0] == 128  # step 128: v equals vth << 6 and does not fire
    assert v[128, 0] == 0  # reset after the spike at step 129


def test_effective_bias_shifts() -> None:
    assert effective_bias(np.array([3, -3]), 6).tolist() == [192, -192]
    assert effective_bias(np.array([5, -5]), -1).tolist() == [2, -3]  # arithmetic shift: floor


# -- u wraps, v saturates at 24 bits (§2.1 table, trap 10) -----------------------------------------
def test_u_wraps_at_24_bits() -> None:
    # 600 inputs x 255 = 153,000 -> u = 153,000 * 64 - 2^24 = -6,985,216.
    u, _, _ = lif_trace(np.array([[153_000]]), du=4095, dv=0, vth=0)
    assert u[0, 0] == -6_985_216
    # 200 x 255 = 51,000 is above int16 but a_in is not clipped: 3,264,000.
    u, _, _ = lif_trace(np.array([[51_000]]), du=4095, dv=0, vth=0)
    assert u[0, 0] == 3_264_000


def test_u_wrap_edges() -> None:
    # u' = 2^23 is kept (the test is u' > 2^23); u' = -2^23 wraps to -2^23 + 2^24 = 2^23.
    u, _, _ = lif_trace(np.array([[131_072, -131_072]]), du=4095, dv=0, vth=0)
    assert u[0].tolist() == [8_388_608, 8_388_608]


def test_v_saturates_at_plus_minus_2_23_minus_1() -> None:
    # du = -1 keeps u = -6,400,000; v: -6.4M, -12.8M -> clipped to -8,388,607, stays there.
    _, v, _ = lif_trace(_pulse(-100_000, 0, 3), du=-1, dv=0, vth=0)
    assert v[:, 0].tolist() == [-6_400_000, -8_388_607, -8_388_607]
    # Positive side: 12.8M clips to 8,388,607, above even the largest vth << 6 = 8,388,544.
    _, v, s = lif_trace(_pulse(100_000, 0, 3), du=-1, dv=0, vth=2**17 - 1)
    assert s[:, 0].tolist() == [0, 1, 0]
    assert v[:, 0].tolist() == [6_400_000, 0, 6_400_000]


# -- Dense weights and weight_exp (§2.2 measured table, trap 2) ------------------------------------
def _effective(w: list[int], **kw: object) -> list[int]:
    """The doc's harness: one presynaptic spike into len(w) targets; a_in of each target."""
    return dense_input(np.array(w).reshape(-1, 1), np.array([1]), **kw).tolist()  # type: ignore[arg-type]


def test_dense_mixed_sign_loses_the_lsb() -> None:
    assert _effective([3, -3, 1, 7, 255, -256, 100]) == [2, -4, 0, 6, 254, -256, 100]
    assert _effective([3, 3, 1, 7, 255, 256, 100]) == [3, 3, 1, 7, 255, 255, 100]  # 256 clips
    assert _effective([3, -3, 1, 7, -128, 127, -1]) == [2, -4, 0, 6, -128, 126, -2]


def test_dense_exact_recipe_2w_with_weight_exp_minus1() -> None:
    w = [3, -3, 1, 7, -128, 127, -1]
    assert _effective([2 * x for x in w], weight_exp=-1) == w


def test_weight_exp_shifts_the_sum() -> None:
    w = [1, 3, 7, 100, 255]
    assert _effective(w, weight_exp=1) == [2, 6, 14, 200, 510]
    assert _effective(w, weight_exp=-1) == [0, 1, 3, 50, 127]
    assert _effective(w, weight_exp=3) == [8, 24, 56, 800, 2040]
    assert _effective(w, num_weight_bits=6) == [0, 0, 4, 100, 252]
    assert _effective(w, num_weight_bits=4) == [0, 0, 0, 96, 240]


def test_weight_exp_floors_the_sum_not_each_weight() -> None:
    # Two inputs of weight 1 with weight_exp = -1: (1 + 1) >> 1 = 1, not (1 >> 1) + (1 >> 1) = 0.
    assert dense_input(np.array([[1, 1]]), np.array([1, 1]), weight_exp=-1).tolist() == [1]
    # Floor, not truncation: -3 >> 1 = -2 (all-negative weights: INHIBITORY mode, no LSB loss).
    assert dense_input(np.array([[-3]]), np.array([1]), weight_exp=-1).tolist() == [-2]
    assert shift_sum(np.array([-1, 1, -5]), -2).tolist() == [-1, 0, -2]


def test_inhibitory_truncates_toward_zero_at_fewer_bits() -> None:
    # INHIBITORY negates before the shift: -7 at 6 bits: -((7 >> 2) << 2) = -4 (MIXED-style
    # floor would give -8).
    assert dense_weights(np.array([-7, -1, -100]), num_weight_bits=6).tolist() == [-4, 0, -100]


def test_linear_kernel_is_dense_fed_2w_with_weight_exp_minus_1(builder, rng) -> None:
    # The kernel holds mantissas W_q and weight_exp e; the emitted Dense gets 2·W_q and e - 1.
    # Odd mixed-sign mantissas: without the doubling Lava would drop their LSBs (checked too).
    wq = rng.integers(-128, 128, (6, 9))
    wq[0, 0], wq[0, 1] = 3, -3
    x = (rng.random((5, 2, 9)) < 0.5).astype(np.float64)
    for e in (-3, -1, 0, 2):
        b = builder(5)
        b.input("x", (9,), kind=Kind.SPIKE)
        b.node("fc", O.Linear(weight=wq.astype(np.int64)), "x")
        b.g.node_meta("fc")["quant"] = {"weight_exp": e}
        got = run(b.done("fc"), {"x": x}, "loihi").outputs["fc"]
        lava = np.stack([[dense_input(2 * wq, s, e - 1) for s in xt] for xt in x])
        np.testing.assert_array_equal(got, lava)
        naive = np.stack([[dense_input(wq, s, e) for s in xt] for xt in x])
        assert not np.array_equal(got, naive), f"e={e}: the LSB loss should show"


# -- Conv ignores weight_exp (§2.3, trap 3) --------------------------------------------------------
def _conv_graph(builder, weight_exp: int):
    b = builder(1)
    b.input("x", (1, 3, 3), kind=Kind.SPIKE)
    w = np.array([[[[3, -5], [7, 1]]]], np.int64)
    b.node("conv", O.Conv2d(weight=w), "x")
    b.g.node_meta("conv")["quant"] = {"weight_exp": weight_exp, "exp_folded_into_weights": True}
    return b.done("conv")


def test_conv_folds_the_exponent_into_the_weights(builder) -> None:
    # Lava's Conv uses its weights as given, so snncc emits W_q << e. PyTorch layout here
    # (cross-correlation; the kernel flip is the backend's business). x windows, by hand:
    #   [[1,0],[1,1]] -> 3 + 7 + 1 = 11      [[0,1],[1,0]] -> -5 + 7 = 2
    #   [[1,1],[0,1]] -> 3 - 5 + 1 = -1      [[1,0],[1,1]] -> 3 + 7 + 1 = 11
    # times 2^2 = 4.
    x = np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1]], np.float64).reshape(1, 1, 1, 3, 3)
    y = run(_conv_graph(builder, 2), {"x": x}, "loihi").outputs["conv"]
    assert y.reshape(2, 2).tolist() == [[44, 8], [-4, 44]]
    assert conv_weights(np.array([3, -5]), 2).tolist() == [12, -20]


def test_conv_with_negative_weight_exp_is_refused(builder) -> None:
    # A Dense would floor the sum; Lava's Conv would silently ignore the exponent. Neither is
    # what the weights mean, so the kernel refuses instead of modelling a program nobody emits.
    x = np.ones((1, 1, 1, 3, 3))
    with pytest.raises(SnnccError) as info:
        run(_conv_graph(builder, -1), {"x": x}, "loihi")
    assert info.value.code == "REF003" and "weight_exp" in info.value.message
    with pytest.raises(ValueError, match="weight_exp"):
        conv_weights(np.array([1]), -1)


# -- real Lava: random leaky parameters, spike by spike --------------------------------------------
def _leaky_params(rng: np.random.Generator, weights: np.ndarray, steps: int) -> dict:
    return {
        "weights": weights.tolist(),
        "du": 4095,
        "dv": int(rng.integers(300, 1200)),
        "vth": int(rng.integers(12, 30)),
        "bias_mant": rng.integers(40, 90, 2).tolist(),
        "bias_exp": 4,
        "steps": steps,
    }


def _check_activity(out: dict[str, np.ndarray]) -> None:
    """Guard against a vacuous comparison: both layers fire, v2 goes negative, v has low bits."""
    assert out["s1"].sum(axis=0).min() >= 5 and out["s2"].sum() >= 5
    assert out["v2"].min() < 0
    assert np.any(out["v1"] % 64) and np.any(out["v2"] % 64)


def _layer2_input(dense_w: np.ndarray, s1: np.ndarray, weight_exp: int = 0) -> np.ndarray:
    """Lava Dense: the spikes of step t arrive at step t + 1 (§2.4)."""
    a = np.zeros(s1.shape, np.int64)
    a[1:] = [dense_input(dense_w, s, weight_exp) for s in s1[:-1]]
    return a


@pytest.mark.runtime
def test_lava_matches_the_interpreter_on_the_exact_recipe(builder) -> None:
    rng = np.random.default_rng(11)
    steps = 80
    wq = rng.integers(-128, 128, (2, 2)) | 1  # odd, mixed sign: the recipe must make them exact
    wq[0, 1], wq[1, 0] = -abs(wq[0, 1]), -abs(wq[1, 0])
    wq[0, 0], wq[1, 1] = abs(wq[0, 0]), abs(wq[1, 1])
    p = _leaky_params(rng, 2 * wq, steps)  # Dense(weights=2·W_q), weight_exp = 0 = e - 1
    out, result = run_in_runtime(LAVA_SMOKE, {}, p, timeout=120)
    assert result["lava_nc"] == "0.10.0"
    _check_activity(out)

    lif = {k: p[k] for k in ("du", "dv", "vth")}
    b = builder(steps)
    b.input("x", (2,))
    b.node("lif1", O.LoihiLIF(bias_mant=np.array(p["bias_mant"]), bias_exp=4, **lif), "x")
    b.node("fc", O.Linear(weight=wq.astype(np.int64)), "lif1")
    b.g.node_meta("fc")["quant"] = {"weight_exp": 1}
    b.node("hop", O.Delay(steps=1), "fc")  # Lava's one step per Dense
    b.node("lif2", O.LoihiLIF(bias_mant=np.zeros(2, np.int64), bias_exp=0, **lif), "hop")
    res = run(b.done("lif1", "lif2"), {"x": np.zeros((steps, 1, 2))}, "loihi")
    np.testing.assert_array_equal(res.spikes["lif1"][:, 0], out["s1"])
    np.testing.assert_array_equal(res.spikes["lif2"][:, 0], out["s2"])
    # Membranes too (Monitor records v after the step, as lif_trace returns it).
    bias = {"bias_mant": np.array(p["bias_mant"]), "bias_exp": 4}
    _, v1, _ = lif_trace(np.zeros((steps, 2)), **bias, **lif)
    _, v2, _ = lif_trace(_layer2_input(2 * wq, out["s1"]), **lif)
    np.testing.assert_array_equal(v1, out["v1"])
    np.testing.assert_array_equal(v2, out["v2"])


@pytest.mark.runtime
def test_lava_drops_the_lsb_of_raw_mixed_sign_weights_as_modelled() -> None:
    rng = np.random.default_rng(5)
    steps = 80
    w = np.array([[101, -77], [-45, 63]])  # odd and mixed: Lava uses [[100, -78], [-46, 62]]
    assert dense_weights(w).tolist() == [[100, -78], [-46, 62]]  # (w >> 1) << 1, by hand
    p = _leaky_params(rng, w, steps)
    out, _ = run_in_runtime(LAVA_SMOKE, {}, p, timeout=120)
    _check_activity(out)
    lif = {k: p[k] for k in ("du", "dv", "vth")}
    bias = {"bias_mant": np.array(p["bias_mant"]), "bias_exp": 4}
    _, v1, s1 = lif_trace(np.zeros((steps, 2)), **bias, **lif)
    _, v2, s2 = lif_trace(_layer2_input(w, s1), **lif)
    np.testing.assert_array_equal(s1, out["s1"])
    np.testing.assert_array_equal(s2, out["s2"])
    np.testing.assert_array_equal(v2, out["v2"])
