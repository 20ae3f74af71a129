"""Training through the exact Loihi program (``snncc.torch_exact.train``).

The trainable forward must *be* the exact program (same spikes as ``ExactProgram``, hence as
the reference and Lava), every deployed weight must receive a gradient, and training must do
something useful: a program whose integer weights were damaged by noise (accuracy near chance)
recovers most of its accuracy in two short epochs, and the fine-tuned graph's reference run
reproduces the trainable forward spike for spike.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snncc.analysis.feeds import to_feeds
from snncc.data.digits import digits
from snncc.diagnostics import SnnccError
from snncc.reference import run
from snncc.torch_exact import ExactProgram
from snncc.torch_exact.train import TrainableProgram, finetune

from .zoo import CHECKPOINT, quantized, samples


def _deployed(g) -> list[str]:  # noqa: ANN001
    return [n for n in g.topo_order() if "weight_exp" in (g.node_meta(n).get("quant") or {})]


@pytest.mark.parametrize("ref", [str(CHECKPOINT), "spikingformer-tiny"])
def test_trainable_forward_is_the_exact_program(ref: str) -> None:
    q = quantized(ref, "loihi")
    x = samples(q, "digits", 8)
    prog = TrainableProgram(q)
    got = prog(prog.feeds(x))
    want = ExactProgram(q)(prog.feeds(x))
    for n, s in want.spikes.items():
        assert torch.equal(got.spikes[n], s), n
    (out,) = got.outputs.values()
    torch.testing.assert_close(out.detach(), next(iter(want.outputs.values())), rtol=0, atol=1e-9)
    out.sum().backward()
    thetas = [p for p in prog.parameters()]
    assert len(thetas) == len(_deployed(q))
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in thetas)


def _accuracy(g, x: np.ndarray, y: np.ndarray) -> float:  # noqa: ANN001
    out = run(g, to_feeds(g, x), "loihi").outputs[g.outputs[0]]
    return float(np.mean(out.reshape(len(y), -1).argmax(-1) == y))


def test_finetune_recovers_damaged_weights(one_thread: None) -> None:
    q = quantized(str(CHECKPOINT), "loihi")
    rng = np.random.default_rng(0)
    damaged = q.copy()
    for n in _deployed(q):
        w = q.op(n).weight
        noise = np.rint(rng.normal(0.0, 25.0, w.shape)).astype(np.int64)
        damaged.set_op(n, q.op(n).replace(weight=np.clip(w + noise, -128, 127)))
    xr, yr = digits("train")
    xt, yt = digits("test")
    xt, yt = xt[:200].astype(np.float64), yt[:200]
    before = _accuracy(damaged, xt, yt)
    tuned = finetune(damaged, xr[:512].astype(np.float64), yr[:512], epochs=2, lr=1.0, batch=32)
    after = _accuracy(tuned, xt, yt)
    assert before < 0.3 and after > 0.6, (before, after)
    for n in _deployed(q):  # on the compile's grid: integers, same exponent, in range
        w = tuned.op(n).weight
        assert w.dtype == np.int64 and w.min() >= -128 and w.max() <= 127
        assert tuned.node_meta(n)["quant"] == q.node_meta(n)["quant"]
    assert any(not np.array_equal(tuned.op(n).weight, damaged.op(n).weight) for n in _deployed(q))
    prog = TrainableProgram(tuned)
    got = prog(prog.feeds(xt[:16]))
    want = run(tuned, to_feeds(tuned, xt[:16]), "loihi")
    for n, s in want.spikes.items():
        assert np.array_equal(got.spikes[n].numpy(), s), n


def test_only_quantized_programs_train() -> None:
    unquantized = quantized("spikingformer-tiny", "loihi").copy()
    del unquantized.meta["quant"]
    with pytest.raises(SnnccError, match="quantized for None") as e:
        TrainableProgram(unquantized)
    assert e.value.code == "TEX003"
