"""The text printer and per-node statistics: every node appears, counts are the documented ones."""

from __future__ import annotations

from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.printer import format_graph, input_kinds, node_stats


def test_printer_lists_every_node_with_op_and_type(traced: Graph) -> None:
    text = format_graph(traced)
    lines = text.splitlines()
    assert str(traced) == text
    assert len(lines) == 1 + len(traced) + 1  # header, one per node, inputs/outputs
    for n in traced.nodes():
        row = next(ln for ln in lines[1:-1] if ln.split()[0] == n)
        assert traced.op(n).kind in row and str(traced.type(n)) in row
        if traced.loc(n):
            assert traced.loc(n) in row
    assert lines[-1].startswith("inputs: input") and traced.outputs[0] in lines[-1]


def test_node_stats(traced: Graph) -> None:
    conv = next(n for n in traced.nodes() if isinstance(traced.op(n), O.Conv2d))
    st = node_stats(traced, conv)
    w = traced.op(conv).weight
    assert st.params == w.size + w.shape[0]  # weight + bias
    assert st.synapses == traced.type(conv).size * w[0].size
    assert st.neurons == 0
    lif = next(n for n in traced.nodes() if isinstance(traced.op(n), O.LIF))
    assert node_stats(traced, lif).neurons == traced.type(lif).size
    mm = next(n for n in traced.nodes() if isinstance(traced.op(n), O.MatMul))
    assert node_stats(traced, mm).synapses == 0 and len(input_kinds(traced, mm)) == 2
