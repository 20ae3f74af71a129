"""``ExactProgram`` as an API: builds of both targets, feeds, bad input, and the float ops.

The float-mode graph exercises the ops no quantized zoo model reaches (BatchNorm, average
pooling with and without padding counted, Repeat, Slice, Pad, Sum, Delay, every LIF charge form,
IF, ExpG-IF): spikes must equal the reference's and values agree to float64 rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snncc.compiler import compile_model
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.reference import run
from snncc.runtime.build import open_build
from snncc.torch_exact import ExactProgram, from_build, from_graph, mode_of

from .zoo import CHECKPOINT, samples


@pytest.mark.parametrize(
    ("model", "target", "budget"),
    [(str(CHECKPOINT), "loihi", "2MiB"), ("spikingformer-tiny", "spinnaker", "1GiB")],
)
def test_from_build_equals_the_reference(
    tmp_path: Path, model: str, target: str, budget: str
) -> None:
    out = tmp_path / "build"
    compile_model(model, target=target, budget=budget, out_dir=out)
    prog = from_build(out)
    assert prog.mode == target == mode_of(prog.graph)
    from snncc.ir.serialize import load

    g = load(out / "ir")
    x = samples(g, "digits")
    from snncc.analysis.feeds import to_feeds

    want = run(g, to_feeds(g, x), target)
    got = prog(prog.feeds(torch.from_numpy(x)))
    for n, s in want.spikes.items():
        assert np.array_equal(got.spikes[n].numpy(), s), n
    if target == "loihi":  # open_build's graph is the one from_build uses
        assert open_build(out).graph == g


def test_a_damaged_build_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "sp"
    compile_model("spikingformer-tiny", target="spinnaker", budget="1GiB", out_dir=out)
    (out / "ir" / "tensors.npz").write_bytes(b"junk")
    with pytest.raises(SnnccError) as e:
        from_build(out)
    assert e.value.code == "RUN003"
    with pytest.raises(SnnccError) as e:
        from_build(tmp_path / "missing")
    assert e.value.code == "RUN001"


def test_bad_feeds_are_refused(builder) -> None:
    b = builder(2)
    b.input("x", (3,))
    b.node("lif", O.LIF(), "x")
    prog = from_graph(b.done("lif"))
    assert prog.mode == "float"
    for bad in ({"y": torch.zeros(2, 1, 3)}, {"x": torch.zeros(3, 1, 3)}, {"x": torch.zeros(2, 3)}):
        with pytest.raises(SnnccError) as e:
            prog(bad)
        assert e.value.code == "TEX001"
    with pytest.raises(SnnccError) as e:
        ExactProgram(b.g, "fpga")
    assert e.value.code == "TEX002"
    with pytest.raises(SnnccError, match="float neuron in loihi mode"):
        ExactProgram(b.g, "loihi")


def test_float_ops_equal_the_reference(builder, rng) -> None:
    b = builder(5)
    b.input("x", (2, 6, 6))
    b.node("bn", O.BatchNorm(weight=rng.uniform(1, 2, 2), bias=rng.normal(size=2),
                             running_mean=rng.normal(size=2), running_var=rng.uniform(0.5, 2, 2)),
           "x")  # fmt: skip
    lifs = [
        b.node(f"lif{i}", O.LIF(tau=t, v_threshold=0.4, v_reset=r, decay_input=d), "bn")
        for i, (t, r, d) in enumerate([(2.0, 0.0, True), (3.0, -0.2, True), (1.5, None, False),
                                       (4.0, 0.1, False)])
    ]  # fmt: skip
    b.node("cat", O.Add(n=4), *lifs)
    b.node("avg", O.AvgPool2d(kernel=(3, 3), stride=(2, 2), padding=(1, 1)), "cat")
    b.node("avg2", O.AvgPool2d(kernel=(2, 2), stride=(1, 1), padding=(1, 1),
                               count_include_pad=False), "cat")  # fmt: skip
    b.node("mp", O.MaxPool2d(kernel=(2, 2), stride=(1, 1), padding=(1, 1), dilation=(2, 2)), "cat")
    b.node("if", O.IF(v_threshold=0.7, v_reset=None), "avg")
    b.node("rep", O.Repeat(repeats=(2, 1, 1, 2)), "if")
    b.node("sl", O.Slice(axis=-1, start=1, stop=6, step=2), "rep")
    b.node("pad", O.Pad(axis=1, before=1, after=2), "sl")
    b.node("dl", O.Delay(steps=2), "pad")
    b.node("sum", O.Sum(axes=(0, 2), keepdim=True), "dl")
    b.node("eg", O.ExpGIF(theta=1.5, bits=3), "avg2")
    b.node("flat", O.Reshape((2, 49)), "eg")
    b.node("c1", O.Conv1d(weight=rng.normal(size=(3, 2, 3)), padding=1), "flat")
    b.node("mul", O.Mul(), "c1", "c1")
    b.node("mean", O.Mean(axes=(-1,)), "mul")
    b.node("tm", O.TimeMean(), "mean")
    g = b.done("tm", "sum", "mp")
    x = rng.normal(0.3, 1.0, (5, 3, 2, 6, 6))
    want = run(g, {"x": x}, "float", record="all")
    got = ExactProgram(g)({"x": torch.from_numpy(x)}, record="all")
    for n, s in want.spikes.items():
        assert np.array_equal(got.spikes[n].numpy(), s), n
        assert 0 < s.mean() < 1, n
    for n, v in want.values.items():
        np.testing.assert_allclose(got.values[n].numpy(), v, rtol=0, atol=1e-12, err_msg=n)
