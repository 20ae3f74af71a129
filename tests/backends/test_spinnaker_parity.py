"""Parity on PyNN 0.13 + Brian2 2.9: the emitted SpiNNaker program against the reference.

The runtime job runs the generated ``network.py`` (Brian2's numpy code generation, Python 3.10)
on three samples of every case of test_spinnaker_lower.py (the digits checkpoint, random
spikingformer, spikformer with its SEW residual, an elastic slice and lsformer with LIF
pooling neurons): every population's spikes, per neuron and per step, must equal the
``spinnaker`` reference interpreter's (AND expansions: the numpy executor's) after the
pipeline latency is removed, and the host readout must give the reference's outputs and
predictions exactly. The build directory's own ``network.py`` runs from the command line, and
``snncc run --simulator brian2 --check`` passes on a compiled build. Skipped without the
runtime environment (failing under ``CI=true``), like every ``runtime`` test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from snncc.backends.spinnaker import emit, host, simulate
from snncc.backends.spinnaker.runner import run_on_pynn

from .test_spinnaker_lower import CASES, Case, get_case


def _first_mismatch(name: str, got: np.ndarray, want: np.ndarray) -> str:
    t, b, *i = np.argwhere(got != want)[0]
    return f"{name}: Brian2 and the reference first differ at step {t}, sample {b}, neuron {i}"


@pytest.mark.runtime
@pytest.mark.parametrize("name", sorted(CASES))
def test_brian2_spikes_equal_the_reference(name: str) -> None:
    c: Case = get_case(name)
    spikes, batch = host.encode(c.graph, c.spec, c.inputs)
    b2 = run_on_pynn(c.spec, spikes, batch, timeout=900)
    assert b2.info["simulator"] == "brian2" and b2.info["brian2"] == "2.9.0"
    assert b2.info["pyNN"] == "0.13.0" and b2.info["batch"] == batch == 3
    executor = simulate.windows(c.spec, simulate.simulate(c.spec, spikes, batch), batch)
    rates = {}
    for p in c.spec.populations:
        got = b2.spikes[p.name]
        want = c.reference_spikes(p.name) if p.checked else executor[p.name]
        assert got.shape == want.shape, p.name
        if not np.array_equal(got, want):
            pytest.fail(_first_mismatch(p.name, got, want))
        np.testing.assert_array_equal(b2.counts[p.name], want.sum(axis=0))
        if p.checked:
            rates[p.name] = float(want.mean())
    c.assert_lively(rates)
    out = host.readout(c.graph, c.spec, b2.spikes, c.inputs)
    for k, v in out.items():
        np.testing.assert_array_equal(v, c.reference.outputs[k])
        np.testing.assert_array_equal(
            v.reshape(batch, -1).argmax(-1), c.reference.outputs[k].reshape(batch, -1).argmax(-1)
        )


@pytest.mark.runtime
def test_emitted_network_runs_from_the_command_line(tmp_path: Path, runtime_python: str) -> None:
    """``python network.py --simulator brian2 --input host.npz --out spikes.npz`` in the build."""
    c = get_case("elastic-slice")
    emit.emit(c.spec, tmp_path, label="elastic slice")
    spikes, batch = host.encode(c.graph, c.spec, c.inputs)
    np.savez(tmp_path / "host.npz", **spikes)
    subprocess.run(
        [runtime_python, "network.py", "--simulator", "brian2", "--input", "host.npz",
         "--out", "spikes.npz"],
        cwd=tmp_path, check=True, capture_output=True, timeout=600,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    with np.load(tmp_path / "spikes.npz") as z:
        got = {k: z[k] for k in z.files}
    for p in c.spec.populations:
        want = c.reference_spikes(p.name) if p.checked else None
        if want is not None:
            np.testing.assert_array_equal(got[p.name].reshape(want.shape), want, p.name)


@pytest.mark.runtime
def test_virtual_board_run_leaves_no_temporary_directory(
    tmp_path: Path, runtime_python: str
) -> None:
    """``python network.py --simulator virtual`` maps in a temporary HOME and removes it."""
    c = get_case("elastic-slice")
    build, scratch = tmp_path / "build", tmp_path / "tmp"
    scratch.mkdir()
    emit.emit(c.spec, build, label="elastic slice")
    before = sorted(p.name for p in build.iterdir())
    subprocess.run(
        [runtime_python, "network.py", "--simulator", "virtual"],
        cwd=build, check=True, capture_output=True, timeout=600,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "TMPDIR": str(scratch)},
    )  # fmt: skip
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in build.iterdir()) == before


@pytest.mark.runtime
def test_snncc_run_checks_a_spinnaker_build_on_brian2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """compile --target spinnaker --budget 1board, then ``snncc run --simulator brian2 --check``."""
    from snncc.cli.main import main
    from snncc.compiler import compile_model

    out = tmp_path / "build"
    ckpt = Path(__file__).resolve().parents[2] / "examples/checkpoints/spikingformer-tiny-digits.pt"
    compile_model(str(ckpt), target="spinnaker", budget="1board", out_dir=out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"network.py", "weights.npz", "spec.json"} <= set(manifest["artifacts"])
    capsys.readouterr()
    code = main(["run", str(out), "--data", "digits", "--samples", "3", "--check",
                 "--simulator", "brian2", "--json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["target"] == "spinnaker"
    assert doc["parity"]["equal"] and doc["parity"]["predictions_equal"]
    assert doc["parity"]["populations"] == 20  # the 4 AND expansions have no reference value
    assert doc["runtime"]["simulator"] == "brian2"
