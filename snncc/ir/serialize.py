"""Versioned, deterministic save/load of a :class:`~snncc.ir.graph.Graph`.

Format (a directory, or a single ``.snn`` zip-free pair when given a file stem): ``graph.json`` with
nodes, ops (scalar fields inline, arrays by reference), edges and types, plus ``tensors.npz`` with
every array. ``load(save(g)) == g`` holds for every op class, weights included.

Determinism: ``numpy.savez`` stamps each member with the current time, so the same graph would give
different bytes; :func:`write_npz` writes the zip with a fixed timestamp and sorted members.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.ops import OPS, Op
from snncc.ir.types import Kind, TensorType

FORMAT = "snncc-ir"
VERSION = 1
_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays as an ``.npz`` whose bytes depend only on the arrays (fixed zip timestamps).

    The zip is streamed into a temporary file next to ``path`` (renamed into place at the end),
    one member at a time, so memory stays at one array: the weights of a large model are not
    held twice more as an in-memory archive.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as zf:
            for key in sorted(arrays):
                info = zipfile.ZipInfo(key + ".npy", date_time=_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(arrays[key]), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename, so readers never see half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, fixed indentation) so artifacts are byte-identical."""
    return json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n"


def _field_to_json(value: Any) -> Any:
    if isinstance(value, Kind):
        return {"__kind__": value.value}
    if isinstance(value, tuple):
        return {"__tuple__": [_field_to_json(v) for v in value]}
    return value


def _field_from_json(value: Any) -> Any:
    if isinstance(value, dict) and "__kind__" in value:
        return Kind(value["__kind__"])
    if isinstance(value, dict) and "__tuple__" in value:
        return tuple(_field_from_json(v) for v in value["__tuple__"])
    return value


def _narrow(a: np.ndarray) -> np.ndarray:
    """An integer array in the narrowest signed type that holds its values exactly.

    Quantized weights are int64 in memory (overflow-free arithmetic in the reference modes) but
    8- or 16-bit in value; storing them narrow makes ``tensors.npz`` up to 8x smaller. The
    original dtype is recorded next to the array and restored on load, so ``load(save(g)) == g``.
    """
    if a.dtype.kind not in "iu" or a.size == 0:
        return a
    lo, hi = int(a.min()), int(a.max())
    for dt in (np.int8, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return a.astype(dt) if np.dtype(dt).itemsize < a.dtype.itemsize else a
    return a


def op_to_dict(op: Op, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Generic op encoding: arrays go to ``arrays`` under ``prefix/field``; no per-op code."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(op):
        v = getattr(op, f.name)
        if isinstance(v, np.ndarray):
            key = f"{prefix}/{f.name}"
            stored = _narrow(v)
            arrays[key] = stored
            fields[f.name] = {"__array__": key}
            if stored.dtype != v.dtype:
                fields[f.name]["dtype"] = v.dtype.str
        else:
            fields[f.name] = _field_to_json(v)
    return {"type": type(op).__name__, "fields": fields}


def op_from_dict(d: dict[str, Any], arrays: dict[str, np.ndarray]) -> Op:
    """Inverse of :func:`op_to_dict`."""
    cls = OPS.get(d["type"])
    if cls is None:
        raise SnnccError(f"unknown op type {d['type']!r} in IR file", code="IR010")
    kwargs = {}
    for name, v in d["fields"].items():
        if isinstance(v, dict) and "__array__" in v:
            a = arrays[v["__array__"]]
            kwargs[name] = a.astype(np.dtype(v["dtype"])) if "dtype" in v else a
        else:
            kwargs[name] = _field_from_json(v)
    return cls(**kwargs)


def to_dict(g: Graph) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON document and the array table describing ``g``."""
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for n in g.nodes():
        t = g.type(n)
        nodes.append(
            {
                "name": n,
                "op": op_to_dict(g.op(n), n, arrays),
                "type": t.to_dict() if t is not None else None,
                "src": g.src(n),
                "loc": g.loc(n),
                "meta": g.node_meta(n),
            }
        )
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "name": g.name,
        "meta": g.meta,
        "inputs": g.inputs,
        "outputs": g.outputs,
        "nodes": nodes,
        "edges": [[u, v, p] for u, v, p in g.edges()],
    }
    return doc, arrays


def from_dict(doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Graph:
    """Rebuild a graph from :func:`to_dict` output; rejects other formats and newer versions."""
    if doc.get("format") != FORMAT:
        raise SnnccError("not an snncc IR document", code="IR011")
    if int(doc.get("version", 0)) > VERSION:
        raise SnnccError(
            f"IR version {doc['version']} is newer than this snncc ({VERSION})",
            code="IR012",
            hint="upgrade snncc",
        )
    g = Graph(doc["name"])
    for nd in doc["nodes"]:
        t = TensorType.from_dict(nd["type"]) if nd["type"] is not None else None
        g.add(
            nd["name"],
            op_from_dict(nd["op"], arrays),
            t,
            src=nd["src"],
            loc=nd["loc"],
            meta=nd["meta"],
        )
    for u, v, p in doc["edges"]:
        g.connect(u, v, p)
    g.inputs, g.outputs, g.meta = list(doc["inputs"]), list(doc["outputs"]), dict(doc["meta"])
    return g


def save(g: Graph, path: str | Path) -> Path:
    """Save ``g`` into directory ``path`` (``graph.json`` + ``tensors.npz``); returns the path."""
    path = Path(path)
    doc, arrays = to_dict(g)
    path.mkdir(parents=True, exist_ok=True)
    write_npz(path / "tensors.npz", arrays)
    atomic_write_bytes(path / "graph.json", dumps_json(doc).encode())
    return path


def load(path: str | Path) -> Graph:
    """Load a graph written by :func:`save`."""
    path = Path(path)
    gj, tz = path / "graph.json", path / "tensors.npz"
    if not gj.is_file() or not tz.is_file():
        raise SnnccError(
            f"{path}: not an snncc IR directory (needs graph.json and tensors.npz)", code="IR013"
        )
    try:
        doc = json.loads(gj.read_text())
        with np.load(tz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise SnnccError(f"{path}: corrupt IR directory: {e}", code="IR014") from e
    return from_dict(doc, arrays)
