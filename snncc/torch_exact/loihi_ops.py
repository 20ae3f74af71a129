"""The ``loihi`` torch kernel table: Lava ``fixed_pt`` integer arithmetic, in torch.

Twin of :mod:`snncc.reference.loihi_kernels` (facts: docs/hardware-semantics.md §2.1–2.3).
Neuron state is int64 and updated with the same integer operations in the same order:

- ``LoihiLIF``: ``u = wrap24(trunc0(u·(4096 - (du+1)) / 4096) + (a << 6))``,
  ``v = clip(trunc0(v·(4096 - dv) / 4096) + u + (bias_mant << bias_exp), ±(2^23 - 1))``,
  ``s = v > vth << 6``, ``v[s] = 0``; ``trunc0`` is ``sign(p)·(|p| >> 12)``, the single wrap
  and the saturation are Lava's; host currents enter as ``a = rint(x · host_scale)``;
- ``LoihiExpGIF``: ``v = clip(v + a + bias)``, ``s = v >= th[k]``, soft reset, payload
  ``2^(K-1-k)``;
- a deployed ``Linear`` (meta ``quant.weight_exp``) is Lava ``Dense`` fed ``2·W_q`` with
  ``weight_exp - 1``: ``Σ W_q·x``, then ``<< e`` or a floor ``>> -e`` of the *sum*;
- a deployed ``Conv1d``/``Conv2d`` is Lava ``Conv``, which ignores ``weight_exp``: weights
  ``W_q << e`` (``e >= 0``; a negative one is refused as the reference refuses it), sum unshifted.

Why int64 for the state and float64 for the sums: torch has no integer convolution or integer
CUDA matmul, while float64 sums of integers are exact below 2^53 (guarded per call, see
:func:`~snncc.torch_exact.float_spatial.guard_exact`); every neuron state is below 2^24 and every
decay product below 2^36, far inside int64.
"""

from __future__ import annotations

import numpy as np
import torch

from snncc.ir import ops as O
from snncc.reference.loihi_kernels import (
    ACT_SHIFT,
    DECAY_SHIFT,
    DECAY_UNITY,
    MAX_UV,
    VTH_SHIFT,
    WEIGHT_MAX,
    WEIGHT_MIN,
    conv_weights,
    effective_bias,
)
from snncc.torch_exact import float_spatial as S
from snncc.torch_exact.base import Builder, Kernel, NodeInfo, RunCtx, exact_integers, f64, i64
from snncc.torch_exact.float_ops import KERNELS as FLOAT_KERNELS


