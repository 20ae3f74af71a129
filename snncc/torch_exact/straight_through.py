"""Straight-through pieces every trainable table shares (Loihi LIF, Loihi ExpG-IF, SpiNNaker).

A trainable forward must be the exact integer program, so each non-differentiable step (a
rounding, a clip, a threshold test) keeps its exact forward value and gets a chosen backward:
the identity for roundings and clips, SpikingJelly's sigmoid surrogate for spikes.
"""

from __future__ import annotations

from typing import Any

import torch

#: SpikingJelly's sigmoid surrogate slope, as the zoo's neurons train with it.
SURROGATE_ALPHA = 4.0


class RoundClamp(torch.autograd.Function):
    """``clamp(round(theta), lo, hi)`` forward (exact), identity backward (straight through)."""

    @staticmethod
    def forward(ctx, theta: torch.Tensor, lo: int, hi: int) -> torch.Tensor:  # noqa: D102
        return torch.clamp(torch.round(theta), lo, hi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: D102
        return grad, None, None


class Spike(torch.autograd.Function):
    """``v > threshold`` forward; sigmoid-surrogate backward on ``(v - threshold) / unit``."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, threshold: float, unit: float) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(v)
        ctx.threshold, ctx.unit = threshold, unit
        return (v > threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: D102
        (v,) = ctx.saved_tensors
        sg = torch.sigmoid(SURROGATE_ALPHA * (v - ctx.threshold) / ctx.unit)
        return grad * SURROGATE_ALPHA * sg * (1.0 - sg) / ctx.unit, None, None


class SpikeAtOrAbove(Spike):
    """``v >= threshold`` forward (SpikingJelly's and the ExpG-IF's test); :class:`Spike`'s
    backward."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, threshold: float, unit: float) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(v)
        ctx.threshold, ctx.unit = threshold, unit
        return (v >= threshold).to(v.dtype)


def ste(x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """``fx`` forward, the gradient of ``x`` backward.

    Exact because ``x`` and ``fx`` are both exact in float64 and ``fx - x`` is too (an integer
    difference, or the fraction of a dyadic number with at most 12 fractional bits), so
    ``x + (fx - x)`` rounds to ``fx`` itself.
    """
    return x + (fx - x).detach()


def loihi_a_in(k: Any, x: torch.Tensor) -> torch.Tensor:
    """A Loihi neuron kernel's per-step input in ``a_in`` units, straight through.

    A host-fed neuron (``host_scale > 0``) receives ``rint(x · host_scale)`` (Lava's host
    encoding; identity backward); any other receives integer ``a_in`` from deployed synapses,
    checked here so that an unquantized graph fails with the node named.
    """
    if k.op.host_scale > 0:
        y = x * float(k.op.host_scale)
        return ste(y, torch.round(y))
    if not torch.equal(torch.round(x.detach()), x.detach()):
        raise k.info.fail(k.op, "input is not integer a_in (is the graph quantized?)")
    return x
