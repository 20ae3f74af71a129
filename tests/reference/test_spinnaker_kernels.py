"""The ``spinnaker`` kernels against sPyNNaker 7.4.1 (docs/hardware-semantics.md §4, traps 6-10).

sPyNNaker cannot run here (a virtual board maps but does not execute), so every expectation is
worked out by hand from the C update of §4.2 in raw s16.15 integers (1.0 mV = 32768), with the
arithmetic in a comment. ``mul(a, b) = (a·b + 2^14) >> 15`` is the doc's round-to-nearest
multiply; V is the value *after* the step (sPyNNaker records it before, one step later).
"""

from __future__ import annotations

import numpy as np

from snncc.ir import ops as O
from snncc.reference.spinnaker_kernels import (
    lif_trace,
    membrane_params,
    mul_accum,
    refractory_steps,
    ring_buffer_shift,
    stored_weight,
)

ONE = 32768


def _op(**kw: int) -> O.SpiNNakerLIF:
    base = {"v_thresh": 100 * ONE, "exp_tc": 0, "r": ONE}
    return O.SpiNNakerLIF(**{**base, **kw})  # type: ignore[arg-type]


def _col(*xs: int) -> np.ndarray:
    return np.array(xs, np.int64).reshape(-1, 1)


def test_threshold_is_non_strict() -> None:
    # exp_tc = 0, R = 1.0: V = I each step. V = 32767 < 32768: no spike; V = 32768 >= 32768 fires
    # (Lava's strict v > vth << 6 does not fire at equality: test_loihi_kernels, step 128).
    v, s = lif_trace(_col(32767, 32768, 0), _col(0, 0, 0), _op(v_thresh=ONE))
    assert s[:, 0].tolist() == [0, 1, 0]
    assert v[:, 0].tolist() == [32767, 0, 0]


