"""Spike-driven Transformer (Yao et al., NeurIPS 2023): SDSA attention and membrane shortcuts.

Follows docs/seed-models.md §6 and the authors' public code (``BICLab/Spike-Driven-Transformer``:
``module/ms_conv.py``, ``module/sps.py``, ``model/spikeformer.py``), whose module names are kept
(``block.0.attn.shortcut_lif``, ``block.0.attn.talking_heads_lif``, ``block.0.mlp.fc1_conv``,
``patch_embed.rpe_conv``, ``head_lif`` …) so official checkpoints load with ``strict=True``.

Spike-driven self-attention (SDSA), per head and channel, with binary Q, K, V::

    KV  = LIF_0.5( Σ_tokens (K ⊙ V) )       # [T, B, h, 1, d]: a binary channel mask
    out = Q ⊙ KV                             # masks and additions only, O(N·D)

Residuals are membrane shortcuts *inside* the attention and MLP modules: each branch starts with a
LIF (``shortcut_lif`` / ``fc1_lif``) and ends at a BatchNorm, and the stream carries real values.
The tokenizer (MS-SPS) ends with ``x = BN(Conv(LIF(x_feat))) + x_feat`` on membrane values, and
its last max-pool acts on BN outputs (real values), as in the original.

Differences from the original, all unused by the published configurations we register:
``spike_mode="plif"``, ``TET`` and ``dvs_mode`` (CIFAR10-DVS ``Erode`` pooling) are not
implemented. The original builds ``attn_lif``, ``talking_heads`` (a ``Conv1d``, with parameters)
and ``rpe_lif`` without using them; they are kept for checkpoint compatibility, and
``talking_heads`` is declared in ``unused_modules`` so the compute-path count leaves it out.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snncc.models.blocks import (
    ATTN_THRESHOLD,
    lif,
    merge_heads,
    register_config,
    repeat_over_time,
    split_heads,
)


class MSSPS(nn.Module):
    """MS-SPS tokenizer: ``Conv3x3 -> BN -> LIF (-> MaxPool)`` ×3, ``Conv3x3 -> BN (-> MaxPool)``,
    then the membrane RPE ``BN(Conv3x3(LIF(x_feat))) + x_feat``. ``pooling_stat`` says which of
    the four stages max-pool (``"1111"`` ImageNet, ``"0011"`` CIFAR, ``"0111"`` gestures).

    ``last_pool`` says where the fourth stage's max-pool acts: ``"currents"`` (the original) pools
    the BN outputs of ``proj_conv3``; ``"spikes"`` pools the spikes that enter ``proj_conv3``
    instead (the conv then runs at the pooled size). Why the option: a max of currents is no
    synaptic sum, so targets whose neurons only sum synapses (SpiNNaker) cannot compute it
    exactly, while a max of spikes is an OR of them, which every target runs exactly
    (docs/spinnaker.md). The variant is a different model: train it as such.
    """

    def __init__(
        self,
        in_channels: int,
        embed_dims: int,
        pooling_stat: str = "1111",
        last_pool: str = "currents",
    ) -> None:
        super().__init__()
        if len(pooling_stat) != 4 or set(pooling_stat) - {"0", "1"}:
            raise ValueError(f"pooling_stat must be 4 characters of 0/1, got {pooling_stat!r}")
        if last_pool not in ("currents", "spikes"):
            raise ValueError(f"last_pool must be 'currents' or 'spikes', got {last_pool!r}")
        self.pooling = tuple(c == "1" for c in pooling_stat)
        self.last_pool = last_pool
        widths = [in_channels, embed_dims // 8, embed_dims // 4, embed_dims // 2, embed_dims]
        for i in range(4):
            sfx = str(i) if i else ""
            setattr(self, f"proj_conv{sfx}", _conv3x3(widths[i], widths[i + 1]))
            setattr(self, f"proj_bn{sfx}", nn.BatchNorm2d(widths[i + 1]))
            setattr(self, f"proj_lif{sfx}", lif())
            setattr(self, f"maxpool{sfx}", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        self.rpe_conv = _conv3x3(embed_dims, embed_dims)
        self.rpe_bn = nn.BatchNorm2d(embed_dims)
        self.rpe_lif = lif()  # built but unused by the original forward; kept for the names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[0], x.shape[1]
        x = x.flatten(0, 1)
        for i, sfx in enumerate(("", "1", "2")):
            x = getattr(self, f"proj_bn{sfx}")(getattr(self, f"proj_conv{sfx}")(x))
            x = getattr(self, f"proj_lif{sfx}")(x.reshape(T, B, *x.shape[1:])).flatten(0, 1)
            if self.pooling[i]:
                x = getattr(self, f"maxpool{sfx}")(x)
        pool_spikes = self.pooling[3] and self.last_pool == "spikes"
        if pool_spikes:
            x = self.maxpool3(x)
        x = self.proj_bn3(self.proj_conv3(x))
        if self.pooling[3] and not pool_spikes:
            x = self.maxpool3(x)
        x_feat = x
        C, H, W = x.shape[1], x.shape[2], x.shape[3]
        x = self.proj_lif3(x.reshape(T, B, C, H, W)).flatten(0, 1)
        x = self.rpe_bn(self.rpe_conv(x))
        return (x + x_feat).reshape(T, B, C, H, W)


def _conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=False)


class SDSA(nn.Module):
    """Spike-driven self-attention with its membrane shortcut (``MS_SSA_Conv``): returns
    ``x + BN(Conv1x1(Q ⊙ LIF_0.5(Σ_N K ⊙ V)))`` with ``Q, K, V = LIF(BN(Conv1x1(LIF(x))))``.
    """

    unused_modules = ("talking_heads",)

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.shortcut_lif = lif()
        for p in ("q", "k", "v"):
            setattr(self, f"{p}_conv", nn.Conv2d(dim, dim, kernel_size=1, stride=1, bias=False))
            setattr(self, f"{p}_bn", nn.BatchNorm2d(dim))
            setattr(self, f"{p}_lif", lif())
        self.attn_lif = lif(2.0, ATTN_THRESHOLD)  # built but unused by the original forward
        # Built but unused by the original forward; it has parameters (h x h), kept for the names.
        self.talking_heads = nn.Conv1d(num_heads, num_heads, kernel_size=1, stride=1, bias=False)
        self.talking_heads_lif = lif(2.0, ATTN_THRESHOLD)
        self.proj_conv = nn.Conv2d(dim, dim, kernel_size=1, stride=1)
        self.proj_bn = nn.BatchNorm2d(dim)

    def _qkv(self, p: str, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        T, B, C, H, W = shape
        y = getattr(self, f"{p}_bn")(getattr(self, f"{p}_conv")(x)).reshape(T, B, C, H, W)
        return split_heads(getattr(self, f"{p}_lif")(y).flatten(3), self.num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        identity = x
        x_for_qkv = self.shortcut_lif(x).flatten(0, 1)
        q = self._qkv("q", x_for_qkv, (T, B, C, H, W))
        k = self._qkv("k", x_for_qkv, (T, B, C, H, W))
        v = self._qkv("v", x_for_qkv, (T, B, C, H, W))
        kv = (k * v).sum(dim=-2, keepdim=True)
        kv = self.talking_heads_lif(kv)
        x = merge_heads(q * kv).reshape(T, B, C, H, W)
        x = self.proj_bn(self.proj_conv(x.flatten(0, 1))).reshape(T, B, C, H, W)
        return x + identity


class MSMLP(nn.Module):
    """Membrane-shortcut MLP (``MS_MLP_Conv``): ``x + BN(Conv(LIF(BN(Conv(LIF(x))))))``.

    As in the original, when ``hidden == in`` the hidden layer gets its own shortcut too.
    """

    def __init__(self, in_features: int, hidden_features: int) -> None:
        super().__init__()
        self.res = in_features == hidden_features
        self.fc1_conv = nn.Conv2d(in_features, hidden_features, kernel_size=1, stride=1)
        self.fc1_bn = nn.BatchNorm2d(hidden_features)
        self.fc1_lif = lif()
        self.fc2_conv = nn.Conv2d(hidden_features, in_features, kernel_size=1, stride=1)
        self.fc2_bn = nn.BatchNorm2d(in_features)
        self.fc2_lif = lif()
        self.c_hidden = hidden_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        identity = x
        x = self.fc1_lif(x)
        x = self.fc1_bn(self.fc1_conv(x.flatten(0, 1))).reshape(T, B, self.c_hidden, H, W)
        if self.res:
            x = identity + x
            identity = x
        x = self.fc2_lif(x)
        x = self.fc2_bn(self.fc2_conv(x.flatten(0, 1))).reshape(T, B, C, H, W)
        return x + identity


class MSBlock(nn.Module):
    """``MS_Block_Conv``: the residual adds live inside :class:`SDSA` and :class:`MSMLP`."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.attn = SDSA(dim, num_heads)
        self.mlp = MSMLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.attn(x))


