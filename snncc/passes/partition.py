"""``partition``: place the deployed layers of a quantized graph onto cores of a target.

Each deployed layer (:func:`snncc.resources.memory.deployed_units`) is cut into *chunks* of
consecutive atoms, as large as every per-core limit of the target allows
(:func:`snncc.resources.core_fit.max_atoms_per_core`: a binary search over the target's usage
model). Then:

- **SpiNNaker** (sPyNNaker never puts two populations on one core): one core per chunk, plus
  the delay-extension cores the memory model asks for;
- **Loihi 2** (Lava's compiler packs several processes into a core): full chunks take a core
  each; the remainders are packed first-fit decreasing by memory into shared cores, a chunk
  joining a core only when the sum of every resource stays within that core's limits.

Why chunks are as large as possible: per-core costs that repeat per chunk (input-axon tables,
ring buffers, row padding) then repeat the fewest times, and the full chunks are exactly the
sPyNNaker slicing the runtime will use (``0:256, 256:512, …``). First-fit decreasing is within
11/9·OPT + 6/9 of the optimal bin count for one resource; the report shows how far the result
is from the lower bound instead of claiming optimality.

Lower bound: per resource, ``ceil(total / per-core capacity)`` where the total is the sum over
layers of their usage on one unbounded core (no repeated per-chunk costs), so no partition can
use fewer cores; on SpiNNaker, which cannot share cores, each layer needs at least
``ceil(atoms / neurons_per_core)`` cores of its own, and those add up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from snncc.exact import ceil_div
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext
from snncc.resources.core_fit import Layout, layout, split_fan_in, target_model
from snncc.resources.memory import Unit, deployed_units


@dataclass
class Core:
    """A run of ``count`` identical cores (one when shared): chunks and per-core usage.

    Every full chunk of a layer has the same size and therefore the same usage, so the full
    chunks of a layer are one run: a model with 10^5 cores has a few runs per layer, and the
    partition, the report and its pictures stay small and fast.
    """

    index: int
    count: int = 1
    chunks: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)

    def to_dict(self, resources: tuple[str, ...]) -> dict[str, Any]:
        """``{"core", "count", "layer", "layers", "atoms", "neurons", "memory_bytes", …}``.

        ``core`` is the first core of the run, ``atoms`` the ``[layer, start, stop)`` ranges
        the run holds (core ``core + i`` of a run holds the ``i``-th ``atoms_per_core`` slice);
        ``neurons``, ``memory_bytes`` and the other resources are *per core*.
        """
        layers = [c["layer"] for c in self.chunks]
        d: dict[str, Any] = {
            "core": self.index,
            "count": self.count,
            "layer": layers[0] if layers else "",
            "layers": layers,
            "atoms": [[c["layer"], c["start"], c["stop"]] for c in self.chunks],
            "atoms_per_core": self.chunks[0]["size"] if self.chunks else 0,
            "neurons": int(self.usage.get("neurons", 0)),
            "memory_bytes": int(self.usage.get("memory", 0)),
        }
        for r in resources:
            if r not in ("neurons", "memory"):
                d[r] = int(self.usage.get(r, 0))
        if self.chunks and "tile" in self.chunks[0]:
            d["tile"] = list(self.chunks[0]["tile"])
        return d


@dataclass
class PartitionPlan:
    """Where every deployed layer lives, and what it costs (the ``report.json`` facts)."""

    target: str
    cores: int
    chips: int
    memory_bytes: int
    cores_lower_bound: dict[str, int]
    limits: dict[str, int]
    layers: list[dict[str, Any]]
    core_map: list[dict[str, Any]]
    utilisation: dict[str, float]
    #: Which cost model priced the cores: ``per-connection`` or ``calibrated`` (Loihi),
    #: ``spynnaker`` (SpiNNaker).
    cost_model: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (deterministic: every list is in graph or core order)."""
        return asdict(self)


def _fits(usage: dict[str, int], add: dict[str, int], limits: dict[str, int]) -> bool:
    return all(usage.get(r, 0) + add.get(r, 0) <= cap for r, cap in limits.items())


def _add(usage: dict[str, int], add: dict[str, int], times: int = 1) -> None:
    for key, value in add.items():
        usage[key] = usage.get(key, 0) + int(value) * times


