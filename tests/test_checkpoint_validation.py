"""Weights, data and checkpoint fields are validated where they enter (issue 9, deliverables 3, 5).

Every case goes through the command line, in-process (:func:`snncc.cli.main`), for each command
that loads a model or data, and asserts the bad-input contract: exit code 2, exactly one
``error[CODE]`` line naming the file and the tensor, array or field, no traceback, nothing on
stdout (no table or JSON computed from NaN) and, for ``compile``, no output directory.

Bad checkpoints are written the way users write good ones: a seeded zoo model, one tensor edited,
``snncc.save_checkpoint``; inconsistent headers are the saved dictionary rewritten with
``torch.load``/``torch.save``. Everything uses ``spikingformer-tiny`` and two samples, so a load
that fails early costs milliseconds and one that reaches the data a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import snncc
from snncc import models
from snncc.cli import main
from snncc.data.files import check_finite, nonfinite_counts, read_npz
from snncc.diagnostics import SnnccError
from snncc.loading.checkpoint import load_checkpoint
from snncc.models.registry import ConfigError, validate_config

ARCH = "spikingformer-tiny"
SHAPE = (1, 16, 16)
COMMANDS = ("inspect", "verify", "energy", "compile")


# -- helpers ------------------------------------------------------------------------------------
def _model() -> nn.Module:
    torch.manual_seed(0)
    return models.create(ARCH).eval()


def _save(path: Path, model: nn.Module, **kw: Any) -> Path:
    spec = models.spec(ARCH)
    return snncc.save_checkpoint(
        path, model, ARCH, dict(spec.config), spec.input_shape, spec.timesteps, **kw
    )


def _args(command: str, model: str, tmp: Path, *extra: str) -> list[str]:
    """The command line for ``command`` on ``model``; compile writes to ``tmp / "out"``."""
    if command == "energy":
        return ["energy", model, "--data", "digits", "--samples", "2", *extra]
    if command == "compile":
        return ["compile", model, "--target", "loihi", "--budget", "64MiB",
                "-o", str(tmp / "out"), *extra]  # fmt: skip
    return [command, model, *extra]


def _fails(capsys: Any, args: list[str], code: str, *words: str) -> str:
    """Run ``args``; assert the one-line exit-2 contract with ``code`` and ``words``; the line."""
    capsys.readouterr()
    rc = main(args)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error[")]
    assert rc == 2, (rc, err)
    assert len(errors) == 1, err
    assert "Traceback" not in err + out, err
    assert out.strip() == "", out  # no table / JSON printed from bad weights or data
    line = errors[0]
    assert line.startswith(f"error[{code}]"), line
    for w in words:
        assert w in line, (w, line)
    return line


# -- non-finite weights (E032) ------------------------------------------------------------------
def _nan_weight(m: nn.Module) -> None:
    m.head.weight[0, 0] = float("nan")
    m.head.weight[1, 1] = float("nan")


def _inf_buffer(m: nn.Module) -> None:
    m.patch_embed.block0_bn.running_var[0] = float("inf")


TENSOR_EDITS: dict[str, tuple[Callable[[nn.Module], None], str, str]] = {
    "nan-weight": (_nan_weight, "head.weight", "2 NaN"),
    "inf-bn-running-var": (_inf_buffer, "patch_embed.block0_bn.running_var", "1 Inf"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", sorted(TENSOR_EDITS))
def test_non_finite_checkpoint_weights(
    tmp_path: Path, capsys: Any, case: str, command: str
) -> None:
    edit, key, count = TENSOR_EDITS[case]
    m = _model()
    with torch.no_grad():
        edit(m)
    path = _save(tmp_path / "bad.pt", m)
    _fails(capsys, _args(command, str(path), tmp_path), "E032", str(path), repr(key), count)
    assert not (tmp_path / "out").exists()


def test_non_finite_tensor_outside_the_state_dict(tmp_path: Path, capsys: Any) -> None:
    path = _save(tmp_path / "m.pt", _model(), metrics={"curve": torch.tensor([0.5, np.inf])})
    _fails(capsys, ["inspect", str(path)], "E032", "metrics.curve", "1 Inf")


@pytest.mark.parametrize("command", COMMANDS)
def test_non_finite_pickled_module(tmp_path: Path, capsys: Any, command: str) -> None:
    m = _model()
    m.input_shape = SHAPE  # a pickled module records its own input shape
    with torch.no_grad():
        m.patch_embed.block0_bn.running_mean[2] = float("nan")
    path = tmp_path / "whole.pt"
    torch.save(m, path)
    args = _args(command, str(path), tmp_path, "--trust-pickle")
    _fails(capsys, args, "E032", str(path), "'patch_embed.block0_bn.running_mean'", "1 NaN")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def nan_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``.pt2`` written by snncc.export_program whose head weights hold a NaN and an Inf."""
    m = _model()
    with torch.no_grad():
        m.head.weight[0, 0] = float("nan")
        m.head.weight[0, 1] = float("-inf")
    path = tmp_path_factory.mktemp("pt2") / "nan.pt2"
    return snncc.export_program(path, m, torch.zeros(1, *SHAPE), arch=ARCH)


