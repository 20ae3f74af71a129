"""fold_bn: BN disappears into Linear/Conv (also through transposes); outputs stay equal."""

from __future__ import annotations

import numpy as np
import pytest

from snncc.ir import ops as O
from snncc.passes.fold_bn import fold_bn
from snncc.passes.manager import run_pipeline

RNG = np.random.default_rng(1)


def _bn(c: int, axis: int) -> O.BatchNorm:
    return O.BatchNorm(
        weight=RNG.normal(size=c),
        bias=RNG.normal(size=c),
        running_mean=RNG.normal(size=c),
        running_var=RNG.uniform(0.2, 3.0, size=c),
        eps=1e-5,
        axis=axis,
    )


def _check_equivalent(g, out, run, steps: int = 2) -> None:
    feeds = {n: RNG.normal(size=(steps, *g.type(n).shape)) for n in g.inputs}
    ya, yb = run(g, feeds), run(out, feeds)
    for k in ya:
        np.testing.assert_allclose(yb[k], ya[k], rtol=0, atol=1e-12)


def _bns(g) -> list[str]:
    return [n for n in g.nodes() if isinstance(g.op(n), O.BatchNorm)]


def _fold(g):
    out, ctx = run_pipeline(g, [fold_bn])
    return out, ctx.records[0]


@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_bn_folds(builder, run, bias):
    b = builder()
    x = b.input("x", (4, 6, 5))
    w = RNG.normal(size=(6, 2, 3, 3))
    conv = O.Conv2d(weight=w, bias=RNG.normal(size=6) if bias else None, padding=(1, 1), groups=2)
    c = b.node("conv", conv, x)
    bn = b.node("bn", _bn(6, 0), c)
    g = b.output(b.node("lif", O.LIF(), bn))
    out, rec = _fold(g)
    assert _bns(out) == [] and out.inputs_of("lif") == ["conv"]
    assert out.op("conv").bias is not None
    assert rec.changed and rec.stats == {"folded": 1}
    _check_equivalent(g, out, run)


def test_conv1d_bn_folds(builder, run):
    b = builder()
    x = b.input("x", (3, 10))
    c = b.node("conv", O.Conv1d(weight=RNG.normal(size=(5, 3, 3)), stride=2), x)
    g = b.output(b.node("bn", _bn(5, 0), c))
    out, rec = _fold(g)
    assert _bns(out) == [] and out.outputs == ["conv"]
    _check_equivalent(g, out, run)


@pytest.mark.parametrize("axis", [-1, 1])
def test_linear_bn_on_tokens_folds(builder, run, axis):
    b = builder()
    x = b.input("x", (7, 4))
    fc = b.node("fc", O.Linear(weight=RNG.normal(size=(6, 4)), bias=RNG.normal(size=6)), x)
    g = b.output(b.node("bn", _bn(6, axis), fc))
    out, _ = _fold(g)
    assert _bns(out) == []
    _check_equivalent(g, out, run)


def test_linear_transpose_bn_transpose_folds(builder, run):
    """Spikformer CIFAR: Linear -> transpose -> BatchNorm1d(channels) -> transpose."""
    b = builder()
    x = b.input("x", (8, 4))  # [N tokens, D]
    fc = b.node("q_linear", O.Linear(weight=RNG.normal(size=(6, 4))), x)
    t1 = b.node("t1", O.Permute((1, 0)), fc)  # [6, N]
    bn = b.node("q_bn", _bn(6, 0), t1)
    t2 = b.node("t2", O.Permute((1, 0)), bn)
    g = b.output(b.node("q_lif", O.LIF(), t2))
    out, rec = _fold(g)
    assert _bns(out) == [] and out.inputs_of("t2") == ["t1"]
    assert rec.decisions == ["folded BatchNorm q_bn into Linear q_linear through t1"]
    _check_equivalent(g, out, run, steps=4)


def test_bn_with_two_users_folds_and_both_users_read_the_folded_op(builder, run):
    b = builder()
    x = b.input("x", (2, 4, 4))
    c = b.node("conv", O.Conv2d(weight=RNG.normal(size=(3, 2, 1, 1))), x)
    bn = b.node("bn", _bn(3, 0), c)
    g = b.output(b.node("lif", O.LIF(), bn), b.node("s", O.Scale(0.5), bn))
    out, _ = _fold(g)
    assert _bns(out) == [] and out.inputs_of("lif") == out.inputs_of("s") == ["conv"]
    _check_equivalent(g, out, run)


def _kept(builder, build) -> tuple:
    b = builder()
    g = build(b)
    out, rec = _fold(g)
    assert _bns(out) == ["bn"] and out == g and not rec.changed
    assert rec.stats == {"kept": 1} and rec.decisions[0].startswith("kept BatchNorm bn: ")
    return rec.decisions[0]


def test_synaptic_op_with_another_user_is_not_folded(builder):
    def build(b):
        c = b.node("conv", O.Conv2d(weight=RNG.normal(size=(3, 2, 1, 1))), b.input("x", (2, 4, 4)))
        return b.output(b.node("bn", _bn(3, 0), c), b.node("lif", O.LIF(), c))

    assert "conv has other users" in _kept(builder, build)


def test_synaptic_op_that_is_a_graph_output_is_not_folded(builder):
    def build(b):
        fc = b.node("fc", O.Linear(weight=RNG.normal(size=(3, 4))), b.input("x", (4,)))
        return b.output(fc, b.node("bn", _bn(3, 0), fc))

    assert "fc is a graph output" in _kept(builder, build)


def test_permute_with_another_user_blocks_folding(builder):
    def build(b):
        fc = b.node("fc", O.Linear(weight=RNG.normal(size=(3, 4))), b.input("x", (5, 4)))
        t = b.node("t", O.Permute((1, 0)), fc)
        return b.output(b.node("bn", _bn(3, 0), t), b.node("lif", O.LIF(), t))

    assert "t has other users" in _kept(builder, build)


def test_bn_over_a_non_channel_axis_is_kept(builder):
    def build(b):
        fc = b.node("fc", O.Linear(weight=RNG.normal(size=(3, 4))), b.input("x", (5, 4)))
        return b.output(b.node("bn", _bn(5, 0), fc))  # normalises over tokens, not features

    assert "axis 0 of Linear fc, not its channel axis 1" in _kept(builder, build)


def test_bn_after_a_non_synaptic_op_is_kept(builder):
    def build(b):
        lif = b.node("lif", O.LIF(), b.input("x", (3, 4)))
        return b.output(b.node("bn", _bn(3, 0), lif))

    assert "LIF lif" in _kept(builder, build)
