"""Training through the exact SpiNNaker program (``snncc.torch_exact.train_spinnaker``).

Mirrors ``test_train.py``: the trainable forward must *be* the exact program (same spikes as
``ExactProgram`` in ``spinnaker`` mode, hence as the reference and Brian2), every deployed
weight must receive a finite non-zero gradient, a program whose stored weights were damaged by
noise (accuracy near chance) recovers most of its accuracy in two short epochs, and the
fine-tuned graph's reference run reproduces the trainable forward spike for spike.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snncc.analysis.feeds import to_feeds
from snncc.data.digits import digits
from snncc.reference import run
from snncc.torch_exact import ExactProgram
from snncc.torch_exact.train import TrainableProgram, finetune, trainable

from .zoo import CHECKPOINT, quantized, samples

RING_MAX = 65535


def _deployed(g) -> list[str]:  # noqa: ANN001
    return [n for n in g.topo_order() if "receptor" in (g.node_meta(n).get("quant") or {})]


def _weighted(g) -> list[str]:  # noqa: ANN001
    """Deployed synaptic ops with a weight array (the trainable ones; ``Scale`` is frozen)."""
    return [n for n in _deployed(g) if hasattr(g.op(n), "weight")]


@pytest.mark.parametrize("ref", [str(CHECKPOINT), "spikingformer-tiny", "spikformer-tiny"])
def test_trainable_forward_is_the_exact_program(ref: str) -> None:
    q = quantized(ref, "spinnaker")
    x = samples(q, "digits", 8)
    prog = trainable(q)
    assert isinstance(prog, TrainableProgram) and prog.mode == "spinnaker"
    got = prog(prog.feeds(x))
    want = ExactProgram(q)(prog.feeds(x))
    assert want.spikes and all(s.any() for s in want.spikes.values())
    for n, s in want.spikes.items():
        assert torch.equal(got.spikes[n], s), n
    (out,) = got.outputs.values()
    torch.testing.assert_close(out.detach(), next(iter(want.outputs.values())), rtol=0, atol=1e-9)
    out.sum().backward()
    thetas = list(prog.parameters())
    assert len(thetas) == len(_weighted(q)) > 0
    for p in thetas:
        assert p.grad is not None and bool(torch.isfinite(p.grad).all())
        assert bool(p.grad.abs().sum() > 0)


def test_to_graph_without_training_gives_back_the_stored_weights() -> None:
    q = quantized(str(CHECKPOINT), "spinnaker")
    g = TrainableProgram(q).to_graph()
    for n in _weighted(q):
        assert g.op(n).weight.dtype == np.int64
        np.testing.assert_array_equal(g.op(n).weight, q.op(n).weight)


def _accuracy(g, x: np.ndarray, y: np.ndarray) -> float:  # noqa: ANN001
    out = run(g, to_feeds(g, x), "spinnaker").outputs[g.outputs[0]]
    return float(np.mean(out.reshape(len(y), -1).argmax(-1) == y))


def test_finetune_recovers_damaged_weights(one_thread: None) -> None:
    q = quantized(str(CHECKPOINT), "spinnaker")
    rng = np.random.default_rng(0)
    damaged = q.copy()
    for n in _weighted(q):  # noise of 0.3 times each layer's largest stored weight
        w = q.op(n).weight
        noise = np.rint(rng.normal(0.0, 0.3 * np.abs(w).max(), w.shape)).astype(np.int64)
        damaged.set_op(n, q.op(n).replace(weight=np.clip(w + noise, -RING_MAX, RING_MAX)))
    xr, yr = digits("train")
    xt, yt = digits("test")
    xt, yt = xt[:200].astype(np.float64), yt[:200]
    before = _accuracy(damaged, xt, yt)
    tuned = finetune(damaged, xr[:512].astype(np.float64), yr[:512], epochs=2, lr=1.0, batch=32)
    after = _accuracy(tuned, xt, yt)
    assert before < 0.3 and after > 0.6, (before, after)
    for n in _weighted(q):  # on the compile's grid: integers in range, same shifts and scale
        w = tuned.op(n).weight
        assert w.dtype == np.int64 and w.min() >= -RING_MAX and w.max() <= RING_MAX
        assert tuned.node_meta(n)["quant"] == q.node_meta(n)["quant"]
    changed = [
        n for n in _weighted(q) if not np.array_equal(tuned.op(n).weight, damaged.op(n).weight)
    ]
    assert changed
    prog = TrainableProgram(tuned)
    got = prog(prog.feeds(xt[:16]))
    want = run(tuned, to_feeds(tuned, xt[:16]), "spinnaker")
    for n, s in want.spikes.items():
        assert np.array_equal(got.spikes[n].numpy(), s), n
