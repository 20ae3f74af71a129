"""The ``snncc`` command line: help, models, inspect (table and JSON schema), bad input, pickles.

Most tests call :func:`snncc.cli.main` in-process (fast, and capsys sees exactly what a user would
see); one runs the installed console script in a subprocess to prove the entry point itself works.
The bad-input tests assert the contract of issue 2: exit code 2, one line on stderr naming the
file and the problem, no traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import snncc
from snncc.cli import main
from snncc.nn import LIF

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"
NODE_KEYS = {"name", "op", "input_kinds", "shape", "params", "neurons", "synapses"}
TOTAL_KEYS = ("params", "neurons", "synapses")


class TinyNet(nn.Module):
    """A traceable two-layer spiking net that records T and its input shape (for pickling)."""

    def __init__(self) -> None:
        super().__init__()
        self.T = 2
        self.input_shape = (1, 6, 6)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.lif = LIF()
        self.head = nn.Linear(4 * 36, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        T, B, C, H, W = x.shape
        x = self.bn(self.conv(x.flatten(0, 1))).reshape(T, B, -1, H, W)
        return self.head(self.lif(x).flatten(2)).mean(0)


class Untraceable(nn.Module):
    """Uses LayerNorm and GELU, which snncc rejects (both must be listed, with locations)."""

    def __init__(self) -> None:
        super().__init__()
        self.T = 2
        self.input_shape = (8,)
        self.fc = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.act = nn.GELU()
        self.lif = LIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x).unsqueeze(0).repeat(self.T, 1, 1)
        return self.lif(self.act(self.norm(x))).mean(0)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` → (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def inspect_json() -> dict[str, Any]:
    """``snncc inspect CKPT --json`` parsed (run once for the schema tests)."""
    buf = io.StringIO()  # capsys is per test; this fixture is shared by the module
    with contextlib.redirect_stdout(buf):
        code = main(["inspect", str(CKPT), "--json"])
    assert code == 0
    return json.loads(buf.getvalue())


# -- help, version, models ------------------------------------------------------------------------
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"snncc {snncc.__version__}"


def test_help_lists_commands_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "examples:" in out and "snncc inspect" in out and "exit codes" in out
    for cmd in ("models", "inspect", "verify", "energy", "compile", "slices"):
        assert cmd in out


class _ClosedPipe:
    """A stdout whose reader has gone away (``snncc ... | head``)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_closed_stdout_is_quiet_not_an_internal_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main(["models", "--json"])  # (argparse itself swallows write errors of --version)
    monkeypatch.undo()
    _, err = capsys.readouterr()
    assert code == 141 and "Traceback" not in err and "internal error" not in err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2 and "usage" in err


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    rows = json.loads(out)
    names = {r["name"] for r in rows}
    assert {"spikingformer-tiny", "spikformer-tiny", "sdt-tiny"} <= names
    for r in rows:
        assert r["params"] > 0 and r["timesteps"] >= 1 and all(s > 0 for s in r["input_shape"])


# -- inspect --------------------------------------------------------------------------------------
def test_inspect_json_schema_is_exact(inspect_json: dict[str, Any]) -> None:
    d = inspect_json
    assert set(d) == {"model", "timesteps", "nodes", "totals"}
    assert d["model"] == "spikingformer-tiny" and d["timesteps"] == 4
    assert isinstance(d["nodes"], list) and len(d["nodes"]) > 10
    for n in d["nodes"]:
        assert set(n) == NODE_KEYS, n
        assert isinstance(n["name"], str) and isinstance(n["op"], str)
        assert all(isinstance(k, str) for k in n["input_kinds"])
        assert all(isinstance(s, int) and s > 0 for s in n["shape"])
        assert all(isinstance(n[k], int) and n[k] >= 0 for k in TOTAL_KEYS)
    assert set(d["totals"]) == set(TOTAL_KEYS)
    for k in TOTAL_KEYS:
        assert d["totals"][k] == sum(n[k] for n in d["nodes"])
    assert d["totals"]["neurons"] > 0 and d["totals"]["synapses"] > 0
    assert len({n["name"] for n in d["nodes"]}) == len(d["nodes"])


