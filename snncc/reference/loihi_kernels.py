"""The ``loihi`` kernel table: Lava ``fixed_pt`` integer arithmetic on a quantized graph.

Facts from docs/hardware-semantics.md §2.1 (``PyLifModelBitAcc``) and §2.2 (``PyDenseModelBitAcc``).
Why integer numpy and not a float model rescaled afterwards: the decays truncate toward zero, u
wraps and v saturates at 24 bits, and the threshold test is strict, so only the same integer
operations in the same order give the same spikes as Lava.

Value conventions in this mode (all arrays stay float64 so that the float kernels of spikes,
counts and structural ops can be reused unchanged; every value in the deployed part is an exact
integer, far below 2^53):

- spikes are 0/1, dynamic products (``MatMul``/``Mul`` of spikes) exact integer counts;
- a deployed ``Linear`` (node meta ``quant.weight_exp``) holds int64 mantissas ``W_q`` in
  [-128, 127] and outputs ``shift(Σ W_q·x, weight_exp)`` in ``a_in`` units: a left shift, or an
  arithmetic right shift (floor) of the *sum* for a negative exponent — what Lava Dense computes
  when fed ``2·W_q`` with ``weight_exp - 1`` (the exact mixed-sign recipe, trap 2);
- a deployed ``Conv1d``/``Conv2d`` models the program the Lava backend emits for it, not a Dense:
  Lava's ``Conv`` ignores ``weight_exp`` (trap 3), so the exponent is folded into the weights
  (``W_q << weight_exp``) and the sum is used unshifted. A negative exponent cannot be folded into
  integer weights, so the kernel refuses it (the quantize pass never emits one for a conv);
- host ops (encoding and readout) have float weights and no ``quant`` meta: float kernels.

Hop latency (one step per Dense) is not modelled here; backends account for it.
"""

from __future__ import annotations

import numpy as np

from snncc.ir import ops as O
from snncc.reference.context import Kernel, KernelCtx
from snncc.reference.float_kernels import KERNELS as FLOAT_KERNELS

#: Lava constants (§2.1): decay unity 2^12, vth and activation shifts 6, 24-bit u and v.
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT
ACT_SHIFT = 6
VTH_SHIFT = 6
MAX_UV = 1 << 23
WEIGHT_MIN, WEIGHT_MAX = -128, 127


def trunc_decay(x: np.ndarray, factor: int) -> np.ndarray:
    """``sign(x·factor) * (|x·factor| >> 12)``: Lava's decay, truncating toward zero."""
    p = x.astype(np.int64) * np.int64(factor)
    return np.sign(p) * (np.abs(p) >> DECAY_SHIFT)


def wrap_current(u: np.ndarray) -> np.ndarray:
    """Lava's single 24-bit wrap of u (§2.1): values above 2^23 or at/below -2^23 wrap once."""
    wrapped = np.where(u > MAX_UV, u - 2 * MAX_UV, u)
    return np.where(wrapped <= -MAX_UV, u + 2 * MAX_UV, wrapped)


def effective_bias(bias_mant: np.ndarray, bias_exp: int) -> np.ndarray:
    """``bias_mant << bias_exp`` (right shift for a negative exponent); added to v every step."""
    b = np.asarray(bias_mant, dtype=np.int64)
    return b << bias_exp if bias_exp >= 0 else b >> -bias_exp


