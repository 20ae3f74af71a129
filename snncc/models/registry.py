"""The seed-zoo registry: an explicit table of named configurations.

Each family module (``spikingformer.py``, ``spikformer.py`` …) calls :func:`register` at import
time with one :class:`ModelSpec` per published or tiny configuration. ``create(name, **overrides)``
builds the torch module; ``spec(name)`` gives what the CLI, checkpoints and the tracer need to
know without building it (input shape, time layout, timesteps, elasticity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snncc.diagnostics import SnnccError


@dataclass(frozen=True)
class ModelSpec:
    """A named configuration of a model family.

    ``input_shape`` excludes the batch axis. ``time_axis`` says where time is in the model's input
    *including* the batch axis: ``None`` for a static sample the model repeats over time itself
    (images, ``[B, C, H, W]``), ``1`` for ``[B, T, C, H, W]`` event frames.
    """

    name: str
    family: str
    factory: Callable[..., Any]
    config: dict[str, Any]
    input_shape: tuple[int, ...]
    timesteps: int
    time_axis: int | None = None
    elastic: bool = False
    num_classes: int = 10
    description: str = ""
    published_params: float | None = None  # in millions, when the paper/code reports it
    extra: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a configuration; names are unique."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    """All registered model names, sorted."""
    return sorted(_REGISTRY)


def spec(name: str) -> ModelSpec:
    """The spec of ``name``; unknown names give an SnnccError listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SnnccError(
            f"unknown architecture {name!r}",
            code="E010",
            hint=f"use one of: {', '.join(names())} (see `snncc models`)",
        ) from None


def create(name: str, **overrides: Any) -> Any:
    """Build the torch module for ``name`` with config fields overridden by ``overrides``."""
    s = spec(name)
    unknown = set(overrides) - set(s.config)
    if unknown:
        raise SnnccError(
            f"{name}: unknown config field(s) {sorted(unknown)}",
            code="E011",
            hint=f"valid fields: {', '.join(sorted(s.config))}",
        )
    return s.factory(**{**s.config, **overrides})
