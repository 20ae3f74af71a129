"""The two elastic networks: XiSpikformer (the authors' model) and snncc's elastic Spikingformer.

``ElasticSpikformer`` follows ``AlbertoAncilotto/elastic_spiking_transformer``
``ehw_gesture/model.py`` (module and parameter names included, so the authors' state_dict keys
match): XiSPSv2 tokenizer with elastic ``proj_conv3`` and ``rpe_conv``, post-activation blocks
with the SEW spike-add residual, Conv1d on ``[T, B, C, N]``, head on the token and time mean.
``ElasticSpikingformer`` is the same elasticity on the Spikingformer backbone (pre-activation
``LIF -> Conv -> BN``, membrane shortcut, every conv reads spikes): snncc's construction.

Switchable BatchNorm (``ElasticSpikingformer`` only). The authors keep one BN per granularity
only for Q/K/V and the MLP's first layer; the MLP's output BN, the attention ``proj`` BN and the
tokenizer BN after the elastic conv are shared. A shared BN keeps one set of running statistics,
dominated by the wide sub-networks that most batches train (p = 0.1 / 0.2 / 0.3 / 0.4), which
left the small granularities of a trained model near chance (digits, g0: 10 %) although their
weights were fine (recomputing the statistics at g0 gave 89 %). snncc's construction therefore
gives *every* BN whose input depends on the granularity its own copy per granularity, as in
slimmable networks (Yu et al., ICLR 2019): ``mlp.mlp1_bns`` and ``mlp.mlp2_bns``,
``attn.{q,k,v}_bns`` and ``attn.proj_bns``, and the tokenizer's last-stage BN, which moves into
the elastic conv as ``patch_embed.block4_conv.main_bns`` (no ``block4_bn``). Each is indexed by
the granularity of the module that owns it (feature, attention or MLP). BNs before the elastic
tokenizer conv see the same inputs at every granularity and stay single. The extra cost is a
BN's affine terms and statistics per granularity (2·D parameters each); ``export_slice`` copies
the chosen granularity's BN into a plain BN, so a static slice is exactly as large as with
shared BNs, folds into its conv the same way and computes what the elastic model computes.
Training draws one joint index for all dimensions, so each BN's statistics are gathered with
the other dimensions at the same index; a mixed setting (e.g. feature 0, attention 3) uses each
module's BN for its own index, whose statistics were not gathered under that combination.
``ElasticSpikformer`` keeps the authors' shared BNs unchanged (names, structure, counts).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.models import elastic_modules as E
from snncc.models.blocks import init_weights, repeat_over_time
from snncc.nn import LIF

DIMS = ("feature", "attention", "mlp")


class ElasticModel(nn.Module):
    """The elastic API shared by both networks (see docs/models.md, "Elastic API")."""

    T: int

    def elastic_modules(self) -> list[tuple[str, E.Elastic]]:
        """``(path, module)`` of every elastic module, in definition order."""
        return [(n, m) for n, m in self.named_modules() if isinstance(m, E.Elastic)]

    def granularities(self) -> dict[str, list[int]]:
        """Levels per elastic dimension: feature = bottleneck channels of the elastic tokenizer
        conv(s), attention = heads, mlp = hidden width; index ``g`` is granularity ``g``. A
        dimension whose modules are absent (or an exported static slice) is left out."""
        out: dict[str, list[int]] = {}
        for _, m in self.elastic_modules():
            out.setdefault(m.elastic_dim, list(m.levels))
        return out

    def set_granularity(
        self,
        level: int | None = None,
        *,
        feature: int | None = None,
        attention: int | None = None,
        mlp: int | None = None,
    ) -> None:
        """Select a sub-network: one granularity index per dimension (``level`` fills the ones
        not given; ``None`` everywhere leaves the model unchanged). Index ``-1`` = full width.

        Arguments are *indices* into :meth:`granularities`, not widths. Every index is checked
        before any module changes, so a bad call leaves the model at its previous granularity
        (a half-applied setting would silently mix sub-networks). Non-integers (``1.5``,
        ``True``) are refused instead of being truncated by ``int()``.
        """
        chosen = {"feature": feature, "attention": attention, "mlp": mlp}
        for dim in DIMS:
            if chosen[dim] is None:
                chosen[dim] = level
        plan: list[tuple[E.Elastic, int]] = []
        for path, m in self.elastic_modules():
            g = chosen[m.elastic_dim]
            if g is None:
                continue
            n = len(m.levels)
            hint = f"use an index in 0..{n - 1} (levels {m.levels}), not a width"
            if isinstance(g, bool) or not isinstance(g, (int, np.integer)):
                raise SnnccError(
                    f"{path}: {m.elastic_dim} granularity {g!r} is not an integer index",
                    code="E012",
                    hint=hint,
                )
            if not -n <= int(g) < n:
                raise SnnccError(
                    f"{path}: {m.elastic_dim} granularity {g} is out of range",
                    code="E012",
                    hint=hint,
                )
            plan.append((m, int(g) % n))
        for m, g in plan:
            m.granularity = g

    def current_granularity(self) -> dict[str, int]:
        """The granularity index of each dimension (from its first elastic module)."""
        out: dict[str, int] = {}
        for _, m in self.elastic_modules():
            out.setdefault(m.elastic_dim, m.granularity)
        return out


class XiSPSv2(nn.Module):
    """XiSPSv2 tokenizer: ``XiConv -> BN -> LIF -> MaxPool(3,2,1)`` for stages 0-2, the elastic
    stage 3 ``XiConvMultiGran(c3 -> D) -> BN -> LIF -> MaxPool``, then the RPE branch
    ``x + LIF(BN(XiConvMultiGran(D -> D)(x)))`` (SEW add, values 0-2). Output ``[T, B, D, N]``.

    ``pools`` (snncc knob, default: all four as the authors) says which stages max-pool, so
    small inputs keep enough tokens.
    """

    def __init__(
        self,
        in_channels: int,
        embed_dims: int,
        alpha: float = 2.0,
        pools: tuple[bool, ...] = (True, True, True, True),
        elastic: bool = True,
        num_granularities: int = 4,
        lower_filter_limit: int = 4,
    ) -> None:
        super().__init__()
        c = [in_channels] + [int((embed_dims // f) * alpha) for f in (8, 4, 2)] + [embed_dims]
        self._stages: list[tuple[str, str, str, str | None]] = []
        for i in range(4):
            sfx = str(i) if i else ""
            if i == 3 and elastic:
                conv: nn.Module = E.XiConvMultiGran(
                    c[3], c[4], 3, 2, None, False, num_granularities, lower_filter_limit
                )
            else:
                conv = E.XiConv(c[i], c[i + 1], 3)
            setattr(self, f"proj_conv{sfx}", conv)
            setattr(self, f"proj_bn{sfx}", nn.BatchNorm2d(c[i + 1]))
            setattr(self, f"proj_lif{sfx}", E._lif())
            if pools[i]:
                setattr(self, f"maxpool{sfx}", nn.MaxPool2d(3, 2, 1))
            pool = f"maxpool{sfx}" if pools[i] else None
            self._stages.append((f"proj_conv{sfx}", f"proj_bn{sfx}", f"proj_lif{sfx}", pool))
        if elastic:
            self.rpe_conv: nn.Module = E.XiConvMultiGran(
                embed_dims, embed_dims, 3, 2, None, False, num_granularities, lower_filter_limit
            )
        else:
            self.rpe_conv = E.XiConv(embed_dims, embed_dims, 3)
        self.rpe_bn = nn.BatchNorm2d(embed_dims)
        self.rpe_lif = E._lif()

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
        x_rpe = self.rpe_bn(self.rpe_conv(x)).reshape(T, B, C, H, W)
        x = x.reshape(T, B, C, H, W) + self.rpe_lif(x_rpe)
        return x.reshape(T, B, C, H * W)


class XiBlock(nn.Module):
    """Spikformer block with the SEW residual: ``x = x + XiSSA(x); x = x + XiMLP(x)``."""

    unused_modules = ("norm1", "norm2")

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, cfg: dict[str, Any]) -> None:
        super().__init__()
        n = cfg["num_granularities"]
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)  # built, never called (as in the original)
        self.attn = E.XiSSA(
            dim, num_heads, cfg["attn_scale"], n, cfg["attn_lower_heads_limit"], cfg["head_rule"]
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)  # built, never called (as in the original)
        self.mlp = E.XiMLP(dim, int(dim * mlp_ratio), n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class ElasticSpikformer(ElasticModel):
    """XiSpikformer: XiSPSv2, ``depths`` XiBlocks, token and time mean, Linear head.

    ``pos_embed`` and ``norm`` exist in the authors' model but are never used in ``forward``;
    they are kept so the authors' checkpoints load with ``strict=True``.
    """

    unused_modules = ("norm",)
    unused_parameters = ("pos_embed",)

    def __init__(
        self,
        *,
        img_size: int = 160,
        in_channels: int = 2,
        num_classes: int = 22,
        embed_dims: int = 256,
        num_heads: int = 32,
        mlp_ratios: float = 4.0,
        depths: int = 2,
        T: int = 16,
        event_input: bool = True,
        sps_alpha: float = 2.0,
        pools: tuple[bool, ...] = (True, True, True, True),
        xisps_elastic: bool = True,
        attn_scale: float = 0.25,
        num_granularities: int = 4,
        attn_lower_heads_limit: int = 2,
        sps_lower_filter_limit: int = 4,
        head_rule: str = "base2",
    ) -> None:
        super().__init__()
        self.T, self.event_input, self.num_classes = T, event_input, num_classes
        cfg = {
            "num_granularities": num_granularities,
            "attn_scale": attn_scale,
            "attn_lower_heads_limit": attn_lower_heads_limit,
            "head_rule": head_rule,
        }
        self.patch_embed = XiSPSv2(
            in_channels,
            embed_dims,
            sps_alpha,
            tuple(pools),
            xisps_elastic,
            num_granularities,
            sps_lower_filter_limit,
        )
        side = img_size // 2 ** sum(bool(p) for p in pools)
        self.pos_embed = nn.Parameter(torch.zeros(1, side * side, embed_dims))
        self.block = nn.ModuleList(
            XiBlock(embed_dims, num_heads, mlp_ratios, cfg) for _ in range(depths)
        )
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.head = nn.Linear(embed_dims, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(1, 0, 2, 3, 4) if self.event_input else repeat_over_time(x, self.T)
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return self.head(x.mean(3).mean(0))


_TOKENIZER_NAMES = {
    "cifar": (("block0_conv", "block0_bn"), ("block{i}_lif", "block{i}_mp", "block{i}_conv",
              "block{i}_bn"), (False, False, True, True)),
    "imagenet": (("proj_conv", "proj_bn"), ("proj{i}_lif", "maxpool{i}", "proj{i}_conv",
                 "proj{i}_bn"), (True, True, True, True)),
}  # fmt: skip


class ElasticSpikingTokenizer(nn.Module):
    """Spikingformer tokenizer (``Conv-BN``, then ``LIF -> (MaxPool) -> Conv3x3 -> BN`` x4, names
    as the official code) whose last conv (``D -> D``) is an XiConvMultiGran (``gamma``
    compression; ``gamma = 1`` keeps the first ``c`` spike channels). Output: last BN (real).

    The last stage's BN depends on the feature granularity, so it lives inside the elastic conv
    as one BN per granularity (``block4_conv.main_bns``; switchable BN, see the module
    docstring) instead of the official code's ``block4_bn``; the stages before it are unchanged.
    """

    def __init__(
        self, in_channels: int, embed_dims: int, layout: str, tau: float, cfg: dict[str, Any]
    ) -> None:
        super().__init__()
        if layout not in _TOKENIZER_NAMES:
            raise SnnccError(f"unknown tokenizer layout {layout!r}", code="E014")
        (conv0, bn0), pattern, pools = _TOKENIZER_NAMES[layout]
        w = [embed_dims // 8, embed_dims // 4, embed_dims // 2, embed_dims, embed_dims]
        setattr(self, conv0, nn.Conv2d(in_channels, w[0], 3, 1, 1, bias=False))
        setattr(self, bn0, nn.BatchNorm2d(w[0]))
        self._stem = (conv0, bn0)
        self._stages: list[tuple[str, str | None, str, str | None]] = []
        for i in range(1, 5):
            lif_n, pool_n, conv_n, bn_n = (s.format(i=i) for s in pattern)
            setattr(self, lif_n, E._lif(tau=tau))
            if pools[i - 1]:
                setattr(self, pool_n, nn.MaxPool2d(3, 2, 1))
            if i == 4:
                # the elastic conv carries its own per-granularity BN (main_bns)
                conv: nn.Module = E.XiConvMultiGran(
                    w[3], w[4], 3, cfg["feature_gamma"], None, True,
                    cfg["num_granularities"], cfg["sps_lower_filter_limit"], switchable_bn=True,
                )  # fmt: skip
                setattr(self, conv_n, conv)
                self._stages.append((lif_n, pool_n if pools[i - 1] else None, conv_n, None))
                continue
            setattr(self, conv_n, nn.Conv2d(w[i - 1], w[i], 3, 1, 1, bias=False))
            setattr(self, bn_n, nn.BatchNorm2d(w[i]))
            self._stages.append((lif_n, pool_n if pools[i - 1] else None, conv_n, bn_n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[0], x.shape[1]
        x = getattr(self, self._stem[1])(getattr(self, self._stem[0])(x.flatten(0, 1)))
        x = x.reshape(T, B, x.shape[1], x.shape[2], x.shape[3])
        for lif_n, pool_n, conv_n, bn_n in self._stages:
            x = getattr(self, lif_n)(x).flatten(0, 1)
            if pool_n is not None:
                x = getattr(self, pool_n)(x)
            x = getattr(self, conv_n)(x)
            if bn_n is not None:
                x = getattr(self, bn_n)(x)
            x = x.reshape(T, B, x.shape[1], x.shape[2], x.shape[3])
        return x


class XiSpikingBlock(nn.Module):
    """Spikingformer block, elastic: ``x = x + XiPreSSA(x); x = x + XiPreMLP(x)`` (MS residual)."""

    unused_modules = ("norm1", "norm2")

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, cfg: dict[str, Any]) -> None:
        super().__init__()
        n, tau = cfg["num_granularities"], cfg["tau"]
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)  # built, never called (as in Spikingformer)
        self.attn = E.XiPreSSA(
            dim, num_heads, cfg["attn_scale"], tau, n, cfg["attn_lower_heads_limit"],
            cfg["head_rule"],
        )  # fmt: skip
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)  # built, never called (as in Spikingformer)
        self.mlp = E.XiPreMLP(dim, int(dim * mlp_ratio), tau, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class ElasticSpikingformer(ElasticModel):
    """Elastic Spikingformer: spiking tokenizer with an elastic last stage, XiSpikingBlocks,
    mean over tokens and time, Linear head. Spike-driven at every granularity."""

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
        event_input: bool = False,
        attn_scale: float = 0.125,
        num_granularities: int = 4,
        attn_lower_heads_limit: int = 2,
        sps_lower_filter_limit: int = 4,
        feature_gamma: int = 1,
        head_rule: str = "base2",
    ) -> None:
        super().__init__()
        self.T, self.event_input, self.num_classes = T, event_input, num_classes
        cfg = {
            "num_granularities": num_granularities,
            "attn_scale": attn_scale,
            "attn_lower_heads_limit": attn_lower_heads_limit,
            "sps_lower_filter_limit": sps_lower_filter_limit,
            "feature_gamma": feature_gamma,
            "head_rule": head_rule,
            "tau": tau,
        }
        self.patch_embed = ElasticSpikingTokenizer(in_channels, embed_dims, tokenizer, tau, cfg)
        self.block = nn.ModuleList(
            XiSpikingBlock(embed_dims, num_heads, mlp_ratios, cfg) for _ in range(depths)
        )
        self.head = nn.Linear(embed_dims, num_classes)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(1, 0, 2, 3, 4) if self.event_input else repeat_over_time(x, self.T)
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return self.head(x.flatten(3).mean(3).mean(0))


def lif_modules(model: nn.Module) -> dict[str, LIF]:
    """Every LIF of ``model`` by module path (for spike recording)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LIF)}
