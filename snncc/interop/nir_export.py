"""snncc IR -> NIR: standard nodes where the semantics match, documented extension nodes elsewhere.

Why a node-by-node table: each snncc op either has a NIR node with *the same* semantics under the
convention of :mod:`snncc.interop.nir_common` (forward Euler with ``dt``), or it does not, and
then it is written as an ``snncc.*`` extension node that other readers reject loudly. Nothing is
approximated: a soft-reset LIF (NIR neurons only reset to ``v_reset``), a max-pool over spikes
(NIR has no max), a product of two activations (attention), the quantized integer layers of a
build and the structural ops NIR lacks all become extension nodes.

Standard mappings (``tau_s`` is snncc's ``tau`` in steps, ``dt`` the step in seconds):

======================  ============================================================================
snncc                   NIR
======================  ============================================================================
Input                   Input(shape)
Linear (1-D input)      Affine(weight, bias) / Linear(weight) without bias
Conv1d / Conv2d         Conv1d / Conv2d (bias zeros when absent), ``input_shape`` set
AvgPool2d, padding 0    AvgPool2d
LIF, hard reset         LIF(tau = tau_s*dt, r = 1 (decay_input) or tau_s, v_leak = v_reset, ...)
IF, hard reset          IF(r = 1/dt, v_threshold, v_reset)
Scale                   Scale(factor everywhere)
Delay                   Delay(steps*dt everywhere)
Reshape (a flatten)     Flatten(start_dim, end_dim) over per-sample axes
Add (equal shapes)      Scale(ones) fed by every operand: NIR sums a node's incoming edges
======================  ============================================================================

Every node also gets ``metadata["snncc.node"]`` (JSON: the exact op, its output type, source
path and location, node metadata and input order), so snncc reads its own files back exactly;
arrays the NIR node does not already hold bit for bit go into ``metadata["snncc.array.*"]``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from snncc.interop.nir_common import (
    CONVENTION,
    DEFAULT_DT,
    FORMAT,
    FORMAT_KEY,
    VERSION,
    NirDoc,
    dumps,
    extension_type,
    write_bytes,
)
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.serialize import op_to_dict

Shape = tuple[int, ...]


def _full(shape: Shape, value: float) -> np.ndarray:
    return np.full(shape, float(value), dtype=np.float64)


def _flatten_dims(src: Shape, dst: Shape) -> tuple[int, int] | None:
    """``(start, end)`` when ``dst`` is ``src`` with axes ``start..end`` merged into one."""
    for start in range(len(src)):
        for end in range(start + 1, len(src)):
            merged = src[:start] + (math.prod(src[start : end + 1]),) + src[end + 1 :]
            if merged == dst:
                return start, (-1 if end == len(src) - 1 else end)
    return None


def _standard(g: Graph, n: str, dt: float) -> Any:
    """The ``nir`` node with ``n``'s exact semantics, or None (then an extension node)."""
    drivers = g.inputs_of(n)
    return standard_node(
        g.op(n),
        [tuple(g.type(d).shape) for d in drivers],
        tuple(g.type(n).shape),
        dt,
        distinct_inputs=len(set(drivers)) == len(drivers),
        quantized="quant" in g.node_meta(n),
    )


def standard_node(
    op: O.Op,
    ins: list[Shape],
    shape: Shape,
    dt: float,
    *,
    distinct_inputs: bool = True,
    quantized: bool = False,
) -> Any:
    """The ``nir`` node of ``op`` (input shapes ``ins``, output ``shape``), or None.

    ``quantized``: the op carries integer semantics from ``quantize`` (``weight_exp``, shifts),
    which NIR's float nodes do not state, so it becomes an extension node.
    """
    import nir

    if quantized:
        return None
    if isinstance(op, O.Input):
        return nir.Input(input_type=np.array(op.shape, dtype=np.int64))
    if isinstance(op, O.Linear) and len(ins[0]) == 1:
        if op.bias is None:
            return nir.Linear(weight=op.weight)
        return nir.Affine(weight=op.weight, bias=op.bias)
    if isinstance(op, (O.Conv1d, O.Conv2d)):
        bias = op.bias if op.bias is not None else np.zeros(op.weight.shape[0])
        common = {"weight": op.weight, "stride": op.stride, "padding": op.padding}
        common.update(dilation=op.dilation, groups=op.groups, bias=bias)
        if isinstance(op, O.Conv1d):
            return nir.Conv1d(input_shape=int(ins[0][1]), **common)
        return nir.Conv2d(input_shape=tuple(int(s) for s in ins[0][1:]), **common)
    if isinstance(op, O.AvgPool2d) and tuple(op.padding) == (0, 0):
        return nir.AvgPool2d(
            kernel_size=np.array(op.kernel), stride=np.array(op.stride), padding=np.zeros(2, int)
        )
    if isinstance(op, O.LIF) and op.v_reset is not None:
        r = 1.0 if op.decay_input else float(op.tau)  # see nir_common: Euler with step dt
        return nir.LIF(
            tau=_full(shape, op.tau * dt),
            r=_full(shape, r),
            v_leak=_full(shape, op.v_reset),
            v_threshold=_full(shape, op.v_threshold),
            v_reset=_full(shape, op.v_reset),
        )
    if isinstance(op, O.IF) and op.v_reset is not None:
        return nir.IF(
            r=_full(shape, 1.0 / dt),
            v_threshold=_full(shape, op.v_threshold),
            v_reset=_full(shape, op.v_reset),
        )
    if isinstance(op, O.Scale):
        return nir.Scale(scale=_full(shape, op.factor))
    if isinstance(op, O.Delay):
        return nir.Delay(delay=_full(shape, op.steps * dt))
    if isinstance(op, O.Reshape) and len(ins[0]) > 1:
        dims = _flatten_dims(ins[0], shape)
        if dims is not None:
            return nir.Flatten(
                input_type=np.array(ins[0], dtype=np.int64), start_dim=dims[0], end_dim=dims[1]
            )
    if isinstance(op, O.Add) and distinct_inputs and set(ins) == {shape}:
        return nir.Scale(scale=np.ones(shape))  # a summing junction: NIR adds incoming edges
    return None


