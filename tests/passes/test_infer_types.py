"""infer_types: shapes, temporal flow and the kind/bound table (expected bounds worked by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from snncc.ir import ops as O
from snncc.ir.ops import OPS
from snncc.ir.types import Kind, TensorType
from snncc.ir.verify import lint
from snncc.passes.infer_types import KIND_RULES, infer_types
from snncc.passes.manager import PassContext, run_pipeline

RNG = np.random.default_rng(2)


def _fc(b, name, src, n_out):
    n_in = b.g.type(src).shape[-1]
    return b.node(name, O.Linear(weight=RNG.normal(size=(n_out, n_in))), src)


def _infer(g):
    out, _ = run_pipeline(g, [infer_types])
    return out


def _kb(g, n):
    t = g.type(n)
    return t.kind, t.bound


def test_every_op_class_has_a_kind_rule():
    assert set(KIND_RULES) == set(OPS.values())


def test_sew_residual_of_spikes_is_count_2(builder):
    b = builder()
    x = b.input("x", (4,))
    s1 = b.node("s1", O.LIF(), x)
    s2 = b.node("s2", O.LIF(), _fc(b, "fc", s1, 4))
    g = _infer(b.output(b.node("add", O.Add(), s1, s2)))
    assert _kb(g, "s1") == (Kind.SPIKE, None)
    assert _kb(g, "add") == (Kind.COUNT, 2)


@pytest.mark.parametrize("blocks", [1, 2, 5])
def test_spikformer_residual_stream_bound_is_2L_plus_1(builder, blocks):
    """Each block adds an attention spike branch and an MLP spike branch to the stream."""
    b = builder()
    n, d = 3, 4
    stream = b.node("embed_lif", O.LIF(), b.input("x", (n, d)))
    for i in range(blocks):
        for branch in ("attn", "mlp"):
            lif = b.node(f"b{i}.{branch}.lif", O.LIF(), _fc(b, f"b{i}.{branch}.fc", stream, d))
            stream = b.node(f"b{i}.{branch}.add", O.Add(), stream, lif)
    g = _infer(b.output(stream))
    assert _kb(g, stream) == (Kind.COUNT, 2 * blocks + 1)
    assert _kb(g, "b0.attn.add") == (Kind.COUNT, 2)


def test_attention_products_bounds(builder):
    b = builder()
    n, d = 5, 3
    x = b.node("x_lif", O.LIF(), b.input("x", (n, d)))
    q, k, v = (b.node(f"{p}_lif", O.LIF(), _fc(b, f"{p}_fc", x, d)) for p in "qkv")
    kt = b.node("kT", O.Permute((1, 0)), k)
    qk = b.node("qk", O.MatMul(), q, kt)
    qkv = b.node("qkv", O.MatMul(), qk, v)
    scaled = b.node("scaled", O.Scale(0.125), qkv)
    g = _infer(b.output(scaled))
    assert _kb(g, "kT") == (Kind.SPIKE, None)
    assert g.type("qk").shape == (n, n) and _kb(g, "qk") == (Kind.COUNT, d)
    assert g.type("qkv").shape == (n, d) and _kb(g, "qkv") == (Kind.COUNT, n * d)
    assert _kb(g, "scaled") == (Kind.CURRENT, None)


def test_sum_over_tokens_and_spike_and(builder):
    b = builder()
    n, d = 6, 4
    k = b.node("k", O.LIF(), b.input("xk", (n, d)))
    v = b.node("v", O.LIF(), b.input("xv", (n, d)))
    kv = b.node("kv", O.Mul(), k, v)
    col = b.node("col", O.Sum(axes=(0,), keepdim=True), kv)
    res = b.node("res", O.Add(), k, v)
    both = b.node("both", O.Sum(axes=(-2, -1)), res)
    g = _infer(b.output(col, both))
    assert _kb(g, "kv") == (Kind.SPIKE, None)
    assert g.type("col").shape == (1, d) and _kb(g, "col") == (Kind.COUNT, n)
    assert g.type("both").shape == () and _kb(g, "both") == (Kind.COUNT, 2 * n * d)


def test_mul_rules(builder):
    b = builder()
    s = b.node("s", O.LIF(), b.input("x", (4,)))
    c3 = b.node("c3", O.Add(n=3), s, s, s)
    cur = b.input("cur", (4,))
    sc = b.node("sc", O.Mul(), c3, s)
    cc = b.node("cc", O.Mul(), c3, c3)
    sx = b.node("sx", O.Mul(), s, cur)
    g = _infer(b.output(sc, cc, sx))
    assert _kb(g, "c3") == (Kind.COUNT, 3)
    assert _kb(g, "sc") == (Kind.COUNT, 3)
    assert _kb(g, "cc") == (Kind.CURRENT, None)
    assert _kb(g, "sx") == (Kind.CURRENT, None)


def test_maxpool_keeps_spikes_and_counts_not_currents(builder):
    b = builder()
    x = b.input("x", (2, 4, 4))
    s = b.node("s", O.LIF(), x)
    c2 = b.node("c2", O.Add(), s, s)
    pools = [b.node(f"mp_{n}", O.MaxPool2d(), n) for n in (s, c2, x)]
    g = _infer(b.output(*pools))
    assert g.type("mp_s").shape == (2, 2, 2)
    assert [_kb(g, p) for p in pools] == [
        (Kind.SPIKE, None),
        (Kind.COUNT, 2),
        (Kind.CURRENT, None),
    ]


def test_structural_ops_keep_kind_and_bound(builder):
    b = builder()
    s = b.node("s", O.LIF(), b.input("x", (2, 6)))
    c = b.node("c", O.Add(), s, s)
    ops = {
        "reshape": O.Reshape((3, 4)),
        "permute": O.Permute((1, 0)),
        "repeat": O.Repeat((2, 1)),
        "slice": O.Slice(axis=1, start=0, stop=4),
        "pad": O.Pad(axis=0, before=1, after=1),
        "delay": O.Delay(2),
    }
    names = [b.node(k, op, c) for k, op in ops.items()]
    g = _infer(b.output(*names))
    assert all(_kb(g, n) == (Kind.COUNT, 2) for n in names)
    assert g.type("pad").shape == (4, 6) and g.type("slice").shape == (2, 4)


def test_current_ops_make_currents_even_from_spikes(builder):
    b = builder()
    s = b.node("s", O.LIF(), b.input("x", (2, 4, 4)))
    outs = [
        b.node("scale", O.Scale(2.0), s),
        b.node("mean", O.Mean(axes=(1, 2)), s),
        b.node("avg", O.AvgPool2d(), s),
        b.node("conv", O.Conv2d(weight=np.ones((3, 2, 1, 1))), s),
        b.node(
            "bn",
            O.BatchNorm(
                axis=0,
                **{k: np.ones(2) for k in ("weight", "running_var")},
                bias=np.zeros(2),
                running_mean=np.zeros(2),
            ),
            s,
        ),  # fmt: skip
        b.node("add", O.Add(), s, b.input("cur", (2, 4, 4))),
    ]
    g = _infer(b.output(*outs))
    assert all(_kb(g, n) == (Kind.CURRENT, None) for n in outs)


def test_temporal_flow_only_time_mean_is_static(builder):
    """A static image Input is presented at every step, so its type is per-step (temporal)."""
    b = builder()
    b.g.add("img", O.Input(shape=(4,), temporal=False), TensorType((4,), temporal=False))
    b.g.inputs.append("img")
    s = b.node("s", O.LIF(), _fc(b, "enc", "img", 4))
    tm = b.node("tm", O.TimeMean(), s)
    g = b.output(_fc(b, "head", tm, 2))
    names = ["img", "enc", "s", "tm", "head"]
    for n in names:  # everything static: lint-clean, but not the IR's convention for inputs
        g.set_type(n, TensorType(g.type(n).shape, temporal=False))
    assert not lint(g)
    g = infer_types(g, PassContext())
    assert [g.type(n).temporal for n in names] == [True, True, True, False, False]
    assert not lint(g)


def test_recomputes_corrupted_types_and_keeps_meta(builder):
    b = builder()
    x = b.input("x", (3, 8), Kind.SPIKE)
    b.g.set_type(x, TensorType((3, 8), Kind.SPIKE))
    fc = _fc(b, "fc", x, 5)
    lif = b.node("lif", O.LIF(), fc, kind=Kind.SPIKE)
    add = b.node("add", O.Add(), lif, lif, kind=Kind.COUNT, bound=2)
    g = b.output(b.node("sum", O.Sum(axes=(1,)), add, kind=Kind.COUNT, bound=10))
    g.meta["T"] = 4
    g.node_meta("fc")["note"] = "kept"
    want = {n: g.type(n) for n in g.nodes()}
    for n in ("fc", "lif", "add", "sum"):
        g.set_type(n, TensorType((1,), Kind.GRADED, 3))
    assert lint(g)  # precondition: the corrupted graph is not lint-clean
    ctx = PassContext()
    out = infer_types(g, ctx)
    assert not lint(out)
    assert {n: out.type(n) for n in out.nodes()} == want
    assert out.meta == {"T": 4} and out.node_meta("fc") == {"note": "kept"}
    assert ctx.stats["retyped"] == 4 and ctx.stats["max_count_bound"] == 10


def test_count_input_keeps_declared_bound_and_unchanged_graph_reports_unchanged(builder):
    b = builder()
    b.g.add("ev", O.Input(shape=(4,), kind_in=Kind.COUNT), TensorType((4,), Kind.COUNT, 3))
    b.g.inputs.append("ev")
    s = b.node("s", O.LIF(), b.input("x", (4,)))
    g = b.output(b.node("add", O.Add(), "ev", s))
    out, ctx = run_pipeline(g, [infer_types, infer_types])
    assert _kb(out, "add") == (Kind.COUNT, 4)
    assert [r.changed for r in ctx.records] == [True, False]
