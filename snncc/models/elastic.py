"""Elastic Spiking Transformer (Ancilotto et al., arXiv:2605.13869): configs and the elastic API.

The modules live in :mod:`snncc.models.elastic_modules` (XiMLP, XiSSA, XiConvMultiGran and the
granularity generators), :mod:`snncc.models.elastic_models` (the two networks) and
:mod:`snncc.models.elastic_static` (what a granularity exports to). This module registers the
configurations and provides:

* :func:`export_slice` — a static copy of a model at one granularity (seed-models.md §3.4);
* :func:`sample_granularity` — the training draw, ``p ∝ [1, 2, …, G]`` (0.1/0.2/0.3/0.4);
* :func:`slice_param_count` — parameters a static slice keeps (snncc's definition);
* :func:`authors_param_count` — the authors' ``get_granularity_parameters`` accounting, which
  is what their EHWGesture report quotes (680,502 … 2,587,094).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.models import elastic_modules as E
from snncc.models.blocks import unused_parameter_names
from snncc.models.elastic_models import (
    DIMS,
    ElasticModel,
    ElasticSpikformer,
    ElasticSpikingformer,
)
from snncc.models.registry import ModelSpec, register

__all__ = [
    "ElasticModel",
    "ElasticSpikformer",
    "ElasticSpikingformer",
    "authors_param_count",
    "export_slice",
    "sample_granularity",
    "slice_param_count",
    "static_param_count",
]


def sample_granularity(rng: np.random.Generator, num_granularities: int = 4) -> int:
    """One granularity index for the whole network, ``p(g) ∝ g + 1`` (the authors' training
    draw: 0.1, 0.2, 0.3, 0.4 for four levels, biased towards larger sub-networks)."""
    p = np.arange(1, num_granularities + 1, dtype=np.float64)
    return int(rng.choice(num_granularities, p=p / p.sum()))


def _require_elastic(model: nn.Module) -> ElasticModel:
    if not isinstance(model, ElasticModel) or not model.elastic_modules():
        raise SnnccError(
            f"{type(model).__name__} is not an elastic model",
            code="E013",
            hint="use an elastic-* model from `snncc models`",
        )
    return model


def export_slice(
    model: nn.Module,
    level: int | None = None,
    *,
    feature: int | None = None,
    attention: int | None = None,
    mlp: int | None = None,
) -> nn.Module:
    """A static copy of ``model`` at the given granularity (unspecified dimensions: ``level``,
    else the model's current setting). Every elastic module is replaced by the plain module of
    its sliced width (XiMLP -> MLP of hidden ``k``, XiSSA -> SSA of ``kh`` heads,
    XiConvMultiGran -> conv of ``c`` bottleneck channels); everything else is copied. The copy
    computes exactly what ``model`` computes at that granularity and records the choice in
    ``slice_granularity``; ``model`` itself is not modified."""
    src = _require_elastic(model)
    out = copy.deepcopy(src)
    out.set_granularity(level, feature=feature, attention=attention, mlp=mlp)
    chosen = out.current_granularity()
    levels = out.granularities()
    for path, m in out.elastic_modules():
        parent_path, _, name = path.rpartition(".")
        parent = out.get_submodule(parent_path) if parent_path else out
        setattr(parent, name, m.static().train(m.training))
    out.slice_granularity = {d: chosen[d] for d in DIMS if d in chosen}
    out.slice_levels = {d: levels[d][chosen[d]] for d in DIMS if d in chosen}
    return out


def _compute_parameters(model: nn.Module) -> dict[str, int]:
    dead = unused_parameter_names(model)
    dead.update(getattr(model, "unused_parameters", ()))
    return {n: p.numel() for n, p in model.named_parameters() if n not in dead}


def slice_param_count(
    model: nn.Module,
    level: int | None = None,
    *,
    feature: int | None = None,
    attention: int | None = None,
    mlp: int | None = None,
) -> int:
    """Parameters at a granularity, snncc's definition: the parameter elements of
    ``export_slice(model, …)`` on the compute path — every conv/linear weight and bias and BN
    affine weight and bias the static slice keeps (sliced rows/columns, the one BN of the
    chosen granularity), excluding modules the forward never calls (``norm``, ``norm1``,
    ``norm2``, ``pos_embed``). BN running statistics are buffers and are not counted."""
    return static_param_count(export_slice(model, level, feature=feature, attention=attention,
                                           mlp=mlp))  # fmt: skip


def static_param_count(sliced: nn.Module) -> int:
    """:func:`slice_param_count` of an already exported slice (no second export)."""
    return sum(_compute_parameters(sliced).values())


def _authors_variable(m: E.Elastic, g: int) -> int:
    """The authors' per-module ``get_granularity_parameters()[g]`` formulas, verbatim."""
    if isinstance(m, E.XiConvMultiGran):
        c = m.levels[g]
        total = m.c_in * c if m.compression > 1 else 0
        total += c * m.c_out * m.kernel_size * m.kernel_size
        return total + (2 * m.c_out if m.current_bn() is not None else 0)
    if isinstance(m, E.XiSSA):
        h, dim, hd = m.levels[g], m.dim, m.head_dim
        return 3 * (dim * h + dim) + 3 * 2 * h + 3 * dim * h * hd + h * dim + dim + 2 * dim
    if isinstance(m, (E.XiMLP, E.XiPreMLP)):
        h = m.levels[g]
        d = (m.fc1_conv if isinstance(m, E.XiMLP) else m.mlp1_conv).in_channels
        return d * h + h + 2 * h + d * h + d + 2 * d
    raise TypeError(type(m).__name__)  # pragma: no cover - every elastic class is listed


def authors_param_count(model: nn.Module, feature: int, attention: int, mlp: int) -> dict[str, int]:
    """The authors' parameter accounting (``Spikformer.get_granularity_parameters``).

    ``fixed`` = parameters of the tokenizer's non-elastic convolutions (XiConv / Conv2d; their
    BatchNorms are *not* counted) plus the head; ``variable`` = the authors' closed-form count of
    each elastic module at its granularity. Their XiSSA formula differs from the real layer
    shapes (it counts ``3·(D·h + D) + 6h + 3·D·h·d + h·D + 3D`` for ``h`` heads instead of
    ``4·D·h·d + 6·h·d + 3D``) and the tokenizer BNs are left out, so this is *not* the size of a
    slice; it is kept because it is the number the authors publish. Use
    :func:`slice_param_count` for memory.
    """
    src = _require_elastic(model)
    chosen = {"feature": feature, "attention": attention, "mlp": mlp}
    fixed = sum(p.numel() for p in src.head.parameters())
    elastic = [path for path, _ in src.elastic_modules()]
    for path, m in src.named_modules():
        inside = any(path == e or path.startswith(e + ".") for e in elastic)
        if path.startswith("patch_embed.") and isinstance(m, nn.Conv2d) and not inside:
            fixed += sum(p.numel() for p in m.parameters())
    variable = sum(_authors_variable(m, chosen[m.elastic_dim]) for _, m in src.elastic_modules())
    return {"fixed": fixed, "variable": variable, "total": fixed + variable}


def _build_spikformer(**config: Any) -> ElasticSpikformer:
    return ElasticSpikformer(**config)


def _build_spikingformer(**config: Any) -> ElasticSpikingformer:
    return ElasticSpikingformer(**config)


_EHW = {
    "img_size": 160, "in_channels": 2, "num_classes": 22, "embed_dims": 256, "num_heads": 32,
    "mlp_ratios": 4.0, "depths": 2, "T": 16, "event_input": True, "sps_alpha": 2.0,
    "pools": (True, True, True, True), "xisps_elastic": True, "attn_scale": 0.25,
    "num_granularities": 4, "attn_lower_heads_limit": 8, "sps_lower_filter_limit": 16,
    "head_rule": "base2",
}  # fmt: skip
_SPIKFORMER_TINY = {
    **_EHW, "img_size": 16, "in_channels": 1, "num_classes": 10, "embed_dims": 32,
    "num_heads": 4, "T": 4, "event_input": False, "pools": (False, False, True, True),
    "attn_lower_heads_limit": 1, "sps_lower_filter_limit": 4,
}  # fmt: skip
_SPIKINGFORMER_TINY = {
    "img_size": 16, "in_channels": 1, "num_classes": 10, "embed_dims": 32, "num_heads": 4,
    "mlp_ratios": 4.0, "depths": 2, "T": 4, "tau": 2.0, "tokenizer": "cifar",
    "event_input": False, "attn_scale": 0.125, "num_granularities": 4,
    "attn_lower_heads_limit": 1, "sps_lower_filter_limit": 4, "feature_gamma": 1,
    "head_rule": "base2",
}  # fmt: skip
_SPIKINGFORMER_DVS = {
    **_SPIKINGFORMER_TINY, "img_size": 128, "in_channels": 2, "embed_dims": 256,
    "num_heads": 16, "T": 16, "tau": 1.5, "tokenizer": "imagenet", "event_input": True,
    "attn_lower_heads_limit": 2,
}  # fmt: skip


def _register(name: str, factory: Any, family: str, config: dict[str, Any], desc: str) -> None:
    event = config["event_input"]
    c, s, T = config["in_channels"], config["img_size"], config["T"]
    register(
        ModelSpec(
            name=name,
            family=family,
            factory=factory,
            config=dict(config),
            input_shape=(T, c, s, s) if event else (c, s, s),
            timesteps=T,
            time_axis=1 if event else None,
            elastic=True,
            num_classes=config["num_classes"],
            description=desc,
            published_params=2.59 if name == "elastic-spikformer-ehw" else None,
        )
    )


_register(
    "elastic-spikformer-ehw",
    _build_spikformer,
    "elastic-spikformer",
    _EHW,
    "EHWGesture 2x160x160 events, D=256, 32 heads (8-32), depth 2, XiSPSv2 a=2, T=16",
)
_register(
    "elastic-spikformer-tiny",
    _build_spikformer,
    "elastic-spikformer",
    _SPIKFORMER_TINY,
    "digits demo: 1x16x16, D=32, 4 heads, 2 blocks, 4x4 tokens, T=4",
)
_register(
    "elastic-spikingformer-tiny",
    _build_spikingformer,
    "elastic-spikingformer",
    _SPIKINGFORMER_TINY,
    "digits demo: 1x16x16, D=32, 4 heads, 2 blocks, 4x4 tokens, T=4",
)
_register(
    "elastic-spikingformer-2-256-dvs",
    _build_spikingformer,
    "elastic-spikingformer",
    _SPIKINGFORMER_DVS,
    "CIFAR10-DVS 2x128x128 events, D=256, 16 heads, tau 1.5, T=16",
)
