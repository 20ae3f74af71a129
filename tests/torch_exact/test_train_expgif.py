"""Training through the exact Loihi program of ExpG-IF models (``snncc.torch_exact.train_expgif``).

ge2mst-tiny, quantized for Loihi, runs every neuron as the programmable ``LoihiExpGIF`` (2-bit
and 1-bit payloads, a host-fed first layer, attention products). The trainable forward must be
the exact program (same payloads as ``ExactProgram``), every deployed weight must receive a
gradient, and training must do something: on a program whose integers were damaged by noise, a
few steps lower the cross-entropy that the *reference* (not the trainer) measures, and the
fine-tuned graph's reference run reproduces the trainable forward payload for payload. There is
no trained ge2mst checkpoint, so the model is the zoo's random one made to fire (zoo.py); its
frozen float readout keeps the logits small, hence a loss near ln 10 and a criterion on the drop.
A converted ONNX SNN covers the one-group ``start`` schedule and the clock-fed biases.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from snncc.analysis.feeds import to_feeds
from snncc.data.digits import digits
from snncc.interop.ann2snn import convert
from snncc.interop.onnx_read import read_onnx
from snncc.ir import ops as O
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.reference import run
from snncc.reference.loihi_kernels import expgif_trace
from snncc.torch_exact import ExactProgram
from snncc.torch_exact.train import TrainableProgram, finetune
from snncc.torch_exact.train_expgif import expgif_f64

from .zoo import quantized, samples

MODEL = "ge2mst-tiny"


def _deployed(g) -> list[str]:  # noqa: ANN001
    return [n for n in g.topo_order() if "weight_exp" in (g.node_meta(n).get("quant") or {})]


@pytest.mark.parametrize("kind", ["digits", "random"])
def test_trainable_forward_is_the_exact_program(kind: str, one_thread: None) -> None:
    q = quantized(MODEL, "loihi")
    neurons = [n for n in q.topo_order() if isinstance(q.op(n), O.LoihiExpGIF)]
    assert neurons and not any(isinstance(q.op(n), O.LoihiLIF) for n in q.topo_order())
    x = samples(q, kind, 8)
    prog = TrainableProgram(q)
    got = prog(prog.feeds(x))
    want = ExactProgram(q)(prog.feeds(x))
    assert set(want.spikes) == set(neurons)
    graded = 0
    for n, s in want.spikes.items():
        assert torch.equal(got.spikes[n], s), n
        assert torch.equal(got.values[n].detach(), want.values[n]), n  # the payloads
        graded += int((want.values[n] == 2).sum())  # bit 0 of a 2-bit neuron
    assert graded > 0
    (out,) = got.outputs.values()
    assert torch.equal(out.detach(), next(iter(want.outputs.values())))
    out.sum().backward()
    thetas = list(prog.parameters())
    assert len(thetas) == len(_deployed(q)) > 10
    for p in thetas:
        assert p.grad is not None and bool(torch.isfinite(p.grad).all())
        assert bool(p.grad.abs().sum() > 0)


def _loss(g, x: np.ndarray, y: np.ndarray) -> float:  # noqa: ANN001
    """Cross-entropy of the graph's ``loihi`` reference logits (numpy, not the trainer)."""
    logits = run(g, to_feeds(g, x), "loihi").outputs[g.outputs[0]].reshape(len(y), -1)
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(y)), y]))


def test_finetune_lowers_the_loss_of_damaged_weights(one_thread: None) -> None:
    q = quantized(MODEL, "loihi")
    rng = np.random.default_rng(0)
    damaged = q.copy()
    for n in _deployed(q):
        w = q.op(n).weight
        noise = np.rint(rng.normal(0.0, 25.0, w.shape)).astype(np.int64)
        damaged.set_op(n, q.op(n).replace(weight=np.clip(w + noise, -128, 127)))
    x, y = digits("train", size=16)
    x, y = x[:64].astype(np.float64), y[:64]
    before = _loss(damaged, x, y)
    tuned = finetune(damaged, x, y, epochs=30, lr=3.0, batch=32)
    after = _loss(tuned, x, y)
    # Epoch-to-epoch noise of this loss is ~0.002 (the frozen readout keeps logits small, so
    # it starts at ln 10 + 0.001); 30 steps took it 0.056 lower when this test was written.
    assert after < before - 0.025, (before, after)
    for n in _deployed(q):  # on the compile's grid: integers, same exponent, in range
        w = tuned.op(n).weight
        assert w.dtype == np.int64 and w.min() >= -128 and w.max() <= 127
        assert tuned.node_meta(n)["quant"] == q.node_meta(n)["quant"]
    prog = TrainableProgram(tuned)
    got = prog(prog.feeds(x[:16]))
    want = run(tuned, to_feeds(tuned, x[:16]), "loihi", record="all")
    assert set(want.spikes) == set(got.spikes)
    for n, s in want.spikes.items():
        assert np.array_equal(got.spikes[n].numpy(), s), n
        assert np.array_equal(got.values[n].detach().numpy(), want.values[n]), n  # payloads
    # The frozen float readout: same values up to float summation order (as test_train.py).
    out = got.outputs[tuned.outputs[0]].detach().numpy()
    np.testing.assert_allclose(out, want.outputs[tuned.outputs[0]], rtol=0, atol=1e-9)


