"""The bad-input corpus: every ordinary mistake a user can make, on every command that can see it.

Each case runs the real CLI (:func:`snncc.cli.main`, in-process) in a fresh working directory
holding copies of the inputs, and asserts the contract of docs/cli.md:

- the documented exit code, and the diagnostic code it names;
- exactly one line starting with ``error[`` on stderr, and no ``Traceback`` anywhere;
- nothing written: no output directory, no temporary sibling (``.NAME.tmp-*``), no new file;
- no input modified or deleted (every file in the working directory hashed before and after).

The inputs are made once per module (a valid checkpoint, and one broken copy per kind of damage)
and copied into each case's directory, so a case that wrongly deletes or edits an input cannot
hide behind another case.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import snncc
from snncc import models
from snncc.cli import main

ARCH = "spikingformer-tiny"
ROOT = Path(__file__).resolve().parents[1]
#: The file a malicious pickle would create if it were ever unpickled.
PWNED = "pwned.txt"


class Malicious:
    """Unpickling this runs ``open(PWNED, "w")``: it must never happen without --trust-pickle."""

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str, str]]:
        return (open, (PWNED, "w"))


def _save(path: Path, module: torch.nn.Module, **header: object) -> None:
    spec = models.spec(ARCH)
    snncc.save_checkpoint(path, module, ARCH, spec.config, spec.input_shape, spec.timesteps)
    if header:
        doc = torch.load(path, weights_only=True)
        for k, v in header.items():
            if v is _DROP:
                doc.pop(k)
            else:
                doc[k] = v
        torch.save(doc, path)


_DROP = object()


def _first_weight(sd: dict[str, torch.Tensor]) -> str:
    return next(k for k, v in sd.items() if k.endswith("weight") and v.dim() >= 2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every input file the cases use, made once."""
    d = tmp_path_factory.mktemp("corpus")
    torch.manual_seed(0)
    good = models.create(ARCH).eval()
    _save(d / "good.pt", good)
    raw = (d / "good.pt").read_bytes()
    (d / "empty.pt").write_bytes(b"")
    (d / "junk.pt").write_bytes(bytes(range(256)) * 8)
    (d / "text.pt").write_text("this is not a checkpoint\n")
    (d / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    (d / "adir.pt").mkdir()
    torch.save(good.state_dict(), d / "state_dict.pt")
    with open(d / "malicious.pt", "wb") as f:
        pickle.dump(Malicious(), f)
    with zipfile.ZipFile(d / "malicious_zip.pt", "w") as z:  # torch's zip layout, evil payload
        z.writestr("archive/data.pkl", pickle.dumps(Malicious()))
        z.writestr("archive/version", "3\n")
    torch.save(torch.nn.Linear(2, 2), d / "module_no_shape.pt")

    sd = good.state_dict()
    name = _first_weight(sd)
    for kind, fill in (("nan", float("nan")), ("inf", float("inf"))):
        m = models.create(ARCH).eval()
        m.load_state_dict(sd)
        with torch.no_grad():
            dict(m.named_parameters())[name].view(-1)[:3] = fill
        _save(d / f"{kind}.pt", m)
    m = models.create(ARCH).eval()
    m.load_state_dict(sd)
    with torch.no_grad():
        dict(m.named_parameters())[name].mul_(1e30)
    _save(d / "huge.pt", m)
    m = models.create(ARCH).eval()
    m.load_state_dict(sd)
    bn = next(mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d))
    bn.running_var[0] = -5.0
    _save(d / "neg_var.pt", m)

    spec = models.spec(ARCH)
    _save(d / "bad_timesteps.pt", good, timesteps=spec.timesteps + 3)
    _save(d / "bad_shape.pt", good, input_shape=(spec.input_shape[0] + 2, *spec.input_shape[1:]))
    _save(d / "no_arch.pt", good, arch=_DROP)
    _save(d / "neg_width.pt", good, config={**spec.config, "embed_dims": -8})
    _save(d / "zero_heads.pt", good, config={**spec.config, "num_heads": 0})

    shape = tuple(spec.input_shape)
    rng = np.random.default_rng(0)
    x = rng.random((4, *shape)).astype(np.float32)
    np.savez(d / "data_ok.npz", x=x, y=np.arange(4) % 10)
    np.savez(d / "data_nan.npz", x=np.where(x > 0.9, np.nan, x), y=np.arange(4) % 10)
    np.savez(d / "data_labels.npz", x=x, y=np.array([0, 1, 2, 99]))
    np.savez(d / "data_no_x.npz", y=np.arange(4))
    np.savez(d / "data_shape.npz", x=rng.random((4, 3, 5)).astype(np.float32), y=np.arange(4))
    np.savez(d / "data_overflow.npz", x=np.full((4, *shape), 1e300), y=np.arange(4) % 10)
    (d / "data_trunc.npz").write_bytes((d / "data_ok.npz").read_bytes()[:100])
    (d / "data_text.npz").write_text("x,y\n1,2\n")
    (d / "user").mkdir()
    (d / "user" / "thesis.tex").write_text("years of work\n")
    (d / "prev").mkdir()  # a previous build that someone put the model into
    (d / "prev" / "manifest.json").write_text('{"format": "snncc-artifacts"}')
    shutil.copy(d / "good.pt", d / "prev" / "model.pt")
    return d


