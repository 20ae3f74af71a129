"""The ``spinnaker`` kernel table: sPyNNaker 7.4.1 ``IF_curr_delta`` in s16.15 integers.

Facts from docs/hardware-semantics.md §4.1–4.2 and traps 7–10. Why a separate integer model:
sPyNNaker rounds every s16.15 product to nearest, stores 16-bit weight magnitudes scaled by a
per-receptor ring-buffer shift, saturates its 16-bit ring buffers and fires on ``V >= V_thresh``;
none of this is what a float model does.

Value conventions in this mode: spikes and counts as in float mode (exact small integers in
float64). A deployed synaptic op (node meta ``quant.receptor``) holds signed int64 stored weights
(|w| <= 65535; the sign picks the receptor) and outputs the two ring-buffer sums as one complex
array ``exc + 1j·inh`` (both non-negative integers), so that the excitatory and inhibitory
buffers travel together through the structural ops and residual adds of a stream and saturate
separately, per target neuron, in :func:`spinnaker_lif`. A deployed ``Scale`` on a count (the
attention scale) is a projection of that count with one stored weight, also split by sign.

Hop latency (d >= 1 per projection) is not modelled here; backends account for it.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from snncc.ir import ops as O
from snncc.reference.context import Kernel, KernelCtx
from snncc.reference.float_kernels import KERNELS as FLOAT_KERNELS

FRAC_BITS = 15
HALF = 1 << (FRAC_BITS - 1)
RING_MAX = (1 << 16) - 1
ACCUM_MIN, ACCUM_MAX = -(2**31), 2**31 - 1


def mul_accum(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """s16.15 product rounded to nearest (``MULT_ROUND_NEAREST_ACCUM``): ``(a·b + 2^14) >> 15``."""
    return (np.asarray(a, np.int64) * np.asarray(b, np.int64) + HALF) >> FRAC_BITS


def to_accum(x: float | np.ndarray) -> np.ndarray:
    """A real value as a raw s16.15 integer, rounded to nearest."""
    return np.rint(np.asarray(x, np.float64) * (1 << FRAC_BITS)).astype(np.int64)


def stored_weight(w: float | np.ndarray, shift: int) -> np.ndarray:
    """sPyNNaker's stored weight ``rint(|w| · 2^(15 - shift))`` (resolution ``2^(shift - 15)``)."""
    return np.rint(np.abs(np.asarray(w, np.float64)) * 2.0 ** (FRAC_BITS - shift)).astype(np.int64)


def ring_buffer_shift(max_summed_weight: float | Fraction) -> int:
    """``ceil(log2(max))`` clamped at 0, plus 1 when ``2^s <= max``; 0 for a maximum <= 0 (§4.1).

    The clamp is sPyNNaker's (``ceil(max(0, log2(w)))`` in ``get_ring_buffer_shifts``): the
    shift moves the ring buffer *left* into s16.15, so a maximum below 1/2 still gets shift 0
    rather than a negative one.

    Together the rule is "the smallest ``s >= 0`` with ``2^s > max``", and that is how it is
    computed: from the exact binary exponent (``math.frexp`` of a float, integer bit lengths of
    a :class:`~fractions.Fraction`), never from ``np.log2``, whose last bit varies between CPUs
    (SIMD implementations) and which rounds ``2^k`` minus one ulp up to exactly ``k``.
    """
    if max_summed_weight <= 0:
        return 0
    if isinstance(max_summed_weight, Fraction):
        p, q = max_summed_weight.numerator, max_summed_weight.denominator
        e = p.bit_length() - q.bit_length()  # max lies in (2^(e-1), 2^(e+1))
        above = (p << max(-e, 0)) >= (q << max(e, 0))  # max >= 2^e
        return max(0, e + 1 if above else e)
    x = float(max_summed_weight)
    if not math.isfinite(x):
        raise ValueError(f"ring_buffer_shift needs a finite maximum, got {x}")
    return max(0, math.frexp(x)[1])  # max = m·2^e with m in [1/2, 1): 2^(e-1) <= max < 2^e


def membrane_params(tau_m: float, c_m: float, dt: float = 1.0) -> tuple[int, int]:
    """Raw s16.15 ``(R, exp_TC)`` as ``neuron_model_initialise`` computes them (§4.2).

    ``R = tau_m / c_m`` and ``exp_TC = exp(-dt / tau_m)``, each rounded to the nearest 2^-15
    (the chip computes them with ``kdivk`` and ``expk``; the last bit may differ). With these the
    IF_curr_delta jump for a weight w is ``w · R · (1 - exp_TC) / dt`` (trap 7), about ``w / c_m``
    and exact only for particular ``(tau_m, c_m)``: for ``c_m = 1``, ``tau_m = 20`` it is 0.975·w.
    """
    return int(to_accum(tau_m / c_m)), int(to_accum(math.exp(-dt / tau_m)))


def refractory_steps(tau_refrac: float, dt: float = 1.0) -> int:
    """``T_refract = ceil(tau_refrac / dt)`` on the s16.15 quotient (``lif_ceil_accum``, trap 8).

    PyNN's default ``tau_refrac = 0.1`` ms gives one whole step at dt = 1 ms; snncc emits 0.
    """
    raw = int(to_accum(tau_refrac / dt))
    return -(-raw >> FRAC_BITS)


