"""Threshold placement (issue 5, deliverable 2): ``>`` (Lava), ``>=`` (sPyNNaker, SpikingJelly).

The property: a placed threshold is a value no reachable membrane value equals, so every
comparison convention gives the same spikes on every reachable value. Reachable values are
integers (multiples of 64 on a leak-free Lava membrane). The traces are random integers, the
rules are written out here, and the hand examples say where the old rules fired early.
"""

from __future__ import annotations

import numpy as np
import pytest

from snncc.quant.loihi import membrane_granule, place_threshold
from snncc.quant.spinnaker import place_threshold as place_spinnaker

VTH_SHIFT = 6


def _targets(rng: np.random.Generator) -> list[float]:
    """Float thresholds in a_in units: random, integer-valued and powers of two (the usual)."""
    return [
        *rng.uniform(0.01, 5000.0, 60).tolist(),
        *rng.integers(1, 5000, 30).astype(float).tolist(),
        *[2.0**k for k in range(-3, 13)],
        2.5,
        4096.0,
    ]


@pytest.mark.parametrize("granule", [1, 64])
def test_lava_rule_equals_spikingjelly_rule_on_random_integer_traces(granule: int) -> None:
    rng = np.random.default_rng(granule)
    for target in _targets(rng):
        th = place_threshold(target, granule)
        theta_v = 64.0 * target
        # Reachable membranes: multiples of the granule around the threshold, plus far values.
        near = granule * rng.integers(-300, 300, 400) + granule * int(theta_v // granule)
        v = np.concatenate([near, granule * rng.integers(-(2**16), 2**16, 200)])
        lava = v > (th.vth << VTH_SHIFT)
        s = 2.0 ** float(rng.integers(-4, 8))  # stream scale: float membrane h = v / (64 s)
        h, v_th_q = v / (64.0 * s), th.placed / (64.0 * s)
        assert not np.any(v == th.placed), "a reachable value sits on the placed threshold"
        np.testing.assert_array_equal(lava, h >= v_th_q)  # SpikingJelly's rule, quantized v_th
        np.testing.assert_array_equal(lava, h > v_th_q)  # Brian2's
        np.testing.assert_array_equal(lava, v >= th.fire_at)
        sj_float = h >= target / s  # SpikingJelly with the *original* float threshold
        if granule == 64:
            assert th.exact, target
            np.testing.assert_array_equal(lava, sj_float)
        else:
            # Off the 64-grid only half a vth step is achievable: they differ on < 33 values.
            assert abs(th.shift) <= 32, (target, th)
            lo, hi = sorted((th.fire_at, th.wanted))
            differ = v[lava != sj_float]
            assert np.all((differ >= lo) & (differ < hi)), (target, th)


def test_hand_examples() -> None:
    # Spikingformer's LIF (v_th 1, tau 2) at stream scale 2^11: target 4096, theta_v = 262144.
    # Leaky (granule 1): SpikingJelly fires from v = 262144. The old rule vth = ceil(4096) - 1 =
    # 4095 fired from 262081, 63 values early; vth = round(262143 / 64) = 4096 fires from 262145.
    th = place_threshold(4096.0, 1)
    assert (th.vth, th.fire_at, th.wanted, th.shift, th.exact) == (4096, 262145, 262144, 1, False)
    # Leak-free (granule 64): v in {..., 262080, 262144}; vth = 4095 fires from 262144: exact.
    th = place_threshold(4096.0, 64)
    assert (th.vth, th.fire_at, th.wanted, th.exact) == (4095, 262144, 262144, True)
    assert th.placed == 262112  # 4095 * 64 + 32: between the reachable 262080 and 262144
    # target 2.5, theta_v = 160. Granule 64: first reachable >= 160 is 192, vth = 2 -> exact.
    # Granule 1: vth = round(159 / 64 = 2.48) = 2 fires from 129 (vth = 3 would be 193): -31.
    assert place_threshold(2.5, 64).vth == 2 and place_threshold(2.5, 64).exact
    assert (place_threshold(2.5, 1).vth, place_threshold(2.5, 1).shift) == (2, -31)
    # Exact off the grid when wanted = 1 (mod 64): theta_v = 129 -> vth = 2 fires from 129.
    assert place_threshold(129 / 64, 1).exact


def test_membrane_granule() -> None:
    zero = np.zeros(3, np.int64)
    assert membrane_granule(4095, 0, zero, 6) == 64  # IF: no leak, delta synapse
    assert membrane_granule(-1, 0, np.array([1, -2, 3]), 6) == 64  # bias in weight units
    assert membrane_granule(4095, 2048, zero, 6) == 1  # leak truncates
    assert membrane_granule(0, 0, zero, 6) == 1  # du = 0 still decays u (trap 1)
    assert membrane_granule(4095, 0, np.array([1]), 0) == 1  # bias of 1 v-unit per step
    assert membrane_granule(4095, 0, np.array([2]), 5) == 64  # 2 << 5 = 64


def test_spinnaker_threshold_is_exact_for_non_strict_and_strict_rules() -> None:
    rng = np.random.default_rng(3)
    for x in [*rng.uniform(1e-3, 1000.0, 200).tolist(), 1.0, 0.5, 0.3, 64.0]:
        t = place_spinnaker(x)
        v = t + rng.integers(-1000, 1000, 500)
        spinnaker = v >= t
        np.testing.assert_array_equal(spinnaker, v / 32768.0 >= x)  # SpikingJelly, float v_th
        np.testing.assert_array_equal(spinnaker, v > t - 0.5)  # a strict rule, placed threshold
    # 0.3 mV = 9830.4 raw: the threshold is 9831. Rounding to nearest (9830) fired at V = 9830,
    # which is 0.29999 mV < 0.3.
    assert place_spinnaker(0.3) == 9831 and 9830 / 32768 < 0.3
    assert place_spinnaker(1.0) == 32768
