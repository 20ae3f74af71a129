"""The host's part of a lowered program: float encoding in, float readout out.

The deployed network starts at the first populations and ends at the last ones; the ops before
(the encoding conv on pixels) and after (token/time means, the head) run on the host in float
(docs/compile.md, "Deployed part and host part"). Both are evaluated here with the reference
interpreter's own kernels of the ``loihi`` mode, node by node in graph order, so that a chip run
whose spikes equal the reference's gives *identical* readout values and predictions, not merely
close ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from snncc.backends.lower.spec import ProgramSpec
from snncc.backends.lower.structure import gather
from snncc.ir.graph import Graph
from snncc.reference import loihi_kernels
from snncc.reference.context import KernelCtx
from snncc.reference.feeds import timesteps_of, validate_feeds
from snncc.reference.loihi_kernels import host_to_a_in


def evaluate(
    g: Graph,
    nodes: set[str],
    values: dict[str, np.ndarray],
    feeds: Mapping[str, np.ndarray],
    timesteps: int,
    batch: int,
    kernels: Mapping[type, Any] = loihi_kernels.KERNELS,
) -> dict[str, np.ndarray]:
    """Evaluate ``nodes`` in topological order with a reference kernel table (the target's;
    loihi by default); ``values`` are given. Shared by every backend's host side, so the host
    computes exactly what the reference does."""
    for n in g.topo_order():
        if n not in nodes or n in values:
            continue
        ty = g.type(n)
        ctx = KernelCtx(
            node=n,
            lead=2 if ty.temporal else 1,
            timesteps=timesteps,
            batch=batch,
            out_type=ty,
            feed=feeds.get(n),
            meta=g.node_meta(n),
        )
        values[n] = kernels[type(g.op(n))](g.op(n), [values[d] for d in g.inputs_of(n)], ctx)
    return values


def ancestors(g: Graph, targets: list[str], given: Mapping[str, np.ndarray]) -> set[str]:
    """``targets`` and everything they depend on, not looking past ``given`` values."""
    seen: set[str] = set()
    todo = list(targets)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            if n not in given:
                todo.extend(g.inputs_of(n))
    return seen


def encode(
    g: Graph, spec: ProgramSpec, inputs: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], int]:
    """Host inputs ``{population: [T, B, size] int64}`` for graph ``inputs``; and ``B``.

    Requires: ``inputs`` as :func:`snncc.reference.run` takes them.
    Ensures:  ``a_in = rint(x · host_scale)`` of each host-fed population's encoding node, with
              ``x`` computed by the same kernels as the reference run.
    """
    timesteps = timesteps_of(g, inputs)
    feeds, batch = validate_feeds(g, inputs, timesteps)
    need = ancestors(g, [h.node for h in spec.host_inputs], {})
    values = evaluate(g, need, {}, feeds, timesteps, batch)
    out = {}
    for h in spec.host_inputs:
        pop = spec.population(h.population)
        x = np.broadcast_to(values[h.node], (timesteps, batch) + pop.shape)
        out[h.population] = host_to_a_in(x, h.host_scale).reshape(timesteps, batch, pop.size)
    return out, batch


def readout(
    g: Graph,
    spec: ProgramSpec,
    spikes: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """The graph outputs computed on the host from per-step population ``spikes``.

    Requires: ``spikes[pop]`` is ``[T, B, *shape]`` (reference-aligned windows) for every
              population a tap reads; ``inputs`` the same graph inputs (a readout may read them).
    Ensures:  equal to ``snncc.reference.run(g, inputs, "loihi").outputs`` whenever the spikes
              equal the reference's.
    """
    timesteps = timesteps_of(g, inputs)
    feeds, batch = validate_feeds(g, inputs, timesteps)
    values: dict[str, np.ndarray] = {}
    for t in spec.taps:
        s = np.asarray(spikes[t.population], np.float64)
        pop = spec.population(t.population)
        if pop.graded:  # a programmable neuron's spike at step t carries 2^(K-1-(t mod K))
            s = s * pop.payloads()[np.arange(len(s)) % pop.bits].reshape(
                (-1,) + (1,) * (s.ndim - 1)
            )
        flat = s.reshape(s.shape[:2] + (-1,))
        values[t.node] = gather(flat, t.index)
    need = ancestors(g, list(g.outputs), values)
    evaluate(g, need, values, feeds, timesteps, batch)
    return {n: values[n] for n in g.outputs}
