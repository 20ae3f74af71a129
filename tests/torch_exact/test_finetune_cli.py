"""``snncc finetune``: the fine-tuned checkpoint compiles back to exactly the trained integers.

The expected integers come from the trainer itself (:func:`snncc.torch_exact.train.finetune`,
tested against the reference in test_train.py) run on the same program and samples; the actual
ones from ``snncc compile`` of the written file. Between the two lie what is under test here:
mapping integers back into float checkpoint weights, the pinned grid, the checkpoint format and
the CLI. The file's target-exact PyTorch forward then equals the reference spike for spike.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from snncc.analysis.feeds import to_feeds
from snncc.cli.main import main
from snncc.data.digits import digits
from snncc.ir.ops import op_equal
from snncc.ir.serialize import load
from snncc.reference import run
from snncc.torch_exact import from_model
from snncc.torch_exact.finetune import prepare
from snncc.torch_exact.train import finetune

from .zoo import CHECKPOINT

TRAIN = 128
LR = 0.5  # mantissa units per Adam step: two steps on 128 samples move thousands of integers


@pytest.fixture(scope="module", params=["loihi", "spinnaker"])
def tuned_file(request, tmp_path_factory):  # noqa: ANN001, ANN201
    """Run the CLI once per target (target, JSON result, output path)."""
    torch.set_num_threads(1)
    target = request.param
    out = tmp_path_factory.mktemp("ft") / "model_ft.pt"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["finetune", str(CHECKPOINT), "--target", target, "--data", "digits",
                   "--train-samples", str(TRAIN), "--lr", str(LR), "-o", str(out),
                   "--json"])  # fmt: skip
    assert rc == 0, buf.getvalue()
    return target, json.loads(buf.getvalue()), out


def _deployed(g) -> list[str]:  # noqa: ANN001
    return [n for n in g.topo_order() if "stream" in (g.node_meta(n).get("quant") or {})]


def test_compile_deploys_exactly_the_trained_integers(tuned_file, tmp_path) -> None:  # noqa: ANN001
    target, result, out = tuned_file
    setup = prepare(str(CHECKPOINT), target, "digits")
    x, y = digits("train", size=16)
    want = finetune(setup.program, x[:TRAIN], y[:TRAIN], epochs=1, lr=LR, batch=64, seed=0)
    changed = sum(
        int(np.sum(np.asarray(want.op(n).weight) != np.asarray(setup.program.op(n).weight)))
        for n in _deployed(want)
        if hasattr(want.op(n), "weight")
    )
    assert changed > 100 and result["changed_integers"] == changed
    build = tmp_path / "build"
    budget = "2MB" if target == "loihi" else "1board"
    rc = main(["compile", str(out), "--target", target, "--budget", budget, "--eval", "digits",
               "-o", str(build)])  # fmt: skip
    assert rc == 0
    got = load(build / "ir")
    assert _deployed(got) == _deployed(want)
    for n in _deployed(want):
        assert op_equal(got.op(n), want.op(n)), n
    # Without calibration data the grid is the same (pinned), so the program is too.
    plain = from_model(str(out), target).graph
    for n in _deployed(want):
        assert op_equal(plain.op(n), want.op(n)), n


def test_pytorch_forward_equals_the_reference(tuned_file) -> None:  # noqa: ANN001
    target, _, out = tuned_file
    prog = from_model(str(out), target)
    x, _ = digits("test", size=16)
    feeds = prog.feeds(x[:4])
    res = prog(feeds)
    ref = run(prog.graph, {k: v.numpy() for k, v in feeds.items()}, target, record="all")
    fired = 0
    for n, s in res.spikes.items():
        assert np.array_equal(s.numpy(), ref.spikes[n]), n
        fired += int(s.sum())
    assert fired > 0


def _accuracy(g, mode: str) -> float:  # noqa: ANN001
    x, y = digits("test", size=16)
    out = run(g, to_feeds(g, x), mode).outputs[g.outputs[0]]
    return float(np.mean(out.reshape(len(y), -1).argmax(-1) == y))


def test_accuracy_before_and_after_are_reported(tuned_file, tmp_path) -> None:  # noqa: ANN001
    target, result, out = tuned_file
    setup = prepare(str(CHECKPOINT), target, "digits")
    assert result["test_samples"] == 450 and len(result["losses"]) == 1
    assert result["float_accuracy"] == pytest.approx(0.9689, abs=1e-3)  # the checkpoint's
    assert result["accuracy_before"] == _accuracy(setup.program, target)
    assert result["accuracy_after"] == _accuracy(from_model(str(out), target).graph, target)


def test_existing_output_is_not_overwritten(tuned_file, capsys) -> None:  # noqa: ANN001
    _, _, out = tuned_file
    before = out.read_bytes()
    rc = main(["finetune", str(CHECKPOINT), "--target", "loihi", "--data", "digits",
               "-o", str(out)])  # fmt: skip
    assert rc == 2 and out.read_bytes() == before
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("model", "code"), [("elastic-spikingformer-tiny", "FT001"), ("missing.pt", "E020")]
)
def test_models_that_cannot_be_fine_tuned(model: str, code: str, tmp_path, capsys) -> None:  # noqa: ANN001
    rc = main(["finetune", model, "--target", "loihi", "--data", "digits",
               "-o", str(tmp_path / "x.pt")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and code in err and not (tmp_path / "x.pt").exists()


def test_expgif_model_round_trips(tmp_path, capsys) -> None:  # noqa: ANN001
    """ge2mst-tiny (every neuron a programmable ExpG-IF; its synapses read graded payloads, so
    their ``input_unit`` is the payload unit): the file compiles back to the trainer's integers.

    The zoo model is random and nearly silent, so a large step moves integers at all."""
    torch.set_num_threads(1)
    out = tmp_path / "ge.pt"
    args = ["--train-samples", "32", "--lr", "5", "--epochs", "3", "--batch-size", "16"]
    rc = main(["finetune", "ge2mst-tiny", "--target", "loihi", "--data", "digits", *args,
               "-o", str(out), "--json"])  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert rc == 0
    setup = prepare("ge2mst-tiny", "loihi", "digits")
    x, y = digits("train", size=16)
    want = finetune(setup.program, x[:32], y[:32], epochs=3, lr=5.0, batch=16, seed=0)
    changed = sum(
        int(np.sum(np.asarray(want.op(n).weight) != np.asarray(setup.program.op(n).weight)))
        for n in _deployed(want)
        if hasattr(want.op(n), "weight")
    )
    assert changed > 1000 and result["changed_integers"] == changed
    got = from_model(str(out), "loihi").graph
    assert _deployed(got) == _deployed(want)
    for n in _deployed(want):
        assert op_equal(got.op(n), want.op(n)), n
