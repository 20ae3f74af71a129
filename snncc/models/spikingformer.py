"""Spikingformer (Zhou et al., arXiv:2304.11954): pre-activation blocks with a membrane shortcut.

Op order, shapes and parameter formulas follow docs/seed-models.md §2; module and parameter names
follow the authors' public code (``zhouchenlin2096/Spikingformer``: ``cifar10/model.py``,
``imagenet/model.py``, ``cifar10-dvs/model.py``) so that an official ``state_dict`` loads with
``strict=True``. The two tokenizer layouts differ in names as well as pooling:

* ``"cifar"``: ``patch_embed.block0_conv`` … ``block4_bn``, max-pool only before stages 3 and 4;
* ``"imagenet"`` (also the DVS code): ``patch_embed.proj_conv``, ``proj1_lif``, ``maxpool1``,
  ``proj1_conv`` … ``proj4_bn``, max-pool before each of stages 1–4.

Every conv reads spikes except the first tokenizer conv (pixels / event frames); every branch ends
at a BatchNorm and the residual stream carries membrane-like real values (the "MS residual").
The blocks keep the authors' unused ``norm1``/``norm2`` LayerNorms (declared in
``unused_modules``) so published parameter counts and checkpoints match; forward never calls them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snncc.models.blocks import (
    ATTN_SCALE,
    ATTN_THRESHOLD,
    init_weights,
    lif,
    merge_heads,
    register_config,
    repeat_over_time,
    split_heads,
)


class MLP(nn.Module):
    """Pre-activation MLP: ``BN(Conv1x1(LIF(x)))`` twice, D -> hidden -> D, no LIF at the end."""

    def __init__(self, in_features: int, hidden_features: int, tau: float = 2.0) -> None:
        super().__init__()
        self.mlp1_lif = lif(tau)
        self.mlp1_conv = nn.Conv2d(in_features, hidden_features, kernel_size=1, stride=1)
        self.mlp1_bn = nn.BatchNorm2d(hidden_features)
        self.mlp2_lif = lif(tau)
        self.mlp2_conv = nn.Conv2d(hidden_features, in_features, kernel_size=1, stride=1)
        self.mlp2_bn = nn.BatchNorm2d(in_features)
        self.c_hidden = hidden_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.mlp1_lif(x)
        x = self.mlp1_bn(self.mlp1_conv(x.flatten(0, 1))).reshape(T, B, self.c_hidden, H, W)
        x = self.mlp2_lif(x)
        x = self.mlp2_bn(self.mlp2_conv(x.flatten(0, 1))).reshape(T, B, C, H, W)
        return x


class SpikingSelfAttention(nn.Module):
    """Pre-activation SSA: ``LIF`` on the residual stream, binary Q/K/V, ``Q Kᵀ V · 0.125``.

    ``matmul_order`` reproduces the two orders in the authors' code: ``"qk_v"`` = ``(Q Kᵀ) V``
    (CIFAR / DVS) and ``"q_kv"`` = ``Q (Kᵀ V)`` (ImageNet). Both give the same integers.
    """

    def __init__(
        self, dim: int, num_heads: int, tau: float = 2.0, matmul_order: str = "qk_v"
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if matmul_order not in ("qk_v", "q_kv"):
            raise ValueError(f"matmul_order must be 'qk_v' or 'q_kv', got {matmul_order!r}")
        self.dim = dim
        self.num_heads = num_heads
        self.matmul_order = matmul_order
        self.proj_lif = lif(tau)
        self.q_conv = nn.Conv1d(dim, dim, kernel_size=1, stride=1, bias=False)
        self.q_bn = nn.BatchNorm1d(dim)
        self.q_lif = lif(tau)
        self.k_conv = nn.Conv1d(dim, dim, kernel_size=1, stride=1, bias=False)
        self.k_bn = nn.BatchNorm1d(dim)
        self.k_lif = lif(tau)
        self.v_conv = nn.Conv1d(dim, dim, kernel_size=1, stride=1, bias=False)
        self.v_bn = nn.BatchNorm1d(dim)
        self.v_lif = lif(tau)
        self.attn_lif = lif(tau, ATTN_THRESHOLD)
        self.proj_conv = nn.Conv1d(dim, dim, kernel_size=1, stride=1)
        self.proj_bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.proj_lif(x).flatten(3)
        N = x.shape[3]
        x_for_qkv = x.flatten(0, 1)
        q = self.q_lif(self.q_bn(self.q_conv(x_for_qkv)).reshape(T, B, C, N))
        k = self.k_lif(self.k_bn(self.k_conv(x_for_qkv)).reshape(T, B, C, N))
        v = self.v_lif(self.v_bn(self.v_conv(x_for_qkv)).reshape(T, B, C, N))
        q = split_heads(q, self.num_heads)
        k = split_heads(k, self.num_heads)
        v = split_heads(v, self.num_heads)
        if self.matmul_order == "qk_v":
            x = ((q @ k.transpose(-2, -1)) @ v) * ATTN_SCALE
        else:
            x = (q @ (k.transpose(-2, -1) @ v)) * ATTN_SCALE
        x = self.attn_lif(merge_heads(x))
        x = self.proj_bn(self.proj_conv(x.flatten(0, 1))).reshape(T, B, C, H, W)
        return x


class SpikingTransformer(nn.Module):
    """One block: ``x = x + SSA(x); x = x + MLP(x)`` (membrane shortcut, real-valued sums)."""

    unused_modules = ("norm1", "norm2")

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        tau: float = 2.0,
        matmul_order: str = "qk_v",
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)  # built, never called (as in the original)
        self.attn = SpikingSelfAttention(dim, num_heads, tau, matmul_order)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)  # built, never called (as in the original)
        self.mlp = MLP(dim, int(dim * mlp_ratio), tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        x = x + self.mlp(x)
        return x


# Per layout: names of stage 0's conv/BN, the pattern of stages 1-4, and which stages max-pool.
_TOKENIZER_LAYOUTS: dict[str, dict[str, Any]] = {
    "cifar": {
        "stem": ("block0_conv", "block0_bn"),
        "stage": ("block{i}_lif", "block{i}_mp", "block{i}_conv", "block{i}_bn"),
        "pools": (False, False, True, True),
    },
    "imagenet": {
        "stem": ("proj_conv", "proj_bn"),
        "stage": ("proj{i}_lif", "maxpool{i}", "proj{i}_conv", "proj{i}_bn"),
        "pools": (True, True, True, True),
    },
}


class SpikingTokenizer(nn.Module):
    """Five stages ``Conv3x3-BN`` then ``LIF -> (MaxPool) -> Conv3x3 -> BN`` ×4, D/8 … D.

    The output is the last BN (real, the start of the residual stream), not spikes.
    """

    def __init__(
        self, in_channels: int, embed_dims: int, layout: str = "cifar", tau: float = 2.0
    ) -> None:
        super().__init__()
        if layout not in _TOKENIZER_LAYOUTS:
            raise ValueError(f"tokenizer layout must be one of {sorted(_TOKENIZER_LAYOUTS)}")
        spec = _TOKENIZER_LAYOUTS[layout]
        widths = [embed_dims // 8, embed_dims // 4, embed_dims // 2, embed_dims, embed_dims]
        conv0, bn0 = spec["stem"]
        setattr(self, conv0, _conv3x3(in_channels, widths[0]))
        setattr(self, bn0, nn.BatchNorm2d(widths[0]))
        self._stem = (conv0, bn0)
        self._stages: list[tuple[str, str | None, str, str]] = []
        for i in range(1, 5):
            lif_n, pool_n, conv_n, bn_n = (s.format(i=i) for s in spec["stage"])
            setattr(self, lif_n, lif(tau))
            pooled = spec["pools"][i - 1]
            if pooled:
                setattr(self, pool_n, nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
            setattr(self, conv_n, _conv3x3(widths[i - 1], widths[i]))
            setattr(self, bn_n, nn.BatchNorm2d(widths[i]))
            self._stages.append((lif_n, pool_n if pooled else None, conv_n, bn_n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[0], x.shape[1]
        conv0, bn0 = self._stem
        x = getattr(self, bn0)(getattr(self, conv0)(x.flatten(0, 1)))
        x = x.reshape(T, B, x.shape[1], x.shape[2], x.shape[3])
        for lif_n, pool_n, conv_n, bn_n in self._stages:
            x = getattr(self, lif_n)(x).flatten(0, 1)
            if pool_n is not None:
                x = getattr(self, pool_n)(x)
            x = getattr(self, bn_n)(getattr(self, conv_n)(x))
            x = x.reshape(T, B, x.shape[1], x.shape[2], x.shape[3])
        return x


def _conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=False)


class Spikingformer(nn.Module):
    """The full network: tokenizer, ``depths`` blocks, mean over tokens and time, Linear head.

    Static images ``[B, C, H, W]`` are repeated over ``T`` steps; with ``event_input=True`` the
    input is event frames ``[B, T, C, H, W]`` (permuted to time-first, as the DVS code does).
    """

    def __init__(
        self,
        *,
        img_size: int = 32,
        in_channels: int = 3,
        num_classes: int = 10,
        embed_dims: int = 384,
        num_heads: int = 12,
        mlp_ratios: float = 4.0,
        depths: int = 4,
        T: int = 4,
        tau: float = 2.0,
        tokenizer: str = "cifar",
        matmul_order: str = "qk_v",
        event_input: bool = False,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.T = T
        self.img_size = img_size
        self.num_classes = num_classes
        self.event_input = event_input
        self.patch_embed = SpikingTokenizer(in_channels, embed_dims, tokenizer, tau)
        self.block = nn.ModuleList(
            SpikingTransformer(embed_dims, num_heads, mlp_ratios, tau, matmul_order, norm_eps)
            for _ in range(depths)
        )
        self.head = nn.Linear(embed_dims, num_classes)
        self.apply(init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` input -> ``[T, B, D]`` token-averaged residual stream."""
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return x.flatten(3).mean(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.event_input:
            x = x.permute(1, 0, 2, 3, 4)
        else:
            x = repeat_over_time(x, self.T)
        return self.head(self.forward_features(x).mean(0))


def build(**config: Any) -> Spikingformer:
    """Registry factory: ``snncc.models.create("spikingformer-…", **overrides)`` lands here."""
    return Spikingformer(**config)


_CIFAR = {"img_size": 32, "in_channels": 3, "num_classes": 10, "T": 4, "tokenizer": "cifar"}
_IMAGENET = {
    "img_size": 224,
    "in_channels": 3,
    "num_classes": 1000,
    "T": 4,
    "tokenizer": "imagenet",
    "matmul_order": "q_kv",
}

_DVS = {"img_size": 128, "in_channels": 2, "num_classes": 10, "T": 16, "tau": 1.5,
        "tokenizer": "imagenet", "event_input": True}  # fmt: skip
_TINY = {"img_size": 16, "in_channels": 1, "num_classes": 10, "T": 4, "tokenizer": "cifar"}

# (name, description, published parameters in M, config)
_CONFIGS: tuple[tuple[str, str, float | None, dict[str, Any]], ...] = (
    ("spikingformer-4-384", "CIFAR10 32x32, 64 tokens", 9.32,
     {**_CIFAR, "embed_dims": 384, "num_heads": 12, "depths": 4}),
    ("spikingformer-4-256", "CIFAR10 32x32, 64 tokens", 4.15,
     {**_CIFAR, "embed_dims": 256, "num_heads": 8, "depths": 4}),
    ("spikingformer-2-384", "CIFAR10 32x32, 64 tokens", 5.76,
     {**_CIFAR, "embed_dims": 384, "num_heads": 12, "depths": 2}),
    ("spikingformer-8-384", "ImageNet 224x224, 196 tokens", 16.81,
     {**_IMAGENET, "embed_dims": 384, "num_heads": 8, "depths": 8}),
    ("spikingformer-8-512", "ImageNet 224x224, 196 tokens", 29.68,
     {**_IMAGENET, "embed_dims": 512, "num_heads": 8, "depths": 8}),
    ("spikingformer-8-768", "ImageNet 224x224, 196 tokens, 8 heads as in imagenet.yml", 66.34,
     {**_IMAGENET, "embed_dims": 768, "num_heads": 8, "depths": 8}),
    ("spikingformer-2-256-dvs", "CIFAR10-DVS 2x128x128 event frames, tau 1.5, 64 tokens", 2.57,
     {**_DVS, "embed_dims": 256, "num_heads": 16, "depths": 2}),
    ("spikingformer-tiny", "digits demo: 1x16x16 input (8x8 digits upsampled), 4x4 = 16 tokens",
     None, {**_TINY, "embed_dims": 32, "num_heads": 4, "depths": 2, "mlp_ratios": 4.0}),
)  # fmt: skip

for _name, _desc, _published, _config in _CONFIGS:
    register_config("spikingformer", build, _name, _desc, _published, _config)
