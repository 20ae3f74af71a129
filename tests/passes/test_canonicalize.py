"""canonicalize: no-op structure and dead nodes go; the outputs compute exactly the same values."""

from __future__ import annotations

import numpy as np

from snncc.ir import ops as O
from snncc.ir.verify import lint
from snncc.passes.canonicalize import NOOP_RULES, canonicalize
from snncc.passes.manager import run_pipeline

RNG = np.random.default_rng(0)


def _feeds(g, steps: int = 3) -> dict[str, np.ndarray]:
    return {n: RNG.normal(size=(steps, *g.type(n).shape)) for n in g.inputs}


def _assert_same_outputs(before, after, run) -> None:
    feeds = _feeds(before)
    ya, yb = run(before, feeds), run(after, feeds)
    assert ya.keys() == yb.keys()
    for k in ya:
        np.testing.assert_array_equal(ya[k], yb[k])


def _no_noops_left(g) -> bool:
    return not any(
        (rule := NOOP_RULES.get(type(g.op(n)))) is not None and rule(g, n) for n in g.nodes()
    )


def test_dead_nodes_removed_but_inputs_kept(builder, run):
    b = builder()
    x, unused = b.input("x", (4,)), b.input("unused", (2,))
    fc = b.node("fc", O.Linear(weight=RNG.normal(size=(3, 4))), x)
    lif = b.node("lif", O.LIF(), fc)
    dead_fc = b.node("dead_fc", O.Linear(weight=RNG.normal(size=(5, 4))), x)
    b.node("dead_lif", O.LIF(), dead_fc)
    b.node("dead_scale", O.Scale(3.0), unused)
    g = b.output(lif)
    assert "dead_fc" in g and "dead_lif" in g  # precondition

    out, ctx = run_pipeline(g, [canonicalize])
    assert ctx.records[0].changed
    assert out.nodes() == ["x", "unused", "fc", "lif"]
    assert out.inputs == ["x", "unused"]
    assert ctx.records[0].stats["removed_dead"] == 3
    assert any("unused" in d and "kept" in d for d in ctx.records[0].decisions)
    _assert_same_outputs(g, out, run)


def test_reshape_chain_merges_into_one(builder, run):
    b = builder()
    x = b.input("x", (2, 3, 4))
    r1 = b.node("r1", O.Reshape((6, 4)), x)
    r2 = b.node("r2", O.Reshape((24,)), r1)
    r3 = b.node("r3", O.Reshape((4, 6)), r2)
    fc = b.node("fc", O.Linear(weight=RNG.normal(size=(5, 6))), r3)
    g = b.output(fc)

    out, ctx = run_pipeline(g, [canonicalize])
    reshapes = [n for n in out.nodes() if isinstance(out.op(n), O.Reshape)]
    assert reshapes == ["r1"]
    assert out.op("r1").shape == (4, 6) and out.type("r1").shape == (4, 6)
    assert out.inputs_of("fc") == ["r1"]
    assert ctx.records[0].stats["merged_Reshape"] == 2
    _assert_same_outputs(g, out, run)


def test_reshape_round_trip_and_identity_ops_vanish(builder, run):
    b = builder()
    x = b.input("x", (2, 3))
    r1 = b.node("r1", O.Reshape((6,)), x)
    r2 = b.node("r2", O.Reshape((2, 3)), r1)  # merged with r1 -> identity
    p = b.node("p", O.Permute((0, 1)), r2)
    s = b.node("s", O.Scale(1.0), p)
    d = b.node("d", O.Delay(0), s)
    lif = b.node("lif", O.LIF(), d)
    d1 = b.node("d1", O.Delay(1), lif)  # real delay: stays
    s2 = b.node("s2", O.Scale(2.0), d1)  # real scale: stays
    g = b.output(s2)

    out, ctx = run_pipeline(g, [canonicalize])
    assert out.nodes() == ["x", "lif", "d1", "s2"]
    assert out.inputs_of("lif") == ["x"]
    assert _no_noops_left(out) and not lint(out)
    stats = ctx.records[0].stats
    assert stats["removed_noop_Reshape"] == 1 and stats["removed_noop_Scale"] == 1
    assert stats["removed_noop_Permute"] == 1 and stats["removed_noop_Delay"] == 1
    _assert_same_outputs(g, out, run)


def test_permute_chain_is_composed(builder, run):
    b = builder()
    x = b.input("x", (2, 3, 4))
    p1 = b.node("p1", O.Permute((2, 0, 1)), x)
    p2 = b.node("p2", O.Permute((0, 2, 1)), p1)
    t1 = b.node("t1", O.Permute((1, 0)), b.node("flat", O.Reshape((4, 6)), p2))
    t2 = b.node("t2", O.Permute((1, 0)), t1)  # t1 then t2 is the identity
    g = b.output(t2)

    out, _ = run_pipeline(g, [canonicalize])
    assert [n for n in out.nodes() if isinstance(out.op(n), O.Permute)] == ["p1"]
    assert out.outputs == ["flat"]
    _assert_same_outputs(g, out, run)


def test_shared_reshape_is_not_merged_and_output_noop_moves_output(builder, run):
    b = builder()
    x = b.input("x", (2, 3))
    r1 = b.node("r1", O.Reshape((6,)), x)
    r2 = b.node("r2", O.Reshape((3, 2)), r1)
    lif = b.node("lif", O.LIF(), r1)
    s = b.node("s", O.Scale(1.0), lif)  # a no-op that is a graph output
    g = b.output(r2, s)

    out, _ = run_pipeline(g, [canonicalize])
    assert out.inputs_of("r2") == ["r1"]  # r1 also feeds lif: not merged
    assert out.outputs == ["r2", "lif"] and "s" not in out
    _assert_same_outputs(g, out, run)


def test_clean_graph_is_unchanged(builder):
    b = builder()
    x = b.input("x", (4,))
    g = b.output(b.node("lif", O.LIF(), b.node("fc", O.Linear(weight=np.ones((2, 4))), x)))
    out, ctx = run_pipeline(g, [canonicalize])
    assert not ctx.records[0].changed and out == g
