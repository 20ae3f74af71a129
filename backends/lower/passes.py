"""The compile-pipeline passes ``lower`` and ``balance_latency`` (snncc/passes/pipeline.py).

They wrap :func:`~snncc.backends.lower.lower.lower_program` and
:func:`~snncc.backends.lower.balance.balance` for the pass manager: the spec travels in
``ctx.config["program_spec"]`` (the emitters read it there) and the graph only gains node meta
``lowered`` (population index, role and depth; the connections of each synaptic entry), so
``partition`` and the reference interpreter see the quantized graph unchanged.

Why a construct without a lowering is a warning here and not an error: ``snncc compile`` also
costs models whose backend is not complete yet (SEW residuals, SpiNNaker), and the memory report
is still right for them. The pass records ``LOW0xx`` as a warning and leaves ``program_spec``
None; an emitter or runner that needs the program raises then, with the same message. Set
``ctx.config["require_program"]`` to make it fatal at once.
"""

from __future__ import annotations

from typing import Any

from snncc import targets
from snncc.backends.lower.balance import MAX_DELAY, balance
from snncc.backends.lower.choice import choose
from snncc.backends.lower.lower import lower_program
from snncc.backends.lower.spec import ProgramSpec
from snncc.backends.spinnaker.lower import lower_program as lower_spinnaker
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext

#: Targets with a lowering; the rest pass through with ``program_spec = None``.
LOWERINGS = {"loihi": lower_program, "spinnaker": lower_spinnaker}
SPEC_KEY = "program_spec"


def lower(g: Graph, ctx: PassContext) -> Graph:
    """Lower the deployed part of a quantized graph to a program spec for the target.

    Requires: ``quantize`` ran with ``ctx.config["target"]``; on Loihi ``ctx.config["attention"]``
              (``auto`` when absent) and ``["budget"]`` choose how spike products run
              (:mod:`~snncc.backends.lower.choice`; the record is ``spec.attention``).
    Ensures:  ``ctx.config["program_spec"]`` is an unbalanced ``ProgramSpec`` (loihi), or None
              with a decision (no lowering for the target yet) or a ``LOW0xx`` warning (a
              construct without a lowering; raised instead under ``ctx.config["require_program"]``);
              population nodes carry meta ``lowered.population``/``role``, synaptic entries
              ``lowered.connections``; ops, types and edges are unchanged.
    """
    target = ctx.config.get("target")
    ctx.config[SPEC_KEY] = None
    fn = LOWERINGS.get(str(target))
    if fn is None:
        ctx.decide(f"no program lowering for target {target!r} yet: program not generated")
        return g
    try:
        if targets.get(str(target)).custom_processes:  # spike products: a process or AND
            # neurons, chosen by cost and budget (choice.py)
            spec, attention = choose(g, ctx.config, fn)
            spec.attention = attention
        else:
            spec = fn(g)
    except SnnccError as e:
        if ctx.config.get("require_program"):
            raise
        ctx.diagnose(e.code, f"program not generated: {e.message}", hint=e.hint)
        return g
    for i, p in enumerate(spec.populations):
        g.node_meta(p.name)["lowered"] = {"population": i, "role": p.role}
    by_entry: dict[str, list[str]] = {}
    for c in spec.connections:
        by_entry.setdefault(c.entry, []).append(c.name)
    for e, names in by_entry.items():
        g.node_meta(e).setdefault("lowered", {})["connections"] = names
    stats = spec.stats()
    ctx.stats.update(stats)
    ctx.decide(
        f"{stats['populations']} populations ({stats['neurons']} neurons), connections "
        + ", ".join(f"{n} {k}" for k, n in stats["connections"].items())
        + f"; host feeds {', '.join(h.population for h in spec.host_inputs) or 'nothing'}"
    )
    for note in spec.notes:
        ctx.decide(note)
    if spec.attention is not None:
        ctx.stats["attention"] = spec.attention["chosen"]
        ctx.decide(
            f"attention (--attention {spec.attention['requested']}): spike products run as "
            f"{spec.attention['chosen']}: {spec.attention['why']}"
        )
    ctx.config[SPEC_KEY] = spec
    return g


def balance_latency(g: Graph, ctx: PassContext) -> Graph:
    """Give every population a pipeline depth and every connection operand its delay.

    Requires: ``lower`` ran (``ctx.config["program_spec"]`` a ProgramSpec or None).
    Ensures:  the spec is balanced (:func:`~snncc.backends.lower.balance.balance`): merging
              paths arrive at the same step (of Lava, or of the SpiNNaker simulator), a run
              of B samples takes ``spec.run_steps(B)`` steps; population nodes gain meta
              ``lowered.depth``; nothing else changes.
              A delay beyond one connection's 62 steps is a ``LOW010`` warning (spec -> None).
    """
    spec: ProgramSpec | None = ctx.config.get(SPEC_KEY)
    if spec is None:
        ctx.decide("no program spec: nothing to balance")
        return g
    try:
        balance(spec)
    except SnnccError as e:
        if ctx.config.get("require_program"):
            raise
        ctx.diagnose(e.code, f"program not generated: {e.message}", hint=e.hint)
        ctx.config[SPEC_KEY] = None
        return g
    for p in spec.populations:
        if p.name in g:  # relay populations have no node
            g.node_meta(p.name)["lowered"]["depth"] = p.depth
    relays = [p.name for p in spec.populations if p.role == "relay"]
    if relays:
        ctx.decide(
            f"{len(relays)} relay populations carry spikes past one connection's "
            f"{MAX_DELAY}-step delay limit"
        )
    delayed = [(c.name, max(o.delay for o in c.operands)) for c in spec.connections]
    delayed = [(n, d) for n, d in delayed if d > 0]
    stats: dict[str, Any] = {"depth": spec.depth, "delayed_connections": len(delayed)}
    stats["max_delay"] = max((d for _, d in delayed), default=0)
    ctx.stats.update(stats)
    # the target's own schedule where it has one (SpiNNaker: one run per sample), else Lava's
    schedule = getattr(spec, "schedule", None) or f"B*{spec.period} + {spec.depth} Lava steps"
    ctx.decide(
        f"pipeline depth {spec.depth}: a run of B samples takes {schedule}; "
        f"{len(delayed)} connections delayed (at most {stats['max_delay']} steps)"
    )
    return g
