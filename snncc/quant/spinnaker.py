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
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from snncc.backends.spinnaker.constraints import SPINNAKER
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.quant.common import largest_pow2, neuron_spec
from snncc.quant.loihi import StreamPlan
from snncc.quant.streams import (
    SYNAPTIC,
    Stream,
    neuron_inputs,
    stream_bias,
    stream_bounds,
    stream_divisor,
)
from snncc.reference.spinnaker_kernels import ring_buffer_shift, stored_weight, to_accum

ONE = 1 << SPINNAKER.frac_bits
#: Keep thresholds and per-step currents within 2^14 / 2^15 mV of the ±2^16 s16.15 range.
VTH_LIMIT = 2.0**14
INPUT_LIMIT = 2.0**15 - 1
HOST_VTH_LIMIT = 2.0**12


def place_threshold(v_thresh_mv: float) -> int:
    """Raw s16.15 ``V_thresh`` for a float threshold (in mV of the scaled membrane).

    Reachable membrane values are integers (raw 2^-15 mV). SpikingJelly fires iff
    ``V >= x`` with ``x = v_thresh_mv·2^15``, i.e. iff ``V >= ceil(x)``, and sPyNNaker fires iff
    ``V >= V_thresh`` (trap 6): ``V_thresh = ceil(x)`` is exact for every reachable V, where
    rounding to nearest fired one LSB early whenever ``x`` has a fraction below 1/2. The placed
    threshold ``V_thresh - 1/2`` is a value no integer V equals, so a strict ``>`` against it
    (Brian2's convention) gives the same spikes too.
    """
    return int(math.ceil(float(v_thresh_mv) * ONE))


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


def quantize_stream(g: Graph, stream: Stream, host_bound: float | None = None) -> StreamPlan:
    """Replace the stream's entries and neurons by their sPyNNaker integer forms (in place)."""
    gain = _gain(g, stream)
    vmax = max(neuron_spec(g, n, "spinnaker").v_threshold for n in stream.neurons)
    limits: dict[str, float] = {"vth": VTH_LIMIT / vmax}
    bias = {n: np.zeros(g.type(n).shape) for n in stream.neurons}
    pos_max = neg_max = 0.0
    if stream.nodes:
        bias = neuron_inputs(g, stream, stream_bias(g, stream))
        pos, neg = stream_bounds(g, stream)
        pos_max = max(float(np.max(v)) for v in neuron_inputs(g, stream, pos).values())
        neg_max = max(float(np.max(v)) for v in neuron_inputs(g, stream, neg).values())
    else:
        limits["host_vth"] = HOST_VTH_LIMIT / vmax
        pos_max = neg_max = host_bound or 0.0
    b_max = max(float(np.max(np.abs(b))) for b in bias.values())
    if max(pos_max, neg_max) + b_max > 0:
        limits["input"] = INPUT_LIMIT / (gain * (max(pos_max, neg_max) + b_max))
    d = stream_divisor(g, stream)  # sigma = D·2^j makes lowered 1/D pool weights exact
    j = largest_pow2([lim / d for lim in limits.values()])
    if d > 1 and j < 0:  # keep the plain power-of-two scale where 2^j would round away
        d, j = 1, largest_pow2(list(limits.values()))
    sigma = d * 2.0**j
    k = sigma * gain  # mV of current per unit of stream value
    shifts = (ring_buffer_shift(pos_max * k), ring_buffer_shift(neg_max * k))
    rows: list[dict[str, Any]] = []
    for n in stream.entries:
        rows.append(_entry(g, n, k, shifts, stream.index))
    for n in stream.neurons:
        rows.append(_neuron(g, n, sigma, gain, bias[n], shifts, stream))
    return StreamPlan(j, limits, rows, d)


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
    leak = 1.0 - 1.0 / (spec.tau or math.inf)  # IF was rejected by _gain
    op = O.SpiNNakerLIF(
        v_thresh=place_threshold(sigma * spec.v_threshold),
        exp_tc=int(to_accum(leak)),
        r=ONE,
        i_offset=to_accum(np.asarray(bias) * sigma * gain),
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
