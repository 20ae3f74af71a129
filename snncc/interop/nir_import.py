"""NIR -> snncc IR, for graphs snncc wrote (exactly) and for graphs other frameworks wrote.

Two routes per node:

- **exact**: the node carries ``metadata["snncc.node"]`` (snncc wrote it) and its NIR fields are
  still what that record's op exports to (nobody edited the weights). The recorded op, type,
  source, location and metadata are used as they are, so ``IR -> NIR -> IR`` gives an equal graph.
- **converted**: every other node is read by its NIR semantics under the convention of
  :mod:`snncc.interop.nir_common` (forward Euler with ``dt``; neuron algebra in
  :mod:`snncc.interop.nir_neurons`). A node with several incoming edges gets an ``Add`` in front
  (NIR sums a node's inputs); an input gain or bias a neuron needs is folded into the Affine/Conv
  before it; graphs from other tools get a ``TimeMean`` readout after each output (snncc reads a
  spiking output as its rate over the T steps, as ``compile --eval`` and ``energy`` expect).

Every node that cannot be lowered is collected, and the import fails once with all of them
(``NIR010``, exit 3): name, NIR type, why, and what would work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from snncc.diagnostics import Diagnostic, Severity, SnnccError
from snncc.interop.nir_common import (
    CONVENTION,
    DEFAULT_DT,
    FORMAT,
    FORMAT_KEY,
    VERSION,
    NirDoc,
    node_dict,
    op_class_of_extension,
    read_file,
    uniform,
)
from snncc.interop.nir_export import standard_node
from snncc.interop.nir_nodes import (
    NeuronPlan,
    Refusal,
    arr,
    cubalif_plan,
    if_plan,
    ints,
    lif_plan,
    per_channel,
    same_fields,
    standard_op,
)
from snncc.interop.nir_nodes import refuse as refusal_for
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.serialize import op_from_dict
from snncc.ir.shapes import output_shape
from snncc.ir.types import Kind, TensorType

UNSUPPORTED = "NIR010"
SYNAPSES = (O.Linear, O.Conv1d, O.Conv2d)
#: NIR node types read by :func:`snncc.interop.nir_nodes.standard_op` (or as a summing junction).
STANDARD = ("Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d",
            "Flatten", "Scale", "Delay")  # fmt: skip


@dataclass
class _Spec:
    """One snncc node to create."""

    op: O.Op
    inputs: list[str]
    type: TensorType | None = None
    src: str | None = None
    loc: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _lookup(d: dict[str, Any], ref: str) -> Any:
    where, _, key = ref.partition(":")
    if where == "meta":
        return d.get("metadata", {})[key]
    value: Any = d
    for part in key.split("/"):
        value = value[part]
    return value


def _decode(cls: type[O.Op], fields: dict[str, Any], d: dict[str, Any]) -> O.Op:
    """An op from JSON fields whose arrays refer to datasets of node ``d``."""
    arrays = {
        v["__array__"]: np.asarray(_lookup(d, v["__array__"]))
        for v in fields.values()
        if isinstance(v, dict) and "__array__" in v
    }
    return op_from_dict({"type": cls.__name__, "fields": fields}, arrays)


class _Importer:
    def __init__(self, doc: NirDoc, dt: float, label: str, input_kind: Kind | None) -> None:
        self.doc, self.dt, self.label, self.input_kind = doc, dt, label, input_kind
        self.nodes = {name: node_dict(n) for name, n in doc.nodes.items()}
        self.preds: dict[str, list[str]] = {n: [] for n in self.nodes}
        self.succs: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in doc.edges:
            if a in self.nodes and b in self.nodes:
                self.preds[b].append(a)
                self.succs[a].append(b)
        self.ours = doc.metadata.get(FORMAT_KEY) == FORMAT
        self.specs: dict[str, _Spec] = {}
        self.out_of: dict[str, str] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.exact: set[str] = set()
        self.problems: list[Diagnostic] = []
        self.failed: set[str] = set()
        self.taken = set(self.nodes)

    # -- bookkeeping ------------------------------------------------------------------------
    def problem(self, name: str, kind: str, why: str, fix: str) -> None:
        self.problems.append(
            Diagnostic(UNSUPPORTED, Severity.ERROR, f"{kind}: {why}", node=name, hint=fix)
        )
        self.failed.add(name)

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name

    def add(self, name: str, spec: _Spec) -> str:
        self.shapes[name] = output_shape(spec.op, [self.shapes[i] for i in spec.inputs])
        self.specs[name] = spec
        return name

    def summed(self, name: str, drivers: list[str]) -> list[str]:
        """One driver: itself; several: an ``Add`` in front (NIR sums incoming edges)."""
        if len(drivers) <= 1:
            return drivers
        return [self.add(self.fresh(f"{name}.sum"), _Spec(O.Add(len(drivers)), drivers))]

    # -- the walk ---------------------------------------------------------------------------
    def order(self) -> list[str]:
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from((a, b) for b, ps in self.preds.items() for a in ps)
        index = {n: i for i, n in enumerate(self.nodes)}
        cyclic = {n for c in nx.strongly_connected_components(g) if len(c) > 1 for n in c}
        cyclic |= {a for a, b in g.edges if a == b}
        for n in sorted(cyclic, key=index.__getitem__):
            self.problem(
                n,
                str(self.nodes[n].get("type")),
                "part of a cycle (a recurrent connection): snncc's IR has no recurrence",
                "a feed-forward graph",
            )
        g.remove_nodes_from(cyclic)
        return list(nx.lexicographical_topological_sort(g, key=index.__getitem__))

    def run(self) -> None:
        for name in self.order():
            d = self.nodes[name]
            kind = str(d.get("type"))
            if kind == "Output":
                continue
            if any(p in self.failed for p in self.preds[name]):
                self._check_alone(name, kind, d)  # no input to build on; still name its faults
                continue
            drivers = [self.out_of[p] for p in self.preds[name]]
            try:
                if not self._exact(name, d, drivers):
                    self._convert(name, kind, d, drivers)
            except Refusal as r:
                self.problem(name, kind, r.why, r.fix)
            except SnnccError as e:  # IRError from an op or a shape rule
                self.problem(name, kind, e.message, "check the node's parameters and shapes")

    def _check_alone(self, name: str, kind: str, d: dict[str, Any]) -> None:
        """Check what can be checked without the node's input (its inputs failed), so that one
        unsupported node does not hide the ones after it."""
        self.failed.add(name)
        plans = {"LIF": lif_plan, "IF": if_plan, "CubaLIF": cubalif_plan}
        try:
            if kind in plans:
                plans[kind](d, self.dt)
            elif kind.startswith("snncc."):
                self._extension(d)
            elif kind not in STANDARD:
                raise refusal_for(kind)
        except Refusal as r:
            self.problem(name, kind, r.why, r.fix)

    # -- exact route ------------------------------------------------------------------------
    def _exact(self, name: str, d: dict[str, Any], drivers: list[str]) -> bool:
        text = d.get("metadata", {}).get("snncc.node")
        if not self.ours or not isinstance(text, str):
            return False
        rec = json.loads(text)
        if set(rec["inputs"]) != set(drivers):
            return False
        if rec["op"]["fields"] is None:
            op = self._extension(d)
        else:
            op = _decode(O.OPS[rec["op"]["type"]], rec["op"]["fields"], d)
            ins = [tuple(self.shapes[i]) for i in rec["inputs"]]
            shape = tuple(rec["type"]["shape"])
            std = standard_node(
                op, ins, shape, self.dt,
                distinct_inputs=len(set(rec["inputs"])) == len(rec["inputs"]),
                quantized="quant" in rec["meta"],
            )  # fmt: skip
            if std is None or not same_fields(node_dict(std), d):
                return False  # edited since snncc wrote it: its NIR semantics rule
        t = TensorType.from_dict(rec["type"]) if rec["type"] is not None else None
        self.add(name, _Spec(op, list(rec["inputs"]), t, rec["src"], rec["loc"], rec["meta"]))
        self.out_of[name] = name
        self.exact.add(name)
        return True

    def _extension(self, d: dict[str, Any]) -> O.Op:
        cls = op_class_of_extension(str(d.get("type")))
        if cls is None or "snncc_fields" not in d:
            raise refusal_for(str(d.get("type")))
        return _decode(cls, json.loads(d["snncc_fields"]), d)

    # -- converted route --------------------------------------------------------------------
    def _convert(self, name: str, kind: str, d: dict[str, Any], drivers: list[str]) -> None:
        if kind == "Input":
            shape = d["shape"] if "shape" in d else d["input_type"]["input"]
            op = O.Input(ints(shape, 1), kind_in=self.input_kind or Kind.CURRENT, temporal=True)
            self.out_of[name] = self.add(name, _Spec(op, []))
            return
        if not drivers:
            raise Refusal("no incoming edge", "connect the node to the graph's input")
        if kind in ("LIF", "IF", "CubaLIF"):
            plan = {"LIF": lif_plan, "IF": if_plan, "CubaLIF": cubalif_plan}[kind](d, self.dt)
            self.out_of[name] = self._neuron(name, plan, drivers)
            return
        if kind.startswith("snncc."):
            op = self._extension(d)
            ins = drivers if len(op.in_ports) > 1 else self.summed(name, drivers)
            if len(ins) != len(op.in_ports):
                n = len(op.in_ports)
                raise Refusal(f"{len(ins)} inputs for {n} ports", "one edge per port")
        elif kind == "Scale" and uniform(arr(d["scale"])) == 1.0:  # a summing junction
            if len(drivers) == 1:
                self.out_of[name] = drivers[0]
                return
            op, ins = O.Add(len(drivers)), drivers
        else:
            ins = self.summed(name, drivers)
            op = standard_op(kind, d, self.shapes[ins[0]], self.dt)
        self.out_of[name] = self.add(name, _Spec(op, ins))

    def _neuron(self, name: str, plan: NeuronPlan, drivers: list[str]) -> str:
        ins = self.summed(name, drivers)
        if plan.gain is not None or plan.bias is not None:
            ins = [self._input_map(name, plan, ins[0], len(drivers) == 1)]
        return self.add(name, _Spec(plan.op, ins))

    def _input_map(self, name: str, plan: NeuronPlan, src: str, single: bool) -> str:
        """Apply ``X = gain * I + bias``: fold into the Affine/Conv feeding the neuron, else a
        ``Scale`` for a shared gain; a bias with nothing to fold into is refused."""
        spec = self.specs[src]
        shape = self.shapes[src]
        sole = single and len(self.succs.get(src, [])) == 1 and src not in self.exact
        if sole and isinstance(spec.op, SYNAPSES):
            axis = len(shape) - 1 if isinstance(spec.op, O.Linear) else 0
            gain = per_channel(plan.gain, shape, axis, 1.0)
            bias = per_channel(plan.bias, shape, axis, 0.0)
            if gain is not None and bias is not None:
                w = spec.op.weight * gain.reshape((-1,) + (1,) * (spec.op.weight.ndim - 1))
                old = spec.op.bias if spec.op.bias is not None else np.zeros(len(gain))
                spec.op = spec.op.replace(weight=w, bias=old * gain + bias)
                return src
        if plan.bias is None and isinstance(plan.gain, float):
            return self.add(self.fresh(f"{name}.gain"), _Spec(O.Scale(plan.gain), [src]))
        raise Refusal(
            "the neuron needs an input gain r (or a bias v_leak - v_reset) per neuron, and its "
            "input is not one Affine/Conv feeding only this node, to fold it into",
            "r = 1 (or r = tau/dt) and v_leak = v_reset, or an Affine/Conv in front",
        )

    # -- assembly ---------------------------------------------------------------------------
    def outputs(self, readout: bool) -> list[str]:
        outs = []
        for name, d in self.nodes.items():
            if d.get("type") != "Output" or any(p in self.failed for p in self.preds[name]):
                continue
            drivers = self.summed(name, [self.out_of[p] for p in self.preds[name]])
            if not drivers:
                continue
            out = drivers[0]
            if readout and not self.ours:
                out = self.add(self.fresh(f"{out}.rate"), _Spec(O.TimeMean(), [out]))
            outs.append(out)
        return outs


def _source(source: Any) -> tuple[NirDoc, str]:
    if isinstance(source, NirDoc):
        return source, "NIR graph"
    if isinstance(source, (str, Path)):
        return read_file(source), str(source)
    nodes = getattr(source, "nodes", None)
    if not isinstance(nodes, dict):
        raise TypeError(f"expected a NIR file path or nir.NIRGraph, got {type(source).__name__}")
    edges = [(str(a), str(b)) for a, b in source.edges]
    return NirDoc(dict(nodes), edges, dict(getattr(source, "metadata", None) or {})), "NIR graph"


def _dt(doc: NirDoc, dt: float | None, label: str) -> float:
    value = dt if dt is not None else doc.metadata.get("dt", DEFAULT_DT)
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    if not (value > 0 and np.isfinite(value)):
        raise SnnccError(
            f"{label}: dt {value!r} is not a positive number of seconds",
            code="NIR001",
            hint="set metadata['dt'] to the step in seconds",
        )
    return value


def from_nir(
    source: Any,
    *,
    dt: float | None = None,
    timesteps: int | None = None,
    name: str | None = None,
    input_kind: Kind | str | None = None,
    readout: bool = True,
    facts: dict[str, Any] | None = None,
) -> Graph:
    """Import a NIR graph (a file path, a ``nir.NIRGraph`` or a :class:`NirDoc`) as snncc IR.

    ``dt``: seconds per step (else the graph's ``metadata["dt"]``, else 1e-4). ``timesteps``:
    recorded as ``graph.meta["timesteps"]`` (graphs snncc wrote record it). ``input_kind``:
    what the inputs carry (NIR does not say; default ``current``). ``readout``: add a
    ``TimeMean`` after each output of a graph snncc did not write. ``facts``, if given, receives
    ``dt`` and ``written_by_snncc``. Raises ``NIR010`` (exit 3) listing every node that cannot
    be lowered.
    """
    doc, label = _source(source)
    ours = doc.metadata.get(FORMAT_KEY) == FORMAT
    if ours and int(doc.metadata.get("snncc.version", 0)) > VERSION:
        raise SnnccError(f"{label}: written by a newer snncc", code="NIR001", hint="upgrade snncc")
    kind = Kind(input_kind) if input_kind is not None else None
    imp = _Importer(doc, _dt(doc, dt, label), label, kind)
    if facts is not None:
        facts.update(dt=imp.dt, written_by_snncc=ours)
    imp.run()
    outs = imp.outputs(readout)
    if imp.problems:
        raise SnnccError.from_diagnostics(
            f"{label}: {len(imp.problems)} NIR node(s) snncc cannot lower", imp.problems,
            code=UNSUPPORTED, exit_code=3,
        )  # fmt: skip
    rec = json.loads(doc.metadata["snncc.graph"]) if imp.ours else {}
    order = list(imp.specs)
    if rec and set(rec.get("order", [])) == set(order):
        order = list(rec["order"])
    g = Graph(name or rec.get("name") or "nir")
    for n in order:
        s = imp.specs[n]
        g.add(n, s.op, s.type, src=s.src, loc=s.loc, meta=s.meta)
    for n in order:
        for port, d in zip(imp.specs[n].op.in_ports, imp.specs[n].inputs, strict=True):
            g.connect(d, n, port)
    g.inputs = [n for n in order if isinstance(imp.specs[n].op, O.Input)]
    g.outputs = outs
    if rec:
        g.inputs, g.outputs = list(rec["inputs"]), list(rec["outputs"])
        g.meta = dict(rec["meta"])
    else:
        shapes = [list(g.op(i).shape) for i in g.inputs]
        g.meta = {"time_axis": None, "input_shape": shapes[0] if len(shapes) == 1 else shapes,
                  "nir": {"dt": imp.dt, "convention": CONVENTION}}  # fmt: skip
    if timesteps is not None:
        g.meta["timesteps"] = int(timesteps)
    _infer_missing_types(g)
    return g


def _infer_missing_types(g: Graph) -> None:
    from snncc.passes.infer_types import infer_node

    for n in g.topo_order():
        if g.type(n) is None:
            g.set_type(n, infer_node(g, n))
