"""The report's ``program`` section: what the compile emitted and what of it is not native.

A user deciding whether to trust a build needs to know what will run: how many processes (on a
chip: how many neurocore programs), how deep the pipeline is (every hop costs a timestep, so a
sample's spikes leave ``depth`` steps late and a run of ``B`` samples takes ``B·T + depth``
steps), and which parts are not plain neurocore operations, with the reason. This module
reads the lowered program spec's public fields only; it imports no SDK.
"""

from __future__ import annotations

from typing import Any

#: Connection kinds that are native on the chip but simulated by a custom process, and why.
SIMULATED: dict[str, str] = {
    "conv": "a vectorised custom Lava process with Lava Conv's exact integer semantics (Lava's "
    "own Conv loops in Python per channel pair); on Loihi 2 the compiler maps convolutions to "
    "neurocore connectivity",
}


def program_summary(spec: Any, processes: int | None = None) -> dict[str, Any]:
    """JSON-ready summary of a lowered, balanced program spec (see the module docstring)."""
    stats = dict(spec.stats())
    kinds = dict(stats.get("connections", {}))
    from snncc.backends.lower.spec import not_native as spec_not_native

    not_native = [
        {"connection": r["name"], "kind": r["kind"], "why": r["why"]} for r in spec_not_native(spec)
    ]
    simulated = {k: why for k, why in SIMULATED.items() if k in kinds}
    host_fed = len(spec.host_inputs)
    return {
        "populations": int(stats.get("populations", len(spec.populations))),
        "neurons": int(stats.get("neurons", 0)),
        "connections": kinds,
        "processes": processes
        if processes is not None
        else len(spec.populations) + len(spec.connections) + host_fed,
        "pipeline_depth": int(spec.depth),
        "max_delay": int(stats.get("max_delay", 0)),
        "steps_per_sample": int(spec.timesteps),
        "run_steps": getattr(spec, "schedule", None)
        or f"B*{int(spec.timesteps)} + {int(spec.depth)} for B samples back to back",
        "host_inputs": [h.population for h in spec.host_inputs],
        "not_neurocore_native": not_native,
        "simulated_by_custom_process": simulated,
        "attention": attention_choice(spec),
    }


def attention_choice(spec: Any) -> dict[str, Any] | None:
    """How spike products run (``and`` or ``process``), why, and what each choice costs
    (``backends.lower.choice``); None when the program has no spike product."""
    rec = getattr(spec, "attention", None)
    if not rec:
        return None
    return {
        "requested": rec["requested"],
        "chosen": rec["chosen"],
        "why": rec["why"],
        "products": list(rec["products"]),
        "costs": {k: dict(v) for k, v in rec["costs"].items()},
    }
