"""The ``float`` kernel table: one float64 numpy kernel per IR op type.

``float`` mode must reproduce the PyTorch model (outputs within 1e-5, identical spikes), so every
kernel computes in float64 what the op's docstring says, vectorised over the leading ``[T, B]``
(per-step values) or ``[B]`` (static values) axes. Stateful and time-indexed ops live in
:mod:`snncc.reference.float_temporal`, windowed and weighted ops in
:mod:`snncc.reference.float_spatial`; this module holds the element-wise and structural ones and
assembles :data:`KERNELS`.

The one subtle rule here is broadcasting: the IR broadcasts *per-sample* shapes (numpy rules on
the shapes without T and B). A rank-1 bias-like operand ``[D]`` added to a ``[N, D]`` value must
line up with ``D``, and that only happens if the missing per-sample axes are inserted *after* the
leading axes, not in front of the whole array (:func:`align_samples`).
"""

from __future__ import annotations

import numpy as np

from snncc.ir import ops as O
from snncc.reference import float_spatial as S
from snncc.reference import float_temporal as TM
from snncc.reference.context import Kernel, KernelCtx


def align_samples(xs: list[np.ndarray], lead: int) -> list[np.ndarray]:
    """Reshape operands so their per-sample parts have equal rank, padding with 1s on the left."""
    rank = max(x.ndim - lead for x in xs)
    return [
        x.reshape(x.shape[:lead] + (1,) * (rank - (x.ndim - lead)) + x.shape[lead:]) for x in xs
    ]


def _input(op: O.Input, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """The caller's feed; a static feed (``Input.temporal=False``) is presented at every step."""
    feed = ctx.feed
    if feed is None:
        raise ctx.fail(op, "no feed for this input (internal: the interpreter must supply it)")
    if op.temporal and ctx.lead == 1:
        raise ctx.fail(op, "a per-step Input (temporal=True) cannot have a static type")
    if not op.temporal and ctx.lead == 2:
        return np.broadcast_to(feed, (ctx.timesteps,) + feed.shape)
    return feed


def _add(op: O.Add, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """``in0 + in1 + ...`` left to right (the order a chain of torch ``+`` uses)."""
    aligned = align_samples(xs, ctx.lead)
    y = aligned[0] + aligned[1]
    for x in aligned[2:]:
        y = y + x
    return y


def _mul(op: O.Mul, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    a, b = align_samples(xs, ctx.lead)
    return a * b


def _scale(op: O.Scale, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    return xs[0] * float(op.factor)


def _matmul(op: O.MatMul, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """Batched ``a @ b``; per-sample batch axes are aligned like :func:`align_samples`."""
    a, b = align_samples(xs, ctx.lead)
    return np.matmul(a, b)


def _reshape(op: O.Reshape, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    x = xs[0]
    return x.reshape(x.shape[: ctx.lead] + tuple(op.shape))


def _permute(op: O.Permute, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    lead = ctx.lead
    return np.transpose(xs[0], tuple(range(lead)) + tuple(d + lead for d in op.dims))


def _repeat(op: O.Repeat, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """``torch.Tensor.repeat`` on the sample: extra repeat axes are new leading sample axes."""
    x, lead = xs[0], ctx.lead
    rank = x.ndim - lead
    if len(op.repeats) < rank:
        raise ctx.fail(op, f"{len(op.repeats)} repeats for a rank-{rank} sample")
    x = x.reshape(x.shape[:lead] + (1,) * (len(op.repeats) - rank) + x.shape[lead:])
    return np.tile(x, (1,) * lead + tuple(op.repeats))


def _slice(op: O.Slice, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    x = xs[0]
    ax = ctx.axis(op.axis, x.ndim - ctx.lead)
    index = [slice(None)] * x.ndim
    index[ax] = slice(op.start, op.stop, op.step)
    return x[tuple(index)]


def _pad(op: O.Pad, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    x = xs[0]
    widths = [(0, 0)] * x.ndim
    widths[ctx.axis(op.axis, x.ndim - ctx.lead)] = (op.before, op.after)
    return np.pad(x, widths)


def _sample_axes(op: O.Mean | O.Sum, x: np.ndarray, ctx: KernelCtx) -> tuple[int, ...]:
    rank = x.ndim - ctx.lead
    return tuple(sorted({ctx.axis(a, rank) for a in op.axes}))


def _mean(op: O.Mean, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    return np.mean(xs[0], axis=_sample_axes(op, xs[0], ctx), keepdims=op.keepdim)


def _sum(op: O.Sum, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    return np.sum(xs[0], axis=_sample_axes(op, xs[0], ctx), keepdims=op.keepdim)


#: Every IR op type -> its float64 kernel. ``tests/reference`` checks that it covers ``OPS``.
KERNELS: dict[type[O.Op], Kernel] = {
    O.Input: _input,
    O.Linear: S.linear,
    O.Conv1d: S.conv1d,
    O.Conv2d: S.conv2d,
    O.BatchNorm: S.batch_norm,
    O.AvgPool2d: S.avg_pool2d,
    O.MaxPool2d: S.max_pool2d,
    O.LIF: TM.lif,
    O.IF: TM.if_,
    O.ExpGIF: TM.expgif,
    O.Add: _add,
    O.Scale: _scale,
    O.Mul: _mul,
    O.MatMul: _matmul,
    O.Reshape: _reshape,
    O.Permute: _permute,
    O.Repeat: _repeat,
    O.Slice: _slice,
    O.Pad: _pad,
    O.Mean: _mean,
    O.Sum: _sum,
    O.TimeMean: TM.time_mean,
    O.Delay: TM.delay,
}
