"""Target-independent pieces of quantization: neuron checks, scale search, host readout copies.

Why host copies: the readout (mean over tokens and time, head Linear) runs on the host in float,
but in a membrane-shortcut model it reads the residual *stream*, a current that exists on chip
only as neuron input. The host recomputes it from the chip's spikes with the float weights, so
the quantized graph gets a float copy (``<node>.host``) of every stream op a readout op reads,
and the deployed originals are quantized without affecting the readout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind
from snncc.quant.streams import Split

#: Largest stream scale exponent tried (2^24 would already overflow every target's state).
MAX_SCALE_EXP = 24
MIN_SCALE_EXP = -24


@dataclass(frozen=True)
class NeuronSpec:
    """The float neuron a target neuron replaces: leak, threshold and input gain."""

    tau: float | None  # None: IF (no leak)
    v_threshold: float
    decay_input: bool


def neuron_spec(g: Graph, n: str, target: str) -> NeuronSpec:
    """The neuron's parameters, or an error naming the node when the target cannot run it."""
    op = g.op(n)
    if not isinstance(op, (O.LIF, O.IF)):
        raise SnnccError(f"{n}: {op.kind} is not a float LIF/IF neuron", code="QNT002")
    if op.v_reset is None:
        raise SnnccError(
            f"{n}: soft reset (v_reset=None) is not representable on {target}: the neuron "
            "resets v to 0 after a spike",
            code="QNT003",
            hint="retrain with a hard reset (v_reset=0.0), SpikingJelly's default",
        )
    if op.v_reset != 0.0:
        raise SnnccError(
            f"{n}: hard reset to {op.v_reset} is not supported on {target} (resets to 0)",
            code="QNT003",
            hint="use v_reset=0.0",
        )
    if isinstance(op, O.IF):
        return NeuronSpec(None, float(op.v_threshold), False)
    return NeuronSpec(float(op.tau), float(op.v_threshold), bool(op.decay_input))


def largest_pow2(limits: list[float], lower: int = MIN_SCALE_EXP) -> int:
    """Largest ``k <= MAX_SCALE_EXP`` with ``2^k <= limit`` for every limit; at least ``lower``."""
    k = MAX_SCALE_EXP
    for lim in limits:
        if lim <= 0:
            continue
        k = min(k, math.floor(math.log2(lim)))
    return max(k, lower)


def pow2_exponent(x: float) -> int | None:
    """``k`` with ``x == 2^k`` exactly, else None."""
    if x <= 0:
        return None
    m, e = math.frexp(x)
    return e - 1 if m == 0.5 else None


def clone_for_host(g: Graph, split: Split) -> list[str]:
    """Give readout ops float copies of the deployed current ops they read; returns the copies."""
    made: dict[str, str] = {}

    def host_value(d: str) -> str:
        if d not in split.deployed or g.op(d).NEURON or g.type(d).kind is not Kind.CURRENT:
            return d
        if d in made:
            return made[d]
        drivers = [host_value(x) for x in g.inputs_of(d)]
        name = g.unique_name(f"{d}.host")
        g.add(name, g.op(d), g.type(d), src=g.src(d), loc=g.loc(d), meta={"host_copy_of": d})
        for src, port in zip(drivers, g.op(d).in_ports, strict=True):
            g.connect(src, name, port)
        made[d] = name
        return name

    for r in [n for n in g.topo_order() if n in split.readout]:
        for d, port in zip(g.inputs_of(r), g.op(r).in_ports, strict=True):
            copy = host_value(d)
            if copy != d:
                g.rewire(r, port, copy)
    return list(made.values())


def mantissa_exponent(
    w: np.ndarray, lo: int, hi: int, e_min: int, e_max: int, node: str
) -> tuple[np.ndarray, int]:
    """``(rint(w / 2^e), e)`` with the smallest ``e`` in [e_min, e_max] that fits [lo, hi]."""
    for e in range(e_min, e_max + 1):
        q = np.rint(np.asarray(w, np.float64) / 2.0**e)
        if q.size == 0 or (q.min() >= lo and q.max() <= hi):
            return q.astype(np.int64), e
    raise SnnccError(
        f"{node}: weights up to {np.abs(w).max():.4g} do not fit an 8-bit mantissa with "
        f"weight_exp <= {e_max}",
        code="QNT004",
        hint="the stream scale is too large; report this as a bug",
        exit_code=70,
    )


def record(ctx_stats: dict, key: str, row: dict) -> None:
    """Append one JSON-ready row to ``ctx.stats[key]``."""
    ctx_stats.setdefault(key, []).append(row)


Transform = Callable[[str, O.Op], O.Op]