def test_inspect_params_match_the_checkpoint(inspect_json: dict[str, Any]) -> None:
    """Params after BN folding: every conv/linear weight and bias plus the folded BN shifts."""
    ops = {n["op"] for n in inspect_json["nodes"]}
    assert {"Input", "Conv2d", "LIF", "Linear"} <= ops
    assert "BatchNorm" not in ops  # folded by the front passes
    sd = torch.load(CKPT, weights_only=True)["state_dict"]
    weights = sum(v.numel() for k, v in sd.items() if k.endswith(("conv.weight", "_conv.weight")))
    assert inspect_json["totals"]["params"] >= weights


def test_inspect_table(capsys: pytest.CaptureFixture[str], inspect_json: dict[str, Any]) -> None:
    code, out, _ = run(capsys, "inspect", str(CKPT))
    assert code == 0
    for col in ("name", "op", "input kinds", "shape", "params", "neurons", "synapses"):
        assert col in out
    assert "spike-driven" in out and "encoding layer" in out and "all spike-driven" in out
    for n in inspect_json["nodes"]:
        assert n["name"] in out
    assert f"{inspect_json['totals']['synapses']:,}" in out
    assert "test_accuracy" in out  # metrics recorded in the checkpoint


def test_inspect_table_flags_sew_residual(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", "spikformer-tiny")
    assert code == 0
    assert "no: MAC (count<=" in out and "not spike-driven" in out


def test_console_script_subprocess(tmp_path: Path) -> None:
    """The installed entry point (or ``python -m snncc``) prints the same JSON, no stderr noise."""
    exe = Path(sys.executable).parent / "snncc"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "snncc"]
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).exists():  # pragma: no cover
        pytest.fail(f"no snncc executable at {cmd[0]}")
    res = subprocess.run(
        [*cmd, "inspect", str(CKPT), "--json"], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    d = json.loads(res.stdout)
    assert d["model"] == "spikingformer-tiny" and set(d["nodes"][0]) == NODE_KEYS
    bad = subprocess.run(
        [*cmd, "inspect", str(tmp_path / "missing.pt")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


# -- bad input: exit 2, one line naming the file and the problem, no traceback -------------------
def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str, str]]:
    """case → (argv, file named in the message, words describing the problem)."""
    text = tmp / "notes.pt"
    text.write_text("these are my notes, not a model\n")
    trunc = tmp / "truncated.pt"
    data = CKPT.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    unknown = tmp / "unknown-arch.pt"
    doc = torch.load(CKPT, weights_only=True)
    doc["arch"] = "spikeformer-huge"
    torch.save(doc, unknown)
    missing = tmp / "missing.pt"
    return {
        "missing": (["inspect", str(missing)], str(missing), "no such file"),
        "text": (["inspect", str(text)], str(text), "text file"),
        "truncated": (["inspect", str(trunc)], str(trunc), "truncated or corrupt"),
        "unknown-arch": (["inspect", str(unknown)], str(unknown), "unknown architecture"),
        "shape": (
            ["inspect", str(CKPT), "--input-shape", "3,16,16"],
            str(CKPT),
            "does not fit",
        ),
        "shape-rank": (["inspect", str(CKPT), "--input-shape", "16,16"], str(CKPT), "dimensions"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "text", "truncated", "unknown-arch", "shape", "shape-rank"]
)
def test_bad_input_exit_2_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, named, problem = _bad_inputs(tmp_path)[case]
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert named in lines[0] and problem in lines[0]
    assert "Traceback" not in err


def test_unknown_model_name_suggests_close_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "inspect", "spikingformer-tinny")
    assert code == 2 and "spikingformer-tiny" in err and len(err.strip().splitlines()) == 1


