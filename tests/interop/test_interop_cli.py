"""``snncc export`` and ``.nir`` models on every model-loading command (issue 13).

In-process through :func:`snncc.cli.main`, as tests/test_cli.py does: exit codes, one error line
per diagnostic with its code, nothing written on failure.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import snncc
from snncc.cli import main
from snncc.interop.nir_export import write_nir

from .test_netx import ChainNet

ROOT = Path(__file__).resolve().parents[2]
CODES = ("NIR001", "NIR003", "NIR010", "NX001", "NX010", "EX001", "CV001", "CV002", "CV003",
         "CV010", "CV900")  # fmt: skip


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def chain_nir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = ChainNet().eval()
    with torch.no_grad():
        model.conv.weight.mul_(4.0)
        model.conv2.weight.mul_(3.0)
        model.fc.weight.mul_(12.0)
    g = snncc.trace(model, torch.zeros(1, 1, 8, 8), timesteps=6)
    return write_nir(g, tmp_path_factory.mktemp("nir") / "chain.nir")


def _foreign(tmp_path: Path) -> Path:
    """A standard-only NIR file without snncc's metadata (as another tool writes it)."""
    import nir

    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([6])),
            "fc": nir.Affine(weight=np.eye(4, 6), bias=np.zeros(4)),
            "lif": nir.LIF(
                tau=np.full(4, 1e-3),
                r=np.full(4, 10.0),
                v_leak=np.zeros(4),
                v_threshold=np.ones(4),
                v_reset=np.zeros(4),
            ),  # fmt: skip
            "output": nir.Output(output_type=np.array([4])),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    nir.write(tmp_path / "foreign.nir", graph)
    return tmp_path / "foreign.nir"


def test_export_nir_then_every_command(tmp_path, capsys):
    out = tmp_path / "sdt.nir"
    code, text, _ = _cli(capsys, "export", "sdt-tiny", "--format", "nir", "-o", out)
    assert code == 0 and "snncc extension" in text and out.is_file()
    code, mine, _ = _cli(capsys, "inspect", out, "--json")
    assert code == 0
    code, zoo, _ = _cli(capsys, "inspect", "sdt-tiny", "--json")
    assert json.loads(mine)["nodes"] == json.loads(zoo)["nodes"]
    assert _cli(capsys, "verify", out, "--strict")[0] == 0
    code, text, _ = _cli(capsys, "energy", out, "--random", "--samples", "2", "--json")
    assert code == 0 and json.loads(text)["totals"]


def test_nir_compiles_and_the_build_exports(chain_nir, tmp_path, capsys):
    build = tmp_path / "build"
    code, _, err = _cli(capsys, "compile", chain_nir, "--target", "loihi", "--budget", "2MiB",
                        "-o", build)  # fmt: skip
    assert code == 0, err
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["inputs"]["arch"] == "NIR graph chain.nir"
    code, text, err = _cli(capsys, "export", build, "--format", "netx", "-o", tmp_path / "c.net")
    assert code == 0, err
    assert "3 netx layers: input, conv, conv" in text
    code, text, _ = _cli(capsys, "export", build, "--format", "nir", "-o", tmp_path / "q.nir")
    assert code == 0 and "snncc.LoihiLIF" in text
    assert snncc.load(build / "ir") == snncc.interop.nir_import.from_nir(tmp_path / "q.nir")


def test_foreign_nir_needs_timesteps_and_keeps_its_shape(tmp_path, capsys):
    path = _foreign(tmp_path)
    code, _, err = _cli(capsys, "inspect", path)
    assert code == 2 and "error[NIR003]" in err and "--timesteps" in err
    code, text, _ = _cli(capsys, "inspect", path, "--timesteps", "5")
    assert code == 0 and "lif.rate" in text and "T=5" in text
    code, _, err = _cli(capsys, "inspect", path, "--timesteps", "5", "--input-shape", "7")
    assert code == 2 and "error[E031]" in err


def test_unsupported_nodes_exit_3_listing_each(tmp_path, capsys):
    import nir

    from .test_nir import _unsupported_graph

    nir.write(tmp_path / "bad.nir", _unsupported_graph())
    argv = ["compile", tmp_path / "bad.nir", "--timesteps", "4", "--target", "loihi"]
    code, _, err = _cli(capsys, *argv, "--budget", "1MiB", "-o", tmp_path / "out")
    assert code == 3 and "error[NIR010]" in err
    for node in ("cuba", "mixed", "thr", "li"):
        assert re.search(rf"NIR010 error: {node}: ", err), node
    assert not (tmp_path / "out").exists()


def test_not_a_nir_file(tmp_path, capsys):
    junk = tmp_path / "junk.nir"
    junk.write_text("hello")
    code, _, err = _cli(capsys, "inspect", junk)
    assert code == 2 and "error[NIR001]" in err and "Traceback" not in err


def test_export_refusals(chain_nir, tmp_path, capsys):
    out = tmp_path / "x.nir"
    assert _cli(capsys, "export", chain_nir, "--format", "nir", "-o", out)[0] == 0
    code, _, err = _cli(capsys, "export", chain_nir, "--format", "nir", "-o", out)
    assert code == 2 and "error[CO002]" in err
    assert _cli(capsys, "export", chain_nir, "--format", "nir", "-o", out, "--force")[0] == 0
    code, _, err = _cli(capsys, "export", chain_nir, "--format", "nir", "-o", chain_nir, "--force")
    assert code == 2 and "error[CO005]" in err and chain_nir.is_file()
    code, _, err = _cli(capsys, "export", chain_nir, "--format", "nir", "-o", out, "--dt", "-1")
    assert code == 2 and "error[CLI001]" in err
    (tmp_path / "empty").mkdir()
    code, _, err = _cli(
        capsys, "export", tmp_path / "empty", "--format", "netx", "-o", out, "--force"
    )
    assert code == 2 and "error[EX001]" in err
    code, _, err = _cli(capsys, "export", "sdt-tiny", "--format", "netx", "-o", tmp_path / "s.net")
    assert code == 3 and "error[NX010]" in err and not (tmp_path / "s.net").exists()


def test_spinnaker_build_is_not_netx(chain_nir, tmp_path, capsys):
    """A build whose manifest names another target (made by hand: the test does not depend on
    the SpiNNaker backend's state)."""
    build = tmp_path / "spin"
    code, _, err = _cli(capsys, "compile", chain_nir, "--target", "loihi", "--budget", "2MiB",
                        "-o", build)  # fmt: skip
    assert code == 0, err
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["target"] = "spinnaker"
    (build / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = _cli(capsys, "export", build, "--format", "netx", "-o", tmp_path / "s.net")
    assert code == 2 and "error[NX001]" in err and not (tmp_path / "s.net").exists()


def test_new_codes_are_documented():
    text = (ROOT / "docs" / "cli.md").read_text()
    table = text[text.index("## Diagnostic codes") :]
    for code in CODES:
        assert f"| {code} |" in table, code
    for command in ("## `snncc export", "## `snncc convert"):
        assert command in text
