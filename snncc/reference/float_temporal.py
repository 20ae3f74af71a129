"""Float64 kernels for the ops that look along time: LIF, IF, ExpGIF, Delay and TimeMean.

The neuron kernels are the heart of the oracle. They repeat, operation for operation and in the
same order, the float arithmetic of :mod:`snncc.nn.neurons` (itself SpikingJelly 0.0.0.0.12's
``MultiStepLIFNode``/``MultiStepIFNode``), because spike trains must be *bit*-identical to the
PyTorch model, not merely close: a membrane value that lands on ``v_threshold`` one ulp apart
flips a spike, and every later layer diverges from there. Concretely:

- the charge formula is chosen exactly as ``LIF.neuronal_charge`` chooses it: the ``v_reset``
  terms are dropped (not added as ``- 0``) when ``v_reset`` is None or 0, and without
  ``decay_input`` the leak is ``v * (1 - 1/tau)``, which rounds differently from ``v - v/tau``;
- a spike is ``(v - v_threshold) >= 0``, the surrogate's Heaviside of the difference;
- hard reset is ``(1 - s) * v + s * v_reset``; soft reset (``v_reset`` None) is
  ``v - s * v_threshold``; the state starts at ``v_reset`` (0 for soft reset).

IEEE-754 float64 ``+ - * /`` are correctly rounded in numpy and in torch's CPU kernels, so the same
sequence of operations gives the same bits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from snncc.ir import ops as O
from snncc.reference.context import KernelCtx

Charge = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _lif_charge(op: O.LIF) -> Charge:
    """The membrane update before firing, written as ``snncc.nn.LIF.neuronal_charge`` writes it."""
    tau, r = float(op.tau), op.v_reset
    if op.decay_input:
        if r is None or r == 0.0:
            return lambda x, v: v + (x - v) / tau
        rr = float(r)
        return lambda x, v: v + (x - (v - rr)) / tau
    if r is None or r == 0.0:
        leak = 1.0 - 1.0 / tau
        return lambda x, v: v * leak + x
    rr = float(r)
    return lambda x, v: v - (v - rr) / tau + x


def _if_charge(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    return v + x


def simulate_neuron(
    x: np.ndarray, charge: Charge, v_threshold: float, v_reset: float | None
) -> np.ndarray:
    """Run a neuron over ``x = [T, ...]`` from a fresh state; returns float64 0/1 spikes."""
    vth = float(v_threshold)
    v = np.full(x.shape[1:], 0.0 if v_reset is None else float(v_reset))
    spikes = np.empty_like(x)
    for t in range(x.shape[0]):
        v = charge(x[t], v)
        s = (v - vth >= 0).astype(np.float64)
        if v_reset is None:
            v = v - s * vth
        else:
            v = (1.0 - s) * v + s * float(v_reset)
        spikes[t] = s
    return spikes


def _per_step_input(op: O.Op, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """The single input as ``[T, B, ...]``; stateful ops have no meaning on a static value."""
    if ctx.lead != 2:
        raise ctx.fail(op, "needs a per-step (temporal) input, got a static value")
    return xs[0]


def lif(op: O.LIF, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """SpikingJelly multi-step LIF over T (see module docstring)."""
    return simulate_neuron(
        _per_step_input(op, xs, ctx), _lif_charge(op), op.v_threshold, op.v_reset
    )


def if_(op: O.IF, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """SpikingJelly multi-step IF over T: ``v = v + x``, then fire and reset like LIF."""
    return simulate_neuron(_per_step_input(op, xs, ctx), _if_charge, op.v_threshold, op.v_reset)


def expgif(op: O.ExpGIF, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """``snncc.nn.ExpGIF`` over T: bit-``k`` threshold ``theta * 2**-(k+1)``, soft reset.

    Same float operations in the same order as the torch module (``v + x``, ``v - th >= 0``,
    ``v - s * th``); ``th`` is an exact power-of-two scaling of ``theta``. Returns the weighted
    events ``s * th`` (what a downstream synapse reads), not 0/1.
    """
    x = _per_step_input(op, xs, ctx)
    theta, bits = float(op.theta), int(op.bits)
    v = np.zeros(x.shape[1:])
    y = np.zeros_like(x)
    for t in range(x.shape[0]):
        integrates, k = O.expgif_schedule(t, bits, op.start)
        if integrates:
            v = v + x[t]
        if k is None:  # a one-group neuron outside its group: silent
            continue
        th = theta * (2.0 ** -(k + 1))
        s = (v - th >= 0).astype(np.float64)
        v = v - s * th
        y[t] = s * th
    return y


def delay(op: O.Delay, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """``y[t] = x[t - steps]``, zero for ``t < steps`` (what latency balancing inserts)."""
    x = _per_step_input(op, xs, ctx)
    y = np.zeros_like(x)
    k = int(op.steps)
    if k < x.shape[0]:
        y[k:] = x[: x.shape[0] - k]
    return y


def time_mean(op: O.TimeMean, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """Mean over the T axis; the output is static (``[B, ...]``).

    A static input is already constant over time, so its time mean is itself (copied).
    """
    x = xs[0]
    if x.ndim - len(ctx.out_type.shape) == 1:
        return x.copy()
    return x.mean(axis=0)
