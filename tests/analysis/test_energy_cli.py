"""``snncc energy --data digits --samples N --json`` end to end on the committed checkpoint.

The firing rates the CLI reports are checked against the PyTorch model's own spikes on the same
samples (forward hooks on the neuron modules), not against snncc's reference interpreter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from snncc.cli import main
from snncc.data import digits
from snncc.loading.checkpoint import load_checkpoint

CKPT = Path(__file__).parents[2] / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"
N = 4


@pytest.fixture(scope="module")
def energy_json() -> dict[str, Any]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["energy", str(CKPT), "--data", "digits", "--samples", str(N), "--json"])
    assert code == 0
    return json.loads(out.getvalue())


def _torch_rates() -> dict[str, float]:
    """Mean output spike rate of every neuron module of the model on the first N test digits."""
    model = load_checkpoint(CKPT).module.double().eval()
    rates: dict[str, float] = {}
    hooks = []
    for name, mod in model.named_modules():
        if type(mod).__name__ in ("LIF", "IF"):
            hooks.append(mod.register_forward_hook(
                lambda _m, _i, y, name=name: rates.__setitem__(name, float(y.mean()))))  # fmt: skip
    x, _ = digits("test")
    with torch.no_grad():
        model(torch.tensor(x[:N], dtype=torch.float64))
    for h in hooks:
        h.remove()
    return rates


def test_energy_cli_reports_measured_rates_and_sops(energy_json: dict[str, Any]) -> None:
    r = energy_json
    assert r["samples"] == N and "digits" in r["data"]
    layers = {lay["node"]: lay for lay in r["layers"]}
    # the encoding conv reads real pixels: a MAC layer on the host, costed at every step
    enc = layers["patch_embed.block0_conv"]
    assert enc["klass"] == "MAC" and enc["host"] and enc["sops"] == enc["flops"] * enc["runs"]
    rates = _torch_rates()
    # block1_conv reads block1_lif's spikes (Spikingformer: LIF -> Conv -> BN)
    lay = layers["patch_embed.block1_conv"]
    assert lay["klass"] == "AC" and lay["binary_in_data"]
    assert lay["fr_in"] == pytest.approx(rates["patch_embed.block1_lif"], abs=1e-9)
    assert lay["sops"] == pytest.approx(lay["fr_in"] * lay["runs"] * lay["flops"], rel=1e-9)
    assert 0.0 < lay["fr_in"] < 1.0
    fc1 = layers["block.0.mlp.mlp1_conv"]
    assert fc1["fr_in"] == pytest.approx(rates["block.0.mlp.mlp1_lif"], abs=1e-9)


def test_energy_cli_table_mentions_every_costed_layer(
    energy_json: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich shortens cells to fit narrower terminals
    assert main(["energy", str(CKPT), "--data", "digits", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    for lay in energy_json["layers"]:
        assert lay["node"] in out
    assert np.isfinite([lay["sops"] for lay in energy_json["layers"]]).all()
