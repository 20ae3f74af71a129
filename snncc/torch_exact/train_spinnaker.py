"""Training through the exact SpiNNaker program: stored 16-bit weights as trainable parameters.

The SpiNNaker twin of :mod:`snncc.torch_exact.train` (the kernel table
:func:`~snncc.torch_exact.train.TrainableProgram` uses for a graph quantized for
``spinnaker``). Its forward is the exact program of :mod:`snncc.torch_exact.spinnaker_ops`, bit
for bit; its backward is defined:

- every deployed ``Linear``/``Conv`` (meta ``quant.receptor``) holds a latent float parameter
  ``theta`` initialised to its signed stored weights; the forward uses
  ``clamp(round(theta), -65535, 65535)`` (straight through), so the weights stay on the
  compile's grid: the stream scale and both ring-buffer shifts are frozen, the sign still picks
  the receptor (``w >= 0`` excitatory, ``w < 0`` inhibitory) and the two ring-buffer sums travel
  as ``exc + 1j·inh`` as in the exact table. A weight's gradient is the gradient of its own
  receptor's sum (at ``w = 0``, the excitatory one);
- ``SpiNNakerLIF`` runs sPyNNaker's s16.15 update in float64 (exact: every value is an integer
  below 2^49, see :func:`_lif_f64`) with straight-through gradients through the ring-buffer
  saturation, the rounded products ``mul(a, b) = (a·b + 2^14) >> 15`` and the s32 clip, and
  SpikingJelly's sigmoid surrogate (``alpha = 4``) for ``V >= v_thresh``, taken in the float
  model's membrane units ``V / (σ · 2^15)``; the reset is detached (``detach_reset=True``).

The ``Scale`` of attention counts (one stored weight) and host ops stay frozen, as on Loihi;
gradients pass through the ``Scale`` to the spikes its counts came from.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from snncc.ir import ops as O
from snncc.reference.spinnaker_kernels import ACCUM_MAX, ACCUM_MIN, FRAC_BITS, HALF, RING_MAX
from snncc.torch_exact import float_spatial as S
from snncc.torch_exact import spinnaker_ops
from snncc.torch_exact.base import (
    Builder,
    Kernel,
    NodeInfo,
    RunCtx,
    f64,
    imag_part,
    real_part,
)
from snncc.torch_exact.straight_through import RoundClamp, Spike, ste

#: The stored-weight range: 16-bit magnitudes, the sign picks the receptor.
WEIGHT_MIN, WEIGHT_MAX = -RING_MAX, RING_MAX
_ONE = float(1 << FRAC_BITS)


def _mul(a: torch.Tensor, b: float) -> torch.Tensor:
    """sPyNNaker's ``(a·b + 2^14) >> 15`` on float64 integers, straight through.

    Exact: ``|a·b| < 2^49`` (callers), so the product, the added half and the division by
    2^15 are exact in float64 and ``floor`` is the arithmetic right shift.
    """
    y = a * b
    return ste(y / _ONE, torch.floor((y.detach() + HALF) / _ONE))


def _lif_f64(
    k: Kernel, exc: torch.Tensor, inh: torch.Tensor, host: torch.Tensor | None
) -> torch.Tensor:
    """sPyNNaker's ``IF_curr_delta`` over float64 ring-buffer sums ``[T, ...]``; 0/1 spikes.

    The update of :func:`snncc.torch_exact.spinnaker_ops.lif_steps` (``tau_refrac = 0``) with
    every value an exact float64 integer: ring-buffer sums saturate at 65535 and shift by at
    most 16 (``< 2^32``), ``I_offset`` and a host current are s32 words, so ``|I| < 2^34``;
    ``r``, ``exp_TC`` are at most 2^15 and ``|alpha - V| < 2^35``, so every product is below
    2^50 and exact.
    """
    op = k.op
    e = ste(exc, torch.clamp(exc.detach(), max=RING_MAX)) * float(1 << op.exc_shift)
    i = ste(inh, torch.clamp(inh.detach(), max=RING_MAX)) * float(1 << op.inh_shift)
    current = e - i + k.t("i_offset")
    if host is not None:
        current = current + host
    threshold = float(op.v_thresh) - 0.5  # V >= v_thresh on integers, as Spike's strict test
    v = torch.full_like(current[0], float(op.v_rest))
    out = []
    for t in range(current.shape[0]):
        alpha = _mul(current[t], float(op.r)) + float(op.v_rest)
        v = alpha - _mul(alpha - v, float(op.exp_tc))
        v = ste(v, torch.clamp(v.detach(), ACCUM_MIN, ACCUM_MAX))
        s = Spike.apply(v, threshold, k.params["unit"])
        v = v + s.detach() * (float(op.v_reset) - v)
        out.append(s)
    return torch.stack(out)


def _build_lif(op: O.SpiNNakerLIF, info: NodeInfo) -> Kernel:
    spinnaker_ops.build_spinnaker_lif(op, info)  # the exact builder's checks

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        if k.info.lead != 2:
            raise k.info.fail(k.op, "needs a per-step (temporal) input, got a static value")
        x = xs[0]
        if k.op.host_scale > 0:
            y = real_part(x) * float(k.op.host_scale)
            zeros = torch.zeros_like(y)
            s = _lif_f64(k, zeros, zeros, ste(y, torch.round(y)))
        else:
            exc, inh = real_part(x), imag_part(x)
            d_exc, d_inh = exc.detach(), inh.detach()
            if (
                bool((d_exc < 0).any())
                or bool((d_inh < 0).any())
                or not (
                    torch.equal(torch.round(d_exc), d_exc)
                    and torch.equal(torch.round(d_inh), d_inh)
                )
            ):
                raise k.info.fail(k.op, "input is not ring-buffer sums (is the graph quantized?)")
            s = _lif_f64(k, exc, inh, None)
        return torch.broadcast_to(s, x.shape)

    sigma = float((info.meta.get("quant") or {}).get("scale", 0.0))
    unit = sigma * _ONE if sigma > 0 else float(max(abs(int(op.v_thresh)), 1))
    return Kernel(op, info, fn, {"i_offset": f64(op.i_offset)}, unit=unit)


def _weights(k: Kernel) -> torch.Tensor:
    """The signed stored weights the forward uses: ``clamp(round(theta))``, straight through."""
    return RoundClamp.apply(k.get_parameter("theta"), WEIGHT_MIN, WEIGHT_MAX)


def _receptors(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(exc, inh)`` stored magnitudes; each weight's gradient flows through its own receptor."""
    zero = torch.zeros_like(w)
    return torch.where(w >= 0, w, zero), torch.where(w < 0, -w, zero)


