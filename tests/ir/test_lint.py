"""``lint`` accepts a traced graph and names each broken invariant; ``lint_or_raise`` raises."""

from __future__ import annotations

import pytest

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import TensorType
from snncc.ir.verify import lint, lint_or_raise


def _messages(g: Graph) -> list[str]:
    return [f"{d.node}: {d.message}" for d in lint(g)]


def test_traced_graph_is_clean(traced: Graph) -> None:
    assert lint(traced) == []
    lint_or_raise(traced)


def test_unconnected_port(traced: Graph) -> None:
    g = traced.copy()
    lif = next(n for n in g.nodes() if isinstance(g.op(n), O.LIF))
    (producer,) = g.inputs_of(lif)
    g._g.remove_edge(producer, lif)  # what a pass that forgot to rewire leaves behind
    msgs = _messages(g)
    assert any(m.startswith(f"{lif}: ") and "not connected" in m for m in msgs), msgs


def test_wrong_type_shape(traced: Graph) -> None:
    g = traced.copy()
    conv = next(n for n in g.nodes() if isinstance(g.op(n), O.Conv2d))
    t = g.type(conv)
    g.set_type(conv, TensorType((t.shape[0] + 1, *t.shape[1:]), t.kind, t.bound, t.temporal))
    assert any(m.startswith(f"{conv}: type shape") for m in _messages(g))


def test_missing_output_and_stray_input(traced: Graph) -> None:
    g = traced.copy()
    g.outputs = [*g.outputs, "ghost"]
    g.add("extra_input", O.Input(shape=(2,)), TensorType((2,)))
    msgs = _messages(g)
    assert "ghost: graph output does not exist" in msgs
    assert "extra_input: Input node is not listed in graph.inputs" in msgs


def test_cycle() -> None:
    g = Graph("cyclic")
    g.add("x", O.Input(shape=(2,)), TensorType((2,)))
    g.inputs.append("x")
    g.add("a", O.Add(n=2), TensorType((2,)))
    g.add("b", O.Scale(factor=2.0), TensorType((2,)))
    g.connect("x", "a", "in0")
    g.connect("b", "a", "in1")
    g.connect("a", "b", "in")
    g.outputs.append("b")
    assert _messages(g) == ["None: graph has a cycle"]


def test_lint_or_raise_lists_all_problems_as_internal_error(traced: Graph) -> None:
    g = traced.copy()
    g.outputs = [*g.outputs, "ghost1", "ghost2"]
    with pytest.raises(SnnccError) as e:
        lint_or_raise(g, "some_pass")
    assert e.value.exit_code == 70 and "after some_pass" in e.value.message
    assert {d.node for d in e.value.diagnostics} >= {"ghost1", "ghost2"}
