"""The facts a compile report is made of, gathered from the pipeline's results.

Split from :mod:`snncc.compiler` (which runs the stages): how many bytes a core offers, the
budget as JSON, the exit-4 message with the budget that would fit, the report's ``program``
section and notes, the ``--eval`` accuracy, and the manifest's inputs. Everything here reads
results; nothing runs a pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snncc import targets
from snncc.diagnostics import SnnccError
from snncc.exact import ceil_div
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext
from snncc.reports.measure import reference_layout
from snncc.reports.output import versions
from snncc.reports.render import fmt_bytes
from snncc.reports.report import CompileFacts


def core_capacity(target: str, core_memory: int | None) -> int:
    """Bytes one core offers: ``--core-memory``, else the target's constraint module.

    SpiNNaker's synaptic matrices live in the chip's SDRAM shared by its application cores, so a
    core's share is ``sdram_per_chip / cores_per_chip``.
    """
    if core_memory is not None:
        return int(core_memory)
    return int(targets.get(target).load("constraints").core_memory_bytes)


def budget_dict(budget: Any) -> dict[str, Any]:
    """A :class:`snncc.resources.budget.Budget` as JSON: ``{"text", "bytes", "cores"}`` (and
    ``chips``, ``boards`` when given in those units)."""
    out = {"text": budget.text, "bytes": budget.bytes, "cores": budget.cores}
    for unit in ("chips", "boards"):
        if getattr(budget, unit, None) is not None:
            out[unit] = getattr(budget, unit)
    return out


def no_fit_error(ref: str, target: str, plan: Any, budget: Any, gran: tuple | None) -> SnnccError:
    """Exit 4: what the model needs, the budget it got, and the budget that would fit it."""
    d = plan.to_dict()
    mem, cores = int(d["memory_bytes"]), int(d["cores"])
    what = f"{ref}" + (f" at slice {gran}" if gran is not None else "")
    need = f"{fmt_bytes(mem)} ({mem} bytes) in {cores} cores"
    fix = f"{ceil_div(mem, 1024)}KiB" if budget.bytes is not None else f"{cores}cores"
    chips = int(d.get("chips") or 0)
    if getattr(budget, "boards", None) is not None and chips:
        from snncc.resources.budget import CHIPS_PER_BOARD

        need += f" on {chips} chips"
        fix = f"{ceil_div(chips, CHIPS_PER_BOARD)}boards"
    elif getattr(budget, "chips", None) is not None and chips:
        need += f" on {chips} chips"
        fix = f"{chips}chips"
    return SnnccError(
        f"{what} does not fit {target} under budget {budget.text}: it needs {need}",
        code="CO004",
        hint=f"a budget of --budget {fix} would fit it" + largest_product(d, target),
        exit_code=4,
    )


def largest_product(plan: dict[str, Any], target: str = "spinnaker") -> str:
    """A hint clause when the largest layer is an exact AND expansion of a spike MatMul (on
    SpiNNaker, and on Loihi under ``--attention and``, attention's ``Q·Kᵀ·V`` is ``O(N²·d²)``
    neurons per head): what it costs and what shrinks it."""
    layers = plan.get("layers") or []
    big = max(layers, key=lambda r: int(r.get("cores", 0)), default=None)
    if big is None or big.get("kind") != "and" or big.get("op") != "MatMul":
        return ""
    return (
        f"; the largest layer, {big['name']}, is the exact AND expansion of a spike MatMul "
        f"({int(big['neurons']):,} AND neurons on {int(big['cores']):,} cores): a smaller "
        "slice, local attention windows or fewer tokens shrink it"
        + (", and --attention auto or process runs it as a custom process"
           if targets.get(target).custom_processes else "")
    )  # fmt: skip


def program_section(target: str, spec: Any, notes: list[str]) -> dict[str, Any] | None:
    """The report's ``program`` section, and a note when the target runs programs but none was
    emitted (a construct without a lowering: the ``LOW0xx`` warnings say which)."""
    from snncc.reports.program import program_summary

    if spec is not None:
        return program_summary(spec)
    if targets.get(target).emitter is not None:
        notes.append(
            "No runnable program was emitted: the graph holds constructs without a lowering "
            "yet (see the LOW warnings); `snncc run` cannot run this build."
        )
    return None


def conv_note(target: str, conv_synapses: str) -> str:
    """The report's statement of how convolution weights were costed."""
    if target != "loihi":
        return "Convolutions are costed as sPyNNaker stores them: one padded row per source."
    if conv_synapses == "shared":
        return ("Loihi 2 costs from the model calibrated on Intel's compiler output kept in "
                "lava-dl's tutorials (docs/budget.md §3): convolution kernels stored once per "
                "core, synaptic memory in SynMem units; per-layer errors of that calibration are "
                "in docs/budget.md. --conv-synapses per-connection gives the conservative "
                "bound.")  # fmt: skip
    return ("Convolution weights costed per connection (--conv-synapses per-connection: the "
            "conservative bound, every connection stored). The default model, calibrated on "
            "Intel's compiler output, stores a kernel once per core.")  # fmt: skip


