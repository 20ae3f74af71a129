"""The float64 torch kernel table: one builder per IR op type (twin of the reference's table).

Element-wise and structural kernels live here; spatial/synaptic ones in
:mod:`snncc.torch_exact.float_spatial`, time-wise ones in :mod:`snncc.torch_exact.float_temporal`.
The integer tables (:mod:`snncc.torch_exact.loihi_ops`, :mod:`snncc.torch_exact.spinnaker_ops`)
start from this one and override what the target computes differently, exactly as the
reference's ``loihi``/``spinnaker`` tables start from its float table.

Means are a sum followed by one division (``np.mean``'s order), not torch's ``mean`` (a sum
times the reciprocal), so a mean of integers is correctly rounded like the oracle's.
"""

from __future__ import annotations

import torch

from snncc.ir import ops as O
from snncc.torch_exact import float_spatial as S
from snncc.torch_exact import float_temporal as TM
from snncc.torch_exact.base import Builder, NodeInfo, RunCtx, align_samples, scalar, stateless


def _input(op: O.Input, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    """The caller's feed; a static feed is presented at every step (a broadcast view)."""
    feed = run.feed
    if feed is None:
        raise info.fail(op, "no feed for this input (internal: the program must supply it)")
    if op.temporal and info.lead == 1:
        raise info.fail(op, "a per-step Input (temporal=True) cannot have a static type")
    if not op.temporal and info.lead == 2:
        return feed.expand((run.timesteps,) + tuple(feed.shape))
    return feed


def _add(op: O.Add, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    """``in0 + in1 + ...`` left to right."""
    aligned = align_samples(xs, info.lead)
    y = aligned[0] + aligned[1]
    for x in aligned[2:]:
        y = y + x
    return y


def _promoted(xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """numpy's promotion for a product: a complex (ring-buffer) operand makes both complex."""
    dtype = torch.promote_types(xs[0].dtype, xs[1].dtype)
    return [x.to(dtype) for x in xs]


def _mul(op: O.Mul, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    a, b = align_samples(_promoted(xs), info.lead)
    return a * b


def _scale(op: O.Scale, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    return xs[0] * float(op.factor)


def _matmul(op: O.MatMul, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    a, b = align_samples(_promoted(xs), info.lead)
    return torch.matmul(a, b)


def _reshape(op: O.Reshape, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    x = xs[0]
    return x.reshape(tuple(x.shape[: info.lead]) + tuple(op.shape))


def _permute(op: O.Permute, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    lead = info.lead
    return xs[0].permute(tuple(range(lead)) + tuple(d + lead for d in op.dims))


def _repeat(op: O.Repeat, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    """``torch.Tensor.repeat`` on the sample (``np.tile`` after inserting the new axes)."""
    x, lead = xs[0], info.lead
    rank = x.dim() - lead
    if len(op.repeats) < rank:
        raise info.fail(op, f"{len(op.repeats)} repeats for a rank-{rank} sample")
    x = x.reshape(tuple(x.shape[:lead]) + (1,) * (len(op.repeats) - rank) + tuple(x.shape[lead:]))
    return x.repeat((1,) * lead + tuple(op.repeats))


def _slice(op: O.Slice, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    x = xs[0]
    if op.step < 1:
        raise info.fail(op, f"step {op.step} < 1 (torch slices step forward only)")
    index: list[slice] = [slice(None)] * x.dim()
    index[info.axis(op.axis, x.dim() - info.lead)] = slice(op.start, op.stop, op.step)
    return x[tuple(index)]


def _pad(op: O.Pad, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    """Zeros before and after along ``axis`` (concatenation: works for complex values too)."""
    x = xs[0]
    ax = info.axis(op.axis, x.dim() - info.lead)
    parts = []
    for n in (op.before, None, op.after):
        if n is None:
            parts.append(x)
        elif n > 0:
            shape = list(x.shape)
            shape[ax] = n
            parts.append(torch.zeros(shape, dtype=x.dtype, device=x.device))
    return torch.cat(parts, dim=ax)


def _sample_dims(op: O.Mean | O.Sum, x: torch.Tensor, info: NodeInfo) -> tuple[int, ...]:
    rank = x.dim() - info.lead
    return tuple(sorted({info.axis(a, rank) for a in op.axes}))


def _mean(op: O.Mean, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    x = xs[0]
    dims = _sample_dims(op, x, info)
    if not dims:  # np.mean(axis=()) reduces nothing; torch would reduce everything
        return x.clone()
    n = 1
    for d in dims:
        n *= x.shape[d]
    return x.sum(dim=dims, keepdim=op.keepdim) / scalar(n, x)


def _sum(op: O.Sum, xs: list[torch.Tensor], info: NodeInfo, run: RunCtx) -> torch.Tensor:
    dims = _sample_dims(op, xs[0], info)
    return xs[0].sum(dim=dims, keepdim=op.keepdim) if dims else xs[0].clone()


#: Every IR op type -> its float64 torch builder. ``tests/torch_exact`` checks it covers ``OPS``.
KERNELS: dict[type[O.Op], Builder] = {
    O.Input: stateless(_input),
    O.Linear: S.build_linear,
    O.Conv1d: S.build_conv,
    O.Conv2d: S.build_conv,
    O.BatchNorm: S.build_batch_norm,
    O.AvgPool2d: S.build_avg_pool2d,
    O.MaxPool2d: S.build_max_pool2d,
    O.LIF: TM.build_lif,
    O.IF: TM.build_if,
    O.ExpGIF: TM.build_expgif,
    O.Add: stateless(_add),
    O.Scale: stateless(_scale),
    O.Mul: stateless(_mul),
    O.MatMul: stateless(_matmul),
    O.Reshape: stateless(_reshape),
    O.Permute: stateless(_permute),
    O.Repeat: stateless(_repeat),
    O.Slice: stateless(_slice),
    O.Pad: stateless(_pad),
    O.Mean: stateless(_mean),
    O.Sum: stateless(_sum),
    O.TimeMean: TM.build_time_mean,
    O.Delay: TM.build_delay,
}
