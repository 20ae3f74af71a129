"""Structural lint of a graph: the invariants every pass must preserve.

Checked: every input port of every op is driven; graph inputs are ``Input`` ops and the only ones;
outputs exist; the graph is acyclic (recurrence only through ``Delay``, not yet used); every node
has a type and it agrees with the op's shape rule; ``temporal`` flows (only ``TimeMean`` turns a
per-step value into a static one). Returns diagnostics; :func:`lint_or_raise` raises them all.
"""

from __future__ import annotations

import networkx as nx

from snncc.diagnostics import Diagnostic, IRError, Severity, SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.shapes import output_shape


def _diag(node: str | None, msg: str) -> Diagnostic:
    return Diagnostic("IR100", Severity.ERROR, msg, node=node)


def lint(g: Graph) -> list[Diagnostic]:
    """Return one diagnostic per violated invariant (empty list: the graph is well-formed)."""
    out: list[Diagnostic] = []
    if not nx.is_directed_acyclic_graph(g._g):
        return [_diag(None, "graph has a cycle")]
    for name in g.inputs:
        if name not in g or not isinstance(g.op(name), O.Input):
            out.append(_diag(name, "graph input is not an Input node"))
    for name in g.nodes():
        if isinstance(g.op(name), O.Input) and name not in g.inputs:
            out.append(_diag(name, "Input node is not listed in graph.inputs"))
    for name in g.outputs:
        if name not in g:
            out.append(_diag(name, "graph output does not exist"))
    for name in g.topo_order():
        op = g.op(name)
        missing = [p for p in op.in_ports if g.driver(name, p) is None]
        if missing:
            out.append(_diag(name, f"{op.kind} input port(s) {missing} not connected"))
            continue
        t = g.type(name)
        if t is None:
            out.append(_diag(name, "node has no type"))
            continue
        ins = [g.type(d) for d in g.inputs_of(name)]
        if any(i is None for i in ins):
            continue
        try:
            want = output_shape(op, [i.shape for i in ins])
        except IRError as e:
            out.append(_diag(name, e.message))
            continue
        if want != t.shape:
            out.append(_diag(name, f"type shape {t.shape} but {op.kind} computes {want}"))
        if ins:
            temporal = all(i.temporal for i in ins) and not isinstance(op, O.TimeMean)
            if any(i.temporal != ins[0].temporal for i in ins):
                out.append(_diag(name, "mixes per-step and static inputs"))
            elif t.temporal != temporal:
                out.append(_diag(name, f"temporal={t.temporal} but inputs imply {temporal}"))
    return out


def lint_or_raise(g: Graph, context: str = "") -> None:
    """Raise :class:`SnnccError` listing every lint problem (an internal error: exit code 70)."""
    diags = lint(g)
    if diags:
        where = f" after {context}" if context else ""
        raise SnnccError.from_diagnostics(
            f"IR lint failed{where}", diags, code="IR100", exit_code=70
        )
