"""Runtime job: map a SpiNNaker program with sPyNNaker 7.4.1 on a virtual board and read it back.

``python -m snncc.backends.spinnaker.runtime.mapping JOBDIR`` (protocol of
:mod:`snncc.runtime.jobs`; the compile side is
:func:`snncc.backends.spinnaker.mapping.map_program`).
The job directory is HOME and the working directory (:mod:`snncc.runtime.bridge`), so the
virtual-board ``.spynnaker.cfg`` written there and sPyNNaker's ``reports/`` stay out of the
user's home. It builds the emitted ``network.py`` with ``--simulator virtual`` semantics and
calls ``sim.run``: on a virtual board sPyNNaker partitions, places, routes and plans SDRAM but
loads and runs nothing (hardware-semantics §4.3).

Inputs: the program's arrays. Parameters: ``spec`` (payload document), ``width``/``height``
(the virtual machine in chips; 8 x 8 is one SpiNN-5 board), ``data_specs`` (also generate
the data specification and return every core's region sizes: minutes for a transformer).
Outputs: ``report:<name>``, the bytes of each sPyNNaker report file (uint8; its "Generated:"
date line made constant, so builds stay byte-identical). Result: ``cores`` (one row per
core: population label, vertex type, chip, core, atoms, planned SDRAM), ``routers`` (entries
per chip), ``machine`` (chips, SDRAM per chip), ``plan_timesteps``, ``seconds``, ``sPyNNaker``;
or ``error`` when sPyNNaker could not place or route the program on that machine (it does
not fit).
"""

from __future__ import annotations

import re
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from snncc.backends.spinnaker.runtime.program import load_network
from snncc.backends.spinnaker.spec import SpiNNakerProgram
from snncc.runtime.jobs import job_dir_from_argv, read_job, write_result

#: Reports worth keeping in the build (names in sPyNNaker's run directory).
REPORTS = (
    "partitioned_by_vertex.rpt",
    "placement_by_vertex_using_graph.rpt",
    "placement_by_core_using_graph.rpt",
    "routing_summary.rpt",
    "chip_sdram_usage_by_core.rpt",
)


def config(width: int, height: int) -> str:
    """The virtual-board config: a SpiNN-5 machine of ``width`` x ``height`` chips."""
    size = "" if (width, height) == (8, 8) else f"width = {width}\nheight = {height}\n"
    return (
        "[Machine]\nvirtual_board = True\nversion = 5\n" + size + "\n[Reports]\n"
        "write_network_graph = False\nwrite_partitioner_reports = True\n"
        "write_application_graph_placer_report = True\nwrite_router_summary_report = True\n"
        "write_sdram_usage_report_per_chip = True\n"
    )


def _cores(view: Any) -> list[dict[str, Any]]:
    n_ts = view.get_plan_n_timestep()
    rows = []
    for pl in view.iterate_placemements():  # (sic) in 7.4.1
        v = pl.vertex
        label = str(v.label or "")
        app = getattr(v, "app_vertex", None)
        rows.append(
            {
                "x": int(pl.x), "y": int(pl.y), "p": int(pl.p), "label": label,
                "population": str(getattr(app, "label", "") or label),
                "kind": type(v).__name__,
                "atoms": int(v.vertex_slice.n_atoms) if hasattr(v, "vertex_slice") else 0,
                "sdram": int(v.sdram_required.get_total_sdram(n_ts)),
                "system": label.startswith("SYSTEM"),
            }
        )  # fmt: skip
    rows.sort(key=lambda r: (r["x"], r["y"], r["p"]))
    return rows


def _regions(db: str) -> list[dict[str, Any]]:
    """Actual region sizes per core from the data specification database (``SynBlocks`` is the
    synaptic matrix, hardware-semantics §4.3)."""
    import sqlite3

    with sqlite3.connect(db) as c:
        rows = c.execute("select x, y, p, region_label, size from region").fetchall()
    return [{"x": x, "y": y, "p": p, "region": str(r), "size": int(n)} for x, y, p, r, n in rows]


def run(inputs: dict[str, np.ndarray], params: dict[str, Any], job_dir: Path) -> tuple:
    """Map the program; ``(outputs, result)`` for :func:`snncc.runtime.jobs.write_result`."""
    t0 = time.perf_counter()
    width, height = int(params.get("width", 8)), int(params.get("height", 8))
    (job_dir / ".spynnaker.cfg").write_text(config(width, height))
    spec = SpiNNakerProgram.from_payload(params["spec"], inputs)
    net = load_network(spec)
    import pyNN.spiNNaker as sim
    from spinn_front_end_common.interface.abstract_spinnaker_base import AbstractSpinnakerBase
    from spynnaker.pyNN.data import SpynnakerDataView as view

    if not params.get("data_specs"):
        # Mapping (partition, placement, routing, routing tables, planned SDRAM) is done when
        # data generation starts; writing every synaptic row of the data specification
        # (minutes for a transformer, in Python) is what a virtual board skips here.
        AbstractSpinnakerBase._do_data_generation = lambda self: None  # type: ignore[method-assign]
    sim.setup(timestep=1.0)
    net["build"](sim, "virtual", inputs)
    try:
        sim.run(float(spec.period))
    except Exception as e:  # noqa: BLE001 - placement/routing failures: the program does not fit
        if "pacman" not in type(e).__module__.lower():
            raise
        return {}, {"sPyNNaker": version("sPyNNaker"), "error": f"{type(e).__name__}: {e}"}
    cores = _cores(view)
    routers = [
        {"x": int(t.x), "y": int(t.y), "entries": int(t.number_of_entries)}
        for t in view.get_uncompressed().routing_tables
    ]
    machine = view.get_machine()
    sdram = int(machine.get_chip_at(0, 0).sdram)
    result = {
        "sPyNNaker": version("sPyNNaker"),
        "cores": cores,
        "routers": sorted(routers, key=lambda r: (r["x"], r["y"])),
        "machine": {
            "chips": int(machine.n_chips),
            "width": width,
            "height": height,
            "sdram_per_chip": sdram,
        },  # fmt: skip
        "plan_timesteps": int(view.get_plan_n_timestep()),
    }
    if params.get("data_specs"):
        result["regions"] = _regions(view.get_ds_database_path())
    run_dir = Path(view.get_run_dir_path())
    sim.end()
    outputs = {}
    for name in REPORTS:
        f = run_dir / name
        if f.is_file():
            text = re.sub(r"(?m)^Generated: .* for target", "Generated for target", f.read_text())
            outputs[f"report:{name}"] = np.frombuffer(text.encode(), np.uint8)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return outputs, result


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m snncc.backends.spinnaker.runtime.mapping JOBDIR``."""
    job_dir = job_dir_from_argv(argv)
    inputs, params = read_job(job_dir)
    outputs, result = run(inputs, params, job_dir)
    write_result(job_dir, outputs, result)


if __name__ == "__main__":
    main()
