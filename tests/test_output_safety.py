"""``snncc compile -o DIR --force`` never loses data (issue 9, deliverables 2 and 4).

Each test runs the real command line (:func:`snncc.cli.main`) so that the exit code and the
printed ``error[CODE]`` line are what a user sees. The rules themselves are unit-tested in
``tests/reports/test_artifacts.py``; here the point is the wiring: the compile passes its
checkpoint and ``--eval`` file as inputs, checks the target before the minute of work, and turns
an OS error while writing into one line. Refusals happen before the model is even loaded, so
most tests take milliseconds; the few that compile use the tiny zoo model.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from snncc.cli import main
from snncc.reports.artifacts import sha256_file, tree_files, tree_hashes

MODEL = "spikingformer-tiny"
CHECKPOINT = (
    Path(__file__).resolve().parents[1] / "examples/checkpoints/spikingformer-tiny-digits.pt"
)
BUDGET = "64MiB"


def compile_to(out: str | Path, *extra: str, model: str = MODEL) -> list[str]:
    """The argv of a Loihi compile of ``model`` into ``out``."""
    return ["compile", model, "--target", "loihi", "--budget", BUDGET, "-o", str(out), *extra]


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    """Run the CLI; (exit code, stderr)."""
    capsys.readouterr()
    rc = main(argv)
    return rc, capsys.readouterr().err


def one_error(err: str, code: str) -> str:
    """The single ``error[CODE]`` line of ``err``; fails on a traceback or a second error."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error[")]
    assert len(lines) == 1 and lines[0].startswith(f"error[{code}]"), err
    return lines[0]


