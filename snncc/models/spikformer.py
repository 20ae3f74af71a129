"""Spikformer (Zhou et al., ICLR 2023): SPS tokenizer, post-activation blocks, SEW residual.

Op order follows docs/seed-models.md §2.1-2.6 (the Spikformer notes) and §6; module and parameter
names follow the authors' public code (``ZK-Zhou/spikformer``) so official checkpoints load with
``strict=True``. The code base has two layouts, reproduced here:

* ``"imagenet"`` (``imagenet/model.py``): 1x1 ``Conv1d``/``Conv2d`` layers on ``[T, B, C, H, W]``
  (``block.0.attn.q_conv``, ``block.0.mlp.fc1_conv``); SPS max-pools after all four stages;
  attention ``Q (Kᵀ V) · 0.125``.
* ``"cifar"`` (``cifar10/model.py``): ``Linear`` layers *with bias* on ``[T, B, N, C]`` tokens
  (``block.0.attn.q_linear``, ``block.0.mlp.fc1_linear``) with ``BatchNorm1d`` over channels;
  SPS max-pools after stages 2 and 3 only; attention ``((Q Kᵀ) · 0.125) V``.

Every branch ends in a LIF (post-activation ``Conv -> BN -> LIF``), so the residual stream is a
*sum of spikes* (the SEW "ADD" residual): integers that grow by up to 2 per block, already in
{0, 1, 2} after the tokenizer's RPE add. The next Q/K/V and MLP layers therefore read counts, not
spikes; the compiler's spike-driven verifier is expected to flag them.
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
)

_LAYOUTS = ("cifar", "imagenet")


class SPS(nn.Module):
    """Spiking patch splitting: ``Conv3x3 -> BN -> LIF (-> MaxPool)`` ×4, then the RPE branch.

    ``x_feat`` = last stage's spikes; ``x = LIF(BN(Conv3x3(x_feat))) + x_feat`` (values 0, 1, 2).
    Returns ``[T, B, D, H', W']`` (imagenet layout) or ``[T, B, N, D]`` tokens (cifar layout).
    """

    def __init__(self, in_channels: int, embed_dims: int, layout: str = "imagenet") -> None:
        super().__init__()
        if layout not in _LAYOUTS:
            raise ValueError(f"SPS layout must be one of {_LAYOUTS}, got {layout!r}")
        self.layout = layout
        widths = [in_channels, embed_dims // 8, embed_dims // 4, embed_dims // 2, embed_dims]
        pools = (True, True, True, True) if layout == "imagenet" else (False, False, True, True)
        self._stages: list[tuple[str, str, str, str | None]] = []
        for i in range(4):
            sfx = str(i) if i else ""
            names = (f"proj_conv{sfx}", f"proj_bn{sfx}", f"proj_lif{sfx}", f"maxpool{sfx}")
            setattr(self, names[0], _conv3x3(widths[i], widths[i + 1]))
            setattr(self, names[1], nn.BatchNorm2d(widths[i + 1]))
            setattr(self, names[2], lif())
            if pools[i]:
                setattr(self, names[3], nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
            self._stages.append((names[0], names[1], names[2], names[3] if pools[i] else None))
        self.rpe_conv = _conv3x3(embed_dims, embed_dims)
        self.rpe_bn = nn.BatchNorm2d(embed_dims)
        self.rpe_lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[0], x.shape[1]
        x = x.flatten(0, 1)
        for conv_n, bn_n, lif_n, pool_n in self._stages:
            x = getattr(self, bn_n)(getattr(self, conv_n)(x))
            x = getattr(self, lif_n)(x.reshape(T, B, x.shape[1], x.shape[2], x.shape[3]))
            x = x.flatten(0, 1)
            if pool_n is not None:
                x = getattr(self, pool_n)(x)
        C, H, W = x.shape[1], x.shape[2], x.shape[3]
        x_feat = x.reshape(T, B, C, H, W)
        x = self.rpe_bn(self.rpe_conv(x)).reshape(T, B, C, H, W)
        x = self.rpe_lif(x) + x_feat
        if self.layout == "cifar":
            x = x.flatten(-2).transpose(-1, -2)
        return x


def _conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=False)


class SSA(nn.Module):
    """Spiking self-attention on ``[T, B, C, H, W]`` with 1x1 convs (imagenet layout).

    ``Q, K, V = LIF(BN(Conv(x)))`` on the (integer) residual stream, ``LIF_0.5(Q (Kᵀ V) · 0.125)``,
    then ``LIF(BN(Conv(·)))``: the branch output is spikes.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        for p in ("q", "k", "v"):
            setattr(self, f"{p}_conv", nn.Conv1d(dim, dim, kernel_size=1, stride=1, bias=False))
            setattr(self, f"{p}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{p}_lif", lif())
        self.attn_lif = lif(2.0, ATTN_THRESHOLD)
        self.proj_conv = nn.Conv1d(dim, dim, kernel_size=1, stride=1)
        self.proj_bn = nn.BatchNorm1d(dim)
        self.proj_lif = lif()

    def _qkv(self, p: str, x: torch.Tensor, shape: tuple[int, int, int, int]) -> torch.Tensor:
        T, B, C, N = shape
        y = getattr(self, f"{p}_bn")(getattr(self, f"{p}_conv")(x)).reshape(T, B, C, N)
        y = getattr(self, f"{p}_lif")(y)
        return (
            y.transpose(-1, -2)
            .reshape(T, B, N, self.num_heads, C // self.num_heads)
            .permute(0, 1, 3, 2, 4)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = x.flatten(3)
        shape = (T, B, C, x.shape[3])
        x_for_qkv = x.flatten(0, 1)
        q = self._qkv("q", x_for_qkv, shape)
        k = self._qkv("k", x_for_qkv, shape)
        v = self._qkv("v", x_for_qkv, shape)
        x = k.transpose(-2, -1) @ v
        x = (q @ x) * ATTN_SCALE
        x = self.attn_lif(merge_heads(x))
        x = self.proj_bn(self.proj_conv(x.flatten(0, 1))).reshape(T, B, C, H, W)
        return self.proj_lif(x)


class SSALinear(nn.Module):
    """Spiking self-attention on ``[T, B, N, C]`` tokens with Linear layers (cifar layout)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        for p in ("q", "k", "v"):
            setattr(self, f"{p}_linear", nn.Linear(dim, dim))
            setattr(self, f"{p}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{p}_lif", lif())
        self.attn_lif = lif(2.0, ATTN_THRESHOLD)
        self.proj_linear = nn.Linear(dim, dim)
        self.proj_bn = nn.BatchNorm1d(dim)
        self.proj_lif = lif()

    def _qkv(self, p: str, x: torch.Tensor, shape: tuple[int, int, int, int]) -> torch.Tensor:
        T, B, N, C = shape
        y = getattr(self, f"{p}_linear")(x)
        y = getattr(self, f"{p}_bn")(y.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, C)
        y = getattr(self, f"{p}_lif")(y)
        return y.reshape(T, B, N, self.num_heads, C // self.num_heads).permute(0, 1, 3, 2, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        x_for_qkv = x.flatten(0, 1)
        q = self._qkv("q", x_for_qkv, (T, B, N, C))
        k = self._qkv("k", x_for_qkv, (T, B, N, C))
        v = self._qkv("v", x_for_qkv, (T, B, N, C))
        attn = (q @ k.transpose(-2, -1)) * ATTN_SCALE
        x = (attn @ v).transpose(2, 3).reshape(T, B, N, C)
        x = self.attn_lif(x).flatten(0, 1)
        x = self.proj_bn(self.proj_linear(x).transpose(-1, -2)).transpose(-1, -2)
        return self.proj_lif(x.reshape(T, B, N, C))


class MLP(nn.Module):
    """Post-activation MLP ``LIF(BN(fc(x)))`` twice, as 1x1 ``Conv2d`` (imagenet layout)."""

    def __init__(self, in_features: int, hidden_features: int) -> None:
        super().__init__()
        self.fc1_conv = nn.Conv2d(in_features, hidden_features, kernel_size=1, stride=1)
        self.fc1_bn = nn.BatchNorm2d(hidden_features)
        self.fc1_lif = lif()
        self.fc2_conv = nn.Conv2d(hidden_features, in_features, kernel_size=1, stride=1)
        self.fc2_bn = nn.BatchNorm2d(in_features)
        self.fc2_lif = lif()
        self.c_hidden = hidden_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.fc1_bn(self.fc1_conv(x.flatten(0, 1))).reshape(T, B, self.c_hidden, H, W)
        x = self.fc1_lif(x)
        x = self.fc2_bn(self.fc2_conv(x.flatten(0, 1))).reshape(T, B, C, H, W)
        return self.fc2_lif(x)


class MLPLinear(nn.Module):
    """Post-activation MLP on ``[T, B, N, C]`` tokens with Linear + BatchNorm1d (cifar layout)."""

    def __init__(self, in_features: int, hidden_features: int) -> None:
        super().__init__()
        self.fc1_linear = nn.Linear(in_features, hidden_features)
        self.fc1_bn = nn.BatchNorm1d(hidden_features)
        self.fc1_lif = lif()
        self.fc2_linear = nn.Linear(hidden_features, in_features)
        self.fc2_bn = nn.BatchNorm1d(in_features)
        self.fc2_lif = lif()
        self.c_hidden = hidden_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        x = self.fc1_linear(x.flatten(0, 1))
        x = self.fc1_bn(x.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, self.c_hidden)
        x = self.fc1_lif(x)
        x = self.fc2_linear(x.flatten(0, 1))
        x = self.fc2_bn(x.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, C)
        return self.fc2_lif(x)


class Block(nn.Module):
    """``x = x + SSA(x); x = x + MLP(x)``: spike + spike, so the stream holds small integers."""

    unused_modules = ("norm1", "norm2")

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        layout: str = "imagenet",
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)  # built, never called (as in the original)
        self.attn = SSA(dim, num_heads) if layout == "imagenet" else SSALinear(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)  # built, never called (as in the original)
        self.mlp = MLP(dim, hidden) if layout == "imagenet" else MLPLinear(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        x = x + self.mlp(x)
        return x


class Spikformer(nn.Module):
    """SPS, ``depths`` blocks, mean over tokens and time, Linear head; image repeated T times."""

    def __init__(
        self,
        *,
        img_size: int = 224,
        in_channels: int = 3,
        num_classes: int = 1000,
        embed_dims: int = 512,
        num_heads: int = 8,
        mlp_ratios: float = 4.0,
        depths: int = 8,
        T: int = 4,
        layout: str = "imagenet",
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.T = T
        self.img_size = img_size
        self.num_classes = num_classes
        self.layout = layout
        self.patch_embed = SPS(in_channels, embed_dims, layout)
        self.block = nn.ModuleList(
            Block(embed_dims, num_heads, mlp_ratios, layout, norm_eps) for _ in range(depths)
        )
        self.head = nn.Linear(embed_dims, num_classes)
        self.apply(init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` -> ``[T, B, D]``: the token average of the residual stream."""
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return x.flatten(3).mean(3) if self.layout == "imagenet" else x.mean(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = repeat_over_time(x, self.T)
        return self.head(self.forward_features(x).mean(0))


def build(**config: Any) -> Spikformer:
    """Registry factory for ``spikformer-*``."""
    return Spikformer(**config)


_IMAGENET = {"img_size": 224, "in_channels": 3, "num_classes": 1000, "T": 4, "layout": "imagenet"}
_CIFAR = {"img_size": 32, "in_channels": 3, "num_classes": 10, "T": 4, "layout": "cifar"}
_TINY = {"img_size": 16, "in_channels": 1, "num_classes": 10, "T": 4, "layout": "cifar"}

# (name, description, published parameters in M, config)
_CONFIGS: tuple[tuple[str, str, float | None, dict[str, Any]], ...] = (
    ("spikformer-8-384", "ImageNet 224x224, 196 tokens", 16.81,
     {**_IMAGENET, "embed_dims": 384, "num_heads": 8, "depths": 8}),
    ("spikformer-8-512", "ImageNet 224x224, 196 tokens", 29.68,
     {**_IMAGENET, "embed_dims": 512, "num_heads": 8, "depths": 8}),
    ("spikformer-8-768", "ImageNet 224x224, 196 tokens, 12 heads (d = 64)", 66.34,
     {**_IMAGENET, "embed_dims": 768, "num_heads": 12, "depths": 8}),
    ("spikformer-4-384", "CIFAR10 32x32, 64 tokens (Linear layout)", 9.32,
     {**_CIFAR, "embed_dims": 384, "num_heads": 12, "depths": 4}),
    ("spikformer-tiny", "digits demo: 1x16x16 input, SPS pools to 4x4 = 16 tokens", None,
     {**_TINY, "embed_dims": 32, "num_heads": 4, "depths": 2, "mlp_ratios": 4.0}),
)  # fmt: skip

for _name, _desc, _published, _config in _CONFIGS:
    register_config("spikformer", build, _name, _desc, _published, _config)
