"""Building blocks shared by the seed-zoo families (stable API; other family modules import it).

Everything here is deliberately small and tracer-friendly: plain reshapes/permutes and module
calls, no in-place tensor ops, no data-dependent Python control flow. The family modules
(``spikingformer.py``, ``spikformer.py``, ``sdt.py``, and the elastic / LSFormer / Ge²mS-T ones)
keep the authors' module names; this module only holds what is the same across families:

* :func:`lif` — the one neuron constructor every seed model uses (SpikingJelly
  ``MultiStepLIFNode(tau, detach_reset=True)``, hard reset to 0), so thresholds and tau are
  written in exactly one place per call site.
* :func:`split_heads` / :func:`merge_heads` — the ``[T, B, C, N] <-> [T, B, h, N, d]`` head
  re-indexing the authors write inline (head ``j`` owns channels ``[j*d, (j+1)*d)``).
* :func:`repeat_over_time` — direct encoding of a static image (``x.unsqueeze(0).repeat(T, ...)``).
* :func:`init_weights` — the authors' ``_init_weights`` (truncated normal ``std=.02`` on Linear).
* :func:`register_config` — one registry entry from a family config dict (input shape and time
  layout derived from ``img_size``, ``in_channels``, ``T`` and ``event_input``).
* :func:`param_counts` — total parameters *and* the count on the compute path. Spikformer and
  Spikingformer blocks build ``norm1``/``norm2`` LayerNorms they never call; published parameter
  counts include them, deployment memory does not. A module lists such dead children in its
  ``unused_modules`` class attribute and :func:`param_counts` excludes their parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snncc.models.registry import ModelSpec, register
from snncc.nn import LIF

#: Spiking self-attention constants shared by Spikformer, Spikingformer and SDT (seed-models §2.2).
ATTN_SCALE = 0.125
ATTN_THRESHOLD = 0.5


def lif(tau: float = 2.0, v_threshold: float = 1.0) -> LIF:
    """The seed zoo's neuron: ``MultiStepLIFNode(tau, v_threshold, detach_reset=True)``.

    Hard reset to 0 and ``decay_input=True`` are SpikingJelly's defaults, which every seed model
    keeps; ``detach_reset=True`` is what all the authors pass.
    """
    return LIF(tau=tau, v_threshold=v_threshold, detach_reset=True)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``[T, B, C, N]`` (channel-major tokens) -> ``[T, B, h, N, d]`` with ``d = C / h``.

    Written as the authors write it (transpose, reshape, permute) so that traced graphs show the
    same structural ops as the original code.
    """
    t, b, c, n = x.shape
    return x.transpose(-1, -2).reshape(t, b, n, num_heads, c // num_heads).permute(0, 1, 3, 2, 4)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, h, N, d]`` -> ``[T, B, C, N]``: the inverse of :func:`split_heads`."""
    t, b, h, n, d = x.shape
    return x.transpose(3, 4).reshape(t, b, h * d, n)


def repeat_over_time(x: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Direct encoding: present the static ``[B, C, H, W]`` sample at every one of ``T`` steps."""
    return x.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1)


def init_weights(m: nn.Module) -> None:
    """The authors' ``_init_weights``: Linear ``trunc_normal(std=.02)``, bias 0; LayerNorm 1/0.

    Applied with ``model.apply(init_weights)``; conv and BN keep PyTorch's defaults, as in the
    Spikformer / Spikingformer code.
    """
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)
    elif isinstance(m, nn.LayerNorm):
        nn.init.constant_(m.bias, 0.0)
        nn.init.constant_(m.weight, 1.0)


class TokenMeanClassifier(nn.Module):
    """The shared ends of the spike-driven backbones: time handling in, token/time mean out.

    Subclasses set ``patch_embed`` (``[T, B, C, H, W] -> [T, B, D, h, w]``), ``block`` (a
    ``ModuleList`` on ``[T, B, D, h, w]``), ``head`` (Linear), ``T`` and ``event_input``. Static
    images ``[B, C, H, W]`` are repeated over ``T`` steps (direct encoding); event frames come as
    ``[B, T, C, H, W]``. The readout averages tokens, then time, then applies the head.
    """

    T: int
    event_input: bool

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` input -> ``[T, B, D]`` token-averaged residual stream."""
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return x.flatten(3).mean(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(1, 0, 2, 3, 4) if self.event_input else repeat_over_time(x, self.T)
        return self.head(self.forward_features(x).mean(0))


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts of a model: everything it owns, and what its forward pass uses."""

    total: int
    compute: int

    @property
    def unused(self) -> int:
        """Parameters of modules that are built but never called (e.g. dead LayerNorms)."""
        return self.total - self.compute


def unused_parameter_names(model: nn.Module) -> set[str]:
    """State-dict names of the parameters that live in declared-unused submodules."""
    names: set[str] = set()
    for prefix, module in model.named_modules():
        for child in getattr(module, "unused_modules", ()):
            sub = module.get_submodule(child)
            base = f"{prefix}.{child}" if prefix else child
            names.update(f"{base}.{p}" for p, _ in sub.named_parameters())
    return names


def param_counts(model: nn.Module) -> ParamCounts:
    """Total parameter count and the count on the compute path (without unused modules).

    Works on models built on the ``meta`` device too (only ``numel`` is read), which keeps
    counting the 66 M-parameter ImageNet configurations cheap.
    """
    dead = unused_parameter_names(model)
    total = 0
    compute = 0
    for name, p in model.named_parameters():
        total += p.numel()
        if name not in dead:
            compute += p.numel()
    return ParamCounts(total=total, compute=compute)


def keyword_defaults(cls: type) -> dict[str, Any]:
    """The keyword-only constructor arguments of ``cls`` with their defaults: registering them
    as config fields lets ``create(name, field=...)`` reach every knob."""
    return {
        k: p.default
        for k, p in inspect.signature(cls.__init__).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def register_config(
    family: str,
    factory: Callable[..., nn.Module],
    name: str,
    description: str,
    published_params: float | None,
    config: dict[str, Any],
) -> ModelSpec:
    """Register ``name`` with the input layout implied by its config.

    Static-image models take ``[B, C, H, W]`` and repeat it over time themselves
    (``time_axis=None``); ``event_input=True`` models take ``[B, T, C, H, W]`` (``time_axis=1``).
    """
    img, c_in, T = config["img_size"], config["in_channels"], config["T"]
    event = bool(config.get("event_input", False))
    return register(
        ModelSpec(
            name=name,
            family=family,
            factory=factory,
            config=dict(config),
            input_shape=(T, c_in, img, img) if event else (c_in, img, img),
            timesteps=T,
            time_axis=1 if event else None,
            num_classes=config["num_classes"],
            description=description,
            published_params=published_params,
        )
    )
