"""The seed-zoo registry: an explicit table of named configurations.

Each family module (``spikingformer.py``, ``spikformer.py`` …) calls :func:`register` at import
time with one :class:`ModelSpec` per published or tiny configuration. ``create(name, **overrides)``
builds the torch module; ``spec(name)`` gives what the CLI, checkpoints and the tracer need to
know without building it (input shape, time layout, timesteps, elasticity).

Why ``create`` validates the configuration before calling the family's constructor: a config can
come from a checkpoint file (``snncc.load_checkpoint`` rebuilds the model from ``arch`` +
``config``), so a hand-edited or damaged value must be reported as bad input naming the field
(exit 2) rather than surface as a ``RuntimeError`` from deep inside ``torch.nn.Conv2d``. The
checks are generic: every field must have the type of the registered default, common size fields
must be positive integers and ``embed_dims`` must be a multiple of ``num_heads``; whatever a
constructor still rejects is turned into the same kind of error (:class:`ConfigError`, ``E015``).
"""

from __future__ import annotations

import math
import numbers
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


class ConfigError(SnnccError, ValueError):
    """An invalid configuration value (``E015``, exit 2).

    Also a ``ValueError``, so code that builds models programmatically and catches the
    constructors' own ``ValueError`` keeps working now that ``create`` reports them this way.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, code="E015", hint=hint, exit_code=2)


#: Fields that count something (sizes, layers, steps): integers >= 1 wherever they appear.
POSITIVE_INTS = frozenset(
    {
        "T", "img_size", "in_channels", "num_classes", "embed_dims", "num_heads", "depths",
        "bits", "window", "num_granularities", "spool_kernel", "spool_stride", "feature_gamma",
        "attn_lower_heads_limit", "sps_lower_filter_limit",
    }
)  # fmt: skip
#: Integer fields where 0 is meaningful (no padding, no extra conv stage).
NON_NEGATIVE_INTS = frozenset({"conv_depths", "spool_padding"})
#: Real-valued fields that are rates, time constants, thresholds or scales: finite and > 0.
POSITIVE_REALS = frozenset(
    {
        "mlp_ratios", "tau", "theta", "attn_theta", "qkv_threshold", "attn_threshold",
        "spool_threshold", "sps_alpha", "attn_scale",
    }
)  # fmt: skip


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _short(value: Any) -> str:
    """``repr(value)``, cut to keep the error one readable line (a file can hold anything)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _type_problem(key: str, value: Any, default: Any) -> str | None:
    """Why ``value`` cannot stand in for the registered ``default`` (None: it can).

    The registered default is the schema: a field registered as an int must be an int (a float
    such as 2.5 would fail inside a torch constructor), a bool a bool, a string a string and a
    tuple a list or tuple. ``None`` defaults accept anything; ints are accepted for floats.
    """
    if default is None:
        return None
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif _is_int(default):
        ok, want = _is_int(value), "an integer"
    elif _is_real(default):
        ok, want = _is_real(value), "a number"
    elif isinstance(default, str):
        ok, want = isinstance(value, str), "a string"
    elif isinstance(default, (tuple, list)):
        ok, want = isinstance(value, (tuple, list)), "a list"
    else:
        return None
    return None if ok else f"{key!r} must be {want}, got {_short(value)}"


def _value_problem(key: str, value: Any) -> str | None:
    """Range rules of :data:`POSITIVE_INTS`, :data:`NON_NEGATIVE_INTS`, :data:`POSITIVE_REALS`."""
    if key in POSITIVE_INTS and not (_is_int(value) and value >= 1):
        return f"{key!r} must be a positive integer, got {_short(value)}"
    if key in NON_NEGATIVE_INTS and not (_is_int(value) and value >= 0):
        return f"{key!r} must be a non-negative integer, got {_short(value)}"
    if key in POSITIVE_REALS and not (_is_real(value) and _finite(value) and value > 0):
        return f"{key!r} must be a finite number > 0, got {_short(value)}"
    return None


def validate_config(name: str, config: dict[str, Any]) -> None:
    """Check ``config`` (a full config or overrides) for ``name`` before anything is built.

    Raises ``E011`` for unknown fields and :class:`ConfigError` (``E015``) naming the first bad
    field: wrong type (compared with the registered default), out of range (see
    :data:`POSITIVE_INTS` …), or ``embed_dims`` not a multiple of ``num_heads``.
    """
    s = spec(name)
    unknown = set(config) - set(s.config)
    if unknown:
        raise SnnccError(
            f"{name}: unknown config field(s) {sorted(unknown)}",
            code="E011",
            hint=f"valid fields: {', '.join(sorted(s.config))}",
        )
    for key, value in config.items():
        problem = _type_problem(key, value, s.config[key]) or _value_problem(key, value)
        if problem is not None:
            raise ConfigError(
                f"{name}: invalid config: {problem}",
                hint=f"the registered value of {key!r} is {s.config[key]!r}",
            )
    full = {**s.config, **config}
    dims, heads = full.get("embed_dims"), full.get("num_heads")
    if _is_int(dims) and _is_int(heads) and heads >= 1 and dims % heads:
        raise ConfigError(
            f"{name}: invalid config: 'embed_dims' {dims} is not a multiple of 'num_heads' {heads}",
            hint="choose num_heads that divides embed_dims",
        )


#: What a family constructor raises for a configuration it cannot build (beyond the checks of
#: :func:`validate_config`): shapes torch refuses, arithmetic on bad sizes, explicit checks.
_BUILD_ERRORS = (
    ValueError, TypeError, RuntimeError, ZeroDivisionError, AssertionError, IndexError,
    KeyError, OverflowError,
)  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    """``a == b`` that never raises (an array-valued field compares element-wise)."""
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an ambiguous comparison just means "changed"
        return False


def create(name: str, **overrides: Any) -> Any:
    """Build the torch module for ``name`` with config fields overridden by ``overrides``.

    ``overrides`` are validated first (:func:`validate_config`). If the constructor still fails
    for a config that differs from the registered one, the failure is the config's fault and
    becomes a :class:`ConfigError` naming the architecture, the changed fields and the cause. A
    failure with the registered config itself is a bug in snncc and propagates unchanged.
    """
    s = spec(name)
    validate_config(name, overrides)
    config = {**s.config, **overrides}
    changed = {k: v for k, v in overrides.items() if not _same(s.config[k], v)}
    try:
        return s.factory(**config)
    except _BUILD_ERRORS as e:
        if not changed:
            raise
        fields = ", ".join(f"{k}={_short(v)}" for k, v in sorted(changed.items()))
        cause = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ConfigError(
            f"{name}: the config ({fields}) does not build the model: {cause}",
            hint="use values the architecture supports (`snncc models --json` lists the "
            "registered configurations)",
        ) from e
