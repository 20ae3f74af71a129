"""Torch float64 kernels for the ops that look along time: LIF, IF, ExpGIF, Delay, TimeMean.

Twins of :mod:`snncc.reference.float_temporal`, operation for operation and in the same order
(the charge formula chosen as ``snncc.nn.LIF.neuronal_charge`` chooses it, ``v - vth >= 0``,
hard reset ``(1 - s) * v + s * v_reset``, soft reset ``v - s * vth``). IEEE float64 ``+ - * /``
are correctly rounded in numpy and torch alike, so the same sequence gives the same bits; the
divisions divide by a device tensor (:func:`~snncc.torch_exact.base.scalar`), never by a Python
float, because CUDA turns the latter into a multiplication by the reciprocal.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from snncc.ir import ops as O
from snncc.torch_exact.base import Kernel, NodeInfo, RunCtx, scalar

Charge = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _lif_charge(op: O.LIF, like: torch.Tensor) -> Charge:
    tau, r = scalar(op.tau, like), op.v_reset
    if op.decay_input:
        if r is None or r == 0.0:
            return lambda x, v: v + (x - v) / tau
        rr = float(r)
        return lambda x, v: v + (x - (v - rr)) / tau
    if r is None or r == 0.0:
        leak = 1.0 - 1.0 / float(op.tau)
        return lambda x, v: v * leak + x
    rr = float(r)
    return lambda x, v: v - (v - rr) / tau + x


def simulate_neuron(
    x: torch.Tensor, charge: Charge, v_threshold: float, v_reset: float | None
) -> torch.Tensor:
    """Run a neuron over ``x = [T, ...]`` from a fresh state; float64 0/1 spikes."""
    vth = float(v_threshold)
    v = torch.full(x.shape[1:], 0.0 if v_reset is None else float(v_reset), dtype=x.dtype,
                   device=x.device)  # fmt: skip
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        v = charge(x[t], v)
        s = (v - vth >= 0).to(x.dtype)
        v = v - s * vth if v_reset is None else (1.0 - s) * v + s * float(v_reset)
        out[t] = s
    return out


def _per_step(k: Kernel, xs: list[torch.Tensor]) -> torch.Tensor:
    if k.info.lead != 2:
        raise k.info.fail(k.op, "needs a per-step (temporal) input, got a static value")
    return xs[0]


def build_lif(op: O.LIF, info: NodeInfo) -> Kernel:
    """SpikingJelly multi-step LIF over T."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        x = _per_step(k, xs)
        return simulate_neuron(x, _lif_charge(k.op, x), k.op.v_threshold, k.op.v_reset)

    return Kernel(op, info, fn)


def build_if(op: O.IF, info: NodeInfo) -> Kernel:
    """SpikingJelly multi-step IF over T: ``v = v + x``, then fire and reset like LIF."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        return simulate_neuron(_per_step(k, xs), lambda x, v: v + x, k.op.v_threshold,
                               k.op.v_reset)  # fmt: skip

    return Kernel(op, info, fn)


def build_expgif(op: O.ExpGIF, info: NodeInfo) -> Kernel:
    """``snncc.nn.ExpGIF`` over T; returns the weighted events ``s * th``."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        x = _per_step(k, xs)
        theta, bits = float(k.op.theta), int(k.op.bits)
        v = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
        y = torch.zeros_like(x)
        for t in range(x.shape[0]):
            integrates, bit = O.expgif_schedule(t, bits, k.op.start)
            if integrates:
                v = v + x[t]
            if bit is None:  # a one-group neuron outside its group: silent
                continue
            th = theta * (2.0 ** -(bit + 1))
            s = (v - th >= 0).to(x.dtype)
            v = v - s * th
            y[t] = s * th
        return y

    return Kernel(op, info, fn)


def build_delay(op: O.Delay, info: NodeInfo) -> Kernel:
    """``y[t] = x[t - steps]``, zero before."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        x = _per_step(k, xs)
        y = torch.zeros_like(x)
        n = int(k.op.steps)
        if n < x.shape[0]:
            y[n:] = x[: x.shape[0] - n]
        return y

    return Kernel(op, info, fn)


def build_time_mean(op: O.TimeMean, info: NodeInfo) -> Kernel:
    """Mean over T (sum, then one division, as ``np.mean``); a static input is copied."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        x = xs[0]
        if x.dim() - len(k.info.out_type.shape) == 1:
            return x.clone()
        return x.sum(dim=0) / scalar(x.shape[0], x)

    return Kernel(op, info, fn)