def _op_json(op: O.Op, held: dict[str, np.ndarray], extra: dict[str, Any]) -> dict[str, Any]:
    """``op`` as JSON; each array refers to a dataset of the NIR node (``held``, when identical
    in dtype and value) or to one added to ``extra`` (metadata ``snncc.array.<field>``)."""
    arrays: dict[str, np.ndarray] = {}
    doc = op_to_dict(op, "", arrays)
    for name, value in doc["fields"].items():
        if not (isinstance(value, dict) and "__array__" in value):
            continue
        original = getattr(op, name)
        mine = held.get(name)
        if (
            isinstance(mine, np.ndarray)
            and mine.dtype == original.dtype
            and mine.shape == original.shape
            and np.array_equal(mine, original)
        ):
            doc["fields"][name] = {"__array__": f"node:{name}"}
        else:
            key = f"snncc.array.{name}"
            extra[key] = arrays[value["__array__"]]
            doc["fields"][name] = {**value, "__array__": f"meta:{key}"}
    return doc


def _extension(op: O.Op, meta: dict[str, Any]) -> dict[str, Any]:
    """An extension node: type ``snncc.*``, scalar fields as JSON, arrays under ``arrays/``."""
    arrays: dict[str, np.ndarray] = {}
    doc = op_to_dict(op, "", arrays)
    for value in doc["fields"].values():
        if isinstance(value, dict) and "__array__" in value:
            value["__array__"] = "node:arrays" + value["__array__"]
    node: dict[str, Any] = {"type": extension_type(op), "snncc_fields": dumps(doc["fields"])}
    node["arrays"] = {k.lstrip("/"): v for k, v in arrays.items()}
    node["metadata"] = meta
    return node


def _node_record(g: Graph, n: str, op_doc: dict[str, Any]) -> str:
    t = g.type(n)
    return dumps(
        {
            "op": op_doc,
            "type": t.to_dict() if t is not None else None,
            "src": g.src(n),
            "loc": g.loc(n),
            "meta": g.node_meta(n),
            "inputs": g.inputs_of(n),
        }
    )


def to_nir(graph: Graph, *, dt: float = DEFAULT_DT) -> NirDoc:
    """``graph`` as a NIR document (standard nodes where the semantics match; see module doc)."""
    import nir

    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be a positive number of seconds, got {dt}")
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    extensions: set[str] = set()
    for n in graph.nodes():
        op = graph.op(n)
        std = _standard(graph, n, dt)
        meta: dict[str, Any] = {}
        if std is None:
            node = _extension(op, meta)
            extensions.add(node["type"])
            meta["snncc.node"] = _node_record(graph, n, {"type": op.kind, "fields": None})
        else:
            held = {k: v for k, v in vars(std).items() if isinstance(v, np.ndarray)}
            meta["snncc.node"] = _node_record(graph, n, _op_json(op, held, meta))
            std.metadata = meta
            node = std
        nodes[n] = node
        for d in dict.fromkeys(graph.inputs_of(n)):  # ports are in the metadata; no duplicates
            edges.append((d, n))
    for i, o in enumerate(graph.outputs):
        name = "output" if len(graph.outputs) == 1 else f"output_{i}"
        while name in nodes:
            name = "_" + name
        nodes[name] = nir.Output(output_type=np.array(graph.type(o).shape, dtype=np.int64))
        edges.append((o, name))
    metadata = {
        FORMAT_KEY: FORMAT,
        "snncc.version": VERSION,
        "snncc.graph": dumps(
            {
                "name": graph.name,
                "meta": graph.meta,
                "order": graph.nodes(),
                "inputs": graph.inputs,
                "outputs": graph.outputs,
            }
        ),
        "snncc.convention": CONVENTION,
        "snncc.extensions": ",".join(sorted(extensions)),
        "dt": float(dt),
    }
    return NirDoc(nodes, edges, metadata)


def nir_bytes(graph: Graph, *, dt: float = DEFAULT_DT) -> bytes:
    """The NIR HDF5 file of ``graph`` as bytes (write them with an atomic writer)."""
    return write_bytes(to_nir(graph, dt=dt))


def write_nir(graph: Graph, path: str | Path, *, dt: float = DEFAULT_DT) -> Path:
    """Write ``graph`` as a NIR file (atomically, replacing ``path``); returns the path."""
    from snncc.ir.serialize import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, nir_bytes(graph, dt=dt))
    return path
