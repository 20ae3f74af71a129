"""SpiNNaker (sPyNNaker 7.4.1 ``IF_curr_delta``) quantization of one stream.

Units: the membrane is ``V = σ·V_float`` mV (σ a power of two per stream), stored as s16.15.
With ``V_rest = 0`` and ``R = tau_m / c_m = 1`` (``c_m = tau_m``), the closed-form update
``V = alpha - exp_TC·(alpha - V)``, ``alpha = I`` becomes ``V·exp_TC + I·(1 - exp_TC)``; with
``exp_TC = 1 - 1/tau`` (exact for tau = 2) that is SpikingJelly's ``V + (X - V)/tau`` for
``I = σ·X``. Without ``decay_input`` the current is ``I = σ·tau·X``. Weights become 16-bit
magnitudes at the ring-buffer resolution ``2^(shift - 15)`` mV, split by sign into the
excitatory and inhibitory receptor.

The threshold is ``V_thresh = ceil(σ·v_th·2^15)`` raw (:func:`place_threshold`), so that
sPyNNaker's ``V >= V_thresh`` on the s16.15 integers is exactly SpikingJelly's ``V >= v_th``.

Two placements make the emitted PyNN program exact on every simulator (docs/spinnaker.md):

- **The bias is a synaptic input.** A BN-folded bias ``b`` becomes ``I_offset`` at the ring-buffer
  resolution of its sign, ``rint(|b|·2^(15-s))·2^s`` raw, and the shifts cover the inputs plus
  the bias. Why: sPyNNaker has no per-sample reset, so the SpiNNaker backend delivers the bias
  through a synapse from a clock source that fires during each population's window only (an
  ``I_offset`` would already charge a population during the pipeline's fill); a stored weight
  is exactly that value, and the ring buffer still never saturates.
- **The leak never rounds.** With ``exp_TC = a/2^p`` (a odd; ``p = 1`` for tau = 2), every
  current is a multiple of ``2^(p·T)`` raw (the shifts are at least ``p·T``, :func:`min_shift`),
  so ``V`` stays a multiple of ``2^(p·(T-t))`` after ``t`` steps and
  ``exp_TC·(alpha - V)`` is exact for the ``T`` steps of a sample: sPyNNaker's rounded s16.15
  product then equals the real-valued update that Brian2 computes in float64.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from snncc.backends.spinnaker.constraints import SPINNAKER
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.quant import pins
from snncc.quant.common import Bound, exact_ratio, float_limits, neuron_spec, scale_exponent
from snncc.quant.loihi import StreamPlan
from snncc.quant.loihi_neurons import input_gain
from snncc.quant.streams import (
    SYNAPTIC,
    Stream,
    neuron_inputs,
    stream_bias,
    stream_bounds,
    stream_divisor,
)
from snncc.reference.spinnaker_kernels import ring_buffer_shift, stored_weight

ONE = 1 << SPINNAKER.frac_bits
#: Keep thresholds and per-step currents within 2^14 / 2^15 mV of the ±2^16 s16.15 range.
VTH_LIMIT = 2.0**14
INPUT_LIMIT = 2.0**15 - 1
HOST_VTH_LIMIT = 2.0**12


def place_threshold(v_thresh_mv: float | Fraction) -> int:
    """Raw s16.15 ``V_thresh`` for a float threshold (in mV of the scaled membrane).

    Reachable membrane values are integers (raw 2^-15 mV). SpikingJelly fires iff
    ``V >= x`` with ``x = v_thresh_mv·2^15``, i.e. iff ``V >= ceil(x)``, and sPyNNaker fires iff
    ``V >= V_thresh`` (trap 6): ``V_thresh = ceil(x)`` is exact for every reachable V, where
    rounding to nearest fired one LSB early whenever ``x`` has a fraction below 1/2. The placed
    threshold ``V_thresh - 1/2`` is a value no integer V equals, so a strict ``>`` against it
    (Brian2's convention) gives the same spikes too.

    The ceiling is taken on the exact value: the quantizer passes ``σ·v_th`` as a
    :class:`~fractions.Fraction` (``σ = D·2^j`` times a float is not always a float).
    """
    return math.ceil(Fraction(v_thresh_mv) * ONE)


def exp_tc_raw(tau: float) -> int:
    """Raw s16.15 ``exp_TC = 1 - 1/tau``, rounded to nearest (ties to even) on the exact value.

    Why not ``to_accum(1.0 - 1.0 / tau)``: that rounds twice (the float quotient and the float
    difference) before the s16.15 rounding, which can move a value that lies just off a
    half-LSB onto it. An infinite ``tau`` (no leak) is exactly 1.0.
    """
    if math.isinf(tau):
        return ONE
    return round((1 - 1 / Fraction(tau)) * ONE)


def _gain(g: Graph, stream: Stream) -> float:
    """The current per unit of stream value (1 with decay_input, tau without); one per stream."""
    gains = set()
    for n in stream.neurons:
        spec = neuron_spec(g, n, "spinnaker")
        if spec.tau is None:
            raise SnnccError(
                f"{n}: a non-leaky IF neuron has no exact sPyNNaker form (exp_TC rounds to 1.0 "
                "and the input term vanishes)",
                code="QNT008",
                hint='use a LIF neuron (lsformer\'s SPooling: config spool_neuron="lif"), or '
                "target loihi",
            )
        gains.add(1.0 if spec.decay_input else spec.tau)
    if len(gains) > 1:
        raise SnnccError(
            f"stream of {stream.neurons[0]} feeds neurons with different input gains {gains}",
            code="QNT009",
            hint="use the same decay_input and tau for neurons that read one residual stream",
        )
    return gains.pop()


_SCALED_WRONG = (
    "weights or batch-norm statistics this far from the neurons' threshold are a damaged or "
    "mis-scaled checkpoint (e.g. a layer multiplied without its threshold): check that layer "
    "and its BatchNorm, or rescale its weights and the next neurons' v_threshold together"
)
_BIAS_WRONG = (
    "a batch-norm shift this far from the threshold is a damaged or mis-scaled checkpoint: "
    "check the BatchNorm before this neuron (running_mean, bias)"
)


def _bounds(
    g: Graph, stream: Stream, gain: float, host_bound: float | None
) -> tuple[dict[str, Bound], dict[str, np.ndarray], float, float]:
    """The exact limits on the scale σ, the bias per neuron and the worst per-step inputs."""
    vth = {n: _threshold(g, n) for n in stream.neurons}
    top = max(vth, key=vth.__getitem__)
    bounds: dict[str, Bound] = {
        "vth": Bound(
            exact_ratio(VTH_LIMIT, vth[top]),
            top,
            f"threshold {float(vth[top]):.4g}",
            "v_threshold must stay below 2^38 on spinnaker (2^14 mV at the smallest scale, "
            "2^-24): check this neuron's v_threshold",
        )
    }
    bias = {n: np.zeros(g.type(n).shape) for n in stream.neurons}
    pos_max = neg_max = 0.0
    hot = top
    if stream.nodes:
        bias = neuron_inputs(g, stream, stream_bias(g, stream))
        pos, neg = stream_bounds(g, stream)
        pos_in, neg_in = neuron_inputs(g, stream, pos), neuron_inputs(g, stream, neg)
        pos_max = max(float(np.max(v)) for v in pos_in.values())
        neg_max = max(float(np.max(v)) for v in neg_in.values())
        hot = max(
            stream.neurons,
            key=lambda n: max(float(np.max(pos_in[n])), float(np.max(neg_in[n]))),
        )
    else:
        bounds["host_vth"] = Bound(
            exact_ratio(HOST_VTH_LIMIT, vth[top]),
            top,
            f"threshold {float(vth[top]):.4g} of a host-fed neuron",
            "a host-fed neuron's v_threshold must stay below 2^36 on spinnaker: check this "
            "neuron's v_threshold",
        )
        pos_max = neg_max = host_bound or 0.0
    b_max = max(float(np.max(np.abs(b), initial=0.0)) for b in bias.values())
    total = Fraction(max(pos_max, neg_max)) + Fraction(b_max)
    if total > 0:
        if stream.nodes and stream.entries and max(pos_max, neg_max) >= b_max:
            peaks = {n: _peak(g.op(n)) for n in stream.entries}
            entry = max(peaks, key=peaks.__getitem__)
            w_top = peaks[entry]
            node, what, code = (
                entry,
                f"weights up to {w_top:.4g} give {hot} (threshold {float(vth[hot]):.4g}) an "
                f"input of up to {max(pos_max, neg_max):.4g} per step (plus a constant "
                f"{b_max:.4g})",
                "QNT004",
            )
        elif stream.nodes:
            node, what, code = (
                top,
                f"constant input (BN-folded bias) {b_max:.4g} next to thresholds up to "
                f"{float(vth[top]):.4g}",
                "QNT007",
            )
        else:
            node, what, code = (
                stream.host or top,
                f"the encoding current reaches {pos_max:.4g} on the calibration data",
                "QNT004",
            )
        hint = _BIAS_WRONG if code == "QNT007" else _SCALED_WRONG
        bounds["input"] = Bound(
            Fraction(INPUT_LIMIT) / (Fraction(gain) * total), node, what, hint, code
        )
    return bounds, bias, pos_max, neg_max


def _threshold(g: Graph, n: str) -> Fraction:
    """The neuron's threshold in units of its stream value: ``v_th`` times the input gain.

    Why the gain: a neuron that reads a sum standing for a mean of ``N`` currents (meta
    ``input_gain = N``, :func:`snncc.quant.rewrite.mean_currents_as_gain`) sees ``N·x``; with
    its reset to 0 and the same leak, threshold ``N·v_th`` makes it fire exactly when the
    neuron fed ``x`` does, and the sum is made of stored weights where the mean is not.
    """
    spec = neuron_spec(g, n, "spinnaker")
    return Fraction(spec.v_threshold) * input_gain(g, n)


def _peak(op: O.Op) -> float:
    """Largest ``|weight|`` of a synaptic entry (``|factor|`` of a Scale)."""
    w = op.weight if isinstance(op, SYNAPTIC) else float(op.factor)
    return float(np.max(np.abs(np.asarray(w, np.float64)), initial=0.0))


def quantize_stream(g: Graph, stream: Stream, host_bound: float | None = None) -> StreamPlan:
    """Replace the stream's entries and neurons by their sPyNNaker integer forms (in place).

    The scale ``σ = D·2^j`` is the largest within every bound, decided on exact ratios
    (:func:`~snncc.quant.common.scale_exponent`); a stream that needs ``j < -24`` is refused
    (exit 2) with the node and value that ask for it. The ring-buffer shifts are taken on the
    exact products ``max_input·σ·gain`` (:func:`ring_buffer_shift`).
    """
    gain = _gain(g, stream)
    bounds, bias, pos_max, neg_max = _bounds(g, stream, gain, host_bound)
    d = stream_divisor(g, stream)  # sigma = D·2^j makes lowered 1/D pool weights exact
    j, _ = scale_exponent(bounds, d, stream.neurons[0], "spinnaker")
    if d > 1 and j < 0:  # keep the plain power-of-two scale where 2^j would round away
        d = 1
        j, _ = scale_exponent(bounds, d, stream.neurons[0], "spinnaker")
    pin = pins.stream_pin(g, "spinnaker", stream.neurons[0])
    if pin is not None:  # a fine-tuned checkpoint's grid (valid when no larger than the free one)
        j, d = pins.pinned_scale(pin, j, d, stream.neurons[0])
    sigma = d * 2.0**j
    k = sigma * gain  # mV of current per unit of stream value
    exact_k = Fraction(sigma) * Fraction(gain)
    pos_bias = max(float(np.max(np.maximum(b, 0.0), initial=0.0)) for b in bias.values())
    neg_bias = max(float(np.max(np.maximum(-b, 0.0), initial=0.0)) for b in bias.values())
    floor = min_shift(g, stream)
    shifts = (
        _shift((Fraction(pos_max) + Fraction(pos_bias)) * exact_k, floor),
        _shift((Fraction(neg_max) + Fraction(neg_bias)) * exact_k, floor),
    )
    if pin is not None:
        shifts = pins.pinned_shifts(pin, shifts, stream.neurons[0])
    rows: list[dict[str, Any]] = []
    for n in stream.entries:
        rows.append(_entry(g, n, k, shifts, stream.index))
    for n in stream.neurons:
        rows.append(_neuron(g, n, sigma, gain, bias[n], shifts, stream))
    plan_pin = {"scale": sigma, "shifts": [int(shifts[0]), int(shifts[1])]}
    return StreamPlan(j, float_limits(bounds), rows, d, pin=plan_pin)


def leak_bits(exp_tc: int) -> int:
    """``p`` with ``exp_TC = a/2^p``, ``a`` odd: the bits one leak step adds below the grid.

    0 for no leak (``exp_TC = 1``) and for a memoryless neuron (``exp_TC = 0``).
    """
    if exp_tc <= 0 or exp_tc >= ONE:
        return 0
    return SPINNAKER.frac_bits - ((exp_tc & -exp_tc).bit_length() - 1)


def min_shift(g: Graph, stream: Stream) -> int:
    """Smallest ring-buffer shift that keeps the leak exact for ``T`` steps: ``p·T``.

    Requires: the stream's neurons passed :func:`_gain` (leaky). Ensures: 0 when ``p·T``
    exceeds the largest shift (16): no grid makes that leak exact, and the SpiNNaker lowering
    refuses to emit such a program (the reference still models its rounding).
    """
    timesteps = int(g.meta.get("timesteps", 1))
    bits = max(
        leak_bits(exp_tc_raw(float(neuron_spec(g, n, "spinnaker").tau))) for n in stream.neurons
    )
    need = bits * timesteps
    return need if need <= 16 else 0


def _shift(max_summed: Fraction, floor: int) -> int:
    """The receptor's shift: sPyNNaker's rule on the maximum, at least ``floor`` when used."""
    if max_summed <= 0:
        return 0
    return max(ring_buffer_shift(max_summed), floor)


def _on_grid(current: np.ndarray, shifts: tuple[int, int]) -> np.ndarray:
    """Raw s16.15 ``I_offset`` at the ring-buffer resolution of each value's sign."""
    c = np.asarray(current, np.float64)
    pos = stored_weight(np.maximum(c, 0.0), shifts[0]) << shifts[0]
    neg = stored_weight(np.maximum(-c, 0.0), shifts[1]) << shifts[1]
    return (pos - neg).astype(np.int64)


def _signed_stored(w: np.ndarray, shifts: tuple[int, int]) -> np.ndarray:
    w = np.asarray(w, np.float64)
    exc, inh = stored_weight(w, shifts[0]), stored_weight(w, shifts[1])
    return np.where(w >= 0, exc, -inh).astype(np.int64)


def _entry(g: Graph, n: str, k: float, shifts: tuple[int, int], index: int) -> dict[str, Any]:
    op = g.op(n)
    if isinstance(op, SYNAPTIC):
        ws = _signed_stored(np.asarray(op.weight) * k, shifts)
        g.set_op(n, op.replace(weight=ws, bias=None))
        peak = int(np.abs(ws).max(initial=0))
    else:
        ws = _signed_stored(np.array(float(op.factor) * k), shifts)
        g.set_op(n, op.replace(factor=float(ws)))
        peak = abs(int(ws))
    if peak > 2**SPINNAKER.weight_bits - 1:
        raise SnnccError(f"{n}: stored weight {peak} exceeds 16 bits", code="QNT010", exit_code=70)
    q = {"receptor": "split", "scale": k, "stream": index, "exc_shift": shifts[0]}
    q.update({"inh_shift": shifts[1], "max_stored_weight": peak})
    g.node_meta(n)["quant"] = q
    return {"node": n, "kind": op.kind, **q}


def _neuron(
    g: Graph,
    n: str,
    sigma: float,
    gain: float,
    bias: np.ndarray,
    shifts: tuple[int, int],
    stream: Stream,
) -> dict[str, Any]:
    spec = neuron_spec(g, n, "spinnaker")
    tau = math.inf if spec.tau is None else float(spec.tau)  # IF was rejected by _gain
    leak = 1.0 - 1.0 / tau
    op = O.SpiNNakerLIF(
        v_thresh=place_threshold(Fraction(sigma) * _threshold(g, n)),
        exp_tc=exp_tc_raw(tau),
        r=ONE,
        i_offset=_on_grid(np.asarray(bias) * sigma * gain, shifts),
        exc_shift=shifts[0],
        inh_shift=shifts[1],
        host_scale=sigma * gain * ONE if stream.host else 0.0,
    )
    g.set_op(n, op)
    tau_m = -1.0 / math.log(leak) if leak > 0 else 0.0
    q = {"scale": sigma, "stream": stream.index, "v_thresh": op.v_thresh, "exp_tc": op.exp_tc}
    q.update({"tau_m_ms": tau_m, "cm_nF": tau_m, "tau_refrac": 0.0, "host_fed": bool(stream.host)})
    g.node_meta(n)["quant"] = q
    return {"node": n, "kind": "SpiNNakerLIF", **q}


def refuse_max_pools(g: Graph, stream: Stream) -> None:
    """Refuse (``QNT001``) a quantized stream that max-pools currents, with what it would cost.

    Why no exact lowering: sPyNNaker's ``IF_curr_delta`` only sums static synapses, and a max of
    currents is no sum. The one exact form in threshold neurons is the level expansion
    ``max_i c_i = lo + Σ_k OR_i [c_i >= k]``: one memoryless threshold neuron per input current
    and integer level ``k`` of the quantized current, and one OR neuron per output and level.
    The levels are counted on the quantized stream (its stored weights at the ring-buffer
    grid), so the message states the neurons that expansion needs: for the zoo's random-weight
    sdt-tiny, 10,713 levels at its last tokenizer pool, 27 M neurons (docs/spinnaker.md).
    """
    pools = [n for n in stream.nodes if isinstance(g.op(n), O.MaxPool2d)]
    if not pools:
        return
    n = pools[0]
    (x,) = g.inputs_of(n)
    n_in, n_out = math.prod(g.type(x).shape), math.prod(g.type(n).shape)
    op, levels = g.op(n), _levels(g, stream, x)
    raise SnnccError(
        f"{n} ({g.loc(n) or g.src(n)}): MaxPool2d(kernel={op.kernel}, stride={op.stride}) of "
        f"currents cannot run exactly on spinnaker: sPyNNaker's IF_curr_delta neurons only sum "
        f"static synapses and a max of currents is no sum; its exact expansion into threshold "
        f"neurons (max c = lo + sum_k OR_i [c_i >= k]) spans {levels} integer levels of the "
        f"quantized current, i.e. {levels * (n_in + n_out):,} neurons ({levels} x ({n_in} "
        f"inputs + {n_out} outputs))",
        code="QNT001",
        hint="max-pool the spikes before the conv instead (OR neurons, exact on spinnaker; the "
        'zoo\'s sdt: config last_pool="spikes", a different model to train), or compile for '
        "loihi (an exact integer program computes this max)",
        exit_code=2,
    )


def _levels(g: Graph, stream: Stream, x: str) -> int:
    """The most integer levels (on the stream's ring-buffer grid) a current ``x`` spans.

    Requires: the stream is quantized (its entries hold stored weights). The largest positive
    and negative sums of stored weights at ``x`` (:func:`stream_bounds`, sources at their
    maximum) are in units of ``2^exc_shift`` and ``2^inh_shift``; the finer of the two is the grid.
    """
    pos, neg = stream_bounds(g, stream)
    shifts = [g.node_meta(e)["quant"] for e in stream.entries]
    exc = min(q["exc_shift"] for q in shifts)
    inh = min(q["inh_shift"] for q in shifts)
    p = np.asarray(pos[x], np.float64).astype(np.int64) << exc
    m = np.asarray(neg[x], np.float64).astype(np.int64) << inh
    return int(np.max((p + m) >> min(exc, inh), initial=0))