class SpikeDrivenTransformer(nn.Module):
    """MS-SPS, ``depths`` blocks, token mean, ``head_lif``, Linear head per step, mean over T.

    ``last_pool="spikes"`` is the tokenizer variant that SpiNNaker runs (:class:`MSSPS`).

    Static images ``[B, C, H, W]`` are repeated ``T`` times; with ``event_input=True`` the input
    is event frames ``[B, T, C, H, W]`` (transposed to time-first, as the original does).
    """

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
        pooling_stat: str = "1111",
        event_input: bool = False,
        last_pool: str = "currents",
    ) -> None:
        super().__init__()
        self.T = T
        self.img_size = img_size
        self.num_classes = num_classes
        self.event_input = event_input
        self.patch_embed = MSSPS(in_channels, embed_dims, pooling_stat, last_pool)
        self.block = nn.ModuleList(
            MSBlock(embed_dims, num_heads, mlp_ratios) for _ in range(depths)
        )
        self.head_lif = lif()
        self.head = nn.Linear(embed_dims, num_classes)
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` -> ``[T, B, D]``: the token average of the residual stream."""
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return x.flatten(3).mean(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.event_input:
            x = x.transpose(0, 1)
        else:
            x = repeat_over_time(x, self.T)
        x = self.head_lif(self.forward_features(x))
        return self.head(x).mean(0)


def _init_weights(m: nn.Module) -> None:
    """SDT's ``_init_weights``: Conv2d ``trunc_normal(std=.02)``, bias 0; BatchNorm2d 1/0."""
    if isinstance(m, nn.Conv2d):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.constant_(m.bias, 0.0)
        nn.init.constant_(m.weight, 1.0)


def build(**config: Any) -> SpikeDrivenTransformer:
    """Registry factory for ``sdt-*``."""
    return SpikeDrivenTransformer(**config)


_IMAGENET = {
    "img_size": 224,
    "in_channels": 3,
    "num_classes": 1000,
    "T": 4,
    "pooling_stat": "1111",
    "last_pool": "currents",
}
_CIFAR = {
    "img_size": 32,
    "in_channels": 3,
    "num_classes": 10,
    "T": 4,
    "pooling_stat": "0011",
    "last_pool": "currents",
}
_GESTURE = {"img_size": 128, "in_channels": 2, "num_classes": 11, "T": 16, "pooling_stat": "0111",
            "event_input": True, "last_pool": "currents"}  # fmt: skip
_TINY = {"img_size": 32, "in_channels": 2, "num_classes": 8, "T": 4, "pooling_stat": "0111",
         "event_input": True, "last_pool": "currents"}  # fmt: skip

# (name, description, published parameters in M, config)
_CONFIGS: tuple[tuple[str, str, float | None, dict[str, Any]], ...] = (
    ("sdt-8-384", "ImageNet 224x224, 196 tokens", 16.81,
     {**_IMAGENET, "embed_dims": 384, "num_heads": 8, "depths": 8}),
    ("sdt-8-512", "ImageNet 224x224, 196 tokens", 29.68,
     {**_IMAGENET, "embed_dims": 512, "num_heads": 8, "depths": 8}),
    ("sdt-8-768", "ImageNet 224x224, 196 tokens", 66.34,
     {**_IMAGENET, "embed_dims": 768, "num_heads": 8, "depths": 8}),
    ("sdt-2-512", "CIFAR10 32x32, 64 tokens", None,
     {**_CIFAR, "embed_dims": 512, "num_heads": 8, "depths": 2}),
    ("sdt-2-256-gesture", "DVS128 Gesture 2x128x128 event frames, T=16, 256 tokens", None,
     {**_GESTURE, "embed_dims": 256, "num_heads": 8, "depths": 2}),
    ("sdt-tiny", "synthetic gestures: 4 event frames 2x32x32, 4x4 = 16 tokens, 8 classes", None,
     {**_TINY, "embed_dims": 32, "num_heads": 4, "depths": 2, "mlp_ratios": 4.0}),
)  # fmt: skip

for _name, _desc, _published, _config in _CONFIGS:
    register_config("sdt", build, _name, _desc, _published, _config)
