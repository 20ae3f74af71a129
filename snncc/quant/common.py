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
from fractions import Fraction

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.exact import floor_log2
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind
from snncc.quant.streams import Split, value_unit

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
    if not math.isfinite(float(op.v_threshold)):
        raise SnnccError(
            f"{n}: v_threshold = {op.v_threshold}: a neuron with an infinite threshold never "
            f"fires and has no integer threshold on {target}",
            code="QNT003",
            hint="give the neuron a finite threshold, or remove the layer",
            exit_code=2,
        )
    if isinstance(op, O.IF):
        return NeuronSpec(None, float(op.v_threshold), False)
    if not math.isfinite(float(op.tau)):
        raise SnnccError(
            f"{n}: tau = {op.tau}: a LIF with an infinite time constant has no integer leak on "
            f"{target}",
            code="QNT003",
            hint="use an IF neuron (no leak) or a finite tau",
            exit_code=2,
        )
    return NeuronSpec(float(op.tau), float(op.v_threshold), bool(op.decay_input))


def largest_pow2(limits: list[float | Fraction], lower: int = MIN_SCALE_EXP) -> int:
    """Largest ``k <= MAX_SCALE_EXP`` with ``2^k <= limit`` for every limit; at least ``lower``.

    Limits ``<= 0`` and infinite ones (nothing to bound, e.g. a stream whose weights are all
    zero) are skipped. The test ``2^k <= limit`` is exact (:func:`floor_log2`): pass a limit
    ``a / b`` as ``Fraction(a) / Fraction(b)`` to decide on the exact quotient rather than on
    its rounded float. The clamp at ``lower`` is for callers that have already refused a scale
    below it (:func:`scale_exponent`).
    """
    k = MAX_SCALE_EXP
    for lim in limits:
        if lim <= 0 or (isinstance(lim, (float, np.floating)) and not math.isfinite(lim)):
            continue
        k = min(k, floor_log2(lim))
    return max(k, lower)


@dataclass(frozen=True)
class Bound:
    """One constraint ``c <= limit`` (``c < limit`` when ``strict``) on a stream's scale ``c``.

    Kept with the node and value that set it, so that a stream no scale fits is refused with a
    reason about the model (:func:`scale_exponent`) rather than failing later in an integer
    range check. ``limit`` is exact (a :class:`~fractions.Fraction`) or ``inf`` (no bound).
    """

    limit: Fraction | float
    node: str
    what: str
    hint: str
    code: str = "QNT004"
    strict: bool = False


def _exponent_within(b: Bound, divisor: int) -> int | None:
    """Largest ``k`` with ``divisor·2^k`` within ``b`` (None: ``b`` bounds nothing)."""
    if b.limit == math.inf or b.limit <= 0:
        return None
    lim = Fraction(b.limit) / divisor
    k = floor_log2(lim)
    if b.strict and Fraction(2) ** k == lim:
        k -= 1
    return k


def scale_exponent(
    bounds: dict[str, Bound], divisor: int, stream: str, target: str
) -> tuple[int, str | None]:
    """Largest ``k <= MAX_SCALE_EXP`` with ``divisor·2^k`` within every bound, and the binding
    bound's name (None when only ``MAX_SCALE_EXP`` binds).

    Why refuse below ``MIN_SCALE_EXP`` (exit 2, the bound's code): ``c < 2^-24`` means a stream
    whose per-step current, bias or threshold exceeds ``2^24`` times what the target's integer
    fields hold (e.g. 16-bit inputs: currents above 5·10^11 thresholds' worth); no trained
    network has that, a corrupted or mis-scaled checkpoint does. Clamping instead would round
    every other weight of the stream to zero and then fail an integer range check (exit 70).
    """
    k, binding = MAX_SCALE_EXP, None
    for name, b in bounds.items():
        e = _exponent_within(b, divisor)
        if e is not None and e < k:
            k, binding = e, name
    if k < MIN_SCALE_EXP and binding is not None:
        b = bounds[binding]
        raise SnnccError(
            f"{b.node}: {b.what}: no stream scale fits {target}'s integer ranges (the "
            f"{binding} limit needs a scale of 2^{k} for the stream of {stream}; snncc uses "
            f"2^{MIN_SCALE_EXP} to 2^{MAX_SCALE_EXP})",
            code=b.code,
            hint=b.hint,
            exit_code=2,
        )
    return k, binding


