"""Static (non-elastic) modules that an elastic module exports at one granularity.

Each class is a plain spiking module of the sliced width, built by ``from_elastic`` with copies of
the kept weights (seed-models.md §3.4): first-``k`` output rows of the layers whose outputs are
sliced (with the matching rows of the granularity's BN), first-``k`` input columns of the layers
that read them, shared layers unchanged. Where the elastic module keeps one BN per granularity
(``*_bns``, switchable BN), the slice holds a plain BN copied from the chosen granularity's.
Dropped heads never fire in the elastic model (their attention input is exactly zero and the
threshold is positive), so removing them changes nothing. Module names follow the elastic
modules, so hooks line up one to one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from snncc.models.blocks import merge_heads, split_heads
from snncc.nn import LIF

if TYPE_CHECKING:  # pragma: no cover
    from snncc.models import elastic_modules as E


def _copy_lif(src: LIF) -> LIF:
    return LIF(
        tau=src.tau,
        decay_input=src.decay_input,
        v_threshold=src.v_threshold,
        v_reset=src.v_reset,
        detach_reset=src.detach_reset,
        surrogate_alpha=src.surrogate_alpha,
    )


def _sliced_bn(src: nn.modules.batchnorm._BatchNorm, k: int, cls: type) -> nn.Module:
    """A BN of width ``k`` holding the first ``k`` channels of ``src`` (affine and statistics)."""
    bn = cls(k, eps=src.eps, momentum=src.momentum).to(src.weight.device, src.weight.dtype)
    with torch.no_grad():
        bn.weight.copy_(src.weight[:k])
        bn.bias.copy_(src.bias[:k])
        bn.running_mean.copy_(src.running_mean[:k])
        bn.running_var.copy_(src.running_var[:k])
        bn.num_batches_tracked.copy_(src.num_batches_tracked)
    return bn


def _conv(
    src: nn.Conv1d | nn.Conv2d, rows: int | None = None, cols: int | None = None
) -> nn.Module:
    """A copy of ``src`` keeping output rows ``[:rows]`` and input columns ``[:cols]``."""
    w = src.weight[: rows or src.out_channels, : cols or src.in_channels]
    cls = type(src)
    conv = cls(
        w.shape[1],
        w.shape[0],
        kernel_size=src.kernel_size,
        stride=src.stride,
        padding=src.padding,
        bias=src.bias is not None,
    ).to(w.device, w.dtype)
    with torch.no_grad():
        conv.weight.copy_(w)
        if src.bias is not None:
            conv.bias.copy_(src.bias[: w.shape[0]])
    return conv


class SlicedConv(nn.Module):
    """Static XiConvMultiGran: ``compression_conv`` keeps its first ``c`` outputs (``gamma > 1``),
    or the first ``c`` input channels are selected (``gamma = 1``); ``main_conv`` reads ``c``."""

    def __init__(self, compression: int, kept: int) -> None:
        super().__init__()
        self.compression = compression
        self.kept = kept

    @classmethod
    def from_elastic(cls, m: E.XiConvMultiGran) -> SlicedConv:
        out = cls(m.compression, m.kept)
        if m.compression > 1:
            out.compression_conv = _conv(m.compression_conv, rows=m.kept)
        if m.pool:
            out.mp = nn.MaxPool2d(m.pool)
        out.main_conv = _conv(m.main_conv, cols=m.kept)
        bn = m.current_bn()  # the shared BN, or the granularity's own (switchable BN)
        if bn is not None:
            out.main_bn = _sliced_bn(bn, m.c_out, nn.BatchNorm2d)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compression > 1:
            x = self.compression_conv(x)
        elif self.kept < x.shape[1]:
            x = x[:, : self.kept]
        if hasattr(self, "mp"):
            x = self.mp(x)
        x = self.main_conv(x)
        if hasattr(self, "main_bn"):
            x = self.main_bn(x)
        return x


class StaticMLP(nn.Module):
    """Spikformer MLP on ``[T, B, C, N]`` with hidden width ``k`` (post-activation)."""

    @classmethod
    def from_elastic(cls, m: E.XiMLP) -> StaticMLP:
        out, k = cls(), m.level
        out.c_hidden = k
        out.fc1_conv = _conv(m.fc1_conv, rows=k)
        out.fc1_bn = _sliced_bn(m.fc1_bns[m.granularity], k, nn.BatchNorm1d)
        out.fc1_lif = _copy_lif(m.fc1_lif)
        out.fc2_conv = _conv(m.fc2_conv, cols=k)
        out.fc2_bn = _sliced_bn(m.fc2_bn, m.c_output, nn.BatchNorm1d)
        out.fc2_lif = _copy_lif(m.fc2_lif)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, N = x.shape
        x = self.fc1_bn(self.fc1_conv(x.flatten(0, 1))).reshape(T, B, self.c_hidden, N)
        x = self.fc1_lif(x)
        x = self.fc2_bn(self.fc2_conv(x.flatten(0, 1))).reshape(T, B, C, N)
        return self.fc2_lif(x)


def _copy_attention(out: nn.Module, m: E.XiSSA) -> None:
    """Q/K/V rows ``[:kh*d]`` with the granularity's BN rows; proj columns ``[:kh*d]`` and the
    granularity's proj BN (the shared one for XiSSA)."""
    inner = m.level * m.head_dim
    out.num_heads, out.inner, out.scale = m.level, inner, m.scale
    for p in ("q", "k", "v"):
        setattr(out, f"{p}_conv", _conv(getattr(m, f"{p}_conv"), rows=inner))
        bn = getattr(m, f"{p}_bns")[m.granularity]
        setattr(out, f"{p}_bn", _sliced_bn(bn, inner, nn.BatchNorm1d))
        setattr(out, f"{p}_lif", _copy_lif(getattr(m, f"{p}_lif")))
    out.attn_lif = _copy_lif(m.attn_lif)
    out.proj_conv = _conv(m.proj_conv, cols=inner)
    out.proj_bn = _sliced_bn(m.current_proj_bn(), m.dim, nn.BatchNorm1d)
    out.proj_lif = _copy_lif(m.proj_lif)


