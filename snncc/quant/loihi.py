"""Loihi 2 (Lava ``fixed_pt``) quantization of one stream: scale, mantissas, neuron parameters.

Neuron parameters (threshold placement, the programmable neuron) are in
:mod:`snncc.quant.loihi_neurons`; this module re-exports its public names.

Integer units: a stream value ``X`` (float) is carried as ``a_in = X·c`` per step, with ``c`` a
power of two chosen per stream; a LIF with ``decay_input`` then has ``v ≈ 64·c·tau·V`` (so its
*stream scale* is ``s = c·tau``), one without it ``v ≈ 64·c·V``. See docs/quantization.md.

Thresholds are placed, not just rounded (:func:`place_threshold`): Lava fires on ``v > vth << 6``
with a 64-unit threshold grid, SpikingJelly on ``V >= v_th``; the two agree on every reachable
membrane value exactly when every reachable value is a multiple of 64 (no leak, or a leaky
membrane on a coarse input lattice, :func:`membrane_granule` from :func:`_input_exp`), and to
within half a grid step otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from snncc.backends.lava.constraints import LOIHI
from snncc.diagnostics import SnnccError
from snncc.exact import pow2_exponent
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.quant import pins
from snncc.quant.common import (
    MIN_SCALE_EXP,
    Bound,
    exact_ratio,
    float_limits,
    mantissa_exponent,
    neuron_spec,
    scale_exponent,
)
from snncc.quant.loihi_neurons import (
    BIAS_EXP,
    PROGRAMMABLE,
    VTH_MAX,
    Threshold,
    decay_v,
    is_programmable,
    largest_threshold,
    lif_neuron,
    membrane_granule,
    place_threshold,
    programmable_neuron,
    two_adic,
)
from snncc.quant.streams import (
    SYNAPTIC,
    Stream,
    entry_unit,
    neuron_inputs,
    stream_bias,
    stream_bounds,
    stream_divisor,
)

#: Host-fed streams have no provable input bound: keep thresholds within 12 bits, leaving 4 bits
#: of the 16-bit input for encoding currents up to 8x the threshold (checked by calibration).
HOST_VTH_LIMIT = 2**12
INPUT_MAX = 2 ** (LOIHI.input_sum_bits - 1) - 1
__all__ = [
    "BIAS_EXP",
    "PROGRAMMABLE",
    "VTH_MAX",
    "StreamPlan",
    "Threshold",
    "choose_scale",
    "decay_v",
    "membrane_granule",
    "place_threshold",
    "quantize_stream",
]


@dataclass
class StreamPlan:
    """The decisions for one stream, kept for the pass record."""

    scale_exp: int
    limits: dict[str, float]
    rows: list[dict[str, Any]]
    divisor: int = 1  # the scale is divisor * 2^scale_exp (streams.stream_divisor)
    #: The decisions a fine-tuned checkpoint pins (:mod:`snncc.quant.pins`): ``scale`` (and
    #: SpiNNaker's ``shifts``).
    pin: dict[str, Any] | None = None


def _thresholds(g: Graph, stream: Stream) -> dict[str, Fraction]:
    """Each neuron's largest threshold in units of ``c`` (``v_th·tau`` with decay_input, else
    ``v_th``; times the input gain), exact (the scale and threshold decisions use it)."""
    return {n: largest_threshold(g, n) for n in stream.neurons}


def _threshold_text(g: Graph, n: str, units: Fraction) -> str:
    """``v_threshold 1e+30`` (and ``v_th·tau`` when that is what the threshold is in units)."""
    if is_programmable(g.op(n)):
        return f"threshold {float(units):.4g} (programmable neuron)"
    v_th = neuron_spec(g, n, "loihi").v_threshold
    scaled = f" (v_th·tau = {float(units):.4g} with decay_input)" if units != Fraction(v_th) else ""
    return f"v_threshold {v_th:.4g}{scaled}"


_SCALED_WRONG = (
    "weights or batch-norm statistics this far from the neurons' threshold are a damaged or "
    "mis-scaled checkpoint (e.g. a layer multiplied without its threshold): check that layer "
    "and its BatchNorm, or rescale its weights and the next neurons' v_threshold together"
)


def _largest_weight(g: Graph, stream: Stream) -> tuple[str, float]:
    """The stream entry with the largest ``|weight|`` (or ``|factor|``) and that value."""
    best, top = stream.entries[0] if stream.entries else stream.neurons[0], 0.0
    for n in stream.entries:
        op = g.op(n)
        unit = entry_unit(g, n) if isinstance(op, SYNAPTIC) else 1.0
        w = np.asarray(op.weight if isinstance(op, SYNAPTIC) else op.factor, np.float64) * unit
        m = float(np.max(np.abs(w), initial=0.0))
        if m > top:
            best, top = n, m
    return best, top


def _weight_bounds(g: Graph, stream: Stream) -> dict[str, Bound]:
    """Every entry's largest weight must fit the 8-bit mantissa at the largest exponent.

    ``rint(w·c / 2^8)`` must lie in [-128, 127]: ``w·c < 127.5·256`` (strict: 127.5 rounds to
    128) for positive and ``|w·c| <= 128.5·256`` for negative weights. The 16-bit input bound
    usually implies this, but not when one weight alone is almost the whole worst-case input
    (a weight of 0.9975 and threshold 1 asked for ``c = 2^15`` and mantissa 128).
    """
    top = (LOIHI.weight_max + 0.5) * 2 ** (LOIHI.weight_exp_max + 1)
    bottom = (-LOIHI.weight_min + 0.5) * 2 ** (LOIHI.weight_exp_max + 1)
    peaks: dict[str, tuple[float, str]] = {"pos": (0.0, ""), "neg": (0.0, "")}
    for n in stream.entries:
        op = g.op(n)
        if isinstance(op, SYNAPTIC):
            w = np.asarray(op.weight, np.float64) * entry_unit(g, n)
            for key, peak in (("pos", np.max(w, initial=0.0)), ("neg", -np.min(w, initial=0.0))):
                if float(peak) > peaks[key][0]:
                    peaks[key] = (float(peak), n)
    out: dict[str, Bound] = {}
    for key, room, strict, sign in (("pos", top, True, 1), ("neg", bottom, False, -1)):
        peak, n = peaks[key]
        if peak > 0:
            what = f"weight {sign * peak:.4g}"
            out[f"weight_8bit_{key}"] = Bound(
                exact_ratio(room, peak), n, what, _SCALED_WRONG, strict=strict
            )
    return out


def choose_scale(
    g: Graph, stream: Stream, host_bound: float | None = None
) -> tuple[int, int, dict[str, float], dict[str, np.ndarray]]:
    """The stream's ``k`` and ``D``: ``c = D·2^k`` is the largest scale keeping fields in range.

    ``D`` is :func:`~snncc.quant.streams.stream_divisor` (1 unless the stream is lowered average
    pools, and 1 again when ``k`` would be negative); returns ``(k, D, limits on c, bias per
    neuron)``. Every limit is an exact ratio, so ``k`` is decided on exact values
    (:func:`~snncc.quant.common.scale_exponent`); a stream that needs ``k < -24`` is refused.
    """
    th = _thresholds(g, stream)
    top_neuron = max(th, key=th.__getitem__)
    th_max = th[top_neuron]
    bounds: dict[str, Bound] = {
        "vth_17bit": Bound(
            Fraction(VTH_MAX + 1) / th_max,
            top_neuron,
            _threshold_text(g, top_neuron, th_max),
            "v_threshold (times tau with decay_input) must stay below 2^41 on loihi (17-bit "
            "vth at the smallest scale, 2^-24): check this neuron's v_threshold",
        )
    }
    bias: dict[str, np.ndarray] = {n: np.zeros(g.type(n).shape) for n in stream.neurons}
    if stream.nodes:
        bias = neuron_inputs(g, stream, stream_bias(g, stream))
        pos, neg = stream_bounds(g, stream)
        per_neuron = {
            n: float(np.max(np.maximum(a, b)))
            for (n, a), b in zip(
                neuron_inputs(g, stream, pos).items(),
                neuron_inputs(g, stream, neg).values(),
                strict=True,
            )
        }
        hot = max(per_neuron, key=per_neuron.__getitem__)
        worst = per_neuron[hot]
        entry, w_top = _largest_weight(g, stream)
        bounds["input_16bit"] = Bound(
            exact_ratio(INPUT_MAX, worst),
            entry,
            f"weights up to {w_top:.4g} give {hot} ({_threshold_text(g, hot, th[hot])}) an "
            f"input of up to {worst:.4g} per "
            "step",
            _SCALED_WRONG,
        )
        bounds.update(_weight_bounds(g, stream))
    else:
        bounds["host_vth_12bit"] = Bound(
            Fraction(HOST_VTH_LIMIT) / th_max,
            top_neuron,
            f"{_threshold_text(g, top_neuron, th_max)} (a host-fed neuron)",
            "a host-fed neuron's v_threshold (times tau with decay_input) must stay below "
            "2^36 on loihi: check this neuron's v_threshold",
        )
        if host_bound:
            bounds["input_16bit"] = Bound(
                exact_ratio(INPUT_MAX, host_bound),
                stream.host or top_neuron,
                f"the encoding current reaches {host_bound:.4g} on the calibration data",
                "check the calibration data's scale (or the encoder's weights)",
            )
    biggest = {n: float(np.max(np.abs(b), initial=0.0)) for n, b in bias.items()}
    loud = max(biggest, key=biggest.__getitem__)
    if biggest[loud] > 0:
        bounds["bias_13bit"] = Bound(
            exact_ratio(LOIHI.bias_mant_max, biggest[loud]),
            loud,
            f"constant input (BN-folded bias) {biggest[loud]:.4g} "
            f"({_threshold_text(g, loud, th[loud])})",
            "a batch-norm shift this far from the threshold is a damaged or mis-scaled "
            "checkpoint: check the BatchNorm before this neuron (running_mean, bias)",
            code="QNT007",
        )
    lower = MIN_SCALE_EXP
    for n in stream.entries:
        op = g.op(n)
        if isinstance(op, O.Scale):
            k = pow2_exponent(abs(float(op.factor)))
            if k is None:
                raise SnnccError(
                    f"{n}: Scale({op.factor}) of a dynamic product is not a power of two, so it "
                    "has no exact integer multiplier",
                    code="QNT005",
                    hint="use a power-of-two scale such as 0.125",
                )
            lower = max(lower, -k)
    d = stream_divisor(g, stream)
    k, _ = scale_exponent(bounds, d, stream.neurons[0], "loihi")
    if d > 1 and k < 0:  # c/D = 2^k < 1 would round away: keep the plain power-of-two scale
        d = 1
        k, _ = scale_exponent(bounds, d, stream.neurons[0], "loihi")
    pin = pins.stream_pin(g, "loihi", stream.neurons[0])
    if pin is not None:  # a fine-tuned checkpoint's grid (valid when no larger than the free one)
        k, d = pins.pinned_scale(pin, k, d, stream.neurons[0], lower)
    if k < lower:
        raise SnnccError(
            f"stream of {stream.neurons[0]}: the dynamic-product multiplier needs scale >= "
            f"2^{lower}, the ranges allow 2^{k}",
            code="QNT006",
        )
    return k, d, float_limits(bounds), bias


def quantize_stream(g: Graph, stream: Stream, host_bound: float | None = None) -> StreamPlan:
    """Replace the stream's entries and neurons by their Loihi integer forms (in place)."""
    k, d, limits, bias = choose_scale(g, stream, host_bound)
    c = d * 2.0**k
    rows: list[dict[str, Any]] = []
    for n in stream.entries:
        op = g.op(n)
        if isinstance(op, SYNAPTIC):
            # A Dense is emitted as 2·W_q with weight_exp - 1 (exact mixed sign, trap 2). Lava's
            # Conv ignores weight_exp (trap 3): its exponent is folded into the weights, which
            # only works for e >= 0 (snncc.reference.loihi_kernels.conv_weights).
            conv = isinstance(op, (O.Conv1d, O.Conv2d))
            unit = entry_unit(g, n)  # a graded payload is worth theta·2^-K of the float input
            w = np.asarray(op.weight) * (c * unit)
            e_pin = pins.weight_pin(g, "loihi", n)
            if e_pin is None:
                wq, e = mantissa_exponent(
                    w,
                    LOIHI.weight_min,
                    LOIHI.weight_max,
                    0 if conv else LOIHI.weight_exp_min + 1,
                    LOIHI.weight_exp_max + 1,
                    n,
                )
            else:
                e = e_pin
                wq = pins.pinned_mantissas(w, e, LOIHI.weight_min, LOIHI.weight_max, n)
            g.set_op(n, op.replace(weight=wq, bias=None))
            q = {
                "weight_exp": e,
                "scale": c,
                "stream": stream.index,
                "max_abs_wq": int(np.abs(wq).max(initial=0)),
            }
            if conv:
                q["exp_folded_into_weights"] = True
            if unit != 1.0:
                q["input_unit"] = unit
        else:
            m = float(op.factor) * c
            g.set_op(n, op.replace(factor=m))
            q = {"multiplier": m, "scale": c, "stream": stream.index, "dynamic_product": True}
        g.node_meta(n)["quant"] = q
        rows.append({"node": n, "kind": op.kind, **q})
    # Every neuron's threshold is placed on its membrane's reachable lattice (membrane_granule),
    # which starts from the stream's input lattice 2^p.
    p = _input_exp(g, stream)
    for n in stream.neurons:
        if is_programmable(g.op(n)):
            rows.append(programmable_neuron(g, n, c, bias[n], stream))
        else:
            rows.append(lif_neuron(g, n, c, bias[n], stream, p))
    return StreamPlan(k, limits, rows, d, pin={"scale": c})


def _input_exp(g: Graph, stream: Stream) -> int:
    """``p`` with every ``a_in`` of the stream a multiple of ``2^p`` (after quantization).

    A conv adds multiples of its folded weights ``W_q << e``; a Dense of ``W_q``, shifted by
    ``e`` (a right shift is exact only while the sum keeps ``-e`` low zero bits); a dynamic
    product of its integer multiplier. Re-indexing and adds keep the common factor. A host
    stream (``rint(x·host_scale)``) has none: 0.
    """
    exps = []
    for n in stream.entries:
        op, q = g.op(n), g.node_meta(n)["quant"]
        if isinstance(op, SYNAPTIC):
            t = two_adic(op.weight)
            if t is not None:
                exps.append(max(t + int(q["weight_exp"]), 0))
        else:
            t = two_adic(int(round(float(op.factor))))
            if t is not None:
                exps.append(t)
    return min(exps) if exps and stream.nodes else 0
