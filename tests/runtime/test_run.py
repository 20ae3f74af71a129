"""``snncc run``: a compiled build simulated end to end, parity, and everything that can go wrong.

The bad-input cases fail before any simulator starts (fast, no runtime environment needed). The
parity path is tested twice: on real Lava (``runtime``), and with the runner swapped for the
numpy executor of the same spec so that a deliberately flipped spike must surface as exit 5
with the right layer, neuron and step.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from snncc.cli import main
from snncc.compiler import compile_model

ROOT = Path(__file__).resolve().parents[2]
CKPT = ROOT / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits checkpoint compiled for Loihi (with its program)."""
    out = tmp_path_factory.mktemp("run") / "digits"
    compile_model(str(CKPT), target="loihi", budget="2MiB", out_dir=out)
    return out


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error(err: str, code: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error[")]
    assert len(lines) == 1 and lines[0].startswith(f"error[{code}]"), err
    assert "Traceback" not in err
    return lines[0]


def test_build_holds_the_program(build: Path) -> None:
    manifest = json.loads((build / "manifest.json").read_text())
    for name in ("network.py", "run.py", "weights.npz", "spec.json"):
        assert name in manifest["artifacts"], name
    report = json.loads((build / "report.json").read_text())
    prog = report["program"]
    assert prog["populations"] == 20 and prog["pipeline_depth"] > 0
    assert all(x["kind"] == "product" for x in prog["not_neurocore_native"])


# -- bad input ---------------------------------------------------------------------------------
def test_not_a_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for target in (tmp_path / "missing", CKPT, tmp_path):
        code, _, err = _run(capsys, str(target))
        assert code == 2
        assert str(target) in _one_error(err, "RUN001")


def test_spinnaker_build_on_lava_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sp"
    compile_model("spikingformer-tiny", target="spinnaker", budget="1GiB", out_dir=out)
    code, _, err = _run(capsys, str(out), "--simulator", "lava")
    assert code == 2 and "brian2" in _one_error(err, "RUN002")


def test_damaged_weights_are_refused(
    build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(build, copy)
    w = copy / "weights.npz"
    w.write_bytes(w.read_bytes()[:1000])  # truncated
    code, _, err = _run(capsys, str(copy), "--samples", "1")
    assert code == 2 and "weights.npz" in _one_error(err, "RUN003")
    w.unlink()
    code, _, err = _run(capsys, str(copy), "--samples", "1")
    assert code == 2 and "missing" in _one_error(err, "RUN003")


def test_bad_inputs(build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "wrong.npz", x=np.zeros((2, 3, 5, 5), np.float32))
    code, _, err = _run(capsys, str(build), "--input", str(tmp_path / "wrong.npz"))
    assert code == 2 and "wrong.npz" in _one_error(err, "RUN010")
    code, _, err = _run(capsys, str(build), "--input", "x.npz", "--data", "digits")
    assert code == 2 and "not allowed with" in _one_error(err, "CLI001")
    code, _, err = _run(capsys, str(build), "--simulator", "brian2")
    assert code == 2 and "lava" in _one_error(err, "RUN002")
    code, _, err = _run(capsys, str(build), "--out", str(build / "spec.json"), "--force")
    assert code == 2 and "spec.json" in _one_error(err, "CO005")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wrong.npz"]


# -- parity through the CLI with the numpy executor standing in for Lava ---------------------
def _numpy_runner(flip: tuple[str, int, int] | None = None):
    """A runner with run_on_lava's contract, computed by the spec's numpy executor."""
    from snncc.backends.lower.simulate import simulate, windows

    def run(spec, host, batch, timeout=600, *, progress=None, log_path=None):  # noqa: ANN001
        spikes = windows(spec, simulate(spec, host, batch), batch)
        if flip is not None:
            name, t, i = flip
            s = spikes[name].reshape(spec.timesteps, batch, -1)
            s[t, 0, i] ^= 1
        if progress is not None:
            progress(batch)
        return SimpleNamespace(spikes=spikes, info={"runner": "numpy executor"})

    return run


def _use_runner(monkeypatch: pytest.MonkeyPatch, runner) -> None:  # noqa: ANN001
    from snncc import targets

    class Loihi(type(targets.TARGETS["loihi"])):  # type: ignore[misc]
        def load(self, part: str):  # noqa: ANN201
            return runner if part == "runner" else super().load(part)

    import dataclasses

    t = targets.TARGETS["loihi"]
    fields = {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}
    monkeypatch.setitem(targets.TARGETS, "loihi", Loihi(**fields))


def test_check_passes_and_reports(
    build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_runner(monkeypatch, _numpy_runner())
    out = tmp_path / "spikes.npz"
    code, stdout, err = _run(
        capsys, str(build), "--data", "digits", "--samples", "3", "--check", "--json",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["parity"]["equal"] and doc["parity"]["samples"] == 3
    assert doc["accuracy"] is not None and len(doc["predictions"]) == 3
    assert all(r["spikes"] > 0 for r in doc["layers"])  # nothing silent
    assert doc["drift_note"] is None and any(r["drift"] for r in doc["layers"])
    with np.load(out) as z:
        assert sorted(z.files) == sorted(r["name"] for r in doc["layers"])


def test_a_flipped_spike_is_exit_5_naming_it(
    build: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    layer = "block.0.mlp.mlp1_lif"
    _use_runner(monkeypatch, _numpy_runner(flip=(layer, 2, 7)))
    code, out, err = _run(capsys, str(build), "--data", "digits", "--samples", "2", "--check")
    assert code == 5, err
    line = _one_error(err, "RUN020")
    assert layer in line and "neuron [" in line and "step 2" in line


# -- real Lava --------------------------------------------------------------------------------
@pytest.mark.runtime
def test_lava_run_equals_the_reference(build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, str(build), "--data", "digits", "--samples", "3", "--check",
                          "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["parity"]["equal"] and doc["parity"]["predictions_equal"]
    assert doc["runtime"]["lava_nc"] == "0.10.0"
    rates = [r["rate"] for r in doc["layers"]]
    assert min(rates) > 0 and sum(0.02 <= r <= 0.5 for r in rates) >= 0.8 * len(rates)


@pytest.mark.runtime
def test_fused_lava_run_equals_the_reference(
    build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--simulator lava-fused``: the program as one CPU process, still spike-exact."""
    code, out, err = _run(capsys, str(build), "--data", "digits", "--samples", "3", "--check",
                          "--simulator", "lava-fused", "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["parity"]["equal"] and doc["parity"]["predictions_equal"]
    assert doc["runtime"]["fused"] is True and doc["runtime"]["processes"] == 3


def _job_processes() -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [ln for ln in ps.splitlines() if "snncc.backends.lava.runtime.program" in ln]


@pytest.mark.runtime
def test_ctrl_c_ends_the_lava_processes(build: Path) -> None:
    """SIGINT while Lava runs: exit 130 and no runtime process left behind."""
    assert not _job_processes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "snncc", "run", str(build), "--data", "digits", "--samples", "40"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not _job_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _job_processes(), "the Lava job never started"
    time.sleep(2.0)  # inside Lava's run
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    time.sleep(1.0)
    assert not _job_processes(), "a Lava process outlived snncc"
