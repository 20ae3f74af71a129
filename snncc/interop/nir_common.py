"""What snncc's NIR reader and writer share: the time convention, extension nodes, the HDF5 layout.

NIR (``nir`` package, Pedersen et al. 2024) describes neurons as continuous-time ODEs with
physical parameters (``tau`` in seconds, ``r``, ``v_leak``) and leaves the discretisation to each
platform. snncc's neurons are discrete (SpikingJelly semantics, docs/ir.md). Both directions
therefore assume one convention, stated here once and in docs/interop.md:

- **Forward Euler with step ``dt``** (seconds): ``v <- v + (dt/tau) * (v_leak - v + r * I)``,
  where ``I`` is the input summed over the node's incoming edges *at this step* (a per-step sample,
  not a Dirac delta); the spike test follows the update, then a spiking neuron resets to
  ``v_reset``. This is what snnTorch's exporter (``r = tau/dt``, ``dt = 1e-4``) and Norse's LIF
  box (``r = 1``) assume. ``IF`` integrates ``v <- v + dt * r * I``.
- ``dt`` comes from the caller, else the graph's ``metadata["dt"]``, else :data:`DEFAULT_DT`
  (1e-4 s, snnTorch's exporter and NIR's own Lava scripts). snncc writes ``metadata["dt"]``.
- NIR fires on ``v > v_threshold``, snncc (SpikingJelly) on ``v >= v_threshold``: the two differ
  only when a membrane lands exactly on the threshold (pinned by tests/interop/test_nir.py).
- The initial membrane is ``v_reset`` (SpikingJelly; snnTorch and Norse start at 0, the same when
  ``v_reset = 0``).

Extension nodes: an snncc op with no NIR node of the same semantics is written as a node whose
``type`` is ``snncc.<Name>`` (:func:`extension_type`); ``nir.read`` rejects unknown types, so a
reader that does not know them fails loudly instead of silently dropping an AND or a max-pool.
Their fields: scalar fields as JSON in the dataset ``snncc_fields``, arrays as datasets under
``arrays/``. Every node snncc writes also carries ``metadata`` entries ``snncc.*`` (the exact op,
type, source and port order) so that ``IR -> NIR -> IR`` is exact; other tools ignore them.

The HDF5 layout written by :func:`write_bytes` is the one ``nir.write`` produces (``version``,
``node/{type, nodes, edges, metadata}``), written without timestamps so the same graph gives the
same bytes.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O

#: Seconds per step when neither the caller nor the file says (snnTorch's exporter uses 1e-4).
DEFAULT_DT = 1e-4
#: Exporters compute derived parameters in float32: values this close (relative) to a
#: convention's value are taken as that value (about 8 float32 ulps).
PARAM_RTOL = 1e-6
#: Graph metadata key naming snncc's document version (absent in files written by others).
FORMAT_KEY = "snncc.format"
FORMAT = "snncc-nir"
VERSION = 1
EXT_PREFIX = "snncc."
#: The three extension nodes with names of their own (docs/interop.md); every other op that NIR
#: cannot express is written as ``snncc.<OpName>``.
NAMED_EXTENSIONS: dict[type[O.Op], str] = {
    O.Mul: "snncc.SpikeAnd",
    O.MatMul: "snncc.SpikeMatMul",
    O.MaxPool2d: "snncc.SpikeOr",
}
#: Stated in every imported graph's metadata and printed by ``snncc inspect``.
CONVENTION = (
    "forward Euler, v += dt/tau*(v_leak - v + r*I); spikes on v >= v_threshold (NIR: >); "
    "hard reset to v_reset; initial membrane v_reset"
)
#: Arrays of at least this many elements are gzip-compressed (``nir.write`` compresses all;
#: per-neuron LIF parameters are large and repetitive).
COMPRESS_FROM = 64
#: HDF5 signature, for recognising a NIR file whatever its suffix.
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def extension_type(op: O.Op) -> str:
    """The ``type`` string of the extension node that carries ``op``."""
    return NAMED_EXTENSIONS.get(type(op), f"{EXT_PREFIX}{op.kind}")


def op_class_of_extension(type_name: str) -> type[O.Op] | None:
    """The op class an extension ``type`` stands for (None: not an snncc extension)."""
    for cls, name in NAMED_EXTENSIONS.items():
        if name == type_name:
            return cls
    if type_name.startswith(EXT_PREFIX):
        return O.OPS.get(type_name[len(EXT_PREFIX) :])
    return None


@dataclass
class NirDoc:
    """A NIR graph as plain data: what :func:`write_bytes` writes and :func:`read_file` returns.

    ``nodes`` maps names to either ``nir`` node objects or plain dicts (extension nodes, or nodes
    read from a file: ``{"type": ..., field: value, "metadata": {...}}``).
    """

    nodes: dict[str, Any]
    edges: list[tuple[str, str]]
    metadata: dict[str, Any] = field(default_factory=dict)


def node_dict(node: Any) -> dict[str, Any]:
    """A node as the plain dict ``nir.write`` stores (``to_dict`` for ``nir`` objects)."""
    if isinstance(node, dict):
        return node
    d = node.to_dict()
    d.setdefault("metadata", dict(getattr(node, "metadata", {}) or {}))
    return d


# -- writing ----------------------------------------------------------------------------------
def _write_group(group: Any, doc: dict[str, Any]) -> None:
    """``nir.write``'s recursive layout, without timestamps (deterministic bytes)."""
    import h5py

    for key in sorted(doc):
        value = doc[key]
        if key == "metadata" and not value:
            continue
        if isinstance(value, dict):
            _write_group(group.create_group(str(key)), value)
        elif isinstance(value, str):
            group.create_dataset(key, data=value, dtype=h5py.string_dtype(), track_times=False)
        elif value is None:
            continue
        else:
            arr = np.asarray(value)
            packed = arr.dtype != object and arr.size >= COMPRESS_FROM  # as nir.write: gzip
            group.create_dataset(
                key, data=arr, compression="gzip" if packed else None, track_times=False
            )


