"""FRONT_PIPELINE on a Spikformer-like block: the passes compose and keep the outputs equal."""

from __future__ import annotations

import numpy as np

from snncc.ir import ops as O
from snncc.ir.types import Kind
from snncc.passes.manager import run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE

RNG = np.random.default_rng(3)


def _bn(c: int) -> O.BatchNorm:
    return O.BatchNorm(
        weight=RNG.normal(size=c),
        bias=RNG.normal(size=c),
        running_mean=RNG.normal(size=c),
        running_var=RNG.uniform(0.5, 2.0, size=c),
        axis=0,
    )


def _linear_bn_lif(b, prefix: str, src: str, n_out: int) -> str:
    """Spikformer CIFAR: Linear -> transpose -> BN1d -> transpose -> LIF, plus trace noise."""
    n_in = b.g.type(src).shape[-1]
    fc = b.node(f"{prefix}_linear", O.Linear(weight=RNG.normal(size=(n_out, n_in)) * 0.6), src)
    same = b.node(f"{prefix}_view", O.Reshape(b.g.type(fc).shape), fc)  # no-op blocks fold_bn
    t1 = b.node(f"{prefix}_t1", O.Permute((1, 0)), same)
    bn = b.node(f"{prefix}_bn", _bn(n_out), t1)
    t2 = b.node(f"{prefix}_t2", O.Permute((1, 0)), bn)
    return b.node(f"{prefix}_lif", O.LIF(), t2)


def test_front_pipeline_on_a_spiking_attention_block(builder, run):
    b = builder("block")
    n, d = 4, 6
    x = b.node("x_lif", O.LIF(), b.input("x", (n, d)))
    q, k, v = (_linear_bn_lif(b, p, x, d) for p in "qkv")
    kt = b.node("kT", O.Permute((1, 0)), k)
    attn = b.node("attn", O.MatMul(), b.node("qk", O.MatMul(), q, kt), v)
    scaled = b.node("scale", O.Scale(0.125), attn)
    proj = _linear_bn_lif(b, "proj", b.node("attn_lif", O.LIF(v_threshold=0.5), scaled), d)
    res = b.node("res", O.Add(), x, proj)
    b.node("debug", O.Sum(axes=(0,)), q)  # dead: nothing reads it
    g = b.output(res)

    out, ctx = run_pipeline(g, FRONT_PIPELINE)
    assert [r.name for r in ctx.records] == [
        "canonicalize",
        "fold_bn",
        "canonicalize",
        "infer_types",
        "verify_spike_driven",
    ]
    assert all(r.changed for r in ctx.records[:-1])  # verification only reads the graph
    assert not ctx.records[-1].changed
    assert not [m for m in out.nodes() if isinstance(out.op(m), (O.BatchNorm, O.Reshape))]
    assert "debug" not in out and ctx.records[1].stats == {"folded": 4}
    assert (out.type("qk").kind, out.type("qk").bound) == (Kind.COUNT, d)
    assert (out.type("attn").kind, out.type("attn").bound) == (Kind.COUNT, n * d)
    assert (out.type("res").kind, out.type("res").bound) == (Kind.COUNT, 2)

    feeds = {"x": RNG.normal(1.0, 1.0, size=(6, n, d))}
    before, after = run(g, feeds), run(out, feeds)
    assert before["out0"].sum() > 0  # the block actually spikes
    np.testing.assert_allclose(after["out0"], before["out0"], rtol=0, atol=1e-12)
