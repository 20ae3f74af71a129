"""Float64 kernels for the spatial and synaptic ops: Linear, Conv1d/2d, pooling, BatchNorm.

Each kernel reproduces the corresponding ``torch.nn.functional`` call (cross-correlation with
stride, padding, dilation and groups; average pooling with ``count_include_pad``; max pooling with
``-inf`` padding and dilation; inference batch norm) on arrays whose leading ``[T, B]`` (or ``[B]``)
axes are merged into one batch axis.

Convolution is im2col (``sliding_window_view``, then one contiguous copy) followed by a single
matrix product per group, ``[out/g, (in/g)*k] @ [(in/g)*k, N*H'*W']``. Why one big product rather
than one per kernel tap: every BLAS call has a fixed cost (thread wake-up, which on a loaded
2-core machine dominates small layers), so fewer, larger calls are both faster and steadier. The
column buffer is ``k*k`` times the input, so large batches are converted in chunks of at most
``_COLUMN_BYTES``. Pooling needs no BLAS: a loop over window taps of strided views, reduced with
``maximum`` or ``+``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from snncc.ir import ops as O
from snncc.reference.context import KernelCtx, flatten_lead

#: Largest im2col buffer a convolution builds at once; larger batches are converted in chunks.
_COLUMN_BYTES = 64 * 2**20


def _out_len(n: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a window op, the formula torch documents for Conv/Pool (floor mode)."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _tap_slices(
    tap: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
) -> tuple[slice, ...]:
    """Slices of the padded spatial axes that kernel position ``tap`` reads for every output."""
    return tuple(
        slice(i * d, i * d + s * (o - 1) + 1, s)
        for i, s, d, o in zip(tap, stride, dilation, out, strict=True)
    )


def _im2col(
    xp: np.ndarray,
    ksize: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    """Columns ``[g, (in/g)*prod(k), N*prod(out)]`` of a padded ``[N, C, *spatial]`` input."""
    nd = len(ksize)
    span = tuple(d * (k - 1) + 1 for k, d in zip(ksize, dilation, strict=True))
    win = sliding_window_view(xp, span, axis=tuple(range(2, 2 + nd)))
    pos = tuple(slice(None, s * (o - 1) + 1, s) for s, o in zip(stride, out, strict=True))
    taps = tuple(slice(None, None, d) for d in dilation)
    win = win[(slice(None), slice(None)) + pos + taps]  # [N, C, *out, *k]
    n, c = xp.shape[:2]
    order = (1,) + tuple(range(2 + nd, 2 + 2 * nd)) + (0,) + tuple(range(2, 2 + nd))
    return np.ascontiguousarray(win.transpose(order)).reshape(groups, -1, n * int(np.prod(out)))


def conv_nd(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    """``torch.nn.functional.conv{1,2}d`` on ``x = [N, C, *spatial]`` with weight ``w``."""
    n, c = x.shape[:2]
    ksize = tuple(w.shape[2:])
    out = tuple(
        _out_len(x.shape[2 + i], ksize[i], stride[i], padding[i], dilation[i])
        for i in range(len(ksize))
    )
    o_ch = w.shape[0]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    wg = np.asarray(w, np.float64).reshape(groups, o_ch // groups, -1)
    # Bound the column buffer (prod(k) times the input) by converting a few samples at a time.
    per_sample = c * int(np.prod(ksize)) * int(np.prod(out)) * 8
    chunk = max(1, _COLUMN_BYTES // max(per_sample, 1))
    parts = []
    for lo in range(0, n, chunk):
        cols = _im2col(xp[lo : lo + chunk], ksize, stride, dilation, out, groups)
        parts.append((wg @ cols).reshape((o_ch, -1) + out))
    y = np.moveaxis(np.concatenate(parts, axis=1), 0, 1)
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape((-1,) + (1,) * len(out))
    return np.ascontiguousarray(y)


def linear(op: O.Linear, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """``y = x W^T + b`` over the last axis (``torch.nn.functional.linear``)."""
    x = xs[0]
    # One 2-D product instead of numpy's loop over the stacked leading axes.
    y = (x.reshape(-1, x.shape[-1]) @ np.asarray(op.weight, np.float64).T).reshape(
        x.shape[:-1] + (op.weight.shape[0],)
    )
    if op.bias is not None:
        y = y + np.asarray(op.bias, np.float64)
    return y


def conv1d(op: O.Conv1d, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """``torch.nn.functional.conv1d`` on ``[..., C, L]``."""
    x, lead_shape = flatten_lead(xs[0], ctx.lead)
    y = conv_nd(x, op.weight, op.bias, (op.stride,), (op.padding,), (op.dilation,), op.groups)
    return y.reshape(lead_shape + y.shape[1:])


def conv2d(op: O.Conv2d, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """``torch.nn.functional.conv2d`` on ``[..., C, H, W]``."""
    x, lead_shape = flatten_lead(xs[0], ctx.lead)
    y = conv_nd(x, op.weight, op.bias, op.stride, op.padding, op.dilation, op.groups)
    return y.reshape(lead_shape + y.shape[1:])


def _pool_windows(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    fill: float,
) -> list[np.ndarray]:
    """The strided views of ``x = [N, C, H, W]`` (padded with ``fill``), one per window tap."""
    out = (
        _out_len(x.shape[2], kernel[0], stride[0], padding[0], dilation[0]),
        _out_len(x.shape[3], kernel[1], stride[1], padding[1], dilation[1]),
    )
    pad = [(0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])]
    xp = np.pad(x, pad, constant_values=fill)
    return [
        xp[(slice(None), slice(None)) + _tap_slices(tap, stride, dilation, out)]
        for tap in np.ndindex(*kernel)
    ]


def max_pool2d(op: O.MaxPool2d, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """``torch.nn.functional.max_pool2d``: padding is ``-inf`` and never wins."""
    x, lead_shape = flatten_lead(xs[0], ctx.lead)
    views = _pool_windows(x, op.kernel, op.stride, op.padding, op.dilation, -np.inf)
    y = views[0].copy()
    for v in views[1:]:
        np.maximum(y, v, out=y)
    return y.reshape(lead_shape + y.shape[1:])


def avg_pool2d(op: O.AvgPool2d, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """``torch.nn.functional.avg_pool2d`` (floor mode).

    With ``count_include_pad`` the divisor is ``kh*kw`` everywhere (in floor mode no window
    reaches past the padded border); without it, the number of real input elements in the window,
    counted by pooling a ones mask padded with zeros.
    """
    x, lead_shape = flatten_lead(xs[0], ctx.lead)
    views = _pool_windows(x, op.kernel, op.stride, op.padding, (1, 1), 0.0)
    y = views[0].copy()
    for v in views[1:]:
        y += v
    if op.count_include_pad:
        y /= float(op.kernel[0] * op.kernel[1])
    else:
        ones = np.ones((1, 1) + x.shape[2:])
        mask_views = _pool_windows(ones, op.kernel, op.stride, op.padding, (1, 1), 0.0)
        y /= np.sum(mask_views, axis=0)
    return y.reshape(lead_shape + y.shape[1:])


def batch_norm(op: O.BatchNorm, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """Inference batch norm: ``(x - mean) / sqrt(var + eps) * weight + bias`` along ``axis``."""
    x = xs[0]
    ax = ctx.axis(op.axis, x.ndim - ctx.lead)
    shape = [1] * x.ndim
    shape[ax] = -1

    def p(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, np.float64).reshape(shape)

    scale = np.sqrt(p(op.running_var) + op.eps)
    return (x - p(op.running_mean)) / scale * p(op.weight) + p(op.bias)