@dataclass(frozen=True)
class Case:
    """One mistake: the arguments (``{c}`` = the case directory), exit code and diagnostic code."""

    id: str
    argv: tuple[str, ...]
    exit: int
    code: str | None = None


COMPILE = ("compile", "--target", "loihi", "--budget", "64MiB")


def _model_cases() -> list[Case]:
    cases = []
    bad_files = {
        "missing": ("missing.pt", "E020"),
        "empty": ("empty.pt", "E022"),
        "junk": ("junk.pt", "E021"),
        "text": ("text.pt", "E021"),
        "truncated": ("truncated.pt", "E022"),
        "directory": ("adir.pt", "E021"),
        "state_dict": ("state_dict.pt", "E021"),
        "device": ("/dev/zero", "E021"),
        "pseudo_file": ("/proc/self/mem", "OS001"),
        "malicious_pickle": ("malicious.pt", "E021"),
        "malicious_zip": ("malicious_zip.pt", "E021"),
        "nan_weights": ("nan.pt", "E032"),
        "inf_weights": ("inf.pt", "E032"),
        "negative_variance": ("neg_var.pt", "E032"),
        "timesteps_mismatch": ("bad_timesteps.pt", "E030"),
        "input_shape_mismatch": ("bad_shape.pt", "E031"),
        "missing_arch": ("no_arch.pt", "E026"),
        "negative_width": ("neg_width.pt", "E015"),
        "zero_heads": ("zero_heads.pt", "E015"),
    }
    commands = {
        "inspect": ("inspect",),
        "verify": ("verify",),
        "energy": ("energy", "--samples", "2"),
        "compile": (*COMPILE, "-o", "{c}/out"),
    }
    for fid, (fname, code) in bad_files.items():
        for cid, cmd in commands.items():
            path = fname if fname.startswith("/") else "{c}/" + fname
            argv = (*cmd[:1], path, *cmd[1:])
            cases.append(Case(f"{cid}-{fid}", argv, 2, code))
    cases.append(
        Case("slices-missing", ("slices", "{c}/missing.pt", "--target", "loihi"), 2, "E020")
    )
    cases.append(
        Case("pickle-no-shape", ("inspect", "{c}/module_no_shape.pt", "--trust-pickle"), 2, "E028")
    )
    return cases


