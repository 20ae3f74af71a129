"""The ``spinnaker`` torch kernel table: sPyNNaker 7.4.1 ``IF_curr_delta`` in s16.15, in torch.

Twin of :mod:`snncc.reference.spinnaker_kernels` (facts: docs/hardware-semantics.md §4.1–4.2,
traps 7–10). A deployed synaptic op (meta ``quant.receptor``) holds signed stored weights
(|w| <= 65535, the sign picks the receptor) and outputs the two ring-buffer sums as one
complex128 tensor ``exc + 1j·inh`` of exact non-negative integers, so both buffers travel
together through the structural ops and residual adds and saturate separately, per target
neuron, in :func:`lif_steps`:

    I     = (min(exc, 65535) << exc_shift) - (min(inh, 65535) << inh_shift) + i_offset
    alpha = mul(I, r) + v_rest                 mul(a, b) = (a·b + 2^14) >> 15
    V     = clip(alpha - mul(exp_tc, alpha - V), s32)
    s     = V >= v_thresh;   V[s] = v_reset

State and products are int64 (the reference's, including its s32 clip); ring-buffer sums are
float64 integer sums, exact below 2^53 (guarded per call).
"""

from __future__ import annotations

import numpy as np
import torch

from snncc.ir import ops as O
from snncc.reference.spinnaker_kernels import ACCUM_MAX, ACCUM_MIN, FRAC_BITS, HALF, RING_MAX
from snncc.torch_exact import float_spatial as S
from snncc.torch_exact.base import (
    Builder,
    Kernel,
    NodeInfo,
    RunCtx,
    exact_integers,
    i64,
    imag_part,
    real_part,
)
from snncc.torch_exact.float_ops import KERNELS as FLOAT_KERNELS


def mul_accum(a: torch.Tensor, b: torch.Tensor | int) -> torch.Tensor:
    """s16.15 product rounded to nearest: ``(a·b + 2^14) >> 15`` (int64)."""
    return (a * b + HALF) >> FRAC_BITS


def lif_steps(
    exc: torch.Tensor,
    inh: torch.Tensor,
    op: O.SpiNNakerLIF,
    i_offset: torch.Tensor,
    host: torch.Tensor | None = None,
    refract_steps: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The neuron over int64 ring-buffer sums ``[T, ...]``: ``(V after each step, bool spikes)``.

    Requires: ``exc``, ``inh`` non-negative int64; ``host`` an optional raw s16.15 current.
    Ensures:  the reference's ``lif_trace`` step for step, refractory timer included (compiled
    programs use ``tau_refrac = 0``, i.e. ``refract_steps = 0``: the timer stays 0).
    """
    e = torch.clamp(exc, max=RING_MAX) << op.exc_shift
    i = torch.clamp(inh, max=RING_MAX) << op.inh_shift
    current = e - i + i_offset
    if host is not None:
        current = current + host
    v = torch.full(current.shape[1:], int(op.v_rest), dtype=torch.int64, device=exc.device)
    timer = torch.zeros_like(v)
    vs = torch.empty(current.shape, dtype=torch.int64, device=exc.device)
    spikes = torch.empty(current.shape, dtype=torch.bool, device=exc.device)
    for t in range(current.shape[0]):
        alpha = mul_accum(current[t], int(op.r)) + int(op.v_rest)
        updated = torch.clamp(alpha - mul_accum(alpha - v, int(op.exp_tc)), ACCUM_MIN, ACCUM_MAX)
        if refract_steps == 0:
            # The timer starts at 0 and is only ever set to 0: every neuron is always active.
            v = updated
        else:
            active = timer <= 0
            v = torch.where(active, updated, v)
            timer = torch.where(active, timer, timer - 1)
        s = v >= int(op.v_thresh)
        v = v + s * (int(op.v_reset) - v)  # V[s] = v_reset
        if refract_steps != 0:
            timer = torch.where(s, refract_steps, timer)
        vs[t], spikes[t] = v, s
    return vs, spikes


def build_spinnaker_lif(op: O.SpiNNakerLIF, info: NodeInfo) -> Kernel:
    """:class:`~snncc.ir.ops.SpiNNakerLIF` over T; float64 0/1 spikes."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        if k.info.lead != 2:
            raise k.info.fail(k.op, "needs a per-step (temporal) input, got a static value")
        x = xs[0]
        offset = k.t("i_offset")
        if k.op.host_scale > 0:
            zeros = torch.zeros(x.shape, dtype=torch.int64, device=x.device)
            host = exact_integers(real_part(x) * float(k.op.host_scale))
            _, s = lif_steps(zeros, zeros, k.op, offset, host)
        else:
            re, im = real_part(x), imag_part(x)
            exc, inh = torch.round(re), torch.round(im)
            if (
                bool((exc < 0).any())
                or bool((inh < 0).any())
                or not (torch.equal(exc, re) and torch.equal(inh, im))
            ):
                raise k.info.fail(k.op, "input is not ring-buffer sums (is the graph quantized?)")
            _, s = lif_steps(exc.to(torch.int64), inh.to(torch.int64), k.op, offset)
        return torch.broadcast_to(s, x.shape).to(torch.float64)

    return Kernel(op, info, fn, {"i_offset": i64(op.i_offset)})


