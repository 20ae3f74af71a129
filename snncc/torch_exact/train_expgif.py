"""The trainable ``LoihiExpGIF``: the programmable neuron's integer program, with gradients.

Part of the Loihi table of :mod:`snncc.torch_exact.train`. The forward is the integer program
of :func:`snncc.reference.loihi_kernels.expgif_step` (and
:func:`snncc.torch_exact.loihi_ops.expgif_steps`) in float64, bit for bit: at an integrating
step ``v = clip(v + a + bias, ±(2^23 - 1))``; at bit ``k`` of the schedule
(:func:`~snncc.ir.ops.expgif_schedule`: periodic groups, or one group from ``start``)
``s = v >= th[k]``, ``v -= s · th[k]``, payload ``y = s · 2^(K-1-k)``. Exact: every value is an
integer whose magnitude stays far below 2^53 (``|v| < 2^23``; ``a`` is guarded by the synapse
that produced it).

The backward mirrors :class:`snncc.nn.ExpGIF`, the float neuron it was quantized from:

- the saturation and the host rounding ``a = rint(x · host_scale)`` are straight through;
- each bit's firing decision uses the sigmoid surrogate (``alpha = 4``) on
  ``(v - th[k]) / unit`` with ``unit`` the stream scale, i.e. in the float model's membrane
  units as the LIF's (:func:`surrogate_unit` says why not the float neuron's ``alpha / th``);
- the soft reset is detached (``detach_reset=True``, the zoo's default);
- the output is the payload ``s · 2^(K-1-k)``, so a spike's gradient is weighted by its bit as
  the float neuron's ``s · th`` is; the next deployed synapse's weights are already in the
  payload unit (its ``quant.input_unit``), so nothing else is rescaled.
"""

from __future__ import annotations

import torch

from snncc.ir import ops as O
from snncc.reference.loihi_kernels import MAX_UV
from snncc.torch_exact.base import Kernel, NodeInfo, RunCtx, f64
from snncc.torch_exact.straight_through import SpikeAtOrAbove, loihi_a_in, ste


def expgif_f64(
    a: torch.Tensor,
    thresholds: tuple[int, ...],
    bias: torch.Tensor,
    start: int | None,
    unit: float,
) -> torch.Tensor:
    """The payloads ``[T, ...]`` (float64 integers) of the neuron over ``a = [T, ...]``.

    Requires: ``a`` float64 integers in ``a_in`` units, row ``t`` step ``t`` of the sample;
    ``bias`` float64 integers broadcasting against ``a[0]``; ``unit`` the surrogate's unit of
    ``v`` (:func:`surrogate_unit`). Ensures: the values of
    :func:`~snncc.torch_exact.loihi_ops.expgif_steps`'s payloads, with the gradients of the
    module docstring.
    """
    bits = len(thresholds)
    v = torch.zeros_like(a[0] + bias)
    out = []
    for t in range(a.shape[0]):
        integrates, k = O.expgif_schedule(t, bits, start)
        if integrates:
            v = v + a[t] + bias
            v = ste(v, torch.clamp(v.detach(), -(MAX_UV - 1), MAX_UV - 1))
        if k is None:  # a one-group neuron outside its group: silent
            out.append(torch.zeros_like(v))
            continue
        th = float(thresholds[k])
        s = SpikeAtOrAbove.apply(v, th, unit)
        v = v - s.detach() * th
        out.append(s * float(1 << (bits - 1 - k)))
    return torch.stack(out)


def build_expgif(op: O.LoihiExpGIF, info: NodeInfo) -> Kernel:
    """:class:`~snncc.ir.ops.LoihiExpGIF` over T, trainable; float64 graded payloads."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        if k.info.lead != 2:
            raise k.info.fail(k.op, "needs a per-step (temporal) input, got a static value")
        x = xs[0]
        a = loihi_a_in(k, x)
        th = tuple(int(t) for t in k.op.thresholds)
        y = expgif_f64(a, th, k.t("bias"), k.op.start, k.params["unit"])
        return torch.broadcast_to(y, x.shape)

    return Kernel(op, info, fn, {"bias": f64(op.bias)}, unit=surrogate_unit(op, info))


def surrogate_unit(op: O.LoihiExpGIF, info: NodeInfo) -> float:
    """The integer ``v`` of one float membrane unit: the stream scale ``quant.scale``.

    Why not the float neuron's own ``th[k]``: a quantized neuron's threshold can be a few
    integer steps on a stream whose currents are thousands (ge2mst-tiny's attention q/v neurons
    fire at ``v >= 2`` with scale 16384), and a sigmoid that narrow passes gradients of 1e-40.
    One float unit per stream, as the LIF's ``v / (64 · s)``, keeps every bit's surrogate as
    wide as the currents it integrates. Without a scale (a hand-built graph): ``2 · th[0]``,
    the float ``theta`` in integer units.
    """
    scale = float((info.meta.get("quant") or {}).get("scale", 0.0))
    return scale if scale > 0 else 2.0 * float(op.thresholds[0])
