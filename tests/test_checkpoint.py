"""``snncc.save_checkpoint`` / ``load_checkpoint``: a weights-only round trip and its refusals.

The round trip must go through ``torch.load(weights_only=True)`` (no code runs from the file), give
back the same weights, description and metrics, and rebuild a model that computes the same
outputs. Every malformed file is an exit-2 error with a stable code.
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
from snncc.diagnostics import SnnccError
from snncc.loading.checkpoint import FORMAT, VERSION, load_checkpoint, save_checkpoint

ARCH = "spikingformer-tiny"


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(3)
    m = models.create(ARCH)
    with torch.no_grad():  # non-default BN statistics, so a lost buffer would show
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def _save(path: Path, model: nn.Module, **kw: Any) -> Path:
    spec = models.spec(ARCH)
    return save_checkpoint(
        path, model, ARCH, dict(spec.config), spec.input_shape, spec.timesteps, **kw
    )


def test_round_trip_weights_only(tmp_path: Path, model: nn.Module) -> None:
    metrics = {"test_accuracy": 0.5, "per_width": [0.1, 0.2], "data": "digits"}
    path = _save(tmp_path / "m.pt", model, metrics=metrics)
    raw = torch.load(path, weights_only=True)  # the file itself is weights-only loadable
    assert raw["format"] == FORMAT and raw["version"] == VERSION
    loaded = load_checkpoint(path)
    assert loaded.arch == ARCH and loaded.source == "checkpoint"
    assert loaded.config == dict(models.spec(ARCH).config)
    assert loaded.input_shape == (1, 16, 16) and loaded.timesteps == 4
    assert loaded.time_axis is None and loaded.metrics == metrics
    want, got = model.state_dict(), loaded.module.state_dict()
    assert want.keys() == got.keys()
    for k in want:
        assert want[k].dtype == got[k].dtype and torch.equal(want[k], got[k]), k
    assert not loaded.module.training
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.module(x))


def test_top_level_api_is_the_same_function(tmp_path: Path, model: nn.Module) -> None:
    assert snncc.save_checkpoint is save_checkpoint and snncc.load_checkpoint is load_checkpoint


def test_save_refuses_unknown_arch_and_unsafe_config(tmp_path: Path, model: nn.Module) -> None:
    with pytest.raises(SnnccError) as e:
        save_checkpoint(tmp_path / "a.pt", model, "no-such-arch", {}, (1, 16, 16), 4)
    assert e.value.code == "E010"
    with pytest.raises(SnnccError) as e:
        _save(tmp_path / "b.pt", model, metrics={"curve": np.zeros(3)})
    assert e.value.code == "E026" and e.value.exit_code == 2
    assert not (tmp_path / "b.pt").exists()


def _doc(tmp_path: Path, model: nn.Module) -> dict[str, Any]:
    return torch.load(_save(tmp_path / "base.pt", model), weights_only=True)


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda d: d.update(version=VERSION + 1), "E025"),
        (lambda d: d.update(format="something-else"), "E021"),
        (lambda d: d.pop("timesteps"), "E026"),
        (lambda d: d.update(input_shape=[0, 16]), "E026"),
        (lambda d: d["state_dict"].pop(next(iter(d["state_dict"]))), "E024"),
        (lambda d: d.update(config={**d["config"], "embed_dims": 64}), "E024"),
        (lambda d: d.update(arch="spikeformer-huge"), "E010"),
        (lambda d: d.pop("arch"), "E026"),
        (lambda d: d.update(timesteps=8), "E030"),
        (lambda d: d.update(input_shape=(2, 16, 16)), "E031"),
        (lambda d: d.update(config={**d["config"], "num_heads": 3}), "E015"),
        (lambda d: d["state_dict"][next(iter(d["state_dict"]))].fill_(float("nan")), "E032"),
    ],
)
def test_malformed_documents(
    tmp_path: Path, model: nn.Module, edit: Callable[[dict], Any], code: str
) -> None:
    doc = _doc(tmp_path, model)
    edit(doc)
    path = tmp_path / "edited.pt"
    torch.save(doc, path)
    with pytest.raises(SnnccError) as e:
        load_checkpoint(path)
    assert e.value.code == code and e.value.exit_code == 2
    assert str(path) in e.value.message


def test_foreign_files(tmp_path: Path, model: nn.Module) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    with (tmp_path / "array.pt").open("wb") as f:
        np.savez(f, x=np.zeros(3))
    torch.save(model.state_dict(), tmp_path / "state.pt")
    for name, code in {"empty.pt": "E022", "array.pt": "E021", "state.pt": "E021"}.items():
        with pytest.raises(SnnccError) as e:
            load_checkpoint(tmp_path / name)
        assert e.value.code == code, (name, e.value.message)
    with pytest.raises(SnnccError) as e:
        load_checkpoint(tmp_path)
    assert e.value.code == "E021"


def test_whole_module_needs_trust(tmp_path: Path, model: nn.Module) -> None:
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    with pytest.raises(SnnccError) as e:
        load_checkpoint(path)
    assert e.value.code == "E023"
    loaded = load_checkpoint(path, trust_pickle=True, input_shape=(1, 16, 16))
    assert loaded.source == "pickle" and loaded.timesteps == 4
