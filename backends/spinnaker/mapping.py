"""The real mapping of a SpiNNaker program: sPyNNaker 7.4.1 on a virtual board, against the plan.

:func:`map_program` runs :mod:`snncc.backends.spinnaker.runtime.mapping` (sPyNNaker partitions,
places, routes and plans SDRAM for the emitted network on a virtual SpiNN-5 machine, loading
nothing) and :func:`summarize` turns its placements into the report's ``"mapping"`` section:
application cores, chips, planned SDRAM per core, multicast router entries per chip, and per
population the cores and neurons per core sPyNNaker chose. :func:`compare` holds that against
the partitioner's estimate layer by layer and says why a layer differs, so the report never
shows two core counts without the reason.

Why the estimate and the mapping can differ by design (each difference is named):

- a host-fed layer is a ``SpikeSourceArray`` in the program (the host computes those neurons);
  the estimate costs it as ``IF_curr_delta`` neurons fed by ``I_offset``;
- the bias clock (one ``SpikeSourceArray`` neuron) is a core the estimate has no layer for;
- sPyNNaker adds a delay-extension core for a projection whose delay exceeds the ring buffer's
  slots, where the estimate's delay model may differ.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from snncc.backends.spinnaker.spec import SpiNNakerProgram
from snncc.diagnostics import SnnccError
from snncc.runtime.bridge import run_in_runtime

MAP_MODULE = "snncc.backends.spinnaker.runtime.mapping"
CLOCK = "snncc.clock"  # network_template: the bias clock population's label
CHIPS_PER_BOARD = 48


def machine_for(boards: int) -> tuple[int, int]:
    """A virtual SpiNN-5 machine (width, height in chips) of at least ``boards`` boards.

    One board is 8 x 8 chips (48 usable); larger machines are 12k x 12k chips (3k² boards,
    sPyNNaker's tiling of board triads).
    """
    if boards <= 1:
        return 8, 8
    return (12 * math.ceil(math.sqrt(boards / 3)),) * 2


def map_program(
    spec: SpiNNakerProgram,
    boards: int = 1,
    timeout: float = 1800,
    log_path: str | Path | None = None,
    data_specs: bool = False,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Map ``spec`` on a virtual machine of ``boards`` boards; ``(raw result, {report: bytes})``.

    Requires: a balanced program (neurons per core set, :meth:`apply_partition`).
    Ensures:  ``result["error"]`` when sPyNNaker could not place or route it there.
    Raises ``SnnccError`` ``RT00x`` when the job fails otherwise (stderr saved to ``log_path``).
    """
    doc, arrays = spec.to_payload()
    width, height = machine_for(boards)
    params = {"spec": doc, "width": width, "height": height, "data_specs": data_specs}
    outputs, result = run_in_runtime(MAP_MODULE, dict(arrays), params, timeout, log_path=log_path)
    prefix = "report:"
    reports = {k[len(prefix) :]: v.tobytes() for k, v in outputs.items() if k.startswith(prefix)}
    return result, reports


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """The report's ``"mapping"`` section from the mapping job's result."""
    app = [c for c in result["cores"] if not c["system"]]
    chips = sorted({(c["x"], c["y"]) for c in app})
    used = {(c["x"], c["y"]) for c in result["cores"]}
    routers = [r for r in result["routers"] if (r["x"], r["y"]) in used]
    populations: dict[str, dict[str, Any]] = {}
    for c in app:
        row = populations.setdefault(
            c["population"], {"cores": 0, "atoms_per_core": 0, "sdram_bytes": 0, "kinds": {}}
        )
        row["cores"] += 1
        row["atoms_per_core"] = max(row["atoms_per_core"], c["atoms"])
        row["sdram_bytes"] += c["sdram"]
        row["kinds"][c["kind"]] = row["kinds"].get(c["kind"], 0) + 1
    sdram = [c["sdram"] for c in app]
    return {
        "source": f"sPyNNaker {result['sPyNNaker']} on a virtual SpiNN-5 machine "
        f"({result['machine']['width']}x{result['machine']['height']} chips)",
        "cores": len(app),
        "chips": len(chips),
        "sdram_bytes_per_core": max(sdram, default=0),
        "sdram_bytes_per_core_mean": int(sum(sdram) / len(sdram)) if sdram else 0,
        "sdram_bytes": sum(sdram),
        "router_entries_max": max((r["entries"] for r in routers), default=0),
        "router_entries": sum(r["entries"] for r in routers),
        "system_cores": len(result["cores"]) - len(app),
        "plan_timesteps": int(result["plan_timesteps"]),
        "seconds": float(result.get("seconds", 0.0)),
        "populations": dict(sorted(populations.items())),
    }


def compare(mapping: dict[str, Any], plan: Any, spec: SpiNNakerProgram) -> list[dict[str, Any]]:
    """Per layer: the partitioner's cores and neurons per core next to sPyNNaker's, and why
    they differ when they do (``agrees`` False with ``why``)."""
    layers = plan["layers"] if isinstance(plan, dict) else plan.layers
    est = {str(r["name"]): r for r in layers}
    mapped = mapping["populations"]
    roles = {p.name: p.role for p in spec.populations}
    rows = []
    for name in [*est, *(n for n in mapped if n not in est)]:
        e, m = est.get(name), mapped.get(name)
        row = {
            "layer": name,
            "estimate_cores": int(e["cores"]) if e else 0,
            "estimate_atoms_per_core": int(e["atoms_per_core"]) if e else 0,
            "mapped_cores": int(m["cores"]) if m else 0,
            "mapped_atoms_per_core": int(m["atoms_per_core"]) if m else 0,
            "mapped_sdram_bytes": int(m["sdram_bytes"]) if m else 0,
        }
        row["agrees"] = row["estimate_cores"] == row["mapped_cores"] and (
            row["estimate_atoms_per_core"] == row["mapped_atoms_per_core"]
        )
        if not row["agrees"]:
            row["why"] = _why(name, roles.get(name), e, m)
        rows.append(row)
    return rows


def _why(name: str, role: str | None, est: Any, mapped: Any) -> str:
    if name == CLOCK:
        return "the bias clock: one SpikeSourceArray neuron delivering the layers' biases"
    if role == "host":
        return (
            "host-fed neurons: a SpikeSourceArray in the program (the host computes them); the "
            "estimate costs them as IF_curr_delta neurons fed by I_offset"
        )
    if mapped and any("Delay" in k for k in mapped["kinds"]):
        return "sPyNNaker added delay-extension cores for delays beyond the ring buffer's slots"
    if est is None:
        return "a population the partitioner has no layer for"
    if mapped is None:
        return "a layer the program does not have as a population (folded into synapses)"
    return "sPyNNaker sliced the population differently from the partition"


def boards_for(plan: Any, budget: Any) -> int:
    """Boards of the virtual machine: the budget's (``1board``, ``96chips``), else enough for
    the partition's chips."""
    limit = getattr(budget, "chip_limit", None)
    chips = limit if limit is not None else int(getattr(plan, "chips", 0) or 0)
    return max(1, math.ceil(chips / CHIPS_PER_BOARD))


def fits(section: dict[str, Any], budget: Any) -> bool:
    """The mapping against the budget: placed at all, and within a chip, board or core budget
    (a byte budget is held against the partition's memory only: sPyNNaker's planned SDRAM
    includes recording buffers for 1000 steps that the program never fills)."""
    if not section.get("placed", True):
        return False
    limit = getattr(budget, "chip_limit", None)
    if limit is not None and int(section["chips"]) > limit:
        return False
    cores = getattr(budget, "cores", None)
    return cores is None or int(section["cores"]) <= cores


def no_fit_error(what: str, section: dict[str, Any], budget: Any) -> SnnccError:
    """Exit 4 (``CO004``) from the mapping: where it failed or what it used."""
    if not section.get("placed", True):
        need = f"sPyNNaker could not place it on {section['boards']} board(s): {section['error']}"
        fix = f"{int(section['boards']) + 1}boards"
    else:
        need = f"sPyNNaker placed it on {section['chips']} chips, {section['cores']} cores"
        fix = f"{math.ceil(int(section['chips']) / CHIPS_PER_BOARD)}boards"
        if getattr(budget, "cores", None) is not None:
            fix = f"{section['cores']}cores"
    return SnnccError(
        f"{what} does not fit spinnaker under budget {budget.text}: {need}",
        code="CO004",
        hint=f"a budget of --budget {fix} would fit it",
        exit_code=4,
    )


def for_report(
    spec: SpiNNakerProgram,
    plan: Any,
    budget: Any,
    log_path: str | Path | None = None,
    what: str = "the model",
) -> tuple[dict[str, Any] | None, dict[str, bytes], str | None]:
    """``(mapping section, report files, note)`` for a compile (see the module docstring).

    The section is deterministic (no wall times): ``cores``, ``chips``, ``sdram_bytes_per_core``
    (the largest planned SDRAM of an application core), ``router_entries_max`` (the fullest
    chip's multicast table), per-population rows and the per-layer comparison with the plan;
    ``placed`` False with ``error`` when sPyNNaker could not place the program on the machine
    the budget allows. Without a runtime environment the section is None and the note says why.
    Raises ``CO004`` (exit 4) when the mapping does not fit ``budget`` (:func:`fits`).
    """
    boards = boards_for(plan, budget)
    try:
        result, reports = map_program(spec, boards, log_path=log_path)
    except SnnccError as e:
        if e.code != "RT001":
            raise
        return None, {}, f"virtual-board mapping skipped: {e.message}"
    if "error" in result:
        failed = {"placed": False, "boards": boards, "error": result["error"]}
        raise no_fit_error(what, failed, budget)
    summary = summarize(result)
    summary.pop("seconds", None)
    rows = compare(summary, plan, spec)
    roles = {p.name: p.role for p in spec.populations}
    neurons = [r for r in rows if roles.get(r["layer"]) in ("lif", "and", "or")]
    summary.update(
        placed=True,
        boards=boards,
        estimate={"cores": int(plan.cores), "chips": int(plan.chips)},
        agrees=all(r["agrees"] for r in neurons),
        layers=rows,
    )
    if not fits(summary, budget):
        raise no_fit_error(what, summary, budget)
    files = {f"mapping/{name}": data for name, data in sorted(reports.items())}
    return summary, files, None