# -- untraceable models and pickles ---------------------------------------------------------------
def test_untraceable_model_exit_3_lists_every_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "untraceable.pt"
    torch.save(Untraceable(), path)
    code, _, err = run(capsys, "inspect", str(path), "--trust-pickle")
    assert code == 3
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert "2 unsupported op(s)" in lines[0]
    by_op = {
        op: [ln for ln in lines[1:] if f"unsupported op {op}" in ln]
        for op in ("layer_norm", "gelu")
    }
    assert len(by_op["layer_norm"]) == 1 and len(by_op["gelu"]) == 1
    assert by_op["layer_norm"][0].split("error: ")[1].startswith("norm, ")
    assert by_op["gelu"][0].split("error: ")[1].startswith("act, ")
    for op in by_op.values():  # the source location of the call in this file
        assert f"{Path(__file__).name}:" in op[0]


def test_pickled_module_needs_trust_pickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "whole-module.pt"
    torch.save(TinyNet(), path)
    code, out, err = run(capsys, "inspect", str(path), "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "E023"  # --json: an error object
    assert len(err.strip().splitlines()) == 1
    assert str(path) in err and "--trust-pickle" in err and "TinyNet" in err
    code, out, err = run(capsys, "inspect", str(path), "--json", "--trust-pickle")
    assert code == 0, err
    d = json.loads(out)
    assert d["model"] == "TinyNet" and d["timesteps"] == 2
    assert [n["op"] for n in d["nodes"]][:3] == ["Input", "Conv2d", "LIF"]
    assert d["totals"]["neurons"] == 4 * 36


# -- .pt2 programs --------------------------------------------------------------------------------
def test_pt2_written_by_snncc_inspects_like_the_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    model = TinyNet()
    pickled, program = tmp_path / "net.pt", tmp_path / "net.pt2"
    torch.save(model, pickled)
    snncc.export_program(program, model, torch.zeros(1, 1, 6, 6))
    code, out, err = run(capsys, "inspect", str(program), "--json")
    assert code == 2 and "--trust-pickle" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "inspect", str(program), "--json", "--trust-pickle")
    assert code == 0, err
    code2, out2, _ = run(capsys, "inspect", str(pickled), "--json", "--trust-pickle")
    assert code2 == 0 and json.loads(out) == json.loads(out2)
    code, _, err = run(capsys, "inspect", str(program), "--trust-pickle", "--timesteps", "3")
    assert code == 2 and "exported for" in err and len(err.strip().splitlines()) == 1


def test_pt2_program_graph_equals_trace(tmp_path: Path) -> None:
    from snncc.frontend.exported import load_program, program_to_graph

    torch.manual_seed(0)
    model = TinyNet()
    x = torch.zeros(1, 1, 6, 6)
    snncc.export_program(tmp_path / "n.pt2", model, x, arch="tiny")
    g = program_to_graph(load_program(tmp_path / "n.pt2", trust_pickle=True))
    assert g == snncc.trace(model, x, name="tiny")


def test_plain_torch_export_pt2_is_refused_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = TinyNet().eval()
    ep = torch.export.export(model, (torch.zeros(2, 1, 6, 6),), strict=False)
    path = tmp_path / "plain.pt2"
    torch.export.save(ep, path)
    code, _, err = run(capsys, "inspect", str(path), "--trust-pickle")
    assert code == 3 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "FE020" in err and str(path) in err and "snncc.export_program" in err


def test_corrupt_pt2_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.pt2"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = run(capsys, "inspect", str(path), "--trust-pickle")
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1


# -- documentation -------------------------------------------------------------------------------
_CODE = re.compile(r'"((?:E|FE|IR|SD|CO|QNT|REF|RT|TY|MM|DA|BU|EN|PASS)\d{3})"')


def _documented_codes(text: str) -> set[str]:
    """Codes in docs/cli.md, with ranges like ``QNT001–QNT010`` expanded."""
    codes = set(re.findall(r"\b([A-Z]{1,4}\d{3})\b", text))
    for prefix, lo, hi in re.findall(r"\b([A-Z]{1,4})(\d{3})–[A-Z]{1,4}(\d{3})\b", text):
        codes |= {f"{prefix}{i:03d}" for i in range(int(lo), int(hi) + 1)}
    return codes