def _option_cases() -> list[Case]:
    good = "{c}/good.pt"
    out = ("-o", "{c}/out")
    bad = [
        ("budget-text", (*COMPILE[:3], "--budget", "lots", good, *out), "BU001"),
        ("budget-zero", (*COMPILE[:3], "--budget", "0MB", good, *out), "BU001"),
        ("budget-negative", (*COMPILE[:3], "--budget", "-1MB", good, *out), "CLI001"),
        ("budget-fractional-cores", (*COMPILE[:3], "--budget", "1.5cores", good, *out), "BU001"),
        (
            "target-unknown",
            ("compile", good, "--target", "truenorth", "--budget", "1MB", *out),
            "CLI001",
        ),
        ("slice-not-elastic", (*COMPILE, good, "--slice", "0,0,0", *out), "CO010"),
        (
            "slice-malformed",
            (*COMPILE, "elastic-spikingformer-tiny", "--slice", "a,b", *out),
            "CO010",
        ),
        (
            "slice-range",
            (*COMPILE, "elastic-spikingformer-tiny", "--slice", "9,9,9", *out),
            "CO042",
        ),
        ("shape-zero", ("inspect", good, "--input-shape", "0,8,8"), "CLI001"),
        ("shape-text", ("inspect", good, "--input-shape", "a,b"), "CLI001"),
        ("shape-huge", ("inspect", good, "--input-shape", "1,1000000,1000000"), "CLI001"),
        ("shape-rank", ("inspect", good, "--input-shape", "8"), "E030"),
        ("timesteps-zero", ("verify", good, "--timesteps", "0"), "CLI001"),
        ("timesteps-negative", ("verify", good, "--timesteps", "-3"), "CLI001"),
        ("timesteps-huge", ("verify", good, "--timesteps", "99999999999999999999"), "CLI001"),
        ("core-memory-zero", (*COMPILE, good, "--core-memory", "0", *out), "CLI001"),
        ("core-memory-negative", (*COMPILE, good, "--core-memory", "-5", *out), "CLI001"),
        ("core-memory-text", (*COMPILE, good, "--core-memory", "big", *out), "CLI001"),
        ("samples-zero", ("energy", good, "--samples", "0"), "CLI001"),
        ("batch-size-zero", ("energy", good, "--batch-size", "0"), "CLI001"),
        ("seed-negative", ("energy", good, "--random", "--seed", "-1"), "CLI001"),
        ("seed-overflow", ("energy", good, "--random", "--seed", str(2**64)), "CLI001"),
        ("data-and-random", ("energy", good, "--data", "digits", "--random"), "EN001"),
        ("unknown-option", ("verify", good, "--frobnicate"), "CLI001"),
        ("no-command", (), "CLI002"),
        ("missing-required", ("compile", good), "CLI001"),
    ]
    return [Case(i, a, 2, c) for i, a, c in bad]


def _data_cases() -> list[Case]:
    cases = []
    finite = ("nan", "overflow")  # E033 on both commands; the rest are each command's data code
    for fid in ("nan", "labels", "no_x", "shape", "overflow", "trunc", "text", "missing", "dev"):
        f = "/dev/zero" if fid == "dev" else "{c}/data_" + fid + ".npz"
        data_code, eval_code = ("E033", "E033") if fid in finite else ("EN001", "CO030")
        cases.append(
            Case(f"energy-data-{fid}", ("energy", "{c}/good.pt", "--data", f), 2, data_code)
        )
        argv = (*COMPILE, "{c}/good.pt", "--eval", f, "-o", "{c}/out")
        cases.append(Case(f"compile-eval-{fid}", argv, 2, eval_code))
    return cases


def _output_cases() -> list[Case]:
    good = "{c}/good.pt"
    long_name = "x" * 300
    return [
        Case("out-is-file", (*COMPILE, good, "-o", "{c}/data_ok.npz"), 2, "CO001"),
        Case("out-not-empty", (*COMPILE, good, "-o", "{c}/user"), 2, "CO002"),
        Case("force-over-user-files", (*COMPILE, good, "-o", "{c}/user", "--force"), 2, "CO003"),
        Case(
            "force-over-input",
            (*COMPILE, "{c}/prev/model.pt", "-o", "{c}/prev", "--force"),
            2,
            "CO005",
        ),
        Case("force-over-cwd", (*COMPILE, good, "-o", ".", "--force"), 2, "CO006"),
        Case("force-over-ancestor", (*COMPILE, good, "-o", "..", "--force"), 2, "CO006"),
        Case("out-in-proc", (*COMPILE, good, "-o", "/proc/snncc-out"), 2, "CO007"),
        Case("out-in-sys", (*COMPILE, good, "-o", "/sys/snncc-out"), 2, "CO007"),
        Case("out-name-too-long", (*COMPILE, good, "-o", "{c}/" + long_name), 2, "CO007"),
        Case("model-name-too-long", ("inspect", "{c}/" + long_name + ".pt"), 2, "OS001"),
    ]