def siblings(out: Path) -> list[str]:
    """Leftover temporary siblings of ``out`` (``.name.tmp-*`` / ``.name.old-*``)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make loading the model a bug: a refusal must come before the compile's work."""
    import snncc.compiler

    def resolve(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the output was not checked before the work")

    monkeypatch.setattr(snncc.compiler, "_resolve", resolve)


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real compile, copied by the tests that need a previous build to replace."""
    out = tmp_path_factory.mktemp("previous") / "build"
    assert main(compile_to(out, "--json")) == 0
    return out


def test_checkpoint_inside_the_target_is_refused_even_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], previous: Path, no_work: None
) -> None:
    for out in (tmp_path / "plain", tmp_path / "build"):
        if out.name == "build":
            shutil.copytree(previous, out)  # a previous build holding the checkpoint: still no
        else:
            out.mkdir()
        ckpt = out / "model.pt"
        shutil.copyfile(CHECKPOINT, ckpt)
        rc, err = run(capsys, compile_to(out, "--force", model=str(ckpt)))
        line = one_error(err, "CO005")
        assert rc == 2 and str(ckpt) in line and str(out) in line
        assert sha256_file(ckpt) == sha256_file(CHECKPOINT) and siblings(out) == []
    # the checkpoint's own folder's parent, too
    rc, err = run(capsys, compile_to(tmp_path, "--force", model=str(tmp_path / "plain/model.pt")))
    assert rc == 2 and "CO005" in one_error(err, "CO005")


def test_eval_file_inside_the_target_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], previous: Path, no_work: None
) -> None:
    out = tmp_path / "build"
    shutil.copytree(previous, out)
    data = out / "eval.npz"
    np.savez(data, x=np.zeros((2, 1, 8, 8), dtype=np.float32), y=np.zeros(2, dtype=np.int64))
    before = data.read_bytes()
    rc, err = run(capsys, compile_to(out, "--force", "--eval", str(data)))
    assert rc == 2 and str(data) in one_error(err, "CO005")
    assert data.read_bytes() == before


def test_unrelated_files_are_refused_with_force_and_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_work: None
) -> None:
    out = tmp_path / "projects"
    out.mkdir()
    (out / "paper.tex").write_text("draft")
    (out / "data").mkdir()
    (out / "data" / "runs.csv").write_text("1,2")
    before = tree_hashes(out)
    rc, err = run(capsys, compile_to(out, "--force"))
    line = one_error(err, "CO003")
    assert rc == 2 and str(out) in line
    assert "paper.tex" in line and "data/" in line and "2 entries" in line
    assert "choose another -o DIR or delete it yourself" in line
    assert tree_hashes(out) == before and siblings(out) == []


def test_previous_build_holding_a_user_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], previous: Path, no_work: None
) -> None:
    out = tmp_path / "build"
    shutil.copytree(previous, out)
    (out / "notes.md").write_text("what I learned from this build")
    rc, err = run(capsys, compile_to(out, "--force"))
    assert rc == 2 and "notes.md" in one_error(err, "CO003")
    assert (out / "notes.md").read_text() == "what I learned from this build"


def test_previous_build_is_replaced_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], previous: Path
) -> None:
    out = tmp_path / "build"
    shutil.copytree(previous, out)
    rc, err = run(capsys, compile_to(out))
    assert rc == 2 and "--force" in one_error(err, "CO002")
    rc, _ = run(capsys, compile_to(out, "--force", "--core-memory", "64KiB", "--json"))
    assert rc == 0 and siblings(out) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["core_memory_bytes"] == 64 * 1024
    assert set(tree_files(out)) == set(manifest["artifacts"]) | {"manifest.json", "timings.json"}


def test_empty_directory_is_fine_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    rc, _ = run(capsys, compile_to(out, "--json"))
    assert rc == 0 and (out / "manifest.json").is_file() and siblings(out) == []


@pytest.mark.parametrize("where", [".", "..", "/"])
def test_cwd_and_its_ancestors_are_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    previous: Path,
    where: str,
    no_work: None,
) -> None:
    work = tmp_path / "work"
    shutil.copytree(previous, work)  # even a previous build: it is where the user stands
    monkeypatch.chdir(work)
    before = tree_hashes(tmp_path)
    rc, err = run(capsys, compile_to(where, "--force"))
    assert rc == 2 and "working directory" in one_error(err, "CO006")
    assert tree_hashes(tmp_path) == before and siblings(work) == []


def test_pseudo_filesystem_and_long_names_are_refused_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_work: None
) -> None:
    """Root ignores permission bits, so these are the unwritable targets every user has."""
    targets = [tmp_path / ("x" * 256) / "out", tmp_path / ("y" * 300)]
    targets += [Path(p) for p in ("/proc/snncc-out", "/sys/snncc/out") if Path(p).parent.exists()]
    for out in targets:
        rc, err = run(capsys, compile_to(out))
        line = one_error(err, "CO007")
        assert rc == 2 and str(out) in line and "(fix: " in line
        assert not os.path.lexists(out)
    assert os.listdir(tmp_path) == []
    rc, err = run(capsys, compile_to(tmp_path / ("z" * 256)))
    assert os.strerror(errno.ENAMETOOLONG) in one_error(err, "CO007")


def test_no_write_permission_is_refused_before_the_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_work: None,
) -> None:
    """A parent without write permission (simulated: as root, chmod would not stop a write)."""
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    rc, err = run(capsys, compile_to(tmp_path / "ro" / "out"))
    assert rc == 2 and str(tmp_path) in one_error(err, "CO007")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fail_at", [1, 4])
def test_disk_full_while_writing_is_one_line_and_keeps_the_previous_build(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    previous: Path,
    fail_at: int,
) -> None:
    import snncc.reports.output as output

    out = tmp_path / "build"
    shutil.copytree(previous, out)
    before = tree_hashes(out)
    real = output.write_bytes
    calls = {"n": 0}

    def write_bytes(root: Path, rel: str, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(root / rel))
        real(root, rel, data)

    monkeypatch.setattr(output, "write_bytes", write_bytes)
    rc, err = run(capsys, compile_to(out, "--force"))
    line = one_error(err, "CO008")
    assert rc == 2 and str(out) in line and os.strerror(errno.ENOSPC) in line
    assert ".tmp-" not in line and "(fix: " in line
    assert tree_hashes(out) == before and siblings(out) == []
    # into a new directory: nothing at all is left, not even the parents it created
    fresh = tmp_path / "new" / "dir"
    calls["n"] = 0
    rc, err = run(capsys, compile_to(fresh))
    assert rc == 2 and "CO008" in one_error(err, "CO008")
    assert not (tmp_path / "new").exists()
