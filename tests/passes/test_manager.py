"""Pass manager: order, change detection, lint between passes, error context, records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snncc.diagnostics import IRError, SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind, TensorType
from snncc.passes.manager import PassContext, PassRecord, pass_contract, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE


def _graph(builder) -> Graph:
    b = builder()
    x = b.input("x", (4,), Kind.SPIKE)
    fc = b.node("fc", O.Linear(weight=np.ones((3, 4))), x)
    return b.output(b.node("lif", O.LIF(), fc, kind=Kind.SPIKE))


def _logging_pass(label: str):
    def fn(g: Graph, ctx: PassContext) -> Graph:
        """Append the label to ``ctx.config['log']``.

        Requires: nothing.
        Ensures:  graph unchanged.
        """
        ctx.config.setdefault("log", []).append(label)
        ctx.decide(f"ran {label}")
        return g

    fn.__name__ = f"pass_{label}"
    return fn


def test_passes_run_in_list_order_and_leave_one_record_each(builder):
    order = ["c", "a", "b", "a"]
    g, ctx = run_pipeline(_graph(builder), [_logging_pass(x) for x in order])
    assert ctx.config["log"] == order
    assert [r.name for r in ctx.records] == [f"pass_{x}" for x in order]
    assert [r.decisions for r in ctx.records] == [[f"ran {x}"] for x in order]
    assert all(not r.changed and r.seconds >= 0 for r in ctx.records)


def test_changed_is_detected_by_comparing_graphs(builder):
    def retype(g: Graph, ctx: PassContext) -> Graph:
        """Make fc's kind GRADED.

        Requires: a node fc.
        Ensures:  fc is graded.
        """
        g.set_type("fc", g.type("fc").with_kind(Kind.GRADED, 8))
        return g

    def rebuild(g: Graph, ctx: PassContext) -> Graph:
        """Return an identical copy (a new object, same content).

        Requires: nothing.
        Ensures:  same graph.
        """
        return g.copy()

    original = _graph(builder)
    g, ctx = run_pipeline(original, [rebuild, retype, retype])
    assert [r.changed for r in ctx.records] == [False, True, False]
    assert g.type("fc").kind is Kind.GRADED
    assert original.type("fc").kind is Kind.CURRENT  # the caller's graph is not mutated


def test_lint_after_each_pass_names_the_pass_that_broke_the_graph(builder):
    def breaks(g: Graph, ctx: PassContext) -> Graph:
        """Give fc a wrong shape.

        Requires: a node fc.
        Ensures:  nothing good.
        """
        g.set_type("fc", TensorType((99,)))
        return g

    with pytest.raises(SnnccError) as info:
        run_pipeline(_graph(builder), [_logging_pass("a"), breaks, _logging_pass("z")])
    err = info.value
    assert err.code == "IR100" and err.exit_code == 70
    assert "after pass 'breaks'" in err.message and "'pass_a'" in err.message
    assert any(d.node == "fc" and d.pass_name == "breaks" for d in err.diagnostics)


def test_lint_runs_before_the_first_pass(builder):
    g = _graph(builder)
    g.set_type("lif", TensorType((7,), Kind.SPIKE))
    ran = []

    def never(g: Graph, ctx: PassContext) -> Graph:
        """Must not run.

        Requires: a lint-clean graph.
        Ensures:  nothing.
        """
        ran.append(1)
        return g

    with pytest.raises(SnnccError, match="input graph"):
        run_pipeline(g, [never])
    assert ran == []
    run_pipeline(g, [never], lint=False)  # lint can be switched off
    assert ran == [1]


def test_foreign_exception_is_wrapped_with_pass_and_history(builder):
    def crashes(g: Graph, ctx: PassContext) -> Graph:
        """Crash.

        Requires: nothing.
        Ensures:  nothing.
        """
        raise ValueError("boom")

    with pytest.raises(SnnccError) as info:
        run_pipeline(_graph(builder), [_logging_pass("a"), _logging_pass("b"), crashes])
    err = info.value
    assert err.code == "PASS001" and err.exit_code == 70
    assert "'crashes'" in err.message and "'pass_a', 'pass_b'" in err.message
    assert "boom" in err.message
    assert isinstance(err.__cause__, ValueError)


def test_snncc_error_keeps_code_and_class_and_gets_pass_prefix(builder):
    def refuses(g: Graph, ctx: PassContext) -> Graph:
        """Refuse with a user error.

        Requires: nothing.
        Ensures:  nothing.
        """
        raise IRError("bad thing")

    with pytest.raises(IRError) as info:
        run_pipeline(_graph(builder), [_logging_pass("a"), refuses])
    err = info.value
    assert err.code == "IR001" and err.exit_code == 2
    assert err.message.startswith("in pass 'refuses' (after passes: 'pass_a')")
    assert err.message.endswith("bad thing") and str(err) == err.message


def test_records_serialise_to_json_and_are_deterministic_without_timings(builder):
    def warns(g: Graph, ctx: PassContext) -> Graph:
        """Emit one warning and a stat.

        Requires: nothing.
        Ensures:  graph unchanged.
        """
        ctx.count("things", 3)
        ctx.diagnose("TST01", "hello", node="fc")
        return g

    dumps = []
    for _ in range(2):
        _, ctx = run_pipeline(_graph(builder), [warns, *FRONT_PIPELINE])
        dumps.append(json.dumps([r.to_dict(timings=False) for r in ctx.records]))
        assert all("seconds" in r.to_dict() for r in ctx.records)
    assert dumps[0] == dumps[1] and "seconds" not in dumps[0]
    rec = ctx.records[0]
    assert rec.stats == {"things": 3}
    assert [d.pass_name for d in rec.diagnostics] == ["warns"]
    assert ctx.diagnostics == rec.diagnostics
    assert PassRecord("x", True, 0.5).to_dict()["seconds"] == 0.5


def test_every_front_pass_states_requires_and_ensures():
    for fn in FRONT_PIPELINE:
        requires, ensures = pass_contract(fn)
        assert requires and ensures, fn.__name__


def test_front_pipeline_keeps_graph_meta(builder):
    g = _graph(builder)
    g.meta["T"] = 4
    out, _ = run_pipeline(g, FRONT_PIPELINE)
    assert out.meta == {"T": 4}
