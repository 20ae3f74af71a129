"""Models that exist only as a spike graph: NIR files and ``snncc convert`` outputs.

Every command that takes a MODEL works on a :class:`~snncc.loading.checkpoint.LoadedModel`. For a
checkpoint that is a torch module to trace; a NIR file or a converted ANN has no module, only the
IR graph, so its ``LoadedModel`` carries ``graph`` (and ``module=None``) and
:func:`snncc.loading.to_graph` hands out a copy instead of tracing. Two sources:

- ``.nir`` files (or any HDF5 file in NIR's layout), imported with
  :func:`snncc.interop.nir_import.from_nir`;
- *graph files*: a ``torch.save``'d plain dictionary (so ``torch.load(weights_only=True)`` reads
  it and no code from the file runs)::

      {"format": "snncc-graph", "version": 1, "arch": str, "config": dict,
       "input_shape": [int], "timesteps": int, "time_axis": None, "metrics": dict | None,
       "graph": <snncc IR document as JSON>, "tensors": {key: Tensor}}

  written by :func:`save_graph_model` (``snncc convert`` writes its SNN this way).

Shapes are fixed in a graph, so ``--input-shape`` must equal the recorded shape (``E031``).
``--timesteps`` sets how many steps the reference runs; a graph file may record the fewest it
needs (``config["min_timesteps"]``, e.g. a converted ANN's pipeline), and fewer are refused
(``E030``). A NIR file from another tool records no timesteps: ``--timesteps`` is then required
(``NIR003``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.serialize import dumps_json, from_dict, to_dict
from snncc.loading.checkpoint import LoadedModel

FORMAT = "snncc-graph"
VERSION = 1


def _error(path: Path, problem: str, code: str, hint: str | None = None) -> SnnccError:
    return SnnccError(f"{path}: {problem}", code=code, hint=hint, exit_code=2)


def input_shape_of(g: Graph) -> tuple[int, ...]:
    """The per-sample input shape a graph records (its single Input's shape otherwise)."""
    shape = g.meta.get("input_shape")
    if isinstance(shape, list) and all(isinstance(s, int) for s in shape):
        return tuple(shape)
    return tuple(int(s) for s in g.op(g.inputs[0]).shape)


def save_graph_model(
    path: str | Path,
    graph: Graph,
    *,
    arch: str,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> bytes:
    """The bytes of a graph file for ``graph`` (write them with an atomic writer).

    ``graph.meta`` must record ``timesteps``; ``config`` and ``metrics`` hold plain values only.
    """
    import torch

    doc, arrays = to_dict(graph)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": str(arch),
        "config": dict(config or {}),
        "input_shape": list(input_shape_of(graph)),
        "timesteps": int(graph.meta["timesteps"]),
        "time_axis": graph.meta.get("time_axis"),
        "metrics": None if metrics is None else dict(metrics),
        "graph": dumps_json(doc),
        "tensors": {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.items()},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def _finish(
    g: Graph,
    path: Path,
    *,
    arch: str,
    config: dict[str, Any],
    metrics: dict[str, Any] | None,
    source: str,
    input_shape: tuple[int, ...] | None,
    timesteps: int | None,
) -> LoadedModel:
    """Apply the ``--input-shape`` / ``--timesteps`` rules and wrap ``g``."""
    shape = input_shape_of(g)
    if input_shape is not None and tuple(int(s) for s in input_shape) != shape:
        raise _error(
            path,
            f"input shape {list(input_shape)} does not fit: the graph's input is {list(shape)}",
            "E031",
            "a graph has fixed shapes; drop --input-shape or convert/export again",
        )
    T = timesteps if timesteps is not None else g.meta.get("timesteps")
    if T is None:
        raise _error(
            path,
            "the NIR graph does not record how many timesteps to run",
            "NIR003",
            "pass --timesteps T",
        )
    least = int(config.get("min_timesteps", 1))
    if int(T) < least:
        raise _error(
            path,
            f"{T} timesteps are too few: this graph needs at least {least}",
            "E030",
            f"pass --timesteps {least} or more",
        )
    g.meta["timesteps"] = int(T)
    return LoadedModel(
        module=None,
        arch=arch,
        config=config,
        input_shape=shape,
        timesteps=int(T),
        time_axis=g.meta.get("time_axis"),
        metrics=metrics,
        path=path,
        source=source,
        graph=g,
    )


def load_graph_document(
    doc: dict[str, Any],
    path: Path,
    *,
    input_shape: tuple[int, ...] | None = None,
    timesteps: int | None = None,
) -> LoadedModel:
    """A graph file's dictionary (already read weights-only) as a :class:`LoadedModel`."""
    from snncc.data.files import check_finite

    version = doc.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise _error(path, f"graph file version {version!r} is newer than this snncc reads",
                     "E025", "upgrade snncc")  # fmt: skip
    tensors, text = doc.get("tensors"), doc.get("graph")
    if not isinstance(tensors, dict) or not isinstance(text, str):
        raise _error(path, "invalid graph file: no 'graph' text or 'tensors' table", "E026")
    check_finite([(str(k), v) for k, v in tensors.items()], path)
    try:
        arrays = {str(k): v.numpy() for k, v in tensors.items()}
        g = from_dict(json.loads(text), arrays)
    except SnnccError as e:
        raise _error(path, f"invalid graph file: {e.message}", "E026") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise _error(path, f"invalid graph file: {type(e).__name__}: {e}", "E026") from None
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    metrics = doc.get("metrics") if isinstance(doc.get("metrics"), dict) else None
    return _finish(
        g, path, arch=str(doc.get("arch") or g.name), config=config, metrics=metrics,
        source="graph", input_shape=input_shape, timesteps=timesteps,
    )  # fmt: skip


def load_nir_model(
    path: Path, *, input_shape: tuple[int, ...] | None = None, timesteps: int | None = None
) -> LoadedModel:
    """A NIR file as a :class:`LoadedModel` (see :mod:`snncc.interop.nir_import`)."""
    from snncc.interop.nir_common import CONVENTION
    from snncc.interop.nir_import import from_nir

    facts: dict[str, Any] = {}
    g = from_nir(path, timesteps=timesteps, name=path.stem, facts=facts)
    config = {"format": "nir", "convention": CONVENTION, **facts}
    return _finish(
        g, path, arch=f"NIR graph {path.name}", config=config, metrics=None, source="nir",
        input_shape=input_shape, timesteps=timesteps,
    )  # fmt: skip


def graph_for(loaded: LoadedModel, input_shape: tuple[int, ...] | None = None) -> Graph:
    """A copy of a graph model's graph (``input_shape``, if given, must be the recorded one)."""
    if input_shape is not None and tuple(int(s) for s in input_shape) != loaded.input_shape:
        label = loaded.path if loaded.path is not None else loaded.arch
        raise SnnccError(
            f"{label}: input shape {list(input_shape)} does not fit: the graph's input is "
            f"{list(loaded.input_shape)}",
            code="E031",
            hint="a graph has fixed shapes",
        )
    g = loaded.graph.copy()
    g.meta["timesteps"] = int(loaded.timesteps)
    return g