def test_products_round_to_nearest_half_up() -> None:
    # 0.5 * 3 = 1.5 -> 2;  0.5 * 1 = 0.5 -> 1;  0.5 * -3 = -1.5 -> -1;  0.5 * -1 = -0.5 -> 0.
    assert mul_accum(np.array([3, 1, -3, -1]), ONE // 2).tolist() == [2, 1, -1, 0]


def test_leak_update_uses_rounded_products() -> None:
    # exp_tc = 0.5, I = 3 raw: V = alpha - mul(0.5, alpha - V), alpha = mul(I, 1.0) = I.
    #   t1: 3 - mul(0.5, 3) = 3 - 2 = 1     t2: 3 - mul(0.5, 2) = 3 - 1 = 2
    #   t3: 3 - mul(0.5, 1) = 3 - 1 = 2     t4 (I = 0): 0 - mul(0.5, -2) = 0 - (-1) = 1
    # (truncating products would give 2, 2, 3, 1).
    v, _ = lif_trace(_col(3, 3, 3, 0), _col(0, 0, 0, 0), _op(exp_tc=ONE // 2))
    assert v[:, 0].tolist() == [1, 2, 2, 1]


def test_ring_buffers_saturate_at_16_bits_before_the_shift() -> None:
    # exc = 70000 saturates to 65535, then << 1: V = 131070, not 140000.
    v, _ = lif_trace(_col(70000), _col(0), _op(exc_shift=1))
    assert v[0, 0] == 131070
    # Each receptor saturates on its own: 70000 - 70000 is 65535 - 65535 = 0, but with
    # different shifts the two saturated buffers still differ: (65535 << 2) - (65535 << 1).
    v, _ = lif_trace(_col(70000, 70000), _col(70000, 70000), _op())
    assert v[:, 0].tolist() == [0, 0]
    v, _ = lif_trace(_col(70000), _col(70000), _op(exc_shift=2, inh_shift=1))
    assert v[0, 0] == 262140 - 131070


def test_ring_buffer_shift_and_weight_resolution() -> None:
    # s = ceil(log2(max)), +1 at an exact power of two, clamped at 0 (sPyNNaker
    # get_ring_buffer_shifts: ceil(max(0, log2(w)))).
    assert [ring_buffer_shift(w) for w in (6.0, 8.0, 1.0, 0.7, 0.3, 0.0)] == [3, 4, 1, 0, 0, 0]
    # Stored weight rint(|w| * 2^(15 - s)): 6 mV at s = 3 is 24576 (resolution 2^-12 mV).
    assert stored_weight(np.array([6.0, -6.0, 2.0**-13]), 3).tolist() == [24576, 24576, 0]


def test_refractory_steps_from_tau_refrac() -> None:
    # ceil(tau_refrac / dt): PyNN's default 0.1 ms is one whole step at dt = 1 ms (trap 8).
    assert [refractory_steps(t) for t in (0.0, 0.1, 1.0, 1.5, 2.0)] == [0, 1, 1, 2, 2]
    assert refractory_steps(0.1, dt=0.1) == 1


def test_refractory_step_drops_input_and_tau_refrac_0_does_not() -> None:
    # exp_tc = 0: V = I. Input 40000 >= 32768 every step except the last.
    #   T_refract = 0: fires at t1, t2, t3.
    #   T_refract = 1: t1 fires; t2 refractory (input dropped, V stays 0); t3 fires; t4 refractory.
    exc = _col(40000, 40000, 40000, 0)
    zeros = np.zeros_like(exc)
    _, s0 = lif_trace(exc, zeros, _op(v_thresh=ONE))
    _, s1 = lif_trace(exc, zeros, _op(v_thresh=ONE), refract_steps=1)
    assert s0[:, 0].tolist() == [1, 1, 1, 0]
    assert s1[:, 0].tolist() == [1, 0, 1, 0]
    # The dropped input is lost, not delayed. exp_tc = 0.5, threshold 20000:
    #   t1: 40000 - mul(0.5, 40000) = 20000 >= 20000 fires, V = 0;
    #   t2: refractory, the 30000 is dropped, V stays 0;   t3: no input, V = 0.
    op = _op(exp_tc=ONE // 2, v_thresh=20000)
    v, s = lif_trace(_col(40000, 30000, 0), _col(0, 0, 0), op, refract_steps=1)
    assert s[:, 0].tolist() == [1, 0, 0]
    assert v[:, 0].tolist() == [0, 0, 0]
    # Without it: t2: 30000 - mul(0.5, 30000) = 15000; t3: 0 - mul(0.5, -15000) = 7500.
    v, s = lif_trace(_col(40000, 30000, 0), _col(0, 0, 0), op)
    assert s[:, 0].tolist() == [1, 0, 0]
    assert v[:, 0].tolist() == [0, 15000, 7500]


def test_if_curr_delta_jump_is_w_r_1_minus_exp_tc_not_w() -> None:
    # PyNN cm = 1 nF, tau_m = 20 ms: R = 20.0 = 655360 raw, exp_TC = rint(e^-0.05 * 32768)
    # = rint(31169.89) = 31170. A 6 mV weight at shift 3 is stored as 24576, i.e. 196608 raw.
    #   alpha = mul(196608, 655360) = 3932160 (20 * 6 mV)
    #   V = alpha - mul(31170, 3932160) = 3932160 - 3740400 = 191760 raw = 5.852 mV, not 6 mV.
    r, exp_tc = membrane_params(20.0, 1.0)
    assert (r, exp_tc) == (655360, 31170)
    v, _ = lif_trace(_col(24576), _col(0), _op(r=r, exp_tc=exp_tc, exc_shift=3))
    assert v[0, 0] == 191760
    # snncc's choice c_m = tau_m (R = 1) with exp_TC = 1 - 1/tau, tau = 2: the jump is w / 2,
    # SpikingJelly's H = V + (X - V) / tau: 196608 - mul(16384, 196608) = 98304 = 3 mV.
    v, _ = lif_trace(_col(24576), _col(0), _op(r=ONE, exp_tc=ONE // 2, exc_shift=3))
    assert v[0, 0] == 98304