def _split(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """The two ring-buffer sums as ``exc + 1j·inh``."""
    return torch.complex(torch.round(pos), torch.round(neg))


def _deployed(float_builder: Builder) -> Builder:
    """Deployed synaptic op: the two ring-buffer sums; host ops (no ``quant.receptor``) float."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        S.guard_exact(k, xs[0], k.params["bound"])
        return _split(k.get_submodule("pos")(xs, run), k.get_submodule("neg")(xs, run))

    def build(op: O.Op, info: NodeInfo) -> Kernel:
        if "receptor" not in (info.meta.get("quant") or {}):
            return float_builder(op, info)
        w = op.weight
        if not np.issubdtype(w.dtype, np.integer) or (w.size and np.abs(w).max() > RING_MAX):
            raise info.fail(op, "stored weights must be integers with |w| <= 65535 (16 bits)")
        pos = float_builder(op.replace(weight=np.maximum(w, 0).astype(np.float64)), info)
        neg = float_builder(op.replace(weight=np.maximum(-w, 0).astype(np.float64)), info)
        k = Kernel(op, info, fn, bound=S.row_bound(w))
        # Registered submodules (not params): their weight buffers follow .to(device).
        k.add_module("pos", pos)
        k.add_module("neg", neg)
        return k

    return build


def _scale_fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
    f = k.params["factor"]
    y = real_part(xs[0]) * float(abs(f))
    zeros = torch.zeros_like(y)
    return _split(y, zeros) if f >= 0 else _split(zeros, y)


def build_scale(op: O.Scale, info: NodeInfo) -> Kernel:
    """A count projected with one stored weight ``factor`` (sign = receptor); else float."""
    if "receptor" not in (info.meta.get("quant") or {}):
        return FLOAT_KERNELS[O.Scale](op, info)
    f = float(op.factor)
    if f != int(f) or abs(f) > RING_MAX:
        raise info.fail(op, f"stored weight must be an integer with |w| <= 65535, got {f}")
    return Kernel(op, info, _scale_fn, factor=int(f))


def _no_float_neuron(op: O.Op, info: NodeInfo) -> Kernel:
    raise info.fail(op, "float neuron in spinnaker mode: run the quantize pass for 'spinnaker'")


#: Target neuron builders every mode (float included) uses: their semantics are integer.
NEURON_KERNELS: dict[type[O.Op], Builder] = {O.SpiNNakerLIF: build_spinnaker_lif}

KERNELS: dict[type[O.Op], Builder] = {
    **FLOAT_KERNELS,
    **NEURON_KERNELS,
    O.Linear: _deployed(FLOAT_KERNELS[O.Linear]),
    O.Conv1d: _deployed(FLOAT_KERNELS[O.Conv1d]),
    O.Conv2d: _deployed(FLOAT_KERNELS[O.Conv2d]),
    O.Scale: build_scale,
    O.LIF: _no_float_neuron,
    O.IF: _no_float_neuron,
    O.ExpGIF: _no_float_neuron,
}
