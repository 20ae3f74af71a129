"""Torch float64 kernels for the spatial and synaptic ops: Linear, Conv1d/2d, pooling, BatchNorm.

Twins of :mod:`snncc.reference.float_spatial`. What is bit-identical to the numpy oracle and why:

- element-wise IEEE operations (BatchNorm, the divisions of average pooling) are correctly
  rounded in numpy and torch, so the same operations in the same order give the same bits;
  average pooling therefore sums its window taps in the reference's order (``np.ndindex``);
- max pooling is an exact selection;
- products and sums of *integers* (every deployed synaptic op: integer weights times spikes,
  counts or graded payloads) are exact in float64 in any order while every partial sum stays
  below 2^53, which :func:`guard_exact` checks on every call from a bound computed once per
  weight (``max|x| · max_row Σ|W|``). Integer convolutions avoid cuDNN on CUDA, whose FFT and
  Winograd algorithms compute through non-integer transforms; the native path is a plain GEMM;
- float sums (the host's encoding conv and readout head) depend on the summation order, which
  BLAS libraries choose: they agree with numpy to float64 rounding, not bit for bit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from snncc.ir import ops as O
from snncc.torch_exact.base import EXACT_LIMIT, Kernel, NodeInfo, RunCtx, f64, flatten_lead, scalar


def _out_len(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@contextlib.contextmanager
def integer_safe(x: torch.Tensor) -> Iterator[None]:
    """On CUDA, keep cuDNN (FFT/Winograd transforms) out of an integer convolution."""
    if x.is_cuda:
        with torch.backends.cudnn.flags(enabled=False):
            yield
    else:
        yield


def row_bound(w: np.ndarray) -> float:
    """``max`` over output units of ``Σ|W|`` over that unit's inputs (exact, in float)."""
    a = np.abs(np.asarray(w, dtype=np.float64)).reshape(w.shape[0], -1)
    return float(a.sum(axis=1).max()) if a.size else 0.0


def guard_exact(k: Kernel, x: torch.Tensor, bound: float) -> None:
    """Raise unless every partial sum of ``W x`` is provably below 2^53 (so float64 is exact).

    ``bound`` is :func:`row_bound` of the weights (times any later power-of-two scaling); every
    partial sum is at most ``max|x| · bound`` in magnitude.
    """
    if x.numel() and float(x.abs().max()) * bound >= EXACT_LIMIT:
        raise k.info.fail(k.op, "integer sums may exceed 2^53: float64 would not be exact")


def linear_fn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``x W^T + b`` over the last axis, as one 2-D product."""
    y = (x.reshape(-1, x.shape[-1]) @ w.T).reshape(tuple(x.shape[:-1]) + (w.shape[0],))
    return y if b is None else y + b


def conv_fn(op: O.Conv1d | O.Conv2d, x: torch.Tensor, lead: int, w: torch.Tensor,
            b: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
    """``torch.nn.functional.conv{1,2}d`` of ``op``'s geometry over ``x = [..lead.., C, *sp]``."""
    xf, lead_shape = flatten_lead(x, lead)
    with integer_safe(xf):
        if isinstance(op, O.Conv1d):
            y = F.conv1d(xf, w, b, op.stride, op.padding, op.dilation, op.groups)
        else:
            y = F.conv2d(xf, w, b, op.stride, op.padding, op.dilation, op.groups)
    return y.reshape(lead_shape + tuple(y.shape[1:]))


def build_linear(op: O.Linear, info: NodeInfo) -> Kernel:
    """Float ``Linear`` (host head, or an unquantized graph)."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        return linear_fn(xs[0], k.t("weight"), k.t("bias") if k.params["has_bias"] else None)

    tensors = {"weight": f64(op.weight)}
    if op.bias is not None:
        tensors["bias"] = f64(op.bias)
    return Kernel(op, info, fn, tensors, has_bias=op.bias is not None)


def build_conv(op: O.Conv1d | O.Conv2d, info: NodeInfo) -> Kernel:
    """Float ``Conv1d``/``Conv2d`` (the host's encoding conv, or an unquantized graph)."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        b = k.t("bias") if k.params["has_bias"] else None
        return conv_fn(k.op, xs[0], k.info.lead, k.t("weight"), b)

    tensors = {"weight": f64(op.weight)}
    if op.bias is not None:
        tensors["bias"] = f64(op.bias)
    return Kernel(op, info, fn, tensors, has_bias=op.bias is not None)


def _pool_views(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int], dilation: tuple[int, int],
                fill: float) -> list[torch.Tensor]:  # fmt: skip
    """Strided views of padded ``x = [N, C, H, W]``, one per window tap (``np.ndindex`` order)."""
    out = tuple(
        _out_len(x.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i]) for i in (0, 1)
    )
    xp = F.pad(x, (padding[1], padding[1], padding[0], padding[0]), value=fill)
    views = []
    for tap in np.ndindex(*kernel):
        sl = tuple(
            slice(int(t) * d, int(t) * d + s * (o - 1) + 1, s)
            for t, s, d, o in zip(tap, stride, dilation, out, strict=True)
        )
        views.append(xp[(slice(None), slice(None)) + sl])
    return views


def build_max_pool2d(op: O.MaxPool2d, info: NodeInfo) -> Kernel:
    """``max_pool2d`` with ``-inf`` padding: an exact selection (an OR over spikes)."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        x, lead_shape = flatten_lead(xs[0], k.info.lead)
        o = k.op
        y = F.max_pool2d(x, o.kernel, o.stride, o.padding, o.dilation)
        return y.reshape(lead_shape + tuple(y.shape[1:]))

    return Kernel(op, info, fn)


def build_avg_pool2d(op: O.AvgPool2d, info: NodeInfo) -> Kernel:
    """``avg_pool2d`` (floor mode) summed tap by tap in the reference's order, then divided."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        x, lead_shape = flatten_lead(xs[0], k.info.lead)
        o = k.op
        views = _pool_views(x, o.kernel, o.stride, o.padding, (1, 1), 0.0)
        y = views[0].clone()
        for v in views[1:]:
            y = y + v
        if o.count_include_pad:
            y = y / scalar(o.kernel[0] * o.kernel[1], y)
        else:
            ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
            masks = _pool_views(ones, o.kernel, o.stride, o.padding, (1, 1), 0.0)
            count = masks[0].clone()
            for m in masks[1:]:
                count = count + m
            y = y / count
        return y.reshape(lead_shape + tuple(y.shape[1:]))

    return Kernel(op, info, fn)


def build_batch_norm(op: O.BatchNorm, info: NodeInfo) -> Kernel:
    """Inference batch norm ``(x - mean) / sqrt(var + eps) * weight + bias`` along ``axis``."""

    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        x = xs[0]
        shape = [1] * x.dim()
        shape[k.info.axis(k.op.axis, x.dim() - k.info.lead)] = -1

        def p(name: str) -> torch.Tensor:
            return k.t(name).reshape(shape)

        scale = torch.sqrt(p("running_var") + scalar(k.op.eps, x))
        return (x - p("running_mean")) / scale * p("weight") + p("bias")

    names = ("weight", "bias", "running_mean", "running_var")
    return Kernel(op, info, fn, {n: f64(getattr(op, n)) for n in names})
