"""Per-node statistics and a readable text dump of a graph.

``node_stats`` is the single definition of params / neurons / synapses used by ``snncc inspect``,
the reports and the tests:

- params: scalars stored in the op's arrays (weights, biases, BN statistics);
- neurons: output elements of a neuron op (one neuron per element per sample);
- synapses: static weighted connections per sample, counting every kernel tap of a convolution at
  every output position (padding taps included), every weight of a Linear at every token, and each
  window input of an average pool. Dynamic products (``MatMul``, ``Mul``) hold no stored synapses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snncc.ir import ops as O
from snncc.ir.graph import Graph


@dataclass(frozen=True)
class NodeStats:
    """Counts for one node (see module docstring)."""

    params: int
    neurons: int
    synapses: int


def node_stats(g: Graph, name: str) -> NodeStats:
    """Params, neurons and synapses of one node."""
    op, t = g.op(name), g.type(name)
    out_size = t.size if t is not None else 0
    neurons = out_size if op.NEURON else 0
    syn = 0
    if isinstance(op, O.Linear):
        syn = (out_size // op.weight.shape[0]) * op.weight.size
    elif isinstance(op, (O.Conv1d, O.Conv2d)):
        syn = out_size * int(np.prod(op.weight.shape[1:]))
    elif isinstance(op, O.AvgPool2d):
        syn = out_size * op.kernel[0] * op.kernel[1]
    return NodeStats(op.n_params(), neurons, syn)


def input_kinds(g: Graph, name: str) -> list[str]:
    """The kinds of a node's inputs in port order (``spike``, ``count<=3``, ``current`` …)."""
    return [g.type(d).kind_str() for d in g.inputs_of(name) if g.type(d) is not None]


def format_graph(g: Graph) -> str:
    """One line per node: name, op, input kinds, output type, module path and source location."""
    rows = [("name", "op", "inputs", "type", "src")]
    for n in g.topo_order():
        ins = ", ".join(f"{d}:{k}" for d, k in zip(g.inputs_of(n), input_kinds(g, n), strict=False))
        loc = g.loc(n) or ""
        rows.append((n, g.op(n).kind, ins, str(g.type(n)), loc))
    widths = [min(max(len(r[i]) for r in rows), 48) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.append(f"inputs: {', '.join(g.inputs)}    outputs: {', '.join(g.outputs)}")
    return "\n".join(lines)