def trunc_decay(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``sign(x·factor) · (|x·factor| >> 12)``: Lava's decay, truncating toward zero.

    Computed as ``(p + ((p >> 63) & 4095)) >> 12``: for ``p >= 0`` a floor shift, for ``p < 0``
    ``floor((p + 4095) / 4096) = ceil(p / 4096)``; both equal truncation toward zero, with
    shifts, masks and adds only (torch's ``sign``/``where`` on int64 are slow on CPU).
    """
    p = x * factor
    return (p + ((p >> 63) & (DECAY_UNITY - 1))) >> DECAY_SHIFT


def wrap_current(u: torch.Tensor) -> torch.Tensor:
    """Lava's single 24-bit wrap of u: above 2^23 or at/below -2^23 wraps once.

    Lava: ``w = where(u > 2^23, u - 2^24, u); where(w <= -2^23, u + 2^24, w)``. A wrapped
    ``u - 2^24`` is above -2^23 whenever ``u > 2^23``, so the second test only fires on an
    unwrapped ``u``, and the two masked additions below are the same function.
    """
    w = u - (u > MAX_UV) * (2 * MAX_UV)
    return w + (w <= -MAX_UV) * (2 * MAX_UV)


def lif_steps(
    a: torch.Tensor, du: int, dv: int, vth: int, bias: torch.Tensor, *, states: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``PyLifModelBitAcc`` over int64 ``a = [T, ...]``: ``(spikes, u, v)`` (states if asked).

    Requires: ``a`` int64 ``a_in`` units; ``bias`` int64, the effective ``bias_mant << bias_exp``
    broadcasting against ``a[0]``. Ensures: bool spikes ``[T, ...]``; ``u``/``v`` after each
    step (as Lava's Monitor records them) when ``states``.
    """
    u_factor, v_factor = DECAY_UNITY - (du + 1), DECAY_UNITY - dv
    eff_vth = vth << VTH_SHIFT
    shape = torch.broadcast_shapes(a.shape[1:], bias.shape)
    u = torch.zeros(shape, dtype=torch.int64, device=a.device)
    v = torch.zeros(shape, dtype=torch.int64, device=a.device)
    spikes = torch.empty((a.shape[0],) + tuple(shape), dtype=torch.bool, device=a.device)
    us = torch.empty_like(spikes, dtype=torch.int64) if states else None
    vs = torch.empty_like(spikes, dtype=torch.int64) if states else None
    for t in range(a.shape[0]):
        u = wrap_current(trunc_decay(u, u_factor) + (a[t] << ACT_SHIFT))
        v = torch.clamp(trunc_decay(v, v_factor) + u + bias, -(MAX_UV - 1), MAX_UV - 1)
        s = v > eff_vth
        v = v * ~s  # v[s] = 0
        spikes[t] = s
        if us is not None and vs is not None:
            us[t], vs[t] = u, v
    return spikes, us, vs


def expgif_steps(
    a: torch.Tensor,
    thresholds: tuple[int, ...],
    bias: torch.Tensor,
    phase: int = 0,
    start: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The programmable neuron over int64 ``a = [T, ...]``: ``(v after each step, payloads)``;
    row ``t`` is step ``phase + t`` of the sample (:func:`~snncc.ir.ops.expgif_schedule`)."""
    bits = len(thresholds)
    shape = torch.broadcast_shapes(a.shape[1:], bias.shape)
    v = torch.zeros(shape, dtype=torch.int64, device=a.device)
    vs = torch.empty((a.shape[0],) + tuple(shape), dtype=torch.int64, device=a.device)
    out = torch.zeros_like(vs)
    for t in range(a.shape[0]):
        integrates, k = O.expgif_schedule(phase + t, bits, start)
        if integrates:
            v = torch.clamp(v + a[t] + bias, -(MAX_UV - 1), MAX_UV - 1)
        vs[t] = v
        if k is None:  # a one-group neuron outside its group: silent
            continue
        th = int(thresholds[k])
        s = v >= th
        v = v - s * th
        vs[t] = v
        out[t] = s * (1 << (bits - 1 - k))
    return vs, out


def a_in(k: Kernel, x: torch.Tensor) -> torch.Tensor:
    """The neuron's int64 input: ``rint(x · host_scale)`` from the host, else integer ``x``."""
    if k.op.host_scale > 0:
        return exact_integers(x * float(k.op.host_scale))
    a = exact_integers(x)
    if not torch.equal(a.to(x.dtype), x):
        raise k.info.fail(k.op, "input is not integer a_in (is the graph quantized for loihi?)")
    return a


def _per_step(k: Kernel, xs: list[torch.Tensor]) -> torch.Tensor:
    if k.info.lead != 2:
        raise k.info.fail(k.op, "needs a per-step (temporal) input, got a static value")
    return xs[0]


def build_loihi_lif(op: O.LoihiLIF, info: NodeInfo) -> Kernel:
    """:class:`~snncc.ir.ops.LoihiLIF` over T; float64 0/1 spikes."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        x = _per_step(k, xs)
        o = k.op
        s, _, _ = lif_steps(a_in(k, x), int(o.du), int(o.dv), int(o.vth), k.t("bias"))
        return torch.broadcast_to(s, x.shape).to(torch.float64)

    bias = i64(effective_bias(np.asarray(op.bias_mant), int(op.bias_exp)))
    return Kernel(op, info, fn, {"bias": bias})


def build_loihi_expgif(op: O.LoihiExpGIF, info: NodeInfo) -> Kernel:
    """:class:`~snncc.ir.ops.LoihiExpGIF` over T; the graded payloads as float64."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        x = _per_step(k, xs)
        th = tuple(int(t) for t in k.op.thresholds)
        _, y = expgif_steps(a_in(k, x), th, k.t("bias"), start=k.op.start)
        return torch.broadcast_to(y, x.shape).to(torch.float64)

    return Kernel(op, info, fn, {"bias": i64(op.bias)})


def _check_deployed(op: O.Linear | O.Conv1d | O.Conv2d, info: NodeInfo) -> None:
    """The reference's checks on a deployed synaptic op (same reasons, same order)."""
    w = op.weight
    if not np.issubdtype(w.dtype, np.integer):
        raise info.fail(op, f"quantized weights must be integers, got dtype {w.dtype}")
    if w.size and (w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX):
        raise info.fail(
            op, f"weight mantissas must lie in [{WEIGHT_MIN}, {WEIGHT_MAX}] (8-bit signed)"
        )
    if op.bias is not None:
        raise info.fail(op, "a quantized synaptic op has no bias (biases live in the neurons)")


def _linear_fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
    S.guard_exact(k, xs[0], k.params["bound"])
    acc = S.linear_fn(xs[0], k.t("weight"), None)
    e = k.params["weight_exp"]
    # Power-of-two scalings of exact integers are exact; floor is the arithmetic right shift.
    return acc * float(2**e) if e >= 0 else torch.floor(acc * float(2.0**e))


def _conv_fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
    S.guard_exact(k, xs[0], k.params["bound"])
    return S.conv_fn(k.op, xs[0], k.info.lead, k.t("weight"), None)


def _deployed(float_builder: Builder, conv: bool) -> Builder:
    """Integer builder for a deployed synaptic op; host ops (no ``quant`` meta) stay float."""

    def build(op: O.Op, info: NodeInfo) -> Kernel:
        quant = info.meta.get("quant") or {}
        if "weight_exp" not in quant:
            return float_builder(op, info)
        _check_deployed(op, info)
        e = int(quant["weight_exp"])
        if conv:
            if e < 0:
                raise info.fail(
                    op,
                    f"weight_exp {e} < 0 on a conv: Lava's Conv ignores weight_exp, so only an "
                    "exponent >= 0 folded into the weights is deployable",
                )
            w = conv_weights(op.weight, e)
            return Kernel(op, info, _conv_fn, {"weight": f64(w)}, bound=S.row_bound(w))
        bound = S.row_bound(op.weight) * 2.0 ** max(e, 0)
        return Kernel(op, info, _linear_fn, {"weight": f64(op.weight)}, weight_exp=e,
                      bound=bound)  # fmt: skip

    return build


def _no_float_neuron(op: O.Op, info: NodeInfo) -> Kernel:
    raise info.fail(op, "float neuron in loihi mode: run the quantize pass with target 'loihi'")


#: Target neuron builders every mode (float included) uses: their semantics are integer.
NEURON_KERNELS: dict[type[O.Op], Builder] = {
    O.LoihiLIF: build_loihi_lif,
    O.LoihiExpGIF: build_loihi_expgif,
}

KERNELS: dict[type[O.Op], Builder] = {
    **FLOAT_KERNELS,
    **NEURON_KERNELS,
    O.Linear: _deployed(FLOAT_KERNELS[O.Linear], conv=False),
    O.Conv1d: _deployed(FLOAT_KERNELS[O.Conv1d], conv=True),
    O.Conv2d: _deployed(FLOAT_KERNELS[O.Conv2d], conv=True),
    O.LIF: _no_float_neuron,
    O.IF: _no_float_neuron,
    O.ExpGIF: _no_float_neuron,
}