def write_bytes(doc: NirDoc) -> bytes:
    """The HDF5 bytes of ``doc`` in ``nir.write``'s layout."""
    import h5py
    import nir

    buf = io.BytesIO()
    with h5py.File(buf, "w", track_order=False) as f:
        f.create_dataset("version", data=nir.version, dtype=h5py.string_dtype(), track_times=False)
        root = f.create_group("node")
        edges = np.array(doc.edges, dtype=object).reshape(-1, 2)
        tree = {
            "type": "NIRGraph",
            "nodes": {name: node_dict(n) for name, n in doc.nodes.items()},
            "metadata": doc.metadata,
        }
        _write_group(root, tree)
        root.create_dataset("edges", data=edges, dtype=h5py.string_dtype(), track_times=False)
    return buf.getvalue()


# -- reading ----------------------------------------------------------------------------------
def _bad(path: Path, problem: str, hint: str | None = None) -> SnnccError:
    return SnnccError(f"{path}: {problem}", code="NIR001", hint=hint, exit_code=2)


def _plain(value: Any) -> Any:
    """HDF5 values as Python: bytes become str, 0-d arrays scalars, arrays stay arrays."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.dtype == object:
        return np.vectorize(lambda v: v.decode("utf8") if isinstance(v, bytes) else v)(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_group(group: Any) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = _read_group(item)
        else:
            out[key] = _plain(item[()])
    return out


def looks_like_nir(path: Path) -> bool:
    """A ``.nir`` suffix, or an HDF5 file (any suffix) with NIR's top-level ``node`` group."""
    if path.suffix.lower() == ".nir":
        return True
    try:
        with open(path, "rb") as f:
            if f.read(8) != HDF5_MAGIC:
                return False
        import h5py

        with h5py.File(path, "r") as f:
            return "node" in f and "version" in f
    except (OSError, ValueError):
        return False


def read_file(path: str | Path) -> NirDoc:
    """Read a NIR HDF5 file into a :class:`NirDoc` without constructing ``nir`` node objects.

    Why not ``nir.read``: it rejects the extension nodes snncc writes (by design), and it runs
    NIR's type check, whose errors (``AssertionError`` without text) say nothing useful about
    a damaged file. The nodes stay plain dicts; :mod:`snncc.interop.nir_import` interprets them.
    """
    import h5py

    path = Path(path)
    with open(path, "rb") as fh:  # a missing or unreadable file is an OSError (OS001) as usual
        head = fh.read(len(HDF5_MAGIC))
    if head != HDF5_MAGIC:
        raise _bad(path, "not a NIR file (not an HDF5 file)", "write it with nir.write")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise _bad(path, f"truncated or corrupt NIR file ({e})") from e
    with f:
        if "node" not in f or not isinstance(f["node"], h5py.Group):
            raise _bad(path, "an HDF5 file without NIR's top-level 'node' group")
        try:
            tree = _read_group(f["node"])
        except (OSError, ValueError, KeyError) as e:
            raise _bad(path, f"truncated or corrupt NIR file ({e})") from e
    if tree.get("type") != "NIRGraph" or not isinstance(tree.get("nodes"), dict):
        raise _bad(path, f"the top-level node is {tree.get('type')!r}, not a NIRGraph")
    raw_edges = np.asarray(tree.get("edges", np.zeros((0, 2))), dtype=object).reshape(-1, 2)
    edges = [(str(_plain(a)), str(_plain(b))) for a, b in raw_edges]
    return NirDoc(tree["nodes"], edges, dict(tree.get("metadata") or {}))


# -- small numeric helpers --------------------------------------------------------------------
def uniform(value: Any) -> float | None:
    """The single value of a scalar or an array whose elements are all equal (else None)."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        return None
    first = float(arr.flat[0])
    return first if bool(np.all(arr == first)) else None


def close(a: float, b: float, rtol: float = PARAM_RTOL) -> bool:
    """``a`` equals ``b`` up to the exporters' float32 rounding (:data:`PARAM_RTOL`)."""
    return abs(a - b) <= rtol * max(abs(a), abs(b))


def dumps(value: Any) -> str:
    """Canonical JSON for metadata strings (sorted keys, so files are deterministic)."""
    return json.dumps(value, sort_keys=True)
