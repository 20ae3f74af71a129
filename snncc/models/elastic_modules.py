"""Elastic building blocks of the Elastic Spiking Transformer (seed-models.md §3.2).

Each elastic module holds the *full* weights and a Python ``int`` attribute ``granularity``
(index into ``levels``; the last index is the full width). ``forward`` computes the sub-network
of the current granularity exactly as ``AlbertoAncilotto/elastic_spiking_transformer``
(``ehw_gesture/model.py``) does, with two tracer-friendly rewrites that give the same numbers:

* dropped heads are zero-padded with ``torch.nn.functional.pad`` (the authors: ``torch.zeros`` +
  ``cat``);
* a weight sliced on its *input* channels (``W2[:, :k]`` in XiMLP fc2, ``W_main[:, :c]`` in
  XiConvMultiGran) is applied as the full module to the activation zero-padded back to full
  width: the padded channels are exact zeros and contribute nothing.

``static()`` returns the plain module of the current granularity (the slicing table of §3.4),
used by :func:`snncc.models.elastic.export_slice`. Every elastic module declares which elastic
dimension it belongs to in ``elastic_dim`` ("feature", "attention" or "mlp").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.models import elastic_static as S
from snncc.models.blocks import merge_heads
from snncc.models.elastic_levels import check_levels, conv_channels, head_counts, mlp_widths
from snncc.nn import LIF


def _lif(v_threshold: float = 1.0, tau: float = 2.0) -> LIF:
    return LIF(tau=tau, v_threshold=v_threshold, detach_reset=True)


class Elastic(nn.Module):
    """Common state of an elastic module: ``levels`` and the current ``granularity`` index."""

    elastic_dim = ""

    def __init__(self, levels: list[int]) -> None:
        super().__init__()
        self.levels = list(levels)
        self.granularity = len(levels) - 1

    @property
    def level(self) -> int:
        """The width (channels, heads or hidden units) at the current granularity."""
        return self.levels[self.granularity]

    def static(self) -> nn.Module:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# Feature extractor
# --------------------------------------------------------------------------------------------


class XiConv(nn.Module):
    """Non-elastic XiConv (XiSPSv2 stages 0-2): 1x1 compression to ``c_out // gamma`` (if
    ``gamma > 1``), optional max-pool, main ``k x k`` conv to ``c_out``; no bias, no BN here."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, gamma: int = 2) -> None:
        super().__init__()
        self.compression = int(gamma)
        mid = c_out // self.compression if self.compression > 1 else c_in
        if self.compression > 1:
            self.compression_conv = nn.Conv2d(c_in, mid, 1, 1, bias=False)
        self.main_conv = nn.Conv2d(mid, c_out, kernel_size, 1, kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compression > 1:
            x = self.compression_conv(x)
        return self.main_conv(x)


class XiConvMultiGran(Elastic):
    """Elastic conv: keep the first ``c`` bottleneck channels (compression output if
    ``gamma > 1``, else the incoming spikes), then the main conv on those ``c`` inputs.

    ``levels = conv_channels(c_out // gamma)``; the output width ``c_out`` never changes. With
    ``batchnorm`` the main BN (``main_bn``) is shared by all granularities, as in the authors'
    code; with ``switchable_bn`` as well (snncc's elastic Spikingformer) there is one BN per
    granularity instead (``main_bns``), selected by ``granularity``.
    """

    elastic_dim = "feature"

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int = 3,
        gamma: int = 2,
        pool: int | None = None,
        batchnorm: bool = False,
        num_granularities: int = 4,
        lower_filter_limit: int = 4,
        switchable_bn: bool = False,
    ) -> None:
        self.compression = int(gamma)
        levels = conv_channels(c_out // self.compression, num_granularities, lower_filter_limit)
        super().__init__(check_levels(levels, num_granularities, "XiConvMultiGran"))
        self.c_in, self.c_out, self.kernel_size = c_in, c_out, kernel_size
        self.c_compressed = c_out // self.compression if self.compression > 1 else c_in
        if self.compression > 1:
            self.compression_conv = nn.Conv2d(c_in, self.c_compressed, 1, 1, bias=False)
        self.main_conv = nn.Conv2d(
            self.c_compressed, c_out, kernel_size, 1, kernel_size // 2, bias=False
        )
        self.pool = pool
        if batchnorm and switchable_bn:
            self.main_bns = nn.ModuleList(nn.BatchNorm2d(c_out) for _ in self.levels)
        elif batchnorm:
            self.main_bn = nn.BatchNorm2d(c_out)
        if pool:
            self.mp = nn.MaxPool2d(pool)

    @property
    def kept(self) -> int:
        """Bottleneck channels actually used (``x[:, :c]`` keeps at most what exists)."""
        return min(self.level, self.c_compressed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compression > 1:
            x = self.compression_conv(x)
        c = self.kept
        if c < x.shape[1]:
            x = F.pad(x[:, :c], (0, 0, 0, 0, 0, self.c_compressed - c))
        if self.pool:
            x = self.mp(x)
        x = self.main_conv(x)
        bn = self.current_bn()
        return x if bn is None else bn(x)

    def current_bn(self) -> nn.Module | None:
        """The main BN used at the current granularity (``None`` without ``batchnorm``)."""
        if hasattr(self, "main_bns"):
            return self.main_bns[self.granularity]
        return getattr(self, "main_bn", None)

    def static(self) -> nn.Module:
        return S.SlicedConv.from_elastic(self)


# --------------------------------------------------------------------------------------------
# Spikformer-style (post-activation) XiMLP and XiSSA on [T, B, C, N] tokens
# --------------------------------------------------------------------------------------------


class XiMLP(Elastic):
    """Nested hidden width: ``fc1`` keeps its first ``k`` outputs with a BN of size ``k`` per
    granularity (``fc1_bns``); ``fc2`` reads those ``k`` inputs; ``fc2_bn`` is shared."""

    elastic_dim = "mlp"

    def __init__(self, in_features: int, hidden_features: int, num_granularities: int = 4):
        levels = check_levels(
            mlp_widths(hidden_features, num_granularities), num_granularities, "XiMLP"
        )
        super().__init__(levels)
        self.max_hidden = hidden_features
        self.fc1_conv = nn.Conv1d(in_features, hidden_features, kernel_size=1, stride=1)
        self.fc2_conv = nn.Conv1d(hidden_features, in_features, kernel_size=1, stride=1)
        self.fc1_bns = nn.ModuleList(nn.BatchNorm1d(g) for g in levels)
        self.fc2_bn = nn.BatchNorm1d(in_features)
        self.fc1_lif = _lif()
        self.fc2_lif = _lif()
        self.c_output = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, N = x.shape
        k = self.level
        x = self.fc1_conv(x.flatten(0, 1))[:, :k]
        x = self.fc1_bns[self.granularity](x).reshape(T, B, k, N)
        x = self.fc1_lif(x).flatten(0, 1)
        if k < self.max_hidden:
            x = F.pad(x, (0, 0, 0, self.max_hidden - k))
        x = self.fc2_bn(self.fc2_conv(x)).reshape(T, B, C, N)
        return self.fc2_lif(x)

    def static(self) -> nn.Module:
        return S.StaticMLP.from_elastic(self)


def first_heads(y: torch.Tensor, heads: int, kept: int) -> torch.Tensor:
    """``[T, B, C, N]`` -> ``[T, B, kept, N, d]``: split into ``heads`` heads, keep the first."""
    T, B, C, N = y.shape
    y = y.transpose(-1, -2).reshape(T, B, N, heads, C // heads)[:, :, :, :kept, :]
    return y.permute(0, 1, 3, 2, 4)


def padded_merge(a: torch.Tensor, heads: int) -> torch.Tensor:
    """``[T, B, kept, N, d]`` -> ``[T, B, heads * d, N]`` with the dropped heads zero-padded."""
    kept = a.shape[2]
    if kept < heads:
        a = F.pad(a, (0, 0, 0, 0, 0, heads - kept))
    return merge_heads(a)


class XiSSA(Elastic):
    """Elastic heads (Spikformer post-activation SSA, EHW code): full-width Q/K/V convs with one
    full-width BN per granularity (``q_bns`` …), first ``kh`` heads, ``(Q Kᵀ) V * scale``,
    zero-padded dropped heads, ``attn_lif`` (vth 0.5), shared ``proj_conv``/``proj_bn``/LIF.
    ``switchable_proj_bn`` (snncc's elastic Spikingformer only) replaces the shared ``proj_bn``
    by one BN per granularity (``proj_bns``)."""

    elastic_dim = "attention"

    def __init__(
        self,
        dim: int,
        num_heads: int,
        scale: float = 0.25,
        num_granularities: int = 4,
        lower_heads_limit: int = 2,
        head_rule: str = "base2",
        switchable_proj_bn: bool = False,
    ) -> None:
        if dim % num_heads:
            raise SnnccError(f"dim {dim} is not divisible by num_heads {num_heads}", code="E014")
        super().__init__(head_counts(num_heads, num_granularities, lower_heads_limit, head_rule))
        self.dim, self.max_num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.scale = float(scale)
        for p in ("q", "k", "v"):
            setattr(self, f"{p}_conv", nn.Conv1d(dim, dim, kernel_size=1, stride=1, bias=False))
            bns = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(num_granularities))
            setattr(self, f"{p}_bns", bns)
            setattr(self, f"{p}_lif", _lif())
        self.attn_lif = _lif(0.5)
        self.proj_conv = nn.Conv1d(dim, dim, kernel_size=1, stride=1)
        if switchable_proj_bn:
            self.proj_bns = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(num_granularities))
        else:
            self.proj_bn = nn.BatchNorm1d(dim)
        self.proj_lif = _lif()

    def current_proj_bn(self) -> nn.Module:
        """The ``proj`` BN used at the current granularity (shared, or ``proj_bns[g]``)."""
        if hasattr(self, "proj_bns"):
            return self.proj_bns[self.granularity]
        return self.proj_bn

    def _branch(self, p: str, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        T, B, C, N = shape
        y = getattr(self, f"{p}_bns")[self.granularity](getattr(self, f"{p}_conv")(x))
        y = getattr(self, f"{p}_lif")(y.reshape(T, B, C, N))
        return first_heads(y, self.max_num_heads, self.level)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, N = x.shape
        x_flat = x.flatten(0, 1)
        q = self._branch("q", x_flat, (T, B, C, N))
        k = self._branch("k", x_flat, (T, B, C, N))
        v = self._branch("v", x_flat, (T, B, C, N))
        a = ((q @ k.transpose(-2, -1)) @ v) * self.scale
        a = self.attn_lif(padded_merge(a, self.max_num_heads))
        a = self.current_proj_bn()(self.proj_conv(a.flatten(0, 1))).reshape(T, B, C, N)
        return self.proj_lif(a)

    def static(self) -> nn.Module:
        return S.StaticSSA.from_elastic(self)


# --------------------------------------------------------------------------------------------
# Spikingformer-style (pre-activation, membrane shortcut) on [T, B, C, H, W]
# --------------------------------------------------------------------------------------------


class XiPreMLP(Elastic):
    """Elastic Spikingformer MLP: ``BN(Conv(LIF(x)))`` twice; hidden width nested as in XiMLP
    (``mlp1_bns`` per granularity) and, unlike XiMLP's shared ``fc2_bn``, one output BN(D) per
    granularity too (``mlp2_bns``, switchable BN); ends at BN (membrane shortcut)."""

    elastic_dim = "mlp"

    def __init__(
        self, in_features: int, hidden_features: int, tau: float = 2.0, num_granularities: int = 4
    ) -> None:
        levels = check_levels(
            mlp_widths(hidden_features, num_granularities), num_granularities, "XiPreMLP"
        )
        super().__init__(levels)
        self.max_hidden = hidden_features
        self.mlp1_lif = _lif(tau=tau)
        self.mlp1_conv = nn.Conv2d(in_features, hidden_features, kernel_size=1, stride=1)
        self.mlp1_bns = nn.ModuleList(nn.BatchNorm2d(g) for g in levels)
        self.mlp2_lif = _lif(tau=tau)
        self.mlp2_conv = nn.Conv2d(hidden_features, in_features, kernel_size=1, stride=1)
        self.mlp2_bns = nn.ModuleList(nn.BatchNorm2d(in_features) for _ in levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        k = self.level
        x = self.mlp1_conv(self.mlp1_lif(x).flatten(0, 1))[:, :k]
        x = self.mlp1_bns[self.granularity](x).reshape(T, B, k, H, W)
        x = self.mlp2_lif(x).flatten(0, 1)
        if k < self.max_hidden:
            x = F.pad(x, (0, 0, 0, 0, 0, self.max_hidden - k))
        x = self.mlp2_bns[self.granularity](self.mlp2_conv(x))
        return x.reshape(T, B, C, H, W)

    def static(self) -> nn.Module:
        return S.StaticPreMLP.from_elastic(self)


class XiPreSSA(XiSSA):
    """Elastic Spikingformer SSA: ``proj_lif`` on the residual stream first (binary Q/K/V
    inputs), elastic heads as :class:`XiSSA`, ends at the granularity's ``proj_bns[g]`` (one
    BN(D) per granularity, switchable BN) with no LIF."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        scale: float = 0.125,
        tau: float = 2.0,
        num_granularities: int = 4,
        lower_heads_limit: int = 2,
        head_rule: str = "base2",
    ) -> None:
        super().__init__(
            dim, num_heads, scale, num_granularities, lower_heads_limit, head_rule,
            switchable_proj_bn=True,
        )  # fmt: skip
        for name in ("q_lif", "k_lif", "v_lif", "proj_lif"):
            setattr(self, name, _lif(tau=tau))
        self.attn_lif = _lif(0.5, tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.proj_lif(x).flatten(3)
        N = x.shape[3]
        x_flat = x.flatten(0, 1)
        q = self._branch("q", x_flat, (T, B, C, N))
        k = self._branch("k", x_flat, (T, B, C, N))
        v = self._branch("v", x_flat, (T, B, C, N))
        a = ((q @ k.transpose(-2, -1)) @ v) * self.scale
        a = self.attn_lif(padded_merge(a, self.max_num_heads))
        a = self.current_proj_bn()(self.proj_conv(a.flatten(0, 1)))
        return a.reshape(T, B, C, H, W)

    def static(self) -> nn.Module:
        return S.StaticPreSSA.from_elastic(self)
