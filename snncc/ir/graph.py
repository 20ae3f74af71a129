"""The spike graph: a thin facade over ``networkx.MultiDiGraph`` with a closed attribute set.

Nodes are named by the PyTorch module path they came from (``block.0.attn.q_conv``) and carry
exactly: ``op`` (an :mod:`snncc.ir.ops` dataclass), ``type`` (the output
:class:`~snncc.ir.types.TensorType`), ``src`` (module path), ``loc`` (user ``file:line``) and
``meta`` (a small dict). Edges connect ``(node, "out")`` to ``(node, port)``. Passes change the
graph only through these methods, so invariants live in one place and :func:`snncc.ir.verify.lint`
can check them between passes.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Iterator
from typing import Any

import networkx as nx

from snncc.diagnostics import IRError
from snncc.ir.ops import Op, op_equal
from snncc.ir.types import TensorType


class Graph:
    """A directed multigraph of ops with typed ports, graph inputs/outputs and metadata."""

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self._g = nx.MultiDiGraph()
        self._order: dict[str, int] = {}
        self._next = 0
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.meta: dict[str, Any] = {}

    # -- construction -------------------------------------------------------------------------
    def add(
        self,
        name: str,
        op: Op,
        type: TensorType | None = None,  # noqa: A002 - mirrors the attribute name
        *,
        src: str | None = None,
        loc: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> str:
        """Add a node; the name must be new. Returns the name."""
        if name in self._g:
            raise IRError(f"duplicate node name {name!r}")
        self._g.add_node(
            name,
            op=op,
            type=type,
            src=src if src is not None else name,
            loc=loc,
            meta=dict(meta or {}),
        )
        self._order[name] = self._next
        self._next += 1
        return name

    def unique_name(self, base: str) -> str:
        """``base`` if unused, else ``base_1``, ``base_2`` …"""
        if base not in self._g:
            return base
        i = 1
        while f"{base}_{i}" in self._g:
            i += 1
        return f"{base}_{i}"

    def connect(self, src: str, dst: str, port: str = "in") -> None:
        """Connect ``src``'s output to ``dst``'s input ``port`` (one driver per input port)."""
        for n in (src, dst):
            if n not in self._g:
                raise IRError(f"connect: no node {n!r}")
        if port not in self.op(dst).in_ports:
            raise IRError(f"{dst} ({self.op(dst).kind}) has no input port {port!r}")
        if self.driver(dst, port) is not None:
            raise IRError(f"{dst}.{port} already has a driver")
        self._g.add_edge(src, dst, port=port)

    def rewire(self, dst: str, port: str, new_src: str) -> None:
        """Make ``dst.port`` read ``new_src`` instead of its current driver."""
        old = self.driver(dst, port)
        if old is None:
            raise IRError(f"{dst}.{port} has no driver to rewire")
        self._g.remove_edge(old, dst, key=self._edge_key(old, dst, port))
        self._g.add_edge(new_src, dst, port=port)

    def remove(self, name: str) -> None:
        """Remove a node and its edges; it must not be a graph output."""
        if name in self.outputs:
            raise IRError(f"cannot remove graph output {name!r}")
        self._g.remove_node(name)
        del self._order[name]
        if name in self.inputs:
            self.inputs.remove(name)

    def replace_uses(self, old: str, new: str) -> None:
        """Make every consumer of ``old`` (and the graph outputs) read ``new`` instead."""
        for dst, port in self.users(old):
            self._g.remove_edge(old, dst, key=self._edge_key(old, dst, port))
            self._g.add_edge(new, dst, port=port)
        self.outputs = [new if o == old else o for o in self.outputs]

    def set_op(self, name: str, op: Op) -> None:
        """Replace a node's op (ops are immutable, so passes swap them)."""
        self._g.nodes[name]["op"] = op

    def set_type(self, name: str, type: TensorType) -> None:  # noqa: A002
        """Set a node's output type."""
        self._g.nodes[name]["type"] = type

    # -- queries --------------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._g

    def __len__(self) -> int:
        return self._g.number_of_nodes()

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes())

    def nodes(self) -> list[str]:
        """Node names in insertion order."""
        return sorted(self._g.nodes, key=self._order.__getitem__)

    def op(self, name: str) -> Op:
        """The op of a node."""
        return self._g.nodes[name]["op"]

    def type(self, name: str) -> TensorType:
        """The output type of a node (set by the frontend and ``infer_types``)."""
        return self._g.nodes[name]["type"]

    def src(self, name: str) -> str:
        """The PyTorch module path the node came from."""
        return self._g.nodes[name]["src"]

    def loc(self, name: str) -> str | None:
        """The user's ``file:line`` for the node, when known."""
        return self._g.nodes[name]["loc"]

    def node_meta(self, name: str) -> dict[str, Any]:
        """The node's free-form metadata dict (mutable)."""
        return self._g.nodes[name]["meta"]

    def driver(self, name: str, port: str) -> str | None:
        """The node feeding ``name.port``, or None."""
        for u, _, d in self._g.in_edges(name, data=True):
            if d["port"] == port:
                return u
        return None

    def inputs_of(self, name: str) -> list[str]:
        """Drivers of ``name`` in port order (the order of ``op.in_ports``)."""
        drivers = {d["port"]: u for u, _, d in self._g.in_edges(name, data=True)}
        return [drivers[p] for p in self.op(name).in_ports if p in drivers]

    def users(self, name: str) -> list[tuple[str, str]]:
        """``(consumer, port)`` pairs reading ``name``, in deterministic order."""
        out = [(v, d["port"]) for _, v, d in self._g.out_edges(name, data=True)]
        return sorted(out, key=lambda e: (self._order[e[0]], e[1]))

    def topo_order(self) -> list[str]:
        """A deterministic topological order (ties broken by insertion order)."""
        return list(nx.lexicographical_topological_sort(self._g, key=self._order.__getitem__))

    def edges(self) -> list[tuple[str, str, str]]:
        """All edges as ``(src, dst, port)`` in deterministic order."""
        es = [(u, v, d["port"]) for u, v, d in self._g.edges(data=True)]
        return sorted(es, key=lambda e: (self._order[e[1]], e[2], self._order[e[0]]))

    def _edge_key(self, u: str, v: str, port: str) -> int:
        for k, d in self._g.get_edge_data(u, v).items():
            if d["port"] == port:
                return k
        raise IRError(f"no edge {u} -> {v}.{port}")

    # -- whole-graph ----------------------------------------------------------------------------
    def copy(self) -> Graph:
        """A copy whose structure can be changed independently (ops are immutable and shared)."""
        g = Graph(self.name)
        g._g = self._g.copy()
        for n in g._g.nodes:
            g._g.nodes[n]["meta"] = _copy.deepcopy(self._g.nodes[n]["meta"])
        g._order = dict(self._order)
        g._next = self._next
        g.inputs, g.outputs = list(self.inputs), list(self.outputs)
        g.meta = _copy.deepcopy(self.meta)
        return g

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        if (self.name, self.inputs, self.outputs, self.meta) != (
            other.name,
            other.inputs,
            other.outputs,
            other.meta,
        ):
            return False
        if self.nodes() != other.nodes() or self.edges() != other.edges():
            return False
        for n in self.nodes():
            a, b = self._g.nodes[n], other._g.nodes[n]
            if (a["type"], a["src"], a["loc"], a["meta"]) != (
                b["type"],
                b["src"],
                b["loc"],
                b["meta"],
            ):
                return False
            if not op_equal(a["op"], b["op"]):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self)} nodes)"

    def __str__(self) -> str:
        from snncc.ir.printer import format_graph

        return format_graph(self)
