"""``report.json``: what a compile produced, as plain data (schema in docs/compile.md).

The report is assembled from facts the compiler already holds (the partition plan, the pass
records, the verification result, the accuracy measurement) and nothing is recomputed here, so
the JSON, Markdown and HTML renderings cannot disagree. Everything in it is deterministic: pass
wall times are *not* part of the report (they live in ``timings.json``, see
:func:`timings_json`), so two compiles of the same inputs give byte-identical reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from snncc.passes.manager import PassRecord
from snncc.reports.artifacts import jsonable

#: Version of the report schema; bump when a key changes meaning or disappears.
SCHEMA_VERSION = 1
#: Keys every report has (the issue's minimum); tests check them.
REQUIRED_KEYS = (
    "target", "budget_bytes", "slice", "fits", "cores", "cores_lower_bound", "memory_bytes",
    "layers", "accuracy", "spike_driven",
)  # fmt: skip
LAYER_KEYS = ("name", "cores", "memory_bytes", "neurons", "synapses")


@dataclass
class CompileFacts:
    """Everything a report is made of; the compiler fills it, the renderers read the dict."""

    model: dict[str, Any]
    target: str
    budget: dict[str, Any]
    slice: list[int] | None
    timesteps: int
    input_shape: list[int]
    plan: dict[str, Any]
    fits: bool
    core_memory_bytes: int
    records: list[PassRecord]
    diagnostics: list[dict[str, Any]]
    spike_driven: bool
    accuracy: dict[str, Any] | None = None
    sops: dict[str, Any] | None = None
    slices: list[dict[str, Any]] | None = None
    #: The emitted program (:func:`snncc.reports.program.program_summary`), None if none.
    program: dict[str, Any] | None = None
    #: The program as the target's own tools mapped it (SpiNNaker: sPyNNaker on a virtual
    #: board; :func:`snncc.backends.spinnaker.mapping.for_report`), None if not mapped.
    mapping: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _lower_bound(plan: dict[str, Any]) -> tuple[int, dict[str, int]]:
    """The plan's lower bound as one int (the binding resource) and per resource."""
    lb = plan.get("cores_lower_bound", 0)
    if isinstance(lb, dict):
        by = {str(k): int(v) for k, v in lb.items()}
        return (max(by.values()) if by else 0), by
    return int(lb), {}


def _budget_chips(budget: dict[str, Any]) -> int | None:
    """The chip budget (``8chips``), from the budget's ``chips`` or its text."""
    if budget.get("chips") is not None:
        return int(budget["chips"])
    from snncc.diagnostics import SnnccError
    from snncc.resources.budget import parse_budget

    try:
        return parse_budget(str(budget.get("text", ""))).chips
    except SnnccError:
        return None


def _layers(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Plan layers with the required keys first (extra keys from the partitioner are kept)."""
    out = []
    for row in plan.get("layers", []):
        d = {k: row.get(k) for k in LAYER_KEYS}
        d.update({k: v for k, v in row.items() if k not in d})
        out.append(d)
    return out


def _verification(facts: CompileFacts) -> dict[str, Any]:
    """The spike-driven verdict and its SD001 findings (from the verify pass's diagnostics)."""
    violations = [d for d in facts.diagnostics if d.get("code") == "SD001"]
    rec = next((r for r in facts.records if r.name == "verify_spike_driven"), None)
    return {
        "spike_driven": facts.spike_driven,
        "violations": violations,
        "stats": dict(rec.stats) if rec else {},
        "decisions": list(rec.decisions) if rec else [],
    }


def _quantization(records: list[PassRecord]) -> list[dict[str, Any]]:
    """Per quantized op rows (exponents, shifts, scales) from the ``quantize`` pass record."""
    rec = next((r for r in records if r.name == "quantize"), None)
    rows = rec.stats.get("layers", []) if rec else []
    return list(rows) if isinstance(rows, list) else []


def build_report(facts: CompileFacts) -> dict[str, Any]:
    """The ``report.json`` document (JSON-safe, deterministic)."""
    lb, lb_by = _lower_bound(facts.plan)
    cores = int(facts.plan.get("cores", 0))
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": facts.model,
        "target": facts.target,
        "budget": facts.budget,
        "budget_bytes": facts.budget.get("bytes"),
        "budget_cores": facts.budget.get("cores"),
        "budget_chips": _budget_chips(facts.budget),
        "slice": facts.slice,
        "timesteps": facts.timesteps,
        "input_shape": facts.input_shape,
        "fits": bool(facts.fits),
        "cores": cores,
        "chips": facts.plan.get("chips"),
        "cost_model": facts.plan.get("cost_model"),
        "cores_lower_bound": lb,
        "cores_lower_bound_by_resource": lb_by,
        "core_utilisation": (lb / cores) if cores else None,
        "core_memory_bytes": facts.core_memory_bytes,
        "memory_bytes": int(facts.plan.get("memory_bytes", 0)),
        "layers": _layers(facts.plan),
        "core_map": facts.plan.get("core_map", []),
        "utilisation": facts.plan.get("utilisation", {}),
        "accuracy": facts.accuracy,
        "spike_driven": facts.spike_driven,
        "verification": _verification(facts),
        "sops": facts.sops,
        "slices": facts.slices,
        "quantization": _quantization(facts.records),
        "program": facts.program,
        "mapping": facts.mapping,
        "passes": [r.to_dict(timings=False) for r in facts.records],
        "diagnostics": facts.diagnostics,
        "notes": [*facts.notes, *_cost_notes(facts.plan)],
    }
    return jsonable(report)


def _cost_notes(plan: dict[str, Any]) -> list[str]:
    """What the calibrated Loihi 2 cost model is, in one note (docs/budget.md §3)."""
    if plan.get("cost_model") != "calibrated":
        return []
    return [
        "Loihi 2 cores are costed by the model calibrated on Intel's Loihi 2 compiler output "
        "(lava-dl netx tutorials; docs/budget.md §3): 12,000 SynMem units (64-bit words) per "
        "core, Dense synapses per input axon with zeros stored, convolution kernels stored once "
        "per core, fewer than 4,096 neurons per core, convolution layers in output tiles, one "
        "layer per core. It matches Intel's core counts within 25 % on PilotNet and Oxford."
    ]


def timings_json(records: list[PassRecord], stages: dict[str, float]) -> dict[str, Any]:
    """Wall times: per pass and per compile stage (the one non-deterministic artifact)."""
    return jsonable(
        {
            "passes": [{"name": r.name, "seconds": r.seconds} for r in records],
            "stages": stages,
            "total_seconds": sum(stages.values()),
        }
    )