@pytest.mark.parametrize("command", COMMANDS)
def test_non_finite_exported_program(
    nan_program: Path, tmp_path: Path, capsys: Any, command: str
) -> None:
    args = _args(command, str(nan_program), tmp_path, "--trust-pickle")
    _fails(capsys, args, "E032", str(nan_program), "'head.weight'", "1 NaN and 1 Inf")
    assert not (tmp_path / "out").exists()


# -- inconsistent or invalid checkpoint fields (E026, E030, E031, E015) --------------------------
def _set_config(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["config"].update(fields)


HEADER_EDITS: dict[str, tuple[Callable[[dict[str, Any]], Any], str, tuple[str, ...]]] = {
    "timesteps-contradict-config": (
        lambda d: d.update(timesteps=8),
        "E030",
        ("timesteps=8", "T=4"),
    ),
    "config-T-contradicts-timesteps": (_set_config(T=8), "E030", ("timesteps=4", "T=8")),
    "input-shape-wrong-channels": (
        lambda d: d.update(input_shape=(3, 16, 16)),
        "E031",
        ("[3, 16, 16]", "in_channels=1"),
    ),
    "no-arch": (lambda d: d.pop("arch"), "E026", ("records no `arch`",)),
    "zero-heads": (_set_config(num_heads=0), "E015", ("'num_heads'", "0")),
    "heads-do-not-divide-width": (_set_config(num_heads=5), "E015", ("'num_heads'", "embed_dims")),
    "negative-width": (_set_config(embed_dims=-32), "E015", ("'embed_dims'", "-32")),
    "negative-T": (_set_config(T=-1), "E015", ("'T'", "-1")),
    "float-depth": (_set_config(depths=2.5), "E015", ("'depths'", "2.5")),
    "bool-classes": (_set_config(num_classes=True), "E015", ("'num_classes'",)),
    "string-width": (_set_config(embed_dims="32"), "E015", ("'embed_dims'",)),
    "nan-ratio": (_set_config(mlp_ratios=float("nan")), "E015", ("'mlp_ratios'",)),
    # a value only the constructor can judge: reported naming the arch and the changed field
    "unknown-tokenizer": (_set_config(tokenizer="vit"), "E015", (ARCH, "tokenizer='vit'")),
}


@pytest.fixture(scope="module")
def good_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = _save(tmp_path_factory.mktemp("ckpt") / "good.pt", _model())
    return torch.load(path, weights_only=True)


def _edited(doc: dict[str, Any], path: Path, edit: Callable[[dict[str, Any]], Any]) -> Path:
    doc = {**doc, "config": dict(doc["config"]), "state_dict": dict(doc["state_dict"])}
    edit(doc)
    torch.save(doc, path)
    return path


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", sorted(HEADER_EDITS))
def test_bad_checkpoint_fields(
    good_doc: dict[str, Any], tmp_path: Path, capsys: Any, case: str, command: str
) -> None:
    edit, code, words = HEADER_EDITS[case]
    path = _edited(good_doc, tmp_path / "bad.pt", edit)
    _fails(capsys, _args(command, str(path), tmp_path), code, str(path), *words)
    assert not (tmp_path / "out").exists()


def test_bad_elastic_checkpoint_for_slices(tmp_path: Path, capsys: Any) -> None:
    name = "elastic-spikingformer-tiny"
    spec = models.spec(name)
    torch.manual_seed(0)
    m = models.create(name)
    with torch.no_grad():
        m.head.bias[3] = float("nan")
    path = snncc.save_checkpoint(
        tmp_path / "e.pt", m, name, dict(spec.config), spec.input_shape, spec.timesteps
    )
    args = ["slices", str(path), "--target", "loihi"]
    _fails(capsys, args, "E032", str(path), "'head.bias'", "1 NaN")
    doc = torch.load(path, weights_only=True)
    doc["state_dict"]["head.bias"] = torch.zeros(10)
    bad = _edited(doc, tmp_path / "f.pt", _set_config(num_granularities=0))
    _fails(capsys, ["slices", str(bad), "--target", "loihi"], "E015", "'num_granularities'")


def test_overrides_mend_a_contradicting_header(
    good_doc: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    """--timesteps / --input-shape replace the recorded values, so they are not held against it."""
    t8 = _edited(good_doc, tmp_path / "t8.pt", lambda d: d.update(timesteps=8))
    assert main(["inspect", str(t8), "--timesteps", "4", "--json"]) == 0
    c3 = _edited(good_doc, tmp_path / "c3.pt", lambda d: d.update(input_shape=(3, 16, 16)))
    assert main(["inspect", str(c3), "--input-shape", "1,16,16", "--json"]) == 0


def test_pickled_module_runs_the_timesteps_asked_for(tmp_path: Path, capsys: Any) -> None:
    """--timesteps on a pickled module sets its T (it used to trace as an unsupported repeat)."""
    m = _model()
    path = tmp_path / "whole.pt"
    torch.save(m, path)
    args = ["inspect", str(path), "--trust-pickle", "--input-shape", "1,16,16", "--timesteps", "6"]
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    assert '"timesteps": 6' in capsys.readouterr().out


def test_load_checkpoint_codes(good_doc: dict[str, Any], tmp_path: Path) -> None:
    """The same refusals through the Python API (what the CLI prints is ``SnnccError.format``)."""
    for case, (edit, code, words) in HEADER_EDITS.items():
        path = _edited(good_doc, tmp_path / f"{case}.pt", edit)
        with pytest.raises(SnnccError) as e:
            load_checkpoint(path)
        assert e.value.code == code and e.value.exit_code == 2, (case, e.value.message)
        assert all(w in e.value.message for w in words), (case, e.value.message)


# -- config validation (registry) ---------------------------------------------------------------
def test_every_registered_config_is_valid() -> None:
    for name in models.names():
        validate_config(name, dict(models.spec(name).config))


def test_create_reports_bad_configs_before_building() -> None:
    with pytest.raises(ConfigError) as e:
        models.create(ARCH, num_heads=0)
    assert e.value.code == "E015" and e.value.exit_code == 2 and "'num_heads'" in e.value.message
    # still a ValueError for programmatic callers, with the constructor's own words kept
    with pytest.raises(ValueError, match="tokenizer layout"):
        models.create(ARCH, tokenizer="vit")
    with pytest.raises(SnnccError) as e:
        models.create(ARCH, no_such_field=1)
    assert e.value.code == "E011"


# -- data files (energy --data, compile --eval) -------------------------------------------------
def _x(n: int = 4) -> np.ndarray:
    return np.random.default_rng(0).random((n, *SHAPE)).astype(np.float32)


def _labels(n: int = 4) -> np.ndarray:
    return np.arange(n) % 10


def _npz(**arrays: Any) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as f:
            np.savez(f, **arrays)

    return write


def _with_x(**edit: Any) -> Callable[[Path], None]:
    x = _x()
    for (i, j), v in edit.get("set", {}).items():
        x[i, 0, j, 0] = v
    return _npz(x=x, y=_labels())


def _truncated(path: Path) -> None:
    _npz(x=_x(), y=_labels())(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _npy(path: Path) -> None:
    with path.open("wb") as f:
        np.save(f, _x())


def _object_x(path: Path) -> None:
    with path.open("wb") as f:
        np.savez(f, x=np.array([{"a": 1}] * 4, dtype=object), y=_labels())


#: name -> (writer, non-finite?, words in the message)
DATA_CASES: dict[str, tuple[Callable[[Path], None], bool, tuple[str, ...]]] = {
    "x-nan-inf": (_with_x(set={(0, 1): np.nan, (1, 2): np.inf}), True,
                  ("'x'", "1 NaN and 1 Inf")),
    "x-overflows-float32": (_npz(x=np.full((4, *SHAPE), 1e300), y=_labels()), True,
                            ("'x'", "float32")),
    "y-nan": (_npz(x=_x(), y=np.array([0.0, 1.0, np.nan, 3.0])), True, ("'y'", "1 NaN")),
    "no-x": (_npz(inputs=_x(), y=_labels()), False, ("'x'", "inputs")),
    "truncated": (_truncated, False, ("truncated",)),
    "text-file": (lambda p: p.write_text("x,y\n1,2\n"), False, ("cannot read", "text")),
    "npy-not-npz": (_npy, False, ("cannot read", ".npy")),
    "empty-file": (lambda p: p.write_bytes(b""), False, ("empty",)),
    "x-strings": (_npz(x=np.array(["a"] * 4), y=_labels()), False, ("'x'", "strings")),
    "x-objects": (_object_x, False, ("'x'", "objects")),
    "x-complex": (_npz(x=_x().astype(np.complex64), y=_labels()), False, ("'x'", "complex")),
    "x-wrong-rank": (_npz(x=_x()[:, 0], y=_labels()), False, ("'x'", "shape", "[16, 16]")),
    "x-wrong-channels": (_npz(x=np.zeros((4, 3, 16, 16)), y=_labels()), False,
                         ("'x'", "[3, 16, 16]")),
    "x-scalar": (_npz(x=np.float32(1.0), y=_labels()), False, ("'x'", "scalar")),
    "x-no-samples": (_npz(x=np.zeros((0, *SHAPE)), y=_labels(0)), False, ("'x'", "no samples")),
    "y-not-integer": (_npz(x=_x(), y=np.array([0.0, 1.5, 2.0, 3.0])), False,
                      ("'y'", "non-integer", "1.5")),
    "y-negative": (_npz(x=_x(), y=np.array([0, -1, 2, 3])), False, ("'y'", "negative", "-1")),
    "y-out-of-range": (_npz(x=_x(), y=np.array([0, 1, 2, 10])), False,
                       ("'y'", "label 10", "10 classes")),
    "y-length": (_npz(x=_x(), y=_labels(3)), False, ("'y'", "4 in 'x'", "[3]")),
    "y-one-hot": (_npz(x=_x(), y=np.eye(10)[:4]), False, ("'y'", "1-D")),
    "y-strings": (_npz(x=_x(), y=np.array(list("abcd"))), False, ("'y'", "strings")),
}  # fmt: skip


@pytest.mark.parametrize("command", ("energy", "compile"))
@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_data_files(tmp_path: Path, capsys: Any, case: str, command: str) -> None:
    write, non_finite, words = DATA_CASES[case]
    path = tmp_path / "data.npz"
    write(path)
    if command == "energy":
        args, code = ["energy", ARCH, "--data", str(path), "--samples", "2"], "EN001"
    else:
        args = ["compile", ARCH, "--target", "loihi", "--budget", "64MiB",
                "-o", str(tmp_path / "out"), "--eval", str(path)]  # fmt: skip
        code = "CO030"
    option = "--data" if command == "energy" else "--eval"
    _fails(capsys, args, "E033" if non_finite else code, f"{option} {path}", *words)
    assert not (tmp_path / "out").exists()


def test_compile_eval_needs_labels_energy_does_not(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "x-only.npz"
    _npz(x=_x())(path)
    args = ["compile", ARCH, "--target", "loihi", "--budget", "64MiB",
            "-o", str(tmp_path / "out"), "--eval", str(path)]  # fmt: skip
    _fails(capsys, args, "CO030", str(path), "'y'")
    assert not (tmp_path / "out").exists()
    assert main(["energy", ARCH, "--data", str(path), "--samples", "2", "--json"]) == 0


def test_reader_accepts_ints_bools_and_integral_float_labels(tmp_path: Path) -> None:
    path = tmp_path / "ok.npz"
    _npz(x=(_x() > 0.5), y=np.array([0.0, 1.0, 9.0, 3.0]))(path)
    data = read_npz(path, want=SHAPE, option="--eval", code="CO030", require_labels=True,
                    num_classes=10)  # fmt: skip
    assert data.x.dtype == np.float32 and data.x.shape == (4, *SHAPE)
    assert data.y is not None and data.y.dtype == np.int64 and data.y.tolist() == [0, 1, 9, 3]


def test_check_finite_counts_and_names() -> None:
    assert nonfinite_counts(np.array([1.0, np.nan, np.inf, -np.inf])) == (1, 2, 4)
    assert nonfinite_counts(torch.tensor([np.nan], dtype=torch.bfloat16)) == (1, 0, 1)
    assert nonfinite_counts(np.arange(3)) == (0, 0, 3)
    check_finite([("a", torch.zeros(2)), ("b", np.ones(3))], "f.pt")  # no error
    bad = [(f"t{i}", torch.tensor([np.nan])) for i in range(6)]
    with pytest.raises(SnnccError) as e:
        check_finite(bad, "f.pt")
    assert e.value.code == "E032" and "'t0' has 1 NaN of 1 values" in e.value.message
    assert "also 5 more: 't1', 't2', 't3', …" in e.value.message
