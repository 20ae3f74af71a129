"""snncc: a deployment compiler for spiking transformers onto neuromorphic hardware.

The public surface is deliberately small. Importing :mod:`snncc` needs numpy and networkx only;
the torch-based pieces (``trace``, checkpoints) are imported lazily so that the same package also
imports in the Python 3.10 runtime environment next to lava-nc, where torch is absent.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from snncc.ir.graph import Graph  # noqa: E402
from snncc.ir.serialize import load, save  # noqa: E402

__all__ = [
    "Graph",
    "load",
    "save",
    "trace",
    "save_checkpoint",
    "load_checkpoint",
    "export_program",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Lazy: torch is only needed for these, and only in the compile environment.
    if name == "trace":
        from snncc.frontend.trace import trace

        return trace
    if name == "export_program":
        from snncc.frontend.exported import export_program

        return export_program
    if name in ("save_checkpoint", "load_checkpoint"):
        from snncc.loading import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'snncc' has no attribute {name!r}")
