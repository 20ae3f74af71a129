"""``examples/train.py``: one short real training run, and the refusal to overwrite."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from snncc.loading.checkpoint import load_checkpoint

SCRIPT = Path(__file__).parent.parent / "examples" / "train.py"


def _train_module():
    spec = importlib.util.spec_from_file_location("snncc_train_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_existing_output_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.pt"
    out.write_bytes(b"keep me")
    code = _train_module().main(["spikingformer-tiny", "--data", "digits", "--epochs", "1",
                                 "-o", str(out)])  # fmt: skip
    assert code == 2 and out.read_bytes() == b"keep me"
    err = capsys.readouterr().err
    assert str(out) in err and "--force" in err


@pytest.mark.slow
def test_a_short_run_writes_a_loadable_checkpoint_with_its_accuracy(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    out.write_bytes(b"old")
    code = _train_module().main(["spikingformer-tiny", "--data", "digits", "--epochs", "4",
                                 "--threads", "1", "-o", str(out), "--force"])  # fmt: skip
    assert code == 0
    ck = load_checkpoint(out)
    assert ck.arch == "spikingformer-tiny" and ck.metrics["data"] == "digits"
    assert ck.metrics["epochs"] == 4 and 0.0 <= ck.metrics["test_accuracy"] <= 1.0
    assert ck.metrics["test_accuracy"] > 0.3  # well above chance (0.1) after four epochs