def _pack(rows: list[dict[str, Any]], limits: dict[str, int], packs: bool) -> list[Core]:
    """Full chunks on their own cores; remainders first-fit decreasing when the target packs."""
    cores: list[Core] = []
    shared: list[dict[str, Any]] = []
    next_index = 0
    for row in rows:
        if packs and row["partial"]:
            shared.append(row)
        else:
            cores.append(Core(next_index, row["count"], [row], dict(row["usage"])))
            next_index += row["count"]
    shared.sort(key=lambda r: (-r["usage"]["memory"], r["order"]))
    first_shared = len(cores)
    for row in shared:
        home = next((c for c in cores[first_shared:] if _fits(c.usage, row["usage"], limits)),
                    None)  # fmt: skip
        if home is None:
            home = Core(next_index, 1, [], {})
            next_index += 1
            cores.append(home)
        home.chunks.append(row)
        _add(home.usage, row["usage"])
    return cores


def _chips(model: Any, cores: list[Core], n_cores: int) -> int:
    """Chips the cores occupy. Loihi 2: cores per chip alone (memory is per core; 120 usable
    cores per chip, ``LoihiConstraints.cores_per_chip``). SpiNNaker:
    cores are placed in order onto chips of ``cores_per_chip`` application cores whose SDRAM
    together stays within the chip's (sPyNNaker's planner bounds the chip total, §4.3)."""
    per_chip = int(model.c.cores_per_chip)
    if model.packs or not hasattr(model.c, "sdram_per_chip"):
        return ceil_div(n_cores, per_chip)
    cap = int(model.c.sdram_per_chip)
    chips, used, used_sdram = 0, per_chip, 0  # a full "chip 0" forces the first one open
    for core in cores:
        need, n = int(core.usage.get("sdram", 0)), core.count
        while n > 0:
            room = per_chip - used
            if need > 0:
                room = min(room, (cap - used_sdram) // need)
            if room <= 0:
                chips, used, used_sdram = chips + 1, 0, 0
                continue
            take = min(n, room)
            used, used_sdram, n = used + take, used_sdram + take * need, n - take
    return chips


def _lower_bound(
    model: Any, units: list[Unit], layouts: list[Layout], limits: dict[str, int]
) -> dict[str, int]:
    """Per resource, no partition can use fewer cores than this (see the module docstring).

    A layer's share of the total is the smaller of its usage on one unbounded core and the sum
    over its cores: the partition's cores hold at least that sum, so ``cores · capacity``
    can never be below the total, whichever of the two per-layer figures is smaller.
    ``layers`` (targets whose cores hold one layer each): the sum of the layers' own bounds.
    """
    totals: dict[str, int] = {}
    for unit, lay in zip(units, layouts, strict=True):
        whole = model.usage(unit, unit.size)
        split = {r: sum(int(row["usage"][r]) * row["count"] for row in lay.runs) for r in limits}
        _add(totals, {r: min(int(whole[r]), split[r]) for r in limits})
    bound = {r: ceil_div(totals.get(r, 0), cap) if cap > 0 else 0 for r, cap in limits.items()}
    if not model.packs:
        if getattr(model, "cost_model", "") == "calibrated":
            bound["layers"] = sum(lay.lower_bound for lay in layouts)
        else:  # sPyNNaker: ceil(atoms / neurons per core) per layer
            bound["layers"] = sum(ceil_div(u.size, limits["neurons"]) for u in units)
    return {r: max(v, 1 if units else 0) for r, v in bound.items()}


def _stored(model: Any, unit: Unit) -> dict[str, int]:
    """``{"stored_weights": n}``: the weights the layer's connections store once each (a
    shared kernel, a Dense matrix with its zeros), where the model knows the connection forms
    (the calibrated Loihi model); the lowered program's connections store the same."""
    stored = getattr(model, "stored_weights", None)
    if stored is None:
        return {}
    kept = [p for p in unit.projections if p.kind == "synaptic" or _synapse_list(model, unit, p)]
    return {"stored_weights": sum(stored(unit, p) for p in kept)}


def _synapse_list(model: Any, unit: Unit, p: Any) -> bool:
    """A non-synaptic projection stored as a list of synapses: the unit synapses into an AND
    expansion's neurons and the sums of its spikes (``--attention and``), one weight each."""
    return p.kind in ("direct", "operand") and model.form(unit, p) == "list"


def plan_partition(
    g: Graph,
    target: str,
    core_memory: int | None = None,
    conv_synapses: str | None = None,
) -> PartitionPlan:
    """Partition the deployed part of ``g`` for ``target`` (the pass's work, callable alone)."""
    model = target_model(target, core_memory, conv_synapses)
    limits = dict(model.limits)
    relays = getattr(model, "join_relays", True)
    units = [part for u in deployed_units(g, target, relays) for part in split_fan_in(model, u)]
    rows: list[dict[str, Any]] = []
    layers: list[dict[str, Any]] = []
    extra_cores: dict[str, int] = {}
    layouts: list[Layout] = []
    for unit in units:
        lay = layout(model, unit)
        layouts.append(lay)
        unit_rows, k = lay.runs, lay.per_core
        chunks_n = sum(r["count"] for r in unit_rows)
        for row in unit_rows:
            row["layer"] = unit.name
            row["partial"] = row["size"] < k or chunks_n == 1
            row["order"] = len(rows)
            rows.append(row)
        extra_cores[unit.name] = model.extra_cores(unit, chunks_n)
        total: dict[str, int] = {}
        for row in unit_rows:
            _add(total, row["usage"], row["count"])
        layers.append(
            {
                "name": unit.name, "cores": 0, "memory_bytes": int(total["memory"]),
                "neurons": int(unit.neurons), "synapses": int(unit.synapses), "op": unit.op,
                "kind": unit.kind, "native": unit.native, "atoms": int(unit.size),
                "atoms_per_core": int(k), "chunks": chunks_n,
                "synapse_bytes": int(total["synapse_bytes"]),
                "state_bytes": int(total["state_bytes"]),
                "routing_bytes": int(total["routing_bytes"]),
                "extra_cores": int(extra_cores[unit.name]), "notes": list(unit.notes),
                "binding": lay.binding, "cores_lower_bound": int(lay.lower_bound),
                **({"tile": list(lay.tile)} if lay.tile else {}),
                **({"synmem": int(total["synmem"])} if "synmem" in total else {}),
                **_stored(model, unit),
            }
        )  # fmt: skip
    cores = _pack(rows, limits, model.packs)
    resources = tuple(limits)
    core_map = [c.to_dict(resources) for c in cores]
    by_layer = {row["name"]: row for row in layers}
    for c in cores:
        for name in dict.fromkeys(ch["layer"] for ch in c.chunks):
            by_layer[name]["cores"] += c.count
    for row in layers:
        row["cores"] += row["extra_cores"]
    n_chip_cores = sum(c.count for c in cores)
    n_cores = n_chip_cores + sum(extra_cores.values())
    memory = sum(int(r["usage"]["memory"]) * r["count"] for r in rows)
    utilisation = {
        r: (sum(c.usage.get(r, 0) * c.count for c in cores) / (cap * n_chip_cores))
        if n_chip_cores and cap else 0.0
        for r, cap in limits.items()
    }  # fmt: skip
    return PartitionPlan(
        target=target,
        cores=n_cores,
        chips=_chips(model, cores, n_cores),
        memory_bytes=memory,
        cores_lower_bound=_lower_bound(model, units, layouts, limits),
        limits=limits,
        layers=layers,
        core_map=core_map,
        utilisation=utilisation,
        cost_model=str(getattr(model, "cost_model", model.name)),
    )


def partition(g: Graph, ctx: PassContext) -> Graph:
    """Partition the deployed layers into cores under every per-core limit of the target.

    Requires: a quantized graph (``quantize``); ``ctx.config["target"]``; optional
              ``ctx.config["core_memory"]`` (bytes per core, overriding the constraints module)
              and ``ctx.config["conv_synapses"]`` (Loihi: ``per-connection`` or ``shared``).
    Ensures:  the graph is unchanged; ``ctx.config["partition_plan"]`` holds the
              :class:`PartitionPlan`; cores, memory and the lower bound are in the pass stats.
    """
    plan = plan_partition(
        g,
        ctx.config["target"],
        ctx.config.get("core_memory"),
        ctx.config.get("conv_synapses"),
    )
    ctx.config["partition_plan"] = plan
    ctx.stats.update(
        cores=plan.cores,
        memory_bytes=plan.memory_bytes,
        cores_lower_bound=max(plan.cores_lower_bound.values(), default=0),
        layers=len(plan.layers),
    )
    binding = max(plan.cores_lower_bound, key=plan.cores_lower_bound.get, default="none")
    ctx.decide(
        f"{len(plan.layers)} layers on {plan.cores} {plan.target} cores, {plan.chips} chips "
        f"(lower bound {max(plan.cores_lower_bound.values(), default=0)}, set by {binding}; "
        f"cost model {plan.cost_model})"
    )
    by_resource: dict[str, int] = {}
    for row in plan.layers:
        by_resource[row["binding"]] = by_resource.get(row["binding"], 0) + int(row["cores"])
    ctx.decide("cores by the resource that binds their layer: "
               + ", ".join(f"{r} {n}" for r, n in sorted(by_resource.items())))  # fmt: skip
    return g