def test_every_diagnostic_code_is_documented() -> None:
    used: set[str] = set()
    for folder in ("snncc", "backends"):
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(_CODE.findall(path.read_text()))
    assert len(used) > 40
    missing = sorted(used - _documented_codes((ROOT / "docs" / "cli.md").read_text()))
    assert not missing, f"docs/cli.md does not list {missing}"


def test_readme_exit_code_table() -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Exit codes") :]
    for code in ("0", "1", "2", "3", "4", "70", "130"):
        assert f"\n| {code} |" in section, code
    usage = text[text.index("## Usage") : text.index("## Exit codes")]
    for cmd in ("models", "inspect", "verify", "energy", "compile", "slices", "make demo"):
        assert cmd in usage


class Unrecorded(TinyNet):
    """A pickled module that records neither its input shape nor a T matching the run."""

    def __init__(self) -> None:
        super().__init__()
        del self.input_shape


def test_pickled_module_route_through_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README's promise: `--trust-pickle --input-shape --timesteps` works on every command."""
    path = tmp_path / "whole.pt"
    torch.manual_seed(0)
    torch.save(Unrecorded().eval(), path)
    opts = ("--trust-pickle", "--input-shape", "1,6,6", "--timesteps", "3")
    code, _, err = run(capsys, "inspect", str(path), "--trust-pickle")
    assert code == 2 and "error[E028]" in err  # the shape is not recorded: say so
    code, out, err = run(capsys, "inspect", str(path), *opts, "--json")
    assert code == 0, err
    assert json.loads(out)["timesteps"] == 3
    code, out, err = run(capsys, "verify", str(path), *opts, "--json")
    assert code == 0, err
    assert json.loads(out)["spike_driven"] is True
    code, out, err = run(capsys, "energy", str(path), *opts, "--random", "--samples", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["layers"]
    build = tmp_path / "build"
    code, out, err = run(
        capsys, "compile", str(path), *opts, "--target", "loihi", "--budget", "1MiB",
        "-o", str(build), "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads((build / "report.json").read_text())
    assert report["timesteps"] == 3 and report["input_shape"] == [1, 6, 6]


# -- output that survives a pipe (issue 9, deliverable 7) ------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["models"],
        ["inspect", "spikingformer-tiny"],
        ["verify", "spikformer-tiny"],
        ["energy", "spikingformer-tiny", "--random", "--samples", "1"],
    ],
    ids=lambda a: a[0],
)
def test_closed_pipe_is_141_on_every_command(argv: list[str]) -> None:
    """`snncc CMD | true`: the real console script writing into a pipe whose reader is gone.

    The reader closes before snncc writes (its imports take a second or more), as `head -1`
    does once it has its line; a whole table fits a pipe's buffer, so closing after reading
    would test nothing. rich's own handler exits 1 on a broken pipe (which means "violations"
    for verify); snncc must answer 141 like any shell tool, and print no traceback.
    """
    exe = str(Path(sys.executable).with_name("snncc"))
    proc = subprocess.Popen([exe, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err


def test_piped_tables_keep_full_layer_names(capsys: pytest.CaptureFixture[str]) -> None:
    """Off a terminal nothing is truncated: every node name appears whole in the table."""
    code, out, _ = run(capsys, "inspect", "spikformer-tiny", "--json")
    names = [n["name"] for n in json.loads(out)["nodes"]]
    assert max(len(n) for n in names) > 20  # long enough that an 80-column table would cut it
    code, out, _ = run(capsys, "inspect", "spikformer-tiny")
    assert code == 0
    assert "…" not in out
    for name in names:
        assert name in out


def test_progress_only_on_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Captured (non-terminal) stderr gets no progress lines, only results on stdout."""
    code, out, err = run(
        capsys, "compile", "spikingformer-tiny", "--target", "loihi", "--budget", "2MiB",
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, err
    assert err == ""
    assert "compiled" in out


def test_usage_error_shows_the_subcommands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "compile", "spikingformer-tiny", "--budget", "2MiB")
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith("usage: snncc compile")
    assert [ln for ln in lines if ln.startswith("error[")] == [
        "error[CLI001]: snncc compile: the following arguments are required: --target, "
        "-o/--output (fix: see `snncc compile --help`)"
    ]