def float_limits(bounds: dict[str, Bound]) -> dict[str, float]:
    """The bounds as plain floats, for the pass record (``inf``: nothing bounds the scale)."""
    return {name: float(b.limit) for name, b in bounds.items()}


def check_finite_weights(g: Graph, nodes: list[str]) -> None:
    """Refuse deployed synaptic ops whose weights or biases are NaN or infinite (exit 2).

    The loader refuses non-finite checkpoint weights; these come from BN folding, e.g. a
    ``running_var`` below ``-eps`` (``sqrt`` of a negative) or ``gamma / sqrt(0)``.
    """
    for n in nodes:
        op = g.op(n)
        for field in ("weight", "bias"):
            v = getattr(op, field, None)
            if v is None:
                continue
            a = np.asarray(v, np.float64)
            if not np.all(np.isfinite(a)):
                bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
                raise SnnccError(
                    f"{n}: {bad} of {a.size} {field} values are NaN or infinite after batch "
                    "norm folding",
                    code="QNT004" if field == "weight" else "QNT007",
                    hint="check the batch norm after this layer: running_var must be >= 0 and "
                    "running_var + eps > 0 (a damaged checkpoint or an unfinished statistics "
                    "update); restore an earlier checkpoint or recompute the statistics",
                    exit_code=2,
                )
        factor = getattr(op, "factor", None)
        if factor is not None and not math.isfinite(float(factor)):
            raise SnnccError(
                f"{n}: scale factor {factor} is not finite",
                code="QNT005",
                hint="use a finite power-of-two scale",
                exit_code=2,
            )


def exact_ratio(num: float | int, den: float | int) -> Fraction | float:
    """``num / den`` as an exact :class:`~fractions.Fraction` (``inf`` when ``den == 0``).

    Why: a limit such as ``INPUT_MAX / worst`` decides a power-of-two scale; the float quotient
    is rounded and can land on ``2^k`` when the exact one lies just below it.
    """
    if den == 0:
        return math.inf
    return Fraction(num) / Fraction(den)


def clone_for_host(g: Graph, split: Split) -> list[str]:
    """Give readout ops float copies of the deployed values they read; returns the copies.

    Copied: currents (the residual stream exists on chip only as neuron input) and counts (a
    SEW sum of spike tensors exists on chip only as its populations' spikes). A copied synaptic
    op that reads an ExpG-IF neuron's graded events reads them through a host ``Scale`` by the
    payload unit ``theta·2^-K``: on chip (and in every reference mode of the quantized graph)
    the neuron emits the integer payload, the float weights expect ``s·theta·2^-(k+1)``.
    """
    made: dict[str, str] = {}
    scaled: dict[str, str] = {}

    def host_value(d: str) -> str:
        copied = (Kind.CURRENT, Kind.COUNT)
        if d not in split.deployed or g.op(d).NEURON or g.type(d).kind not in copied:
            return d
        if d in made:
            return made[d]
        drivers = [host_value(x) for x in g.inputs_of(d)]
        if g.op(d).SYNAPTIC:
            drivers = [_payload_value(g, x, scaled) for x in drivers]
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
    return list(made.values()) + list(scaled.values())


def _payload_value(g: Graph, d: str, made: dict[str, str]) -> str:
    """``d``, or a host ``Scale`` turning an ExpG-IF neuron's graded payload into its value."""
    if g.type(d).kind is not Kind.GRADED:
        return d
    if d in made:
        return made[d]
    unit, _ = value_unit(g, d)
    name = g.unique_name(f"{d}.value")
    g.add(name, O.Scale(factor=unit), g.type(d).with_kind(Kind.CURRENT), src=g.src(d),
          loc=g.loc(d), meta={"host_payload_unit": unit})  # fmt: skip
    g.connect(d, name)
    made[d] = name
    return name


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
