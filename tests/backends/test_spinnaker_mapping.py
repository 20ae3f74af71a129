"""The virtual-board mapping: sPyNNaker's real placement against the partitioner's estimate.

``snncc compile --target spinnaker`` maps the emitted program with sPyNNaker 7.4.1 on a virtual
SpiNN-5 machine (runtime environment) and writes the result into ``report.json`` as
``"mapping"``. On the digits checkpoint every neuron layer must get exactly the cores and
neurons per core the partitioner planned, and the only differences must be the two the backend
introduces by design, each explained in the report (the host-fed layer becomes one
``SpikeSourceArray`` core, the bias clock adds one core). The decision logic (fits, the exit-4
message, the comparison) is also tested without sPyNNaker on synthetic results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snncc.backends.spinnaker import mapping as M
from snncc.diagnostics import SnnccError
from snncc.resources.budget import parse_budget

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "examples/checkpoints/spikingformer-tiny-digits.pt"


def _core(pop: str, x: int = 0, p: int = 1, atoms: int = 256, sdram: int = 1000) -> dict:
    return {"x": x, "y": 0, "p": p, "label": pop, "population": pop, "kind": "Pop",
            "atoms": atoms, "sdram": sdram, "system": pop.startswith("SYSTEM")}  # fmt: skip


def _result(cores: list[dict]) -> dict:
    return {
        "sPyNNaker": "1!7.4.1", "cores": cores, "plan_timesteps": 1000, "seconds": 1.0,
        "routers": [{"x": 0, "y": 0, "entries": 5}, {"x": 1, "y": 0, "entries": 9},
                    {"x": 7, "y": 7, "entries": 99}],
        "machine": {"chips": 48, "width": 8, "height": 8, "sdram_per_chip": 123469792},
    }  # fmt: skip


def test_summary_counts_application_cores_chips_and_routers() -> None:
    cores = [_core("a", 0, 1), _core("a", 0, 2, 100), _core("b", 1, 1), _core("SYSTEM:x", 0, 3)]
    s = M.summarize(_result(cores))
    assert (s["cores"], s["chips"], s["system_cores"]) == (3, 2, 1)
    assert s["router_entries_max"] == 9  # chip (7, 7) holds no core of this program
    assert s["populations"]["a"] == {
        "cores": 2, "atoms_per_core": 256, "sdram_bytes": 2000, "kinds": {"Pop": 2}
    }  # fmt: skip


def test_fits_and_the_exit_4_message() -> None:
    placed = {"placed": True, "chips": 49, "cores": 700, "boards": 2}
    assert M.fits(placed, parse_budget("2boards")) and not M.fits(placed, parse_budget("1board"))
    assert not M.fits(placed, parse_budget("699cores")) and M.fits(placed, parse_budget("1GiB"))
    e = M.no_fit_error("m.pt", placed, parse_budget("1board"))
    assert e.code == "CO004" and e.exit_code == 4 and "2boards" in e.hint and "49 chips" in str(e)
    failed = {"placed": False, "boards": 1, "error": "X: full"}
    e = M.no_fit_error("m.pt", failed, parse_budget("1board"))
    assert "could not place it on 1 board" in str(e) and "2boards" in e.hint
    assert M.machine_for(1) == (8, 8) and M.machine_for(3) == (12, 12)
    assert M.machine_for(4) == (24, 24)


@pytest.mark.runtime
def test_digits_mapping_agrees_with_the_partition(tmp_path: Path) -> None:
    from snncc.compiler import compile_model

    out = tmp_path / "build"
    res = compile_model(str(CHECKPOINT), target="spinnaker", budget="1board", out_dir=out)
    m = res.report["mapping"]
    est = res.report["layers"]
    assert m["placed"] and m["boards"] == 1 and m["agrees"]
    assert "virtual SpiNN-5 machine (8x8 chips)" in m["source"]
    by = {r["layer"]: r for r in m["layers"]}
    differing = {r["layer"] for r in m["layers"] if not r["agrees"]}
    assert differing == {"patch_embed.block1_lif", "snncc.clock"}
    assert "SpikeSourceArray" in by["patch_embed.block1_lif"]["why"]
    assert "bias clock" in by["snncc.clock"]["why"]
    assert by["patch_embed.block1_lif"]["mapped_cores"] == 1  # 1,024 spike sources, one core
    host_estimate = next(r["cores"] for r in est if r["name"] == "patch_embed.block1_lif")
    assert m["cores"] == res.report["cores"] - host_estimate + 1 + 1
    assert m["chips"] == res.report["chips"] <= 48  # one board, as the partitioner packed it
    assert 0 < m["router_entries_max"] <= 1023
    assert 0 < m["sdram_bytes_per_core"] <= 123_469_792
    for layer in est:
        if layer["name"] != "patch_embed.block1_lif":
            row = by[layer["name"]]
            assert row["mapped_cores"] == layer["cores"], layer["name"]
            assert row["mapped_atoms_per_core"] == layer["atoms_per_core"], layer["name"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert "mapping/placement_by_core_using_graph.rpt" in manifest["artifacts"]
    text = (out / "mapping" / "partitioned_by_vertex.rpt").read_text()
    assert "block.0.attn.matmul_1" in text and "Generated for target" in text


@pytest.mark.runtime
def test_a_board_budget_is_held_against_the_mapping(tmp_path: Path) -> None:
    """Random spikingformer-tiny maps on one board; the same program cannot be given fewer
    cores than sPyNNaker uses (the plan's check comes first: exit 4 names the requirement)."""
    from snncc.compiler import compile_model

    res = compile_model(
        "spikingformer-tiny", target="spinnaker", budget="1board", out_dir=tmp_path / "a"
    )
    assert res.report["mapping"]["placed"] and res.report["fits"]
    with pytest.raises(SnnccError) as e:
        compile_model("spikingformer-tiny", target="spinnaker", budget="100cores",
                      out_dir=tmp_path / "b")  # fmt: skip
    assert e.value.code == "CO004" and e.value.exit_code == 4
    assert "block.0.attn.matmul_1" in e.value.hint and "AND expansion" in e.value.hint


def test_the_spinnaker_simulator_needs_a_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--simulator spinnaker` forwards ~/.spynnaker.cfg to the job; without one, RUN002."""
    from snncc.backends.spinnaker.runner import run_on_pynn
    from snncc.backends.spinnaker.spec import SpiNNakerProgram

    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(SnnccError) as e:
        run_on_pynn(SpiNNakerProgram("spinnaker", 4, [], [], [], [], []), {}, 1,
                    simulator="spinnaker")  # fmt: skip
    assert e.value.code == "RUN002" and ".spynnaker.cfg" in e.value.message