def _attend(out: nn.Module, x_flat: torch.Tensor, T: int, B: int, N: int) -> torch.Tensor:
    """Q/K/V of width ``inner``, then ``LIF_0.5((Q Kᵀ) V * scale)``: ``[T, B, inner, N]``."""
    heads = []
    for p in ("q", "k", "v"):
        y = getattr(out, f"{p}_bn")(getattr(out, f"{p}_conv")(x_flat))
        y = getattr(out, f"{p}_lif")(y.reshape(T, B, out.inner, N))
        heads.append(split_heads(y, out.num_heads))
    q, k, v = heads
    return out.attn_lif(merge_heads(((q @ k.transpose(-2, -1)) @ v) * out.scale))


class StaticSSA(nn.Module):
    """Spikformer SSA with ``kh`` heads of the original head size: Q/K/V ``D -> kh*d``,
    ``proj`` ``kh*d -> D``; post-activation (ends in ``proj_lif``)."""

    @classmethod
    def from_elastic(cls, m: E.XiSSA) -> StaticSSA:
        out = cls()
        _copy_attention(out, m)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, N = x.shape
        a = _attend(self, x.flatten(0, 1), T, B, N)
        a = self.proj_bn(self.proj_conv(a.flatten(0, 1))).reshape(T, B, C, N)
        return self.proj_lif(a)


class StaticPreMLP(nn.Module):
    """Spikingformer MLP on ``[T, B, C, H, W]`` with hidden width ``k`` (pre-activation)."""

    @classmethod
    def from_elastic(cls, m: E.XiPreMLP) -> StaticPreMLP:
        out, k = cls(), m.level
        out.c_hidden = k
        out.mlp1_lif = _copy_lif(m.mlp1_lif)
        out.mlp1_conv = _conv(m.mlp1_conv, rows=k)
        out.mlp1_bn = _sliced_bn(m.mlp1_bns[m.granularity], k, nn.BatchNorm2d)
        out.mlp2_lif = _copy_lif(m.mlp2_lif)
        out.mlp2_conv = _conv(m.mlp2_conv, cols=k)
        bn2 = m.mlp2_bns[m.granularity]
        out.mlp2_bn = _sliced_bn(bn2, bn2.num_features, nn.BatchNorm2d)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.mlp1_lif(x)
        x = self.mlp1_bn(self.mlp1_conv(x.flatten(0, 1))).reshape(T, B, self.c_hidden, H, W)
        x = self.mlp2_lif(x)
        return self.mlp2_bn(self.mlp2_conv(x.flatten(0, 1))).reshape(T, B, C, H, W)


class StaticPreSSA(nn.Module):
    """Spikingformer SSA with ``kh`` heads: ``proj_lif`` first, ends at ``proj_bn``."""

    @classmethod
    def from_elastic(cls, m: E.XiPreSSA) -> StaticPreSSA:
        out = cls()
        _copy_attention(out, m)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.proj_lif(x).flatten(3)
        N = x.shape[3]
        a = _attend(self, x.flatten(0, 1), T, B, N)
        return self.proj_bn(self.proj_conv(a.flatten(0, 1))).reshape(T, B, C, H, W)
