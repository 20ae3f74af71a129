"""LSFormer (Li, Zhang, Yu, arXiv:2605.13887) as **snncc's interpretation**: SPooling + LS-SSA.

The paper's equations, window size, dilation and model sizes are not public; only the abstract is
(docs/seed-models.md §4.1). Everything below is the design of docs/seed-models.md §4.2, chosen by
snncc, and must not be presented as the authors' model. Every placeholder is a config field.

Backbone: Spikingformer (membrane-shortcut residual, pre-activation ``LIF -> Conv -> BN``
branches), so the network stays spike-driven. Two changes:

* **SPooling** replaces the tokenizer's max-pool on spikes: average-pool the spikes (the fraction
  of active inputs per window: an accumulate and a constant scale) and re-binarise with a neuron
  at threshold 0.5. Max pooling keeps only "the strongest response"; the window count keeps how
  many inputs fired.
* **LS-SSA** is Spikingformer's SSA (binary Q/K/V, no softmax, ``(Q Kᵀ) V * scale``, attention
  LIF at 0.5) restricted to non-overlapping ``window x window`` tiles of a dilated token grid:
  token ``(i, j)`` belongs to dilation group ``(i % dilation, j % dilation)``, and within each
  group the tiles are contiguous. Blocks cycle through ``dilations`` (DiNAT style), so e.g.
  ``(1, 2)`` alternates local detail with longer-range context.

The window partition is plain ``reshape``/``permute`` (a static gather), so the tracer and the
reference interpreter need no new op; it is numerically identical to global SSA with a fixed
0/1 block mask on ``Q Kᵀ``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snncc.models.blocks import (
    ATTN_SCALE,
    ATTN_THRESHOLD,
    TokenMeanClassifier,
    init_weights,
    keyword_defaults,
    lif,
    register_config,
)
from snncc.models.spikingformer import MLP
from snncc.nn import IF, LIF

#: Neurons SPooling can re-binarise with (IF integrates window counts over time; LIF leaks).
SPOOL_NEURONS = ("if", "lif")


def window_partition(x: torch.Tensor, num_heads: int, window: int, dilation: int) -> torch.Tensor:
    """``[T, B, C, H, W]`` -> ``[T, B, h, nW, window², d]``: tokens of each dilated window.

    Row ``i = (a * window + p) * dilation + g``: ``g`` is the dilation group, ``a`` the tile
    within the group and ``p`` the position within the tile (the same for columns). Head ``j``
    owns channels ``[j*d, (j+1)*d)`` as in :func:`snncc.models.blocks.split_heads`. Windows are
    ordered ``(a_row, g_row, a_col, g_col)``; tokens within a window row-major.
    """
    T, B, C, H, W = x.shape
    _check_grid(H, W, window, dilation)
    d = C // num_heads
    nh, nw = H // (window * dilation), W // (window * dilation)
    x = x.reshape(T, B, num_heads, d, nh, window, dilation, nw, window, dilation)
    x = x.permute(0, 1, 2, 4, 6, 7, 9, 5, 8, 3)
    return x.reshape(T, B, num_heads, nh * dilation * nw * dilation, window * window, d)


def window_reverse(
    x: torch.Tensor, height: int, width: int, window: int, dilation: int
) -> torch.Tensor:
    """The inverse of :func:`window_partition`: ``[T, B, h, nW, window², d]`` -> ``[T,B,C,H,W]``."""
    T, B, h, _, _, d = x.shape
    nh, nw = height // (window * dilation), width // (window * dilation)
    x = x.reshape(T, B, h, nh, dilation, nw, dilation, window, window, d)
    x = x.permute(0, 1, 2, 9, 3, 7, 4, 5, 8, 6)
    return x.reshape(T, B, h * d, height, width)


def _check_grid(height: int, width: int, window: int, dilation: int) -> None:
    if window < 1 or dilation < 1:
        raise ValueError(f"window and dilation must be >= 1, got {window}, {dilation}")
    span = window * dilation
    if height % span or width % span:
        raise ValueError(
            f"token grid {height}x{width} is not divisible by window*dilation = {span}"
        )


def local_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_heads: int,
    window: int,
    dilation: int,
    scale: float,
    matmul_order: str = "qk_v",
) -> torch.Tensor:
    """Windowed spiking attention on ``[T, B, C, H, W]`` Q/K/V: ``(Q Kᵀ) V * scale`` per window.

    No softmax: with binary Q/K/V every product is an AND and every sum an accumulate. Returns
    ``[T, B, C, H, W]`` (before the attention neuron).
    """
    H, W = q.shape[3], q.shape[4]
    qw, kw, vw = (window_partition(t, num_heads, window, dilation) for t in (q, k, v))
    if matmul_order == "qk_v":
        a = ((qw @ kw.transpose(-2, -1)) @ vw) * scale
    else:
        a = (qw @ (kw.transpose(-2, -1) @ vw)) * scale
    return window_reverse(a, H, W, window, dilation)


class SPooling(nn.Module):
    """Spike pooling: ``neuron(avg_pool2d(spikes))`` on ``[T, B, C, H, W]`` binary input.

    The average is the window's spike count divided by ``kernel²`` (padding counted, as
    ``avg_pool2d``'s default), so it costs only accumulates and one constant scale. The neuron
    (``"if"``: integrate over time, hard reset; ``"lif"``: SpikingJelly LIF) fires when the
    accumulated fraction reaches ``threshold``: by default a window fires at ``t = 0`` when at
    least half of its inputs did.
    """

    def __init__(
        self,
        kernel_size: int = 3,
        stride: int = 2,
        padding: int = 1,
        threshold: float = 0.5,
        neuron: str = "if",
        tau: float = 2.0,
    ) -> None:
        super().__init__()
        if neuron not in SPOOL_NEURONS:
            raise ValueError(f"SPooling neuron must be one of {SPOOL_NEURONS}, got {neuron!r}")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.neuron: IF | LIF = (
            IF(v_threshold=threshold, detach_reset=True)
            if neuron == "if"
            else LIF(tau=tau, v_threshold=threshold, detach_reset=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[0], x.shape[1]
        r = F.avg_pool2d(x.flatten(0, 1), self.kernel_size, self.stride, self.padding)
        return self.neuron(r.reshape(T, B, r.shape[1], r.shape[2], r.shape[3]))


class LSSSA(nn.Module):
    """Local structure-aware SSA: Spikingformer's pre-activation SSA on dilated windows.

    ``BN(Conv1x1(LIF_0.5(local_attention(Q, K, V))))`` with ``Q, K, V = LIF(BN(Conv1x1(LIF(x))))``;
    the output is a BN value (membrane shortcut). Module names follow Spikingformer's SSA.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: int,
        dilation: int,
        tau: float = 2.0,
        attn_scale: float = ATTN_SCALE,
        attn_threshold: float = ATTN_THRESHOLD,
        matmul_order: str = "qk_v",
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if matmul_order not in ("qk_v", "q_kv"):
            raise ValueError(f"matmul_order must be 'qk_v' or 'q_kv', got {matmul_order!r}")
        self.num_heads, self.window, self.dilation = num_heads, window, dilation
        self.attn_scale, self.matmul_order = float(attn_scale), matmul_order
        self.proj_lif = lif(tau)
        for p in ("q", "k", "v"):
            setattr(self, f"{p}_conv", nn.Conv1d(dim, dim, kernel_size=1, bias=False))
            setattr(self, f"{p}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{p}_lif", lif(tau))
        self.attn_lif = lif(tau, attn_threshold)
        self.proj_conv = nn.Conv1d(dim, dim, kernel_size=1)
        self.proj_bn = nn.BatchNorm1d(dim)

    def _qkv(self, p: str, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        T, B, C, H, W = shape
        y = getattr(self, f"{p}_bn")(getattr(self, f"{p}_conv")(x)).reshape(T, B, C, H, W)
        return getattr(self, f"{p}_lif")(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.proj_lif(x).flatten(3).flatten(0, 1)  # [T*B, C, N] spikes
        q, k, v = (self._qkv(p, x, (T, B, C, H, W)) for p in ("q", "k", "v"))
        a = local_attention(
            q, k, v, self.num_heads, self.window, self.dilation, self.attn_scale,
            self.matmul_order,
        )  # fmt: skip
        a = self.attn_lif(a.flatten(3))
        return self.proj_bn(self.proj_conv(a.flatten(0, 1))).reshape(T, B, C, H, W)


class LSBlock(nn.Module):
    """``x = x + LS-SSA(x); x = x + MLP(x)`` (membrane shortcut; Spikingformer's MLP)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, tau: float, **attn: Any) -> None:
        super().__init__()
        self.attn = LSSSA(dim, num_heads, tau=tau, **attn)
        self.mlp = MLP(dim, int(dim * mlp_ratio), tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class LSTokenizer(nn.Module):
    """Spikingformer's tokenizer with SPooling for max-pool: ``Conv3x3-BN``, then
    ``LIF -> (SPooling) -> Conv3x3 -> BN`` ×4 at widths D/8 … D; ``pooling_stat`` marks the
    stages that pool (``"0011"``: the last two, as Spikingformer's CIFAR layout).
    """

    def __init__(
        self, in_channels: int, embed_dims: int, pooling_stat: str, tau: float, **spool: Any
    ) -> None:
        super().__init__()
        if len(pooling_stat) != 4 or set(pooling_stat) - {"0", "1"}:
            raise ValueError(f"pooling_stat must be 4 characters of 0/1, got {pooling_stat!r}")
        self.pooling = tuple(c == "1" for c in pooling_stat)
        widths = [embed_dims // 8, embed_dims // 4, embed_dims // 2, embed_dims, embed_dims]
        self.proj_conv = _conv3x3(in_channels, widths[0])
        self.proj_bn = nn.BatchNorm2d(widths[0])
        for i in range(1, 5):
            setattr(self, f"proj{i}_lif", lif(tau))
            if self.pooling[i - 1]:
                setattr(self, f"spool{i}", SPooling(tau=tau, **spool))
            setattr(self, f"proj{i}_conv", _conv3x3(widths[i - 1], widths[i]))
            setattr(self, f"proj{i}_bn", nn.BatchNorm2d(widths[i]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[0], x.shape[1]
        x = self.proj_bn(self.proj_conv(x.flatten(0, 1)))
        for i in range(1, 5):
            s = getattr(self, f"proj{i}_lif")(x.reshape(T, B, *x.shape[1:]))
            if self.pooling[i - 1]:
                s = getattr(self, f"spool{i}")(s)
            x = getattr(self, f"proj{i}_bn")(getattr(self, f"proj{i}_conv")(s.flatten(0, 1)))
        return x.reshape(T, B, *x.shape[1:])


def _conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=False)


class LSFormer(TokenMeanClassifier):
    """Tokenizer, ``depths`` LS blocks (block ``i`` uses ``dilations[i % len]``), token and time
    mean, Linear head. Static images ``[B, C, H, W]`` are repeated over ``T`` steps; with
    ``event_input=True`` the input is event frames ``[B, T, C, H, W]``.
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
        pooling_stat: str = "0011",
        window: int = 4,
        dilations: tuple[int, ...] = (1, 2),
        attn_scale: float = ATTN_SCALE,
        attn_threshold: float = ATTN_THRESHOLD,
        matmul_order: str = "qk_v",
        spool_kernel: int = 3,
        spool_stride: int = 2,
        spool_padding: int = 1,
        spool_threshold: float = 0.5,
        spool_neuron: str = "if",
        event_input: bool = False,
    ) -> None:
        super().__init__()
        self.T, self.img_size, self.num_classes = T, img_size, num_classes
        self.event_input = event_input
        self.patch_embed = LSTokenizer(
            in_channels, embed_dims, pooling_stat, tau, kernel_size=spool_kernel,
            stride=spool_stride, padding=spool_padding, threshold=spool_threshold,
            neuron=spool_neuron,
        )  # fmt: skip
        grid = img_size
        for pooled in self.patch_embed.pooling:
            if pooled:
                grid = (grid + 2 * spool_padding - spool_kernel) // spool_stride + 1
        for dil in dilations:
            _check_grid(grid, grid, window, dil)
        self.block = nn.ModuleList(
            LSBlock(
                embed_dims,
                num_heads,
                mlp_ratios,
                tau,
                window=window,
                dilation=dilations[i % len(dilations)],
                attn_scale=attn_scale,
                attn_threshold=attn_threshold,
                matmul_order=matmul_order,
            )
            for i in range(depths)
        )
        self.head = nn.Linear(embed_dims, num_classes)
        self.apply(init_weights)


def build(**config: Any) -> LSFormer:
    """Registry factory for ``lsformer-*``."""
    return LSFormer(**config)


_NOTE = "snncc interpretation (paper's equations and sizes not public)"
# (name, description, published parameters in M, config)
_CONFIGS: tuple[tuple[str, str, float | None, dict[str, Any]], ...] = (
    ("lsformer-4-384", f"CIFAR10 32x32, 8x8 tokens, window 4, dilations 1/2; {_NOTE}", None,
     {"img_size": 32, "in_channels": 3, "num_classes": 10, "T": 4, "embed_dims": 384,
      "num_heads": 12, "depths": 4, "pooling_stat": "0011", "window": 4, "dilations": (1, 2)}),
    ("lsformer-tiny", f"digits demo: 1x16x16 input, 4x4 tokens, window 2, dilations 1/2; {_NOTE}",
     None, {"img_size": 16, "in_channels": 1, "num_classes": 10, "T": 4, "embed_dims": 32,
            "num_heads": 4, "depths": 2, "pooling_stat": "0011", "window": 2,
            "dilations": (1, 2)}),
)  # fmt: skip

_DEFAULTS = keyword_defaults(LSFormer)

for _name, _desc, _published, _config in _CONFIGS:
    register_config("lsformer", build, _name, _desc, _published, {**_DEFAULTS, **_config})