def lif_trace(
    a_in: np.ndarray,
    du: int | np.ndarray,
    dv: int | np.ndarray,
    vth: int | np.ndarray,
    bias_mant: np.ndarray | int = 0,
    bias_exp: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``PyLifModelBitAcc`` over ``a_in = [T, ...]`` (integers); returns ``(u, v, spikes)``.

    ``u`` and ``v`` are the states *after* each step, as Lava's ``Monitor`` records them.
    ``du``, ``dv`` and ``vth`` may be per neuron (they broadcast against ``a_in[0]``), as Lava's
    are. ``du = -1`` (no current decay, netx's convention) and ``du = 4095`` (delta synapse) are
    the plain formula, no special case: the factors are 4096 and 0.
    """
    a = np.asarray(a_in, dtype=np.int64)
    bias = effective_bias(np.asarray(bias_mant), bias_exp)
    du_a, dv_a, vth_a = (np.asarray(x, dtype=np.int64) for x in (du, dv, vth))
    shape = np.broadcast_shapes(a.shape[1:], bias.shape, du_a.shape, dv_a.shape, vth_a.shape)
    u = np.zeros(shape, np.int64)
    v = np.zeros(shape, np.int64)
    us, vs = np.empty((a.shape[0],) + shape, np.int64), np.empty((a.shape[0],) + shape, np.int64)
    spikes = np.empty((a.shape[0],) + shape, np.int64)
    u_factor, v_factor = DECAY_UNITY - (du_a + 1), DECAY_UNITY - dv_a
    eff_vth = vth_a << VTH_SHIFT
    for t in range(a.shape[0]):
        u = wrap_current(trunc_decay(u, u_factor) + (a[t] << ACT_SHIFT))
        v = np.clip(trunc_decay(v, v_factor) + u + bias, -(MAX_UV - 1), MAX_UV - 1)
        s = v > eff_vth
        v = np.where(s, 0, v)
        us[t], vs[t], spikes[t] = u, v, s
    return us, vs, spikes


def host_to_a_in(x: np.ndarray, host_scale: float) -> np.ndarray:
    """The host's conversion of an encoding current to ``a_in`` units: ``rint(x * scale)``."""
    return np.rint(np.asarray(x, dtype=np.float64) * float(host_scale)).astype(np.int64)


def _a_in(op: O.LoihiLIF | O.LoihiExpGIF, x: np.ndarray, ctx: KernelCtx) -> np.ndarray:
    """A Loihi neuron's input in ``a_in`` units: the host's rounding of an encoding current
    (``host_scale > 0``), or the integer sums of deployed synapses, checked as such."""
    if op.host_scale > 0:
        return host_to_a_in(x, op.host_scale)
    a = np.rint(x).astype(np.int64)
    if not np.array_equal(a, x):
        raise ctx.fail(op, "input is not integer a_in (is the graph quantized for loihi?)")
    return a


def loihi_lif(op: O.LoihiLIF, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """:class:`~snncc.ir.ops.LoihiLIF` over T; returns 0/1 spikes as float64."""
    if ctx.lead != 2:
        raise ctx.fail(op, "needs a per-step (temporal) input, got a static value")
    x = xs[0]
    a = _a_in(op, x, ctx)
    _, _, spikes = lif_trace(a, op.du, op.dv, op.vth, op.bias_mant, op.bias_exp)
    return np.broadcast_to(spikes, x.shape).astype(np.float64)


def expgif_trace(
    a_in: np.ndarray,
    thresholds: tuple[int, ...],
    bias: np.ndarray | int = 0,
    phase: int = 0,
    start: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the programmable neuron :class:`~snncc.ir.ops.LoihiExpGIF` over ``a_in = [T, ...]``.

    Returns ``(v, payload)``: the state after each step and the graded payload sent
    (``2^(K-1-k)`` on a spike at bit ``k``, else 0), both int64. Row ``t`` is step
    ``phase + t`` of the sample: bit ``k = (phase + t) mod K`` (``K = len(thresholds)``), or
    the one-group schedule of ``start`` (:func:`~snncc.ir.ops.expgif_schedule`); a run that
    starts mid-sample (a Lava executor segment) passes its step. Integer arithmetic in the order
    of the op's docstring: add input and bias, saturate at ±(2^23 - 1), fire on
    ``v >= threshold``, subtract the threshold.
    """
    a = np.asarray(a_in, dtype=np.int64)
    b = np.asarray(bias, dtype=np.int64)
    shape = np.broadcast_shapes(a.shape[1:], b.shape)
    v = np.zeros(shape, np.int64)
    vs = np.empty((a.shape[0],) + shape, np.int64)
    out = np.empty((a.shape[0],) + shape, np.int64)
    for t in range(a.shape[0]):
        v, out[t] = expgif_step(v, a[t], b, thresholds, phase + t, start)
        vs[t] = v
    return vs, out


def expgif_step(
    v: np.ndarray,
    a: np.ndarray,
    bias: np.ndarray,
    thresholds: tuple[int, ...],
    t: int,
    start: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Step ``t`` of a sample of :class:`~snncc.ir.ops.LoihiExpGIF`: ``(v, payload)``.

    Bit ``k = t mod K``, or with ``start`` the one-group schedule
    (:func:`~snncc.ir.ops.expgif_schedule`: add ``a + bias`` only at ``t <= start``, fire only
    at ``start … start + K - 1``). The one definition of the neuron's arithmetic: the reference
    trace and the Lava process model (``snncc.backends.lava.runtime.processes``) both call it.
    """
    bits = len(thresholds)
    integrates, k = O.expgif_schedule(t, bits, start)
    v = np.asarray(v, np.int64)
    if integrates:
        v = np.clip(v + a + bias, -(MAX_UV - 1), MAX_UV - 1)
    else:
        v = np.broadcast_to(v, np.broadcast_shapes(v.shape, np.shape(a), np.shape(bias))).copy()
    if k is None:
        return v, np.zeros(v.shape, np.int64)
    th = int(thresholds[k])
    s = v >= th
    return np.where(s, v - th, v), np.where(s, 1 << (bits - 1 - k), 0).astype(np.int64)


def loihi_expgif(op: O.LoihiExpGIF, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    """:class:`~snncc.ir.ops.LoihiExpGIF` over T; returns the graded payloads as float64."""
    if ctx.lead != 2:
        raise ctx.fail(op, "needs a per-step (temporal) input, got a static value")
    x = xs[0]
    a = _a_in(op, x, ctx)
    _, y = expgif_trace(a, op.thresholds, op.bias, start=op.start)
    return np.broadcast_to(y, x.shape).astype(np.float64)


def shift_sum(acc: np.ndarray, weight_exp: int) -> np.ndarray:
    """Lava Dense's ``weight_exp`` on the summed input: ``<< e``, or ``>> -e`` (floor)."""
    a = np.asarray(acc, dtype=np.int64)
    return a << weight_exp if weight_exp >= 0 else a >> -weight_exp


def dense_weights(
    w: np.ndarray, num_weight_bits: int = 8, sign_mode: str | None = None
) -> np.ndarray:
    """The weights Lava Dense actually uses (§2.2): sign mode, clip, then drop low bits.

    ``sign_mode`` is ``"mixed"``, ``"excitatory"`` or ``"inhibitory"``; by default it is chosen
    from the signs of ``w`` as Lava's ``determine_sign_mode`` does. MIXED at 8 bits drops the
    LSB (3 -> 2, -3 -> -4), which is why snncc emits ``2·W`` with ``weight_exp - 1``.
    """
    w = np.asarray(w, dtype=np.int64)
    if sign_mode is None:
        sign_mode = "excitatory" if w.min() >= 0 else "inhibitory" if w.max() <= 0 else "mixed"
    lo, hi = {"mixed": (-256, 255), "excitatory": (0, 255), "inhibitory": (-255, 0)}[sign_mode]
    w = np.clip(w, lo, hi)
    k = 8 - num_weight_bits + (1 if sign_mode == "mixed" else 0)
    if sign_mode == "inhibitory":
        return -((-w >> k) << k)
    return (w >> k) << k


def dense_input(
    w: np.ndarray,
    s_in: np.ndarray,
    weight_exp: int = 0,
    num_weight_bits: int = 8,
    sign_mode: str | None = None,
) -> np.ndarray:
    """What Lava ``Dense`` sends one step later for input spikes ``s_in``: §2.2 end to end.

    ``w`` is the raw ``weights[out, in]`` array given to ``Dense``; the result is
    ``shift_sum(dense_weights(w) @ s_in, weight_exp)``: weight truncation first, then the
    exponent on the *sum* (floored), which is why a per-weight model is wrong for odd sums.
    """
    eff = dense_weights(w, num_weight_bits, sign_mode)
    return shift_sum(eff @ np.asarray(s_in, dtype=np.int64), weight_exp)


def conv_weights(w_q: np.ndarray, weight_exp: int) -> np.ndarray:
    """The integer weights the Lava backend gives ``Conv``: ``W_q << weight_exp`` (trap 3).

    Lava's ``PyConvModelFixed`` ignores ``weight_exp`` and ``num_weight_bits`` and uses the
    weights as given, so the exponent must be folded into them. Only ``weight_exp >= 0`` folds
    into integers; a negative one raises ``ValueError``. Each folded weight is still an 8-bit
    mantissa times ``2^weight_exp``, so the hardware can represent it.
    """
    if weight_exp < 0:
        raise ValueError(
            f"weight_exp {weight_exp} < 0 cannot be folded into integer Conv weights (Lava's "
            "Conv ignores weight_exp)"
        )
    return np.asarray(w_q, dtype=np.int64) << weight_exp


def _synaptic(float_kernel: Kernel, conv: bool = False) -> Kernel:
    """Integer kernel for a deployed synaptic op; host ops (no ``quant`` meta) stay float.

    ``conv``: the op lowers to Lava ``Conv`` (exponent folded into the weights, sum unshifted),
    otherwise to ``Dense`` fed ``2·W_q`` with ``weight_exp - 1`` (exponent on the sum).
    """

    def kernel(op: O.Op, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
        quant = ctx.meta.get("quant") or {}
        if "weight_exp" not in quant:
            return float_kernel(op, xs, ctx)
        w = op.weight
        if not np.issubdtype(w.dtype, np.integer):
            raise ctx.fail(op, f"quantized weights must be integers, got dtype {w.dtype}")
        if w.size and (w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX):
            raise ctx.fail(
                op, f"weight mantissas must lie in [{WEIGHT_MIN}, {WEIGHT_MAX}] (8-bit signed)"
            )
        if getattr(op, "bias", None) is not None:
            raise ctx.fail(op, "a quantized synaptic op has no bias (biases live in the neurons)")
        e = int(quant["weight_exp"])
        if conv:
            if e < 0:
                raise ctx.fail(
                    op,
                    f"weight_exp {e} < 0 on a conv: Lava's Conv ignores weight_exp, so only an "
                    "exponent >= 0 folded into the weights is deployable",
                )
            # Integers times 0/1 or small counts, summed in float64: exact far below 2^53.
            wf = conv_weights(w, e).astype(np.float64)
            return np.rint(float_kernel(op.replace(weight=wf), xs, ctx))
        acc = float_kernel(op.replace(weight=w.astype(np.float64)), xs, ctx)
        return shift_sum(np.rint(acc), e).astype(np.float64)

    return kernel


def _no_float_neuron(op: O.Op, xs: list[np.ndarray], ctx: KernelCtx) -> np.ndarray:
    raise ctx.fail(op, "float neuron in loihi mode: run the quantize pass with target 'loihi'")


#: Target neuron kernels that every mode (float included) can use: their semantics are integer.
NEURON_KERNELS: dict[type[O.Op], Kernel] = {O.LoihiLIF: loihi_lif, O.LoihiExpGIF: loihi_expgif}

KERNELS: dict[type[O.Op], Kernel] = {
    **FLOAT_KERNELS,
    **NEURON_KERNELS,
    O.Linear: _synaptic(FLOAT_KERNELS[O.Linear]),
    O.Conv1d: _synaptic(FLOAT_KERNELS[O.Conv1d], conv=True),
    O.Conv2d: _synaptic(FLOAT_KERNELS[O.Conv2d], conv=True),
    O.LIF: _no_float_neuron,
    O.IF: _no_float_neuron,
    O.ExpGIF: _no_float_neuron,
}