def lif_trace(
    exc: np.ndarray,
    inh: np.ndarray,
    op: O.SpiNNakerLIF,
    host: np.ndarray | None = None,
    refract_steps: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the neuron over ring-buffer sums ``[T, ...]``; returns ``(V after each step, spikes)``.

    ``host`` is an optional raw s16.15 current added to I (the host-injected encoding current).
    Ring buffers saturate at 0xFFFF before the shift (trap 10). ``refract_steps`` is
    ``T_refract`` (:func:`refractory_steps`): after a spike the neuron skips that many updates,
    V stays at ``V_reset`` and those steps' input is dropped (trap 8). Compiled programs use
    ``tau_refrac = 0`` (0 steps), which is what :func:`spinnaker_lif` runs.
    """
    e = np.minimum(np.asarray(exc, np.int64), RING_MAX) << op.exc_shift
    i = np.minimum(np.asarray(inh, np.int64), RING_MAX) << op.inh_shift
    current = e - i + np.asarray(op.i_offset, np.int64)
    if host is not None:
        current = current + host
    v = np.full(current.shape[1:], op.v_rest, np.int64)
    timer = np.zeros(current.shape[1:], np.int64)
    vs = np.empty(current.shape, np.int64)
    spikes = np.empty(current.shape, np.int64)
    for t in range(current.shape[0]):
        alpha = mul_accum(current[t], op.r) + op.v_rest
        updated = np.clip(alpha - mul_accum(op.exp_tc, alpha - v), ACCUM_MIN, ACCUM_MAX)
        active = timer <= 0
        v = np.where(active, updated, v)
        timer = np.where(active, timer, timer - 1)
        s = v >= op.v_thresh
        v = np.where(s, op.v_reset, v)
        timer = np.where(s, refract_steps, timer)
        vs[t], spikes[t] = v, s
    return vs, spikes


def spinnaker_lif(op: O.SpiNNakerLIF, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """:class:`~snncc.ir.ops.SpiNNakerLIF` over T; returns 0/1 spikes as float64."""
    if ctx.lead != 2:
        raise ctx.fail(op, "needs a per-step (temporal) input, got a static value")
    x = xs[0]
    zeros = np.zeros(x.shape, np.int64)
    if op.host_scale > 0:
        host = np.rint(np.real(x) * float(op.host_scale)).astype(np.int64)
        _, spikes = lif_trace(zeros, zeros, op, host)
    else:
        exc, inh = np.rint(np.real(x)), np.rint(np.imag(x))
        if np.any(exc < 0) or np.any(inh < 0) or not np.array_equal(exc + 1j * inh, x):
            raise ctx.fail(op, "input is not ring-buffer sums (is the graph quantized?)")
        _, spikes = lif_trace(exc.astype(np.int64), inh.astype(np.int64), op)
    return np.broadcast_to(spikes, x.shape).astype(np.float64)


def _split(y_pos: np.ndarray, y_neg: np.ndarray) -> np.ndarray:
    return np.rint(y_pos) + 1j * np.rint(y_neg)


def _synaptic(float_kernel: Kernel) -> Kernel:
    """Deployed synaptic op: two ring-buffer sums (exc, inh); host ops stay float."""

    def kernel(op: O.Op, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
        if "receptor" not in (ctx.meta.get("quant") or {}):
            return float_kernel(op, xs, ctx)
        w = op.weight
        if not np.issubdtype(w.dtype, np.integer) or (w.size and np.abs(w).max() > RING_MAX):
            raise ctx.fail(op, "stored weights must be integers with |w| <= 65535 (16 bits)")
        pos = float_kernel(op.replace(weight=np.maximum(w, 0).astype(np.float64)), xs, ctx)
        neg = float_kernel(op.replace(weight=np.maximum(-w, 0).astype(np.float64)), xs, ctx)
        return _split(pos, neg)

    return kernel


def _scale(op: O.Scale, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """A count projected with one stored weight ``factor`` (sign = receptor); else float."""
    if "receptor" not in (ctx.meta.get("quant") or {}):
        return FLOAT_KERNELS[O.Scale](op, xs, ctx)
    f = float(op.factor)
    if f != int(f) or abs(f) > RING_MAX:
        raise ctx.fail(op, f"stored weight must be an integer with |w| <= 65535, got {f}")
    y = np.real(xs[0]) * abs(f)
    return _split(y, np.zeros_like(y)) if f >= 0 else _split(np.zeros_like(y), y)


def _no_float_neuron(op: O.Op, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    raise ctx.fail(op, "float neuron in spinnaker mode: run the quantize pass for 'spinnaker'")


#: Target neuron kernels that every mode (float included) can use: their semantics are integer.
NEURON_KERNELS: dict[type[O.Op], Kernel] = {O.SpiNNakerLIF: spinnaker_lif}

KERNELS: dict[type[O.Op], Kernel] = {
    **FLOAT_KERNELS,
    **NEURON_KERNELS,
    O.Linear: _synaptic(FLOAT_KERNELS[O.Linear]),
    O.Conv1d: _synaptic(FLOAT_KERNELS[O.Conv1d]),
    O.Conv2d: _synaptic(FLOAT_KERNELS[O.Conv2d]),
    O.Scale: _scale,
    O.LIF: _no_float_neuron,
    O.IF: _no_float_neuron,
    O.ExpGIF: _no_float_neuron,
}
