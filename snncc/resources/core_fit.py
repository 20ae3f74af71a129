"""Fitting layers to cores: the per-target byte models, atoms per core, and fan-in splitting.

:mod:`snncc.resources.memory` finds the deployed layers and their projections (target-independent);
this module asks the target's usage model (``snncc.backends.<target>.memory``, or the calibrated
Loihi 2 model ``snncc.backends.lava.calibrated``) how a layer is cut into cores
(:func:`layout`: output tiles or chunks of as many atoms as one core holds,
:func:`max_atoms_per_core`), cuts a layer whose single neuron is too wide into partial-sum
relays where the target has graded spikes (:func:`split_fan_in`), and gives each layer's bytes
at its default slicing (:func:`layer_memory`). The partitioner
(:mod:`snncc.passes.partition`) builds on these. numpy + networkx only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from snncc.diagnostics import SnnccError
from snncc.exact import ceil_div
from snncc.ir.graph import Graph
from snncc.resources.memory import TARGETS, LayerMemory, Projection, Unit, deployed_units

__all__ = [
    "TARGETS", "WHOLE", "Layout", "chunks", "layer_memory", "layout",
    "max_atoms_per_core", "split_fan_in", "target_model",
]  # fmt: skip


def conv_synapses_for(target: str, conv_synapses: str | None) -> str:
    """``conv_synapses`` as given, or the target's default costing when None.

    The default is the first of the target's ``cost_models`` (:mod:`snncc.targets`): on Loihi the
    model calibrated on Intel's Loihi 2 compiler output (``shared``: convolution kernels stored
    once per core, SynMem units; docs/budget.md §3), on SpiNNaker the only one (sPyNNaker stores
    every synaptic row). One table for every caller (compile, slices, the memory model), so that
    a layer's memory in a report and in :func:`layer_memory` cannot disagree.
    """
    from snncc import targets

    if conv_synapses is not None:
        return conv_synapses
    return targets.get(target).cost_models[0][0]


def target_model(
    target: str, core_memory: int | None = None, conv_synapses: str | None = None
) -> Any:
    """The target's per-core cost model (``conv_synapses`` None: the target's default).

    Loihi: ``conv_synapses="per-connection"`` is the conservative byte model
    (``snncc.backends.lava.memory``), ``"shared"`` the model calibrated on Intel's compiler
    output (``snncc.backends.lava.calibrated``: shared convolution kernels, SynMem units).
    SpiNNaker stores every synaptic row (sPyNNaker's static synapses), so ``shared`` is refused
    there (``MM003``). The table is the target's ``cost_models``.
    """
    from snncc import targets

    if target not in targets.NAMES:
        raise SnnccError(f"unknown target {target!r}", code="MM001", hint="loihi or spinnaker")
    return targets.get(target).cost_model(conv_synapses)(core_memory)


def _fits(model: Any, unit: Unit, k: int) -> bool:
    use = model.usage(unit, k)
    return all(use[r] <= cap for r, cap in model.limits.items())


def split_fan_in(model: Any, unit: Unit) -> list[Unit]:
    """Partial-sum relays for a layer whose single neuron exceeds a core (Loihi 2 only).

    A neuron reading more sources than a core has input axons (or more synapses than a core
    holds) cannot live on one core. On Loihi 2 its input projections are cut into groups that
    each fit half a core (the model's ``relay_capacity``, ``relay_load`` and ``relay_pieces``:
    sources against the fan-in for the per-connection model, SynMem units and input axons for
    the calibrated one); each group feeds a *relay* population of the layer's size that sends
    its integer partial sum as a graded spike, and the neuron reads one graded input per relay.
    The sum is exact (integers, in order-independent addition); the relayed path is one
    timestep longer, which latency balancing accounts for. Returns ``[unit]`` unchanged when
    one atom fits, or on targets without graded spikes (the caller then reports exit 4).
    """
    if not getattr(model, "graded_relays", False) or _fits(model, unit, 1):
        return [unit]
    synaptic = [p for p in unit.projections if p.kind == "synaptic"]
    if not synaptic:
        return [unit]
    cap = model.relay_capacity()
    pieces = [q for p in synaptic for q in model.relay_pieces(unit, p)]
    groups: list[list[Projection]] = []
    load: list[int] = []
    for piece in sorted(pieces, key=lambda q: -model.relay_load(unit, q)):  # first-fit decr.
        need = model.relay_load(unit, piece)
        i = next((j for j, used in enumerate(load) if used + need <= cap), None)
        if i is None:
            groups.append([])
            load.append(0)
            i = len(groups) - 1
        groups[i].append(piece)
        load[i] += need
    note = (f"partial sums of {unit.name} in {len(groups)} graded relays (one neuron's fan-in "
            f"exceeds a core): +1 timestep on that path")  # fmt: skip
    relays = [
        Unit(
            f"{unit.name}.partial{i}",
            "Relay",
            "relay",
            unit.size,
            unit.size,
            1,
            True,
            tuple(group),
            notes=(note,),
        )  # fmt: skip
        for i, group in enumerate(groups)
    ]
    direct = [model.relay_link(unit, r.name) for r in relays]
    kept = [p for p in unit.projections if p.kind != "synaptic"]
    main = dataclasses.replace(unit, projections=tuple(kept + direct),
                               notes=(*unit.notes, note))  # fmt: skip
    return [*relays, main]


def max_atoms_per_core(model: Any, unit: Unit) -> int:
    """Largest k such that k atoms of ``unit`` on one core respect every per-core limit.

    Usage grows with k, so a binary search suffices. One atom that does not fit is exit 4.
    """
    if not _fits(model, unit, 1):
        use = model.usage(unit, 1)
        over = [f"{r} {use[r]:,} > {cap:,}" for r, cap in model.limits.items() if use[r] > cap]
        raise SnnccError(
            f"layer {unit.name}: one {'neuron' if unit.neurons else 'element'} exceeds a "
            f"{model.name} core ({'; '.join(over)})",
            code="MM002",
            exit_code=4,
            hint="reduce the layer's fan-in (a smaller slice) or raise --core-memory",
        )
    lo, hi = 1, unit.size
    if unit.neurons:
        hi = min(hi, model.limits.get("neurons", hi))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits(model, unit, mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


#: ``Layout.binding`` of a layer that one core holds whole: no per-core limit binds it.
WHOLE = "whole layer"


@dataclass
class Layout:
    """How one layer is cut into cores.

    ``runs``: identical cores as ``{"start", "stop", "size", "count", "usage"}`` (plus ``"tile"``
    ``[channels, rows, cols]`` for a tiled layer, whose cores hold tiles rather than atom
    ranges: ``start``/``stop`` are then the whole layer); ``per_core``: atoms of the largest
    core; ``cores``: cores of the layer (helper cores excluded); ``lower_bound``: cores the layer
    needs at least when no core holds two layers; ``binding``: the per-core resource that stops a
    core from holding more of the layer (:data:`WHOLE` when one core holds it all).
    """

    runs: list[dict[str, Any]]
    per_core: int
    cores: int
    lower_bound: int
    binding: str
    tile: tuple[int, int, int] | None = None


def _ratio_binding(model: Any, use: dict[str, int]) -> str:
    """The limited resource closest to its capacity in ``use``."""
    return max(model.limits, key=lambda r: Fraction(use[r], max(1, model.limits[r])))


def layout(model: Any, unit: Unit) -> Layout:
    """Cut ``unit`` into cores: output tiles where the model tiles the layer (the calibrated
    Loihi model's convolution layers), else chunks of consecutive atoms, each as large as
    every per-core limit allows (:func:`max_atoms_per_core`)."""
    tiling = getattr(model, "tiling", None)
    t = tiling(unit) if tiling is not None else None
    if t is not None:
        runs = [
            {"start": 0, "stop": unit.size, "size": c * h * w, "count": n,
             "usage": model.usage(unit, c * h * w, c), "tile": [c, h, w]}
            for c, h, w, n in t["runs"]
        ]  # fmt: skip
        binding = WHOLE if t["cores"] == 1 else _ratio_binding(model, t["usage"])
        per_core = max(r["size"] for r in runs)
        return Layout(runs, per_core, t["cores"], t["lower_bound"], binding, t["tile"])
    k = max_atoms_per_core(model, unit)
    full, rest = divmod(unit.size, k)
    runs = []
    if full:
        runs.append({"start": 0, "stop": full * k, "size": k, "count": full,
                     "usage": model.usage(unit, k)})  # fmt: skip
    if rest:
        runs.append({"start": full * k, "stop": unit.size, "size": rest, "count": 1,
                     "usage": model.usage(unit, rest)})  # fmt: skip
    binding = WHOLE
    if k < unit.size:
        over = model.usage(unit, k + 1)
        binding = next((r for r, cap in model.limits.items() if over[r] > cap), "neurons")
    return Layout(runs, k, full + (1 if rest else 0), ceil_div(unit.size, k), binding)


def chunks(size: int, per_core: int) -> list[tuple[int, int]]:
    """``[start, stop)`` atom ranges: full cores of ``per_core`` then the remainder (sPyNNaker's
    slicing: 1000 neurons at 256 -> 0:256, 256:512, 512:768, 768:1000)."""
    return [(s, min(size, s + per_core)) for s in range(0, size, per_core)]


def layer_memory(
    g: Graph,
    target: str,
    *,
    core_memory: int | None = None,
    conv_synapses: str | None = None,
) -> list[LayerMemory]:
    """Bytes per deployed layer on ``target`` at its default slicing (see docs/budget.md)."""
    model = target_model(target, core_memory, conv_synapses)
    rows = []
    for unit in deployed_units(g, target, getattr(model, "join_relays", True)):
        lay = layout(model, unit)
        total: dict[str, int] = {}
        for run in lay.runs:
            for key, value in run["usage"].items():
                total[key] = total.get(key, 0) + int(value) * run["count"]
        rows.append(
            LayerMemory(
                name=unit.name, op=unit.op, kind=unit.kind, native=unit.native,
                neurons=unit.neurons, size=unit.size, synapses=unit.synapses,
                synapse_bytes=total["synapse_bytes"], state_bytes=total["state_bytes"],
                routing_bytes=total["routing_bytes"], memory_bytes=total["memory"],
                atoms_per_core=lay.per_core, cores=lay.cores + model.extra_cores(unit, lay.cores),
                extra={r: total[r] for r in model.limits if r not in ("neurons", "memory")},
                notes=list(unit.notes),
            )
        )  # fmt: skip
    return rows