def _sums(k: Kernel, x: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    if isinstance(k.op, O.Linear):
        a, b = S.linear_fn(x, pos, None), S.linear_fn(x, neg, None)
    else:
        a = S.conv_fn(k.op, x, k.info.lead, pos, None)
        b = S.conv_fn(k.op, x, k.info.lead, neg, None)
    return torch.complex(a, b)


def _synaptic_fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
    S.guard_exact(k, xs[0].detach(), k.params["bound"])
    return _sums(k, xs[0], *_receptors(_weights(k)))


def _deployed(float_builder: Builder) -> Builder:
    """A deployed synaptic op with a trainable latent weight; host ops stay frozen float."""
    exact_builder = spinnaker_ops.KERNELS

    def build(op: O.Op, info: NodeInfo) -> Kernel:
        if "receptor" not in (info.meta.get("quant") or {}):
            return float_builder(op, info)
        exact_builder[type(op)](op, info)  # the exact builder's checks, same messages
        bound = float(RING_MAX * np.prod(op.weight.shape[1:]))
        k = Kernel(op, info, _synaptic_fn, bound=bound)
        k.register_parameter("theta", nn.Parameter(f64(op.weight)))
        return k

    return build


def _scale_fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
    """The exact table's count projection without its ``round`` (the counts are integers
    already), so gradients reach the spikes the counts came from."""
    f = k.params["factor"]
    y = real_part(xs[0]) * float(abs(f))
    zeros = torch.zeros_like(y)
    return torch.complex(y, zeros) if f >= 0 else torch.complex(zeros, y)


def _build_scale(op: O.Scale, info: NodeInfo) -> Kernel:
    """A deployed ``Scale`` of counts (frozen stored weight), differentiable in its input."""
    k = spinnaker_ops.build_scale(op, info)  # the exact builder's checks; float Scale as is
    if "receptor" not in (info.meta.get("quant") or {}):
        return k
    return Kernel(op, info, _scale_fn, factor=k.params["factor"])


#: The spinnaker table with trainable deployed weights and neurons.
KERNELS: dict[type[O.Op], Builder] = {
    **spinnaker_ops.KERNELS,
    O.SpiNNakerLIF: _build_lif,
    O.Scale: _build_scale,
    O.Linear: _deployed(spinnaker_ops.FLOAT_KERNELS[O.Linear]),
    O.Conv1d: _deployed(spinnaker_ops.FLOAT_KERNELS[O.Conv1d]),
    O.Conv2d: _deployed(spinnaker_ops.FLOAT_KERNELS[O.Conv2d]),
}
