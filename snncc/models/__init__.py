"""The seed zoo: reference PyTorch implementations of spiking transformers, built on snncc.nn.

Importing this package registers every family. Use :func:`create` / :func:`names` / :func:`spec`.
"""

from __future__ import annotations

import importlib

from snncc.models.registry import (
    ConfigError,
    ModelSpec,
    create,
    names,
    register,
    spec,
    validate_config,
)

# Each family module registers its configurations when imported. A family file that does not exist
# yet is simply absent from the registry (families land one by one).
for _family in ("spikingformer", "spikformer", "sdt", "elastic", "lsformer", "ge2mst"):
    try:
        importlib.import_module(f"snncc.models.{_family}")
    except ModuleNotFoundError as _e:  # pragma: no cover - only while a family is being written
        if _e.name != f"snncc.models.{_family}":
            raise

__all__ = [
    "ConfigError",
    "ModelSpec",
    "create",
    "names",
    "register",
    "spec",
    "validate_config",
]
