"""Ge²mS-T (Hao et al., arXiv:2604.08894) as **snncc's interpretation**: ExpG-IF + GW-SSA.

The paper names ExpG-IF neurons ("grouped exponential coding") and GW-SSA ("group-wise spiking
self-attention ... multi-scale token grouping ... hybrid attention-convolution framework"), but
its equations, group sizes and T are not public, nor is model code (docs/seed-models.md §5.1).
This module implements the design of docs/seed-models.md §5.2, chosen by snncc; it is not the
authors' network. Every placeholder is a config field.

* **ExpG-IF** (:class:`snncc.nn.ExpGIF`): ``T = G · K`` steps, ``G`` groups of ``K = bits``
  steps; step ``k`` of a group fires against ``theta · 2^-(k+1)`` with soft reset and emits that
  bit weight, so one group carries a K-bit code of the neuron's input (MSB first). Every neuron
  on the residual branches is an ExpG-IF neuron: synapses read bit-weighted events (accumulate
  with a per-step shift, no multiply).
* **GW-SSA**: heads are split into groups, one per token-grouping scale (``scales``: window
  sizes, ``0`` = global). Each head group runs spiking attention ``(Q Kᵀ) V * scale`` (no
  softmax) inside its windows; the groups' outputs are re-assembled on their channels, pass an
  ExpG-IF attention neuron and a ``Conv1x1-BN`` projection. Q, K, V are binary IF spikes by
  default (``qkv_neuron="if"``), so every attention product is an AND and every sum an
  accumulate; ``qkv_neuron="expgif"`` makes them bit-weighted instead (then the products are
  real products, and ``verify_spike_driven`` says so).
* **Hybrid attention-convolution**: ``conv_depths`` depthwise-conv blocks precede the
  ``depths`` GW-SSA blocks; all blocks use membrane shortcuts (BN outputs are added).

Not implemented: the ANN-side QCFS training of the paper's lineage (the model trains directly
with surrogate gradients) and per-channel thresholds.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snncc.models.blocks import (
    ATTN_SCALE,
    TokenMeanClassifier,
    init_weights,
    keyword_defaults,
    register_config,
)
from snncc.models.lsformer import local_attention
from snncc.nn import IF, ExpGIF

#: Neurons Q/K/V can use: binary soft-reset IF spikes, or bit-weighted ExpG-IF events.
QKV_NEURONS = ("if", "expgif")


def _conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=False)


class ExpMLP(nn.Module):
    """Pre-activation MLP on bit-weighted events: ``BN(Conv1x1(ExpGIF(x)))`` twice."""

    def __init__(self, dim: int, hidden: int, theta: float, bits: int) -> None:
        super().__init__()
        self.fc1_neuron = ExpGIF(theta, bits)
        self.fc1_conv = nn.Conv2d(dim, hidden, kernel_size=1)
        self.fc1_bn = nn.BatchNorm2d(hidden)
        self.fc2_neuron = ExpGIF(theta, bits)
        self.fc2_conv = nn.Conv2d(hidden, dim, kernel_size=1)
        self.fc2_bn = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.fc1_bn(self.fc1_conv(self.fc1_neuron(x).flatten(0, 1)))
        x = self.fc2_bn(self.fc2_conv(self.fc2_neuron(x.reshape(T, B, -1, H, W)).flatten(0, 1)))
        return x.reshape(T, B, C, H, W)


class ConvMixer(nn.Module):
    """Convolutional token mixer: ``BN(Conv1x1(ExpGIF(BN(DWConv3x3(ExpGIF(x))))))``."""

    def __init__(self, dim: int, theta: float, bits: int) -> None:
        super().__init__()
        self.dw_neuron = ExpGIF(theta, bits)
        self.dw_conv = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim, bias=False)
        self.dw_bn = nn.BatchNorm2d(dim)
        self.pw_neuron = ExpGIF(theta, bits)
        self.pw_conv = nn.Conv2d(dim, dim, kernel_size=1)
        self.pw_bn = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.dw_bn(self.dw_conv(self.dw_neuron(x).flatten(0, 1))).reshape(T, B, C, H, W)
        return self.pw_bn(self.pw_conv(self.pw_neuron(x).flatten(0, 1))).reshape(T, B, C, H, W)


class GWSSA(nn.Module):
    """Group-wise SSA: head group ``i`` attends within ``scales[i] x scales[i]`` windows.

    ``heads_per_scale[i]`` heads (channels ``[c_i, c_i + h_i·d)``) use window ``scales[i]``
    (``0``: the whole token grid). Each group's ``[T, B, h_i·d, H, W]`` result is zero-padded
    back to its channels and the groups are summed (disjoint channels, so the sum is exact).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        grid: int,
        scales: tuple[int, ...],
        heads_per_scale: tuple[int, ...],
        theta: float,
        bits: int,
        attn_theta: float,
        attn_scale: float = ATTN_SCALE,
        qkv_neuron: str = "if",
        qkv_threshold: float = 1.0,
        matmul_order: str = "qk_v",
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if len(scales) != len(heads_per_scale) or sum(heads_per_scale) != num_heads:
            raise ValueError(
                f"heads_per_scale {heads_per_scale} must give one head count per scale "
                f"{scales} and sum to num_heads = {num_heads}"
            )
        if qkv_neuron not in QKV_NEURONS:
            raise ValueError(f"qkv_neuron must be one of {QKV_NEURONS}, got {qkv_neuron!r}")
        self.windows = tuple(grid if s == 0 else int(s) for s in scales)
        if any(w < 1 or grid % w for w in self.windows):
            raise ValueError(f"scales {scales} must divide the {grid}x{grid} token grid")
        self.dim, self.head_dim = dim, dim // num_heads
        self.heads_per_scale = tuple(int(h) for h in heads_per_scale)
        self.attn_scale, self.matmul_order = float(attn_scale), matmul_order
        self.in_neuron = ExpGIF(theta, bits)
        for p in ("q", "k", "v"):
            setattr(self, f"{p}_conv", nn.Conv1d(dim, dim, kernel_size=1, bias=False))
            setattr(self, f"{p}_bn", nn.BatchNorm1d(dim))
            setattr(
                self,
                f"{p}_neuron",
                IF(v_threshold=qkv_threshold, v_reset=None, detach_reset=True)
                if qkv_neuron == "if"
                else ExpGIF(theta, bits),
            )
        self.attn_neuron = ExpGIF(attn_theta, bits)
        self.proj_conv = nn.Conv1d(dim, dim, kernel_size=1)
        self.proj_bn = nn.BatchNorm1d(dim)

    def _qkv(self, p: str, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        T, B, C, H, W = shape
        y = getattr(self, f"{p}_bn")(getattr(self, f"{p}_conv")(x)).reshape(T, B, C, H, W)
        return getattr(self, f"{p}_neuron")(y)

    def grouped_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` Q/K/V -> the multi-scale windowed attention, same shape."""
        C = q.shape[2]
        out: torch.Tensor | None = None
        c0 = 0
        for window, heads in zip(self.windows, self.heads_per_scale, strict=True):
            c1 = c0 + heads * self.head_dim
            qs, ks, vs = q[:, :, c0:c1], k[:, :, c0:c1], v[:, :, c0:c1]
            a = local_attention(qs, ks, vs, heads, window, 1, self.attn_scale, self.matmul_order)
            if (c0, c1) != (0, C):
                a = F.pad(a, (0, 0, 0, 0, c0, C - c1))
            out = a if out is None else out + a
            c0 = c1
        assert out is not None
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        s = self.in_neuron(x).flatten(3).flatten(0, 1)  # [T*B, C, N] bit-weighted events
        q, k, v = (self._qkv(p, s, (T, B, C, H, W)) for p in ("q", "k", "v"))
        a = self.attn_neuron(self.grouped_attention(q, k, v).flatten(3))
        return self.proj_bn(self.proj_conv(a.flatten(0, 1))).reshape(T, B, C, H, W)


class Block(nn.Module):
    """``x = x + mixer(x); x = x + MLP(x)`` with a :class:`ConvMixer` or :class:`GWSSA` mixer."""

    def __init__(
        self, mixer: nn.Module, dim: int, mlp_ratio: float, theta: float, bits: int
    ) -> None:
        super().__init__()
        self.attn = mixer
        self.mlp = ExpMLP(dim, int(dim * mlp_ratio), theta, bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class ExpTokenizer(nn.Module):
    """``Conv3x3-BN``, then ``(MaxPool) -> ExpGIF -> Conv3x3 -> BN`` ×4 at widths D/8 … D.

    The max-pool acts on BN outputs (real values, as SDT's last tokenizer pool), *before* the
    neuron: the max of bit-weighted events would not be a graded event any more.
    """

    def __init__(
        self, in_channels: int, embed_dims: int, pooling_stat: str, theta: float, bits: int
    ) -> None:
        super().__init__()
        if len(pooling_stat) != 4 or set(pooling_stat) - {"0", "1"}:
            raise ValueError(f"pooling_stat must be 4 characters of 0/1, got {pooling_stat!r}")
        self.pooling = tuple(c == "1" for c in pooling_stat)
        widths = [embed_dims // 8, embed_dims // 4, embed_dims // 2, embed_dims, embed_dims]
        self.proj_conv = _conv3x3(in_channels, widths[0])
        self.proj_bn = nn.BatchNorm2d(widths[0])
        for i in range(1, 5):
            if self.pooling[i - 1]:
                setattr(self, f"maxpool{i}", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
            setattr(self, f"proj{i}_neuron", ExpGIF(theta, bits))
            setattr(self, f"proj{i}_conv", _conv3x3(widths[i - 1], widths[i]))
            setattr(self, f"proj{i}_bn", nn.BatchNorm2d(widths[i]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[0], x.shape[1]
        x = self.proj_bn(self.proj_conv(x.flatten(0, 1)))
        for i in range(1, 5):
            if self.pooling[i - 1]:
                x = getattr(self, f"maxpool{i}")(x)
            s = getattr(self, f"proj{i}_neuron")(x.reshape(T, B, *x.shape[1:]))
            x = getattr(self, f"proj{i}_bn")(getattr(self, f"proj{i}_conv")(s.flatten(0, 1)))
        return x.reshape(T, B, *x.shape[1:])


class Ge2mST(TokenMeanClassifier):
    """Tokenizer, ``conv_depths`` conv blocks, ``depths`` GW-SSA blocks, token and time mean,
    Linear head. ``T`` must be a multiple of ``bits`` (``G = T / bits`` groups).
    """

    def __init__(
        self,
        *,
        img_size: int = 32,
        in_channels: int = 3,
        num_classes: int = 100,
        embed_dims: int = 384,
        num_heads: int = 12,
        mlp_ratios: float = 4.0,
        depths: int = 4,
        conv_depths: int = 1,
        T: int = 8,
        bits: int = 4,
        theta: float = 1.0,
        attn_theta: float = 1.0,
        pooling_stat: str = "0011",
        scales: tuple[int, ...] = (2, 4, 0),
        heads_per_scale: tuple[int, ...] = (4, 4, 4),
        attn_scale: float = ATTN_SCALE,
        qkv_neuron: str = "if",
        qkv_threshold: float = 1.0,
        matmul_order: str = "qk_v",
        event_input: bool = False,
    ) -> None:
        super().__init__()
        if T % bits:
            raise ValueError(f"T = {T} must be a multiple of bits = {bits} (T = groups * bits)")
        self.T, self.img_size, self.num_classes = T, img_size, num_classes
        self.bits, self.groups = bits, T // bits
        self.event_input = event_input
        self.patch_embed = ExpTokenizer(in_channels, embed_dims, pooling_stat, theta, bits)
        grid = img_size
        for pooled in self.patch_embed.pooling:
            grid = (grid - 1) // 2 + 1 if pooled else grid  # MaxPool2d(3, 2, 1)
        blocks: list[nn.Module] = [
            Block(ConvMixer(embed_dims, theta, bits), embed_dims, mlp_ratios, theta, bits)
            for _ in range(conv_depths)
        ]
        for _ in range(depths):
            attn = GWSSA(
                embed_dims, num_heads, grid, tuple(scales), tuple(heads_per_scale), theta, bits,
                attn_theta, attn_scale, qkv_neuron, qkv_threshold, matmul_order,
            )  # fmt: skip
            blocks.append(Block(attn, embed_dims, mlp_ratios, theta, bits))
        self.block = nn.ModuleList(blocks)
        self.head = nn.Linear(embed_dims, num_classes)
        self.apply(init_weights)


def build(**config: Any) -> Ge2mST:
    """Registry factory for ``ge2mst-*``."""
    return Ge2mST(**config)


_NOTE = "snncc interpretation (paper's equations and sizes not public)"
# (name, description, published parameters in M, config)
_CONFIGS: tuple[tuple[str, str, float | None, dict[str, Any]], ...] = (
    ("ge2mst-4-384-cifar100",
     f"CIFAR100 32x32, 8x8 tokens, T 8 = 2 groups x 4 bits, scales 2/4/global; {_NOTE}", None,
     {"img_size": 32, "in_channels": 3, "num_classes": 100, "T": 8, "bits": 4,
      "embed_dims": 384, "num_heads": 12, "depths": 4, "conv_depths": 1,
      "scales": (2, 4, 0), "heads_per_scale": (4, 4, 4)}),
    ("ge2mst-tiny",
     f"digits demo: 1x16x16, 4x4 tokens, T 4 = 2 groups x 2 bits, scales 2/global; {_NOTE}",
     None, {"img_size": 16, "in_channels": 1, "num_classes": 10, "T": 4, "bits": 2,
            "embed_dims": 32, "num_heads": 4, "depths": 1, "conv_depths": 1,
            "scales": (2, 0), "heads_per_scale": (2, 2)}),
)  # fmt: skip

_DEFAULTS = keyword_defaults(Ge2mST)

for _name, _desc, _published, _config in _CONFIGS:
    register_config("ge2mst", build, _name, _desc, _published, {**_DEFAULTS, **_config})