def accuracy(data: tuple, g_float: Graph, g_quant: Graph, target: str) -> dict[str, Any]:
    """Float vs quantized accuracy and per-layer spike-count drift on the ``--eval`` data."""
    from snncc.quant import evaluate_accuracy

    x, y, desc = data
    acc = evaluate_accuracy(g_float, g_quant, reference_layout(g_float, x), y, target)
    return {
        "float": float(acc.float_acc),
        "quantized": float(acc.quant_acc),
        "per_layer_drift": {str(k): float(v) for k, v in acc.per_layer_drift.items()},
        "data": desc,
        "samples": int(len(y)),
    }


def facts(
    ref: str, loaded: Any, target: str, budget: Any, gran: tuple | None, plan: Any,
    ctx: PassContext, core_memory: int | None,
) -> CompileFacts:  # fmt: skip
    """Collect the report's facts from the pipeline's results."""
    verify = next((r for r in ctx.records if r.name == "verify_spike_driven"), None)
    spike_driven = bool(verify.stats.get("spike_driven", False)) if verify else False
    per_core = core_capacity(target, core_memory)
    notes = [
        "Deployed part: every neuron and every op on a path between two neurons; the encoding "
        "(ops before the first neurons) and the readout (ops after the last neurons) run on the "
        "host in float and are not counted in cores or memory.",
    ]
    if core_memory is None and target == "loihi":
        notes.append("Loihi 2 per-core memory is not published: 128 KiB is a planning "
                     "ASSUMPTION (override with --core-memory).")  # fmt: skip
    return CompileFacts(
        model={"ref": ref, "arch": getattr(loaded, "arch", None)},
        target=target,
        budget=budget_dict(budget),
        slice=list(gran) if gran is not None else None,
        timesteps=int(loaded.timesteps),
        input_shape=[int(s) for s in loaded.input_shape],
        plan=plan.to_dict(),
        fits=True,
        core_memory_bytes=int(per_core),
        records=list(ctx.records),
        diagnostics=[d.to_dict() for d in ctx.diagnostics],
        spike_driven=spike_driven,
        notes=notes,
    )


def manifest_inputs(ref: str, eval_spec: str | None, loaded: Any) -> dict[str, Any]:
    """The manifest's ``inputs`` and ``versions`` (hashes of the model and eval files)."""
    from snncc.reports.artifacts import sha256_file

    path = getattr(loaded, "path", None)
    model_sha = sha256_file(path) if path is not None and Path(path).is_file() else None
    eval_sha = None
    if eval_spec is not None and Path(eval_spec).is_file():
        eval_sha = sha256_file(eval_spec)
    return {
        "model": ref,
        "model_sha256": model_sha,
        "arch": getattr(loaded, "arch", None),
        "config": getattr(loaded, "config", None),
        "eval": eval_spec,
        "eval_sha256": eval_sha,
        "versions": versions(),
    }