@pytest.mark.parametrize("start", [None, 1])
def test_one_group_schedule_and_saturation(start: int | None) -> None:
    """``start`` (converted SNNs' one-group schedule) and the ±(2^23 - 1) saturation give the
    reference's payloads (numpy ``expgif_trace``); gradients reach the input through both."""
    T, bits, th = 6, 3, (40, 20, 10)
    rng = np.random.default_rng(3)
    a = rng.integers(-30, 60, (T, 2, 5))
    a[:, 0, 3] = 2**23  # saturates at 2^23 - 1
    bias = np.array([0, 3, -2, 0, 1])
    _, want = expgif_trace(a, th, bias, start=start)
    x = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    y = expgif_f64(x, th, torch.tensor(bias, dtype=torch.float64), start, 40.0)
    assert np.array_equal(y.detach().numpy(), want)
    if start is not None:
        assert not want[:start].any() and not want[start + bits :].any()
    assert want[:, 0, 3].any() and (want == 4).any() and (want == 1).any()
    y.sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    assert bool(x.grad.abs().sum() > 0)


class _SmallCNN(nn.Module):
    """Conv-ReLU, average pool, Gemm-ReLU, Gemm: an ANN ``snncc convert`` turns into one-group
    ExpG-IF layers (``start`` 0 and ``bits``) plus the clock neuron that carries the biases."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.l1 = nn.Linear(8 * 4 * 4, 32)
        self.l2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(
            self.l1(torch.flatten(nn.functional.avg_pool2d(torch.relu(self.c1(x)), 2), 1))
        )
        return self.l2(h)


def test_converted_onnx_snn_trains(tmp_path, one_thread: None) -> None:  # noqa: ANN001
    """A converted ONNX SNN (one-group schedule, clock-fed biases) on Loihi: exact payloads, a
    gradient for every deployed weight (the clock's bias synapses included)."""
    torch.manual_seed(0)
    path = tmp_path / "cnn.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter (onnxscript is not installed)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(_SmallCNN().eval(), (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False)
    x_cal, _ = digits("train", size=8)
    g, _ = convert(read_onnx(path), x_cal[:128], bits=4, timesteps=9)
    g, _ = run_pipeline(g, FRONT_PIPELINE)
    q, _ = run_pipeline(g, [quantize], PassContext(config={"target": "loihi"}))
    neurons = [n for n in q.topo_order() if q.op(n).NEURON]
    assert all(isinstance(q.op(n), O.LoihiExpGIF) and q.op(n).start is not None for n in neurons)
    assert len({q.op(n).start for n in neurons}) > 1
    x, _ = digits("test", size=8)
    prog = TrainableProgram(q)
    got = prog(prog.feeds(x[:8]))
    want = ExactProgram(q)(prog.feeds(x[:8]))
    for n in neurons:
        assert torch.equal(got.values[n].detach(), want.values[n]), n
        assert bool(want.spikes[n].any()), f"{n} never fires"
    (out,) = got.outputs.values()
    assert torch.equal(out.detach(), next(iter(want.outputs.values())))
    out.sum().backward()
    thetas = list(prog.parameters())
    assert len(thetas) == len(_deployed(q)) == 2  # l1 and the clock's bias synapse (c1, l2 host)
    for p in thetas:
        assert p.grad is not None and bool(torch.isfinite(p.grad).all())
        assert bool(p.grad.abs().sum() > 0)
