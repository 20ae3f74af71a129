"""Pinned quantization decisions: a fine-tuned checkpoint re-quantizes to its own integers.

``snncc finetune`` trains a program's integers on the target's grid (stream scale, weight
exponents, ring-buffer shifts frozen). The quantizer's *free* decisions depend on the weights
(the largest weight decides a Loihi ``weight_exp``; the worst-case input decides a stream's
scale and sPyNNaker's ring-buffer shifts), so re-deciding them on the fine-tuned weights could
pick another grid: the same float weights would then round to different integers. The
checkpoint therefore records the decisions the integers were trained under, and ``quantize``
honours them (``graph.meta["quant_pins"]``). A pinned decision is used only where it is still
valid: a pinned scale must not exceed what the weights allow (every bound of the free choice
is an upper bound on the scale), a pinned exponent must hold the rounded mantissas, and the
free shifts must not exceed the pinned ones (a smaller shift would saturate the ring buffer).
Anything else is refused (``QNT030``, exit 2) naming the node: such a checkpoint was edited
after fine-tuning, or fine-tuned with a target the file does not record.

The record (plain values, so it loads with ``torch.load(weights_only=True)``)::

    {"target": "loihi" | "spinnaker",
     "streams": {first_neuron: {"scale": float, "shifts": [exc, inh]}},   # shifts: SpiNNaker
     "weights": {node: {"weight_exp": int}}}                               # Loihi

Streams are keyed by their first neuron and entries by node name: both are the traced module
paths, stable for the same architecture and config.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.exact import pow2_exponent
from snncc.ir.graph import Graph

CODE = "QNT030"
KEY = "quant_pins"
_HINT = (
    "fine-tune again from the original checkpoint (snncc finetune), or drop the checkpoint's "
    "'quantization' record to let snncc choose the grid freely (the integers may then differ)"
)


def _fail(message: str) -> SnnccError:
    return SnnccError(message, code=CODE, hint=_HINT, exit_code=2)


def pins(g: Graph, target: str) -> dict[str, Any] | None:
    """The graph's pinned decisions for ``target`` (None when it has none).

    A record for another target is refused: its grid is not this target's.
    """
    rec = g.meta.get(KEY)
    if not rec:
        return None
    if rec.get("target") != target:
        raise _fail(
            f"the checkpoint's quantization record is for {rec.get('target')!r}, not {target!r}: "
            "its integers were trained for the other target"
        )
    return rec


def stream_pin(g: Graph, target: str, first_neuron: str) -> dict[str, Any] | None:
    """The pinned decisions of the stream whose first neuron is ``first_neuron``."""
    rec = pins(g, target)
    if rec is None:
        return None
    pin = rec.get("streams", {}).get(first_neuron)
    if pin is None:
        raise _fail(
            f"{first_neuron}: the checkpoint's quantization record has no scale for this stream "
            "(the record belongs to another model or config)"
        )
    return pin


def pinned_scale(
    pin: dict[str, Any], k: int, d: int, node: str, lower: int | None = None
) -> tuple[int, int]:
    """``(k', d')`` with ``d'·2^k'`` the pinned scale, checked against the free ``d·2^k``.

    Every bound of the free choice is an upper bound on the scale, so a pinned scale no larger
    than the free one satisfies them all. ``lower``: the smallest ``k'`` a dynamic product allows.
    """
    c = Fraction(float(pin["scale"]))
    if c > Fraction(d) * Fraction(2) ** k:
        raise _fail(
            f"{node}: the pinned stream scale {float(c):g} exceeds the largest the weights allow "
            f"({d * 2.0**k:g}): the weights were changed after fine-tuning"
        )
    for div in (d, 1):
        e = pow2_exponent(c / div)
        if e is not None and (lower is None or e >= lower):
            return e, div
    raise _fail(f"{node}: the pinned stream scale {float(c):g} is not {d}·2^k or 2^k")


def weight_pin(g: Graph, target: str, node: str) -> int | None:
    """The pinned ``weight_exp`` of a Loihi synaptic entry (None without a record)."""
    rec = pins(g, target)
    if rec is None:
        return None
    pin = rec.get("weights", {}).get(node)
    if pin is None:
        raise _fail(f"{node}: the checkpoint's quantization record has no exponent for this node")
    return int(pin["weight_exp"])


def pinned_mantissas(w: np.ndarray, e: int, lo: int, hi: int, node: str) -> np.ndarray:
    """``rint(w / 2^e)``, refused unless every mantissa lies in ``[lo, hi]``."""
    q = np.rint(np.asarray(w, np.float64) / 2.0**e)
    if q.size and (q.min() < lo or q.max() > hi):
        raise _fail(
            f"{node}: with the pinned weight_exp {e} the mantissas reach "
            f"[{int(q.min())}, {int(q.max())}], outside [{lo}, {hi}]"
        )
    return q.astype(np.int64)


def pinned_shifts(pin: dict[str, Any], free: tuple[int, int], node: str) -> tuple[int, int]:
    """The pinned ring-buffer shifts, refused where the free ones are larger (saturation)."""
    exc, inh = (int(s) for s in pin["shifts"])
    if exc < free[0] or inh < free[1]:
        raise _fail(
            f"{node}: the pinned ring-buffer shifts ({exc}, {inh}) are below what the weights "
            f"need ({free[0]}, {free[1]}): the ring buffer would saturate"
        )
    return exc, inh


def record_of(q: Graph) -> dict[str, Any]:
    """The pin record of a graph quantized by :func:`snncc.passes.quantize.quantize`.

    The pass keeps every stream's decisions under ``meta["quant"]["pins"]``.
    """
    rec = (q.meta.get("quant") or {}).get("pins")
    if rec is None:
        raise SnnccError("record_of: the graph is not quantized", code=CODE, exit_code=70)
    return rec


def check_record(rec: Any, where: str) -> dict[str, Any]:
    """Validate a record read from a file (types only); returns it. Raises E026-style errors."""
    ok = (
        isinstance(rec, dict)
        and rec.get("target") in ("loihi", "spinnaker")
        and isinstance(rec.get("streams"), dict)
        and isinstance(rec.get("weights", {}), dict)
        and all(
            isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("scale"), float)
            and v["scale"] > 0 and np.isfinite(v["scale"])
            and (
                "shifts" not in v
                or (
                    isinstance(v["shifts"], list) and len(v["shifts"]) == 2
                    and all(isinstance(s, int) and 0 <= s <= 16 for s in v["shifts"])
                )
            )
            for k, v in rec["streams"].items()
        )
        and all(
            isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("weight_exp"), int)
            for k, v in rec.get("weights", {}).items()
        )
    )  # fmt: skip
    if not ok:
        raise SnnccError(
            f"{where}: invalid 'quantization' record (expected target loihi|spinnaker, streams "
            "{neuron: {scale: float > 0[, shifts: [int, int]]}}, weights {node: {weight_exp: "
            "int}})",
            code="E026",
            hint="write the file with snncc finetune, or remove the 'quantization' field",
            exit_code=2,
        )
    return rec
