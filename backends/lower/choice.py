"""How spike products run on Loihi, chosen by cost and budget (``snncc compile --attention``).

A spike ``MatMul`` (attention's ``Q·Kᵀ·V``) runs either as a custom fixed-point Lava process
(``process``: exact, small, not neurocore-native) or expanded into AND neurons and static
synapses (``and``, :mod:`snncc.backends.lower.attention`: neurocore-native, ``O(N²·d²)``
neurons per head, two more pipeline steps per attention). Both are costed with the model the
partition uses (:func:`snncc.passes.partition.plan_partition`: the calibrated Loihi 2 model by
default) on the quantized graph, the AND layers marked by node meta ``attention = "and"``
(:data:`snncc.resources.memory.ATTENTION_META`), so what is costed is what is emitted.

``auto`` (the default) picks ``and`` when (1) the expansion is buildable (at most
:data:`~snncc.backends.lower.attention.MAX_AND_NEURONS` AND neurons), (2) its partition fits
``--budget`` and (3) it is expressible exactly (the lowering does not refuse it, ``LOW030``);
otherwise ``process``. Why the budget decides: the AND expansion is the native program, so it is
preferred whenever the user's budget can pay for it; the process is the fallback that always
costs less. Without a budget (a library call) ``auto`` keeps the process and nothing is costed.
``and`` and ``process`` force the choice (``and`` refuses with ``LOW030``/``LOW031`` what it
cannot build); both are still costed for the report when there is a budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snncc.backends.lower.attention import MAX_AND_NEURONS, NOT_EXPRESSIBLE
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.resources.memory import ATTENTION_META, deployed_units, find_units

#: ``--attention`` values.
ATTENTION_CHOICES = ("auto", "and", "process")


def spike_products(g: Graph) -> list[str]:
    """Spike ``MatMul`` nodes of the deployed part that run as a custom process by default."""
    return [n for n, kind in find_units(g, "loihi", join_relays=False).items() if kind == "dynamic"]


def _mark(g: Graph, nodes: list[str], choice: str) -> None:
    for n in nodes:
        g.node_meta(n)[ATTENTION_META] = choice


def cost(g: Graph, nodes: list[str], choice: str, config: dict[str, Any]) -> dict[str, Any]:
    """The partition of ``g`` with ``nodes`` run as ``choice``: cores, chips, bytes, AND neurons,
    whether it fits ``config["budget"]``. Leaves the nodes marked ``choice``."""
    from snncc.passes.partition import plan_partition
    from snncc.resources.budget import fits

    _mark(g, nodes, choice)
    and_neurons = sum(
        u.neurons
        for u in deployed_units(g, "loihi", join_relays=False)
        if u.name in nodes and u.kind == "and"
    )
    out: dict[str, Any] = {"and_neurons": and_neurons}
    if and_neurons > MAX_AND_NEURONS:
        out["buildable"] = False
        return out
    plan = plan_partition(g, "loihi", config.get("core_memory"), config.get("conv_synapses"))
    out.update(
        buildable=True,
        cores=int(plan.cores),
        chips=int(plan.chips),
        memory_bytes=int(plan.memory_bytes),
        fits=bool(fits(plan, config.get("budget"))),
    )
    return out


def choose(
    g: Graph, config: dict[str, Any], lower: Callable[[Graph, str], Any]
) -> tuple[Any, dict[str, Any] | None]:
    """Lower ``g`` with the attention choice of ``config["attention"]`` (module docstring).

    ``lower(g, attention)`` builds the program. Returns ``(spec, choice record)``; the record is
    None when ``g`` has no spike product. Node meta ``attention`` of every spike product holds
    the choice made (the partition costs it).
    """
    requested = str(config.get("attention") or "auto")
    if requested not in ATTENTION_CHOICES:
        raise SnnccError(
            f"bad --attention {requested!r}",
            code="LOW032",
            hint=f"use one of: {', '.join(ATTENTION_CHOICES)}",
            exit_code=2,
        )
    nodes = spike_products(g)
    if not nodes:
        return lower(g, "process"), None
    record: dict[str, Any] = {"requested": requested, "products": nodes, "costs": {}}
    costs = record["costs"]
    if config.get("budget") is not None:  # both costs, for the choice and the report
        costs["and"] = cost(g, nodes, "and", config)
        costs["process"] = cost(g, nodes, "process", config)
    if requested != "auto":
        _mark(g, nodes, requested)
        record.update(chosen=requested, why=f"--attention {requested}")
        return lower(g, requested), record
    if config.get("budget") is None:
        _mark(g, nodes, "process")
        record.update(chosen="process", why="no budget to weigh the AND expansion against")
        return lower(g, "process"), record
    a = costs["and"]
    if not a["buildable"]:
        why = f"the AND expansion needs {a['and_neurons']:,} neurons (> {MAX_AND_NEURONS:,})"
    elif not a["fits"]:
        why = (
            f"the AND expansion ({a['cores']} cores, {a['memory_bytes']:,} B) does not fit the "
            "budget"
        )
    else:
        _mark(g, nodes, "and")
        try:
            spec = lower(g, "and")
        except SnnccError as e:
            if e.code != NOT_EXPRESSIBLE:
                raise
            why = f"the AND expansion cannot express it exactly ({e.message})"
        else:
            record.update(
                chosen="and",
                why=f"the AND expansion ({a['cores']} cores, neurocore-native) fits the budget",
            )
            return spec, record
    _mark(g, nodes, "process")
    record.update(chosen="process", why=why)
    return lower(g, "process"), record
