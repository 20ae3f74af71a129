"""Reference LIF/IF against ``snncc.nn.LIF``/``IF`` run in float64: spikes must be identical.

Inputs are scaled so that 5-50 % of neuron-steps fire (asserted, so the comparison is never
between two all-zero tensors). Two input families: continuous Gaussian currents, and currents on
a coarse binary grid (multiples of 1/4 of a gain), where membrane values land *exactly* on the
threshold often, so ``>=`` versus ``>`` and every rounding step of the update matter.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snncc.ir import ops as O
from snncc.nn import neurons as N
from snncc.reference import run

T, B, SHAPE = 8, 4, (6, 32)

# (IR op, torch module, input gain): gains chosen so every configuration fires 5-50 % of the time.
CASES = [
    (O.LIF(tau=2.0), N.LIF(tau=2.0), 2.0),
    (O.LIF(tau=1.5, v_reset=None), N.LIF(tau=1.5, v_reset=None), 1.5),
    (O.LIF(tau=1.7, decay_input=False), N.LIF(tau=1.7, decay_input=False), 1.0),
    (
        O.LIF(tau=3.0, decay_input=False, v_reset=None),
        N.LIF(tau=3.0, decay_input=False, v_reset=None),
        1.0,
    ),
    (O.LIF(tau=3.0, v_reset=-0.3), N.LIF(tau=3.0, v_reset=-0.3), 2.5),
    (
        O.LIF(tau=2.5, decay_input=False, v_reset=0.2, v_threshold=0.5),
        N.LIF(tau=2.5, decay_input=False, v_reset=0.2, v_threshold=0.5),
        0.45,
    ),
    (O.LIF(tau=1.3, v_threshold=0.5), N.LIF(tau=1.3, v_threshold=0.5), 1.0),
    (O.IF(), N.IF(), 1.0),
    (O.IF(v_reset=None), N.IF(v_reset=None), 0.8),
    (O.IF(v_reset=-0.5, v_threshold=0.75), N.IF(v_reset=-0.5, v_threshold=0.75), 1.0),
]
IDS = [
    "lif-hard",
    "lif-soft",
    "lif-nodecay-hard",
    "lif-nodecay-soft",
    "lif-vreset-neg",
    "lif-nodecay-vreset-pos",
    "lif-tau1.3-vth-half",
    "if-hard",
    "if-soft",
    "if-vreset-neg",
]


def _inputs(rng: np.random.Generator, gain: float, family: str) -> np.ndarray:
    if family == "gauss":
        return gain * rng.normal(0.5, 0.8, (T, B) + SHAPE)
    return gain * rng.integers(-2, 7, (T, B) + SHAPE) / 4.0


def _reference_spikes(builder, op: O.Op, x: np.ndarray) -> np.ndarray:
    b = builder(T)
    b.input("x", SHAPE)
    b.node("n", op, "x")
    res = run(b.done("n"), {"x": x})
    return res.spikes["n"]


@pytest.mark.parametrize("family", ["gauss", "grid"])
@pytest.mark.parametrize("op,module,gain", CASES, ids=IDS)
def test_spikes_identical_to_torch(builder, rng, op, module, gain, family) -> None:
    x = _inputs(rng, gain, family)
    want = module(torch.tensor(x, dtype=torch.float64)).numpy()
    got = _reference_spikes(builder, op, x)
    rate = float(want.mean())
    assert 0.05 <= rate <= 0.5, f"test input not informative: firing rate {rate:.3f}"
    assert got.shape == want.shape
    assert set(np.unique(got)) <= {0, 1}
    assert np.array_equal(got, want.astype(np.uint8))


def test_threshold_is_inclusive(builder) -> None:
    # IF with v_threshold 1: an input of exactly 1.0 reaches v == v_threshold and must fire
    # (SpikingJelly's heaviside(v - v_th) is 1 at 0); 0.999... must not.
    x = np.zeros((T, 1, 2))
    x[0, 0, 0] = 1.0
    x[0, 0, 1] = np.nextafter(1.0, 0.0)
    b = builder(T)
    b.input("x", (2,))
    b.node("n", O.IF(), "x")
    spikes = run(b.done("n"), {"x": x}).spikes["n"]
    assert spikes[0, 0].tolist() == [1, 0]
    assert np.array_equal(spikes, N.IF()(torch.tensor(x)).numpy().astype(np.uint8))


def test_state_is_per_sample_and_spike_counts(builder, rng) -> None:
    # The same current sequence in two batch slots gives the same spikes (no leakage across B),
    # and spike_counts is the sum over T of the spike train.
    x = np.repeat(1.5 * rng.normal(0.5, 0.8, (T, 1) + SHAPE), 2, axis=1)
    b = builder(T)
    b.input("x", SHAPE)
    b.node("n", O.LIF(tau=2.0), "x")
    res = run(b.done("n"), {"x": x})
    s = res.spikes["n"]
    assert np.array_equal(s[:, 0], s[:, 1])
    counts = res.spike_counts()["n"]
    assert counts.dtype == np.int64 and counts.shape == (2,) + SHAPE
    want = N.LIF(tau=2.0)(torch.tensor(x)).numpy().sum(axis=0)
    assert np.array_equal(counts, want.astype(np.int64))
    assert counts.max() > 0


def _first_step_state(op: O.Op, x0: np.ndarray) -> np.ndarray:
    """Approximate membrane after a non-firing first step (only used to aim the search)."""
    r = 0.0 if op.v_reset is None else op.v_reset
    if isinstance(op, O.IF) or not op.decay_input:
        return r + x0
    return r + x0 / op.tau


def _aim_at_threshold(op: O.Op, v1: np.ndarray) -> np.ndarray:
    """Approximately the second-step input that charges ``v1`` exactly to the threshold."""
    r, vth = (0.0 if op.v_reset is None else op.v_reset), op.v_threshold
    if isinstance(op, O.IF):
        return vth - v1
    if op.decay_input:
        return (vth - v1) * op.tau + (v1 - r)
    return vth - v1 + (v1 - r) / op.tau


@pytest.mark.parametrize("op,module,gain", CASES, ids=IDS)
def test_exact_threshold_ties_identical(builder, rng, op, module, gain) -> None:
    """Inputs that make torch's membrane land *exactly* on the threshold at step 1.

    A tie is a neuron that fires with ``v_threshold`` but not with the next float above it (both
    decided by the torch module). Any deviation from torch's rounding sequence (``v - v/tau``
    for ``v * (1 - 1/tau)``, multiplying by ``1/tau`` instead of dividing, ``>`` for ``>=``)
    moves some of these membranes by an ulp and flips their spikes.
    """
    x0 = rng.uniform(-0.4, 0.4, 300) * op.v_threshold
    x1 = _aim_at_threshold(op, _first_step_state(op, x0))
    offsets = np.arange(-24, 25)
    x1 = x1[:, None] + offsets[None, :] * np.spacing(x1)[:, None]
    x = np.stack([np.repeat(x0[:, None], offsets.size, 1), x1]).reshape(2, 1, -1)
    above = type(module)(**{**_kwargs(module), "v_threshold": np.nextafter(op.v_threshold, 2.0)})
    at = module(torch.tensor(x)).numpy()
    ties = (at[1] == 1) & (above(torch.tensor(x)).numpy()[1] == 0)
    assert ties.sum() >= 50, f"only {ties.sum()} exact ties found"
    assert not at[0].any()
    b = builder(2)
    b.input("x", (x.shape[2],))
    b.node("n", op, "x")
    got = run(b.done("n"), {"x": x}).spikes["n"]
    assert np.array_equal(got, at.astype(np.uint8))


def _kwargs(module: N._MultiStepNode) -> dict:
    kw = {"v_threshold": module.v_threshold, "v_reset": module.v_reset}
    if isinstance(module, N.LIF):
        kw.update(tau=module.tau, decay_input=module.decay_input)
    return kw
