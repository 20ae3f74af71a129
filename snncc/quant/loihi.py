"""Loihi 2 (Lava ``fixed_pt``) quantization of one stream: scale, mantissas, neuron parameters.

Integer units: a stream value ``X`` (float) is carried as ``a_in = X·c`` per step, with ``c`` a
power of two chosen per stream; a LIF with ``decay_input`` then has ``v ≈ 64·c·tau·V`` (so its
*stream scale* is ``s = c·tau``), one without it ``v ≈ 64·c·V``. See docs/quantization.md.

Thresholds are placed, not just rounded (:func:`place_threshold`): Lava fires on ``v > vth << 6``
with a 64-unit threshold grid, SpikingJelly on ``V >= v_th``; the two agree on every reachable
membrane value exactly when the membrane stays on the 64-grid (no leak), and to within half a
grid step otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from snncc.backends.lava.constraints import LOIHI
from snncc.diagnostics import SnnccError
from snncc.exact import pow2_exponent
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.quant.common import (
    MIN_SCALE_EXP,
    Bound,
    exact_ratio,
    float_limits,
    mantissa_exponent,
    neuron_spec,
    scale_exponent,
)
from snncc.quant.streams import (
    SYNAPTIC,
    Stream,
    neuron_inputs,
    stream_bias,
    stream_bounds,
    stream_divisor,
)

#: Host-fed streams have no provable input bound: keep thresholds within 12 bits, leaving 4 bits
#: of the 16-bit input for encoding currents up to 8x the threshold (checked by calibration).
HOST_VTH_LIMIT = 2**12
INPUT_MAX = 2 ** (LOIHI.input_sum_bits - 1) - 1
VTH_MAX = 2**LOIHI.vth_bits - 1
BIAS_EXP = LOIHI.act_shift  # bias in a_in (weight) units, as lava-dl netx exports it


@dataclass(frozen=True)
class Threshold:
    """A placed Loihi threshold, in v-units (the integers Lava stores in v).

    - ``vth``: Lava's parameter; Lava fires iff ``v > vth << 6``;
    - ``granule``: every reachable v is a multiple of it (64 or 1, :func:`membrane_granule`);
    - ``placed``: ``64·vth + granule/2``, a value no reachable v equals, so ``v > placed``,
      ``v >= placed`` and Lava's ``v > 64·vth`` are the same test on every reachable v;
    - ``fire_at``: the smallest reachable v that fires on chip (``64·vth + granule``);
    - ``wanted``: the smallest reachable v with ``v >= theta_v`` (SpikingJelly's ``V >= v_th``).
    """

    vth: int
    granule: int
    placed: float
    fire_at: int
    wanted: int

    @property
    def exact(self) -> bool:
        """Chip and SpikingJelly decide alike on every reachable v (not only on the placed one)."""
        return self.fire_at == self.wanted

    @property
    def shift(self) -> int:
        """``fire_at - wanted`` in v-units: > 0 the chip fires later than the float model."""
        return self.fire_at - self.wanted


def _two_adic(x: np.ndarray | int) -> int | None:
    """Largest ``p`` with every non-zero element a multiple of ``2^p``; None when all are zero."""
    a = np.abs(np.asarray(x, dtype=np.int64)).ravel()
    a = a[a != 0]
    if a.size == 0:
        return None
    return int((a & -a).min()).bit_length() - 1


def membrane_granule(
    du: int,
    dv: int,
    bias_mant: np.ndarray,
    bias_exp: int,
    *,
    input_exp: int = 0,
    steps: int | None = None,
) -> int:
    """64 if every reachable v is a multiple of 64, else 1.

    Why: v starts and resets at 0 and gains ``u + bias`` each step; with ``dv = 0`` it is never
    multiplied, with ``du`` in {-1, 4095} u is a sum of ``a_in << 6`` terms, and a bias with
    ``bias_mant << bias_exp`` divisible by 64 keeps v on the grid (u's wrap by 2^24 does too).
    (Positive saturation at 2^23 - 1 leaves the grid but exceeds every ``vth << 6``, so it fires
    under both rules.)

    With leak (``dv > 0``) the decay ``trunc(v·(4096 - dv) / 4096)`` loses ``12 - q`` low bits
    per step, ``2^q`` being the power of two in ``4096 - dv``. When every ``a_in`` is a multiple
    of ``2^input_exp`` (the stream's integer weights, e.g. a lowered average pool's single
    weight) and every bias of ``2^(input_exp + 6)``, v after ``t`` steps since a reset is a
    multiple of ``2^(input_exp + 6 - (t - 1)(12 - q))``, and the decay is exact until then. So
    within ``steps`` timesteps (the sample length) v stays on the 64-grid when that exponent is
    still ``>= 6`` at ``t = steps``. Otherwise every integer may be reachable: 1. (Like the
    no-leak rule this assumes v never saturates at ``-(2^23 - 1)``; the stream scale keeps every
    per-step ``|a_in|`` below 2^15.)
    """
    bias = np.asarray(bias_mant, dtype=np.int64)
    eff = bias << bias_exp if bias_exp >= 0 else bias >> -bias_exp
    if du not in (-1, LOIHI.decay_unity - 1):
        return 1
    if dv == 0:
        return 64 if not np.any(eff % 64) else 1
    if steps is None or not 0 < dv < LOIHI.decay_unity:
        return 1
    g = input_exp + LOIHI.act_shift
    b = _two_adic(eff)
    if b is not None:
        g = min(g, b)
    q = _two_adic(LOIHI.decay_unity - dv) or 0
    lost = (LOIHI.decay_unity.bit_length() - 1) - q  # 12 - q
    return 64 if g - (steps - 1) * lost >= 6 else 1


def place_threshold(target: float | Fraction, granule: int) -> Threshold:
    """Choose ``vth`` for a threshold ``target`` in ``a_in`` units (``theta_v = 64·target``).

    SpikingJelly fires iff ``v >= theta_v``; on reachable values (multiples of ``granule``) that
    is ``v >= wanted`` with ``wanted = granule·ceil(theta_v / granule)``. Lava fires iff
    ``v > 64·vth``, i.e. on reachable values iff ``v >= 64·vth + granule`` (granule divides 64).
    So the rule is ``vth = (wanted - granule) / 64``:

    - granule 64 (no leak): always an integer, ``vth = ceil(target) - 1``: **exact**;
    - granule 1 (leak): exact only when ``wanted ≡ 1 (mod 64)``; otherwise the nearest
      ``vth = round((wanted - 1) / 64)`` (ties up), so the chip's first firing value differs
      from SpikingJelly's by at most 32 v-units (half a ``vth`` step, 1/128 of an ``a_in``
      unit of threshold per unit of ``c``). The old ``ceil(target) - 1`` fired up to 63
      v-units early here. Nothing finer is expressible: ``vth`` is the 17 high bits of v.

    ``vth`` is clipped to [0, 2^17 - 1]; the stream scale keeps ``target`` below 2^17.

    Every step is exact: ``target`` is a float or an exact :class:`~fractions.Fraction` (the
    quantizer passes ``c·gain·v_th`` unrounded), the ceiling is taken on the exact rational, and
    "round half up" is the integer ``(wanted - granule + 32) // 64`` (what
    ``floor((wanted - granule) / 64 + 0.5)`` meant, without a float division).
    """
    theta_v = Fraction(target) * (1 << LOIHI.vth_shift)
    wanted = granule * math.ceil(theta_v / granule)
    unit = 1 << LOIHI.vth_shift
    vth = (wanted - granule + unit // 2) // unit
    vth = min(max(vth, 0), VTH_MAX)
    base = vth << LOIHI.vth_shift
    return Threshold(vth, granule, base + granule / 2, base + granule, wanted)


def decay_v(tau: float | None) -> tuple[int, bool]:
    """Lava's ``dv`` for a LIF of time constant ``tau`` and whether it is exact.

    ``dv = round(4096 / tau)`` (ties to even) on the exact quotient of the two numbers, not on
    their rounded float quotient, and at most 4095 (Lava's largest ``dv``; only ``tau`` within
    1.2e-4 of 1 asks for 4096). Exact when ``4096 / tau`` is an integer <= 4095. IF (``tau`` is
    None): 0, exact.
    """
    if tau is None:
        return 0, True
    q = Fraction(LOIHI.decay_unity) / Fraction(tau)
    dv = min(round(q), LOIHI.decay_unity - 1)
    return dv, q == dv


@dataclass
class StreamPlan:
    """The decisions for one stream, kept for the pass record."""

    scale_exp: int
    limits: dict[str, float]
    rows: list[dict[str, Any]]
    divisor: int = 1  # the scale is divisor * 2^scale_exp (streams.stream_divisor)


def _thresholds(g: Graph, stream: Stream) -> dict[str, Fraction]:
    """Each neuron's threshold in units of ``c`` (``v_th·tau`` with decay_input, else ``v_th``),
    as the exact product of the two floats (the scale and threshold decisions use it)."""
    out = {}
    for n in stream.neurons:
        spec = neuron_spec(g, n, "loihi")
        gain = spec.tau if (spec.tau is not None and spec.decay_input) else 1.0
        out[n] = Fraction(spec.v_threshold) * Fraction(gain)
    return out


def _threshold_text(g: Graph, n: str, units: Fraction) -> str:
    """``v_threshold 1e+30`` (and ``v_th·tau`` when that is what the threshold is in units)."""
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
        w = np.asarray(op.weight if isinstance(op, SYNAPTIC) else op.factor, np.float64)
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
            w = np.asarray(op.weight, np.float64)
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
            f"weights up to {w_top:.4g} give {hot} (v_threshold "
            f"{neuron_spec(g, hot, 'loihi').v_threshold:.4g}) an input of up to {worst:.4g} per "
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
            f"constant input (BN-folded bias) {biggest[loud]:.4g} (v_threshold "
            f"{neuron_spec(g, loud, 'loihi').v_threshold:.4g})",
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
            wq, e = mantissa_exponent(
                np.asarray(op.weight) * c,
                LOIHI.weight_min,
                LOIHI.weight_max,
                0 if conv else LOIHI.weight_exp_min + 1,
                LOIHI.weight_exp_max + 1,
                n,
            )
            g.set_op(n, op.replace(weight=wq, bias=None))
            q = {
                "weight_exp": e,
                "scale": c,
                "stream": stream.index,
                "max_abs_wq": int(np.abs(wq).max(initial=0)),
            }
            if conv:
                q["exp_folded_into_weights"] = True
        else:
            m = float(op.factor) * c
            g.set_op(n, op.replace(factor=m))
            q = {"multiplier": m, "scale": c, "stream": stream.index, "dynamic_product": True}
        g.node_meta(n)["quant"] = q
        rows.append({"node": n, "kind": op.kind, **q})
    # The leaky-membrane grid argument (membrane_granule) holds for any stream; it is applied
    # only to lowered-pool streams for now, so other streams keep their reviewed thresholds.
    p = _input_exp(g, stream) if d > 1 else None
    for n in stream.neurons:
        rows.append(_neuron(g, n, c, bias[n], stream, p))
    return StreamPlan(k, limits, rows, d)


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
            t = _two_adic(op.weight)
            if t is not None:
                exps.append(max(t + int(q["weight_exp"]), 0))
        else:
            t = _two_adic(int(round(float(op.factor))))
            if t is not None:
                exps.append(t)
    return min(exps) if exps and stream.nodes else 0


def _neuron(
    g: Graph, n: str, c: float, bias: np.ndarray, stream: Stream, input_exp: int | None = None
) -> dict[str, Any]:
    spec = neuron_spec(g, n, "loihi")
    gain = spec.tau if (spec.tau is not None and spec.decay_input) else 1.0
    # The threshold in a_in units, exactly (c is a power of two times D, gain and v_th floats).
    target = Fraction(c) * Fraction(gain) * Fraction(spec.v_threshold)
    scaled = np.rint(np.asarray(bias, np.float64) * c)
    if scaled.size and np.abs(scaled).max() > LOIHI.bias_mant_max:  # choose_scale prevents it
        raise SnnccError(
            f"{n}: bias {np.abs(bias).max():.4g} needs mantissa {np.abs(scaled).max():.0f} > "
            f"{LOIHI.bias_mant_max} (13 bits)",
            code="QNT007",
            exit_code=70,
        )
    bias_mant = scaled.astype(np.int64)
    dv, leak_exact = decay_v(spec.tau)
    du = LOIHI.decay_unity - 1
    steps = g.meta.get("timesteps") if input_exp is not None else None
    granule = membrane_granule(
        du, dv, bias_mant, BIAS_EXP, input_exp=input_exp or 0, steps=int(steps) if steps else None
    )
    th = place_threshold(target, granule)
    vth = th.vth
    op = O.LoihiLIF(
        du=du,
        dv=dv,
        vth=vth,
        bias_mant=bias_mant,
        bias_exp=BIAS_EXP,
        host_scale=c if stream.host else 0.0,
    )
    g.set_op(n, op)
    q = {"scale": c, "s": c * gain, "stream": stream.index, "vth": vth, "dv": dv, "du": op.du}
    q.update({"threshold_placed_v": th.placed, "threshold_exact": th.exact})
    q.update({"fire_shift_v": th.shift, "membrane_granule": th.granule})
    q["leak_exact"] = leak_exact
    q["host_fed"] = bool(stream.host)
    g.node_meta(n)["quant"] = q
    return {
        "node": n,
        "kind": "LoihiLIF",
        **q,
        "max_abs_bias_mant": int(np.abs(bias_mant).max(initial=0)),
    }
