"""Fitting layers to cores: the per-target byte models, atoms per core, and fan-in splitting.

:mod:`snncc.memory` finds the deployed layers and their projections (target-independent);
this module asks the target's usage model (``snncc.backends.<target>.memory``) how many atoms
of a layer one core holds (:func:`max_atoms_per_core`), cuts a layer whose single neuron is too
wide into partial-sum relays where the target has graded spikes (:func:`split_fan_in`), and
gives each layer's bytes at its default slicing (:func:`layer_memory`). The partitioner
(:mod:`snncc.passes.partition`) builds on these. numpy + networkx only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from snncc.diagnostics import SnnccError
from snncc.exact import ceil_div
from snncc.ir.graph import Graph
from snncc.memory import TARGETS, LayerMemory, Projection, Unit, deployed_units

__all__ = [
    "TARGETS", "chunks", "layer_memory", "max_atoms_per_core", "split_fan_in", "target_model",
]  # fmt: skip


def target_model(
    target: str, core_memory: int | None = None, conv_synapses: str = "per-connection"
) -> Any:
    """The target's per-core cost model (``snncc.backends.<target>.memory``).

    ``conv_synapses`` (``per-connection`` or ``shared``) is a Loihi costing assumption; SpiNNaker
    stores every synaptic row (sPyNNaker's static synapses), so ``shared`` is refused there.
    """
    from snncc.backends.lava.memory import CONV_SYNAPSES

    if conv_synapses not in CONV_SYNAPSES:
        raise SnnccError(
            f"unknown --conv-synapses {conv_synapses!r}",
            code="MM003",
            hint=f"use one of: {', '.join(CONV_SYNAPSES)}",
        )
    if target == "loihi":
        from snncc.backends.lava.memory import LoihiMemoryModel

        return LoihiMemoryModel(core_memory, conv_synapses=conv_synapses)
    if target == "spinnaker":
        from snncc.backends.spinnaker.memory import SpiNNakerMemoryModel

        if conv_synapses != "per-connection":
            raise SnnccError(
                "--conv-synapses shared is a Loihi assumption: sPyNNaker stores a padded row "
                "per presynaptic neuron",
                code="MM003",
                hint="drop --conv-synapses for --target spinnaker",
            )
        return SpiNNakerMemoryModel(core_memory)
    raise SnnccError(f"unknown target {target!r}", code="MM001", hint="loihi or spinnaker")


def _fits(model: Any, unit: Unit, k: int) -> bool:
    use = model.usage(unit, k)
    return all(use[r] <= cap for r, cap in model.limits.items())


def _pieces(p: Projection, per_atom: int, cap: int) -> list[Projection]:
    """``p`` cut into ``ceil(per_atom / cap)`` input groups (e.g. channel groups of a conv),
    each with that share of the sources, synapses and receptive field."""
    n = max(1, ceil_div(per_atom, cap))
    if n == 1:
        return [p]
    return [
        dataclasses.replace(
            p,
            synapses=ceil_div(p.synapses, n),
            n_pre=ceil_div(p.n_pre, n),
            rf=ceil_div(p.rf, n),
        )  # fmt: skip
        for _ in range(n)
    ]


def split_fan_in(model: Any, unit: Unit) -> list[Unit]:
    """Partial-sum relays for a layer whose single neuron exceeds a core (Loihi 2 only).

    A neuron reading more sources than a core has input axons (or more synapses than a core
    holds) cannot live on one core. On Loihi 2 its input projections are cut into groups of at
    most half a core's fan-in; each group feeds a *relay* population of the layer's size that
    sends its integer partial sum as a graded spike, and the neuron reads one graded input per
    relay. The sum is exact (integers, in order-independent addition); the relayed path is one
    timestep longer, which latency balancing accounts for. Returns ``[unit]`` unchanged when
    one atom fits, or on targets without graded spikes (the caller then reports exit 4).
    """
    if not getattr(model, "graded_relays", False) or _fits(model, unit, 1):
        return [unit]
    cap = max(1, model.limits.get("fan_in", 4096) // 2)
    synaptic = [p for p in unit.projections if p.kind == "synaptic"]
    if not synaptic:
        return [unit]
    pieces: list[Projection] = []
    for p in synaptic:
        pieces.extend(_pieces(p, min(p.n_pre, p.rf), cap))
    groups: list[list[Projection]] = []
    load: list[int] = []
    for piece in sorted(pieces, key=lambda q: -min(q.n_pre, q.rf)):  # first-fit decreasing
        need = min(piece.n_pre, piece.rf)
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
    direct = [Projection(r.name, None, "direct", unit.size, unit.size, 1, 1) for r in relays]
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


def chunks(size: int, per_core: int) -> list[tuple[int, int]]:
    """``[start, stop)`` atom ranges: full cores of ``per_core`` then the remainder (sPyNNaker's
    slicing: 1000 neurons at 256 -> 0:256, 256:512, 512:768, 768:1000)."""
    return [(s, min(size, s + per_core)) for s in range(0, size, per_core)]


def layer_memory(
    g: Graph, target: str, *, core_memory: int | None = None, conv_synapses: str = "per-connection"
) -> list[LayerMemory]:
    """Bytes per deployed layer on ``target`` at its default slicing (see docs/budget.md)."""
    model = target_model(target, core_memory, conv_synapses)
    rows = []
    for unit in deployed_units(g, target):
        k = max_atoms_per_core(model, unit)
        parts = [model.usage(unit, b - a) for a, b in chunks(unit.size, k)]
        total = {key: sum(p[key] for p in parts) for key in parts[0]}
        rows.append(
            LayerMemory(
                name=unit.name, op=unit.op, kind=unit.kind, native=unit.native,
                neurons=unit.neurons, size=unit.size, synapses=unit.synapses,
                synapse_bytes=total["synapse_bytes"], state_bytes=total["state_bytes"],
                routing_bytes=total["routing_bytes"], memory_bytes=total["memory"],
                atoms_per_core=k, cores=len(parts) + model.extra_cores(unit, len(parts)),
                extra={r: total[r] for r in model.limits if r not in ("neurons", "memory")},
                notes=list(unit.notes),
            )
        )  # fmt: skip
    return rows