CASES = _model_cases() + _option_cases() + _data_cases() + _output_cases()


def _snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (directories as ``dir``)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case,
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = tmp_path / "work"
    shutil.copytree(corpus, work, symlinks=True)
    monkeypatch.chdir(work)
    before = _snapshot(tmp_path)
    argv = [a.replace("{c}", str(work)) for a in case.argv]
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert rc == case.exit, f"exit {rc}, expected {case.exit}\n{err}"
    lines = [ln for ln in err.splitlines() if ln.startswith("error[")]
    assert len(lines) == 1, err
    if case.code is not None:
        assert lines[0].startswith(f"error[{case.code}]"), lines[0]
    assert _snapshot(tmp_path) == before, "an input was changed or an output was written"
    assert not (work / PWNED).exists(), "a pickle was executed without --trust-pickle"


def test_zero_layer_compiles(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An all-zero layer is a legal model: it compiles (exit 0) and the build exists."""
    torch.manual_seed(0)
    m = models.create(ARCH).eval()
    sd = m.state_dict()
    name = _first_weight(sd)
    with torch.no_grad():
        dict(m.named_parameters())[name].zero_()
    _save(tmp_path / "zero.pt", m)
    rc = main([*COMPILE, str(tmp_path / "zero.pt"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_huge_weights_are_refused_or_compiled(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Weights 1e30 times too large: never a bug report (70); exit 2 with a reason if refused."""
    rc = main([*COMPILE, str(corpus / "huge.pt"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc in (0, 2), err
    if rc == 2:
        assert sum(ln.startswith("error[") for ln in err.splitlines()) == 1, err
        assert not (tmp_path / "out").exists()


def test_json_failure_is_a_json_error_object(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    rc = main(["verify", str(corpus / "missing.pt"), "--json"])
    out = capsys.readouterr().out
    assert rc == 2
    doc = json.loads(out)
    assert doc["error"]["code"] == "E020" and doc["error"]["exit_code"] == 2


def test_disk_full_while_writing(
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ENOSPC half-way through the artifacts: one line, exit 2, no partial build left."""
    import errno

    from snncc.reports import output

    real, calls = output.write_bytes, [0]

    def full(root: Path, rel: str, data: bytes) -> None:  # the third file hits a full disk
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(root / rel))
        real(root, rel, data)

    monkeypatch.setattr(output, "write_bytes", full)
    monkeypatch.chdir(tmp_path)
    rc = main([*COMPILE, str(corpus / "good.pt"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    assert sum(ln.startswith("error[") for ln in err.splitlines()) == 1, err
    assert calls[0] == 3 and os.strerror(errno.ENOSPC) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_sigint_during_compile_leaves_nothing(corpus: Path, tmp_path: Path) -> None:
    """Ctrl-C while compiling: exit 130, no build, no temporary directory, inputs intact."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(corpus / "good.pt", work / "good.pt")
    before = _snapshot(work)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "snncc", *COMPILE, "good.pt", "-o", "out", "--eval", "digits"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(6.0)  # inside tracing / quantization / evaluation (the compile takes ~15 s)
    assert proc.poll() is None, "the compile finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert _snapshot(work) == before


@pytest.mark.parametrize("command", ["inspect", "verify", "energy", "compile"])
def test_permission_denied_on_the_model(
    command: str,
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unreadable checkpoint (EACCES; simulated, since root reads any file): one OS001 line."""
    import errno

    model = tmp_path / "locked.pt"
    shutil.copy(corpus / "good.pt", model)
    real_open = Path.open

    def locked(self: Path, *a: object, **k: object) -> object:
        if self.name == model.name:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_open(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", locked)
    extra = {"energy": ["--random", "--samples", "1"], "compile": list(COMPILE[1:])}
    argv = [command, str(model), *extra.get(command, [])]
    if command == "compile":
        argv += ["-o", str(tmp_path / "out")]
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error[")]
    assert rc == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error[OS001]"), err
    assert str(model) in lines[0] and "Permission denied" in lines[0]
    assert not (tmp_path / "out").exists()
