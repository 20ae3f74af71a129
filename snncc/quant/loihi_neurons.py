"""Loihi neuron parameters: threshold placement for Lava's LIF, and the programmable neuron.

Two neuron programs exist on Loihi 2 for snncc: Lava's fixed LIF (``PyLifModelBitAcc``,
:func:`lif_neuron`) and a programmable neuron (:class:`~snncc.ir.ops.LoihiExpGIF`,
:func:`programmable_neuron`) for what the LIF cannot express: snncc's ExpG-IF (a threshold that
halves at every step of a group, soft reset, a graded payload carrying the bit's weight) and the
soft-reset IF neuron (its one-bit case). On Lava the programmable neuron is a custom fixed-point
process; on Loihi 2 it is neuron microcode.

Thresholds are placed, not just rounded (:func:`place_threshold`): Lava fires on
``v > vth << 6`` with a 64-unit grid, SpikingJelly on ``V >= v_th``; the two agree on every
reachable membrane value exactly when every reachable value is a multiple of 64 (no leak, or a
leaky membrane fed a coarse enough input lattice: :func:`membrane_granule`), and to within half
a grid step otherwise. The programmable neuron compares ``v >= threshold`` on
integers, so ``threshold = ceil(c·th)`` is exact on every integer membrane value; its soft reset
subtracts that integer, which equals the float model's ``c·th`` when ``c·th`` is an integer
(meta ``threshold_exact``).

A neuron whose input is a sum standing for a mean (``snncc.quant.rewrite``) has node meta
``input_gain = N``: it reads ``N·x`` and its threshold is ``N·v_th`` (:func:`input_gain`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from snncc.backends.lava.constraints import LOIHI
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.quant.common import neuron_spec
from snncc.quant.streams import Stream

VTH_MAX = 2**LOIHI.vth_bits - 1
BIAS_EXP = LOIHI.act_shift  # bias in a_in (weight) units, as lava-dl netx exports it
#: Where the neuron runs on Loihi 2, for reports and decisions.
PROGRAMMABLE = "programmable neuron (microcode on Loihi 2)"


def input_gain(g: Graph, n: str) -> int:
    """``N`` when neuron ``n`` reads ``N`` times its float input (meta ``input_gain``), else 1."""
    return int(g.node_meta(n).get("input_gain", 1))


def is_programmable(op: O.Op) -> bool:
    """Neurons that run as the programmable neuron: ExpG-IF, and IF with soft reset."""
    return isinstance(op, O.ExpGIF) or (isinstance(op, O.IF) and op.v_reset is None)


def threshold_schedule(op: O.Op) -> tuple[list[float], float]:
    """``(threshold per step of a group, float value of one payload unit)`` of a programmable
    neuron: ExpG-IF ``theta·2^-(k+1)`` for ``k < K`` and ``theta·2^-K`` (its output is the
    payload ``2^(K-1-k)`` times that); a soft-reset IF ``[v_th]`` and 1 (it emits 0/1)."""
    if isinstance(op, O.ExpGIF):
        theta, k = float(op.theta), int(op.bits)
        return [math.ldexp(theta, -(b + 1)) for b in range(k)], math.ldexp(theta, -k)
    return [float(op.v_threshold)], 1.0


def largest_threshold(g: Graph, n: str) -> Fraction:
    """The neuron's largest threshold in units of the stream scale ``c`` (exact)."""
    op = g.op(n)
    if is_programmable(op):
        return Fraction(max(threshold_schedule(op)[0])) * input_gain(g, n)
    spec = neuron_spec(g, n, "loihi")
    gain = spec.tau if (spec.tau is not None and spec.decay_input) else 1.0
    return Fraction(spec.v_threshold) * Fraction(gain) * input_gain(g, n)


@dataclass(frozen=True)
class Threshold:
    """A placed Loihi threshold, in v-units (the integers Lava stores in v).

    - ``vth``: Lava's parameter; Lava fires iff ``v > vth << 6``;
    - ``granule``: every reachable v is a multiple of it (a power of two,
      :func:`membrane_granule`);
    - ``placed``: ``64·vth + min(granule, 64)/2``, a value no reachable v equals, so
      ``v > placed``,
      ``v >= placed`` and Lava's ``v > 64·vth`` are the same test on every reachable v;
    - ``fire_at``: the smallest reachable v that fires on chip (the first multiple of
      ``granule`` above ``64·vth``);
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


def two_adic(x: np.ndarray | int) -> int | None:
    """Largest ``p`` with every non-zero element a multiple of ``2^p``; None when all are zero."""
    a = np.abs(np.asarray(x, dtype=np.int64)).ravel()
    a = a[a != 0]
    if a.size == 0:
        return None
    return int((a & -a).min()).bit_length() - 1


#: The lattice exponent of a value that is always 0 (every power of two divides it).
_ZERO = 64


def _decay_loss(factor: int) -> int | None:
    """Bits of 2-adic precision one decay ``trunc(x·factor / 4096)`` costs, None if it is 0.

    With ``x`` a multiple of ``2^p`` and ``2^q`` the power of two in ``factor``, ``x·factor /
    4096`` is an integer (the truncation is exact) and a multiple of ``2^(p + q - 12)`` exactly
    when ``p >= 12 - q``; below that the truncation can give any integer. ``factor = 0`` (a
    delta synapse) forgets ``x`` altogether: None.
    """
    if factor == 0:
        return None
    q = two_adic(factor) or 0
    return (LOIHI.decay_unity.bit_length() - 1) - q  # 12 - q


def _decayed(p: int, factor: int) -> int:
    """The lattice exponent of ``trunc(x·factor / 4096)`` for ``x`` a multiple of ``2^p``."""
    lost = _decay_loss(factor)
    if lost is None:
        return _ZERO  # a delta synapse: the decayed value is 0, on every lattice
    return p - lost if p >= lost else 0


def membrane_granule(
    du: int,
    dv: int,
    bias_mant: np.ndarray,
    bias_exp: int,
    *,
    input_exp: int = 0,
    steps: int | None = None,
) -> int:
    """The largest power of two ``G`` that divides every reachable v (1 when nothing is known).

    Why: Lava's update is ``u <- wrap(trunc(u·(4095 - du) / 4096) + (a_in << 6))``, ``v <-
    clip(trunc(v·(4096 - dv) / 4096) + u + bias)``, and v resets to 0. When every ``a_in`` is a
    multiple of ``2^input_exp`` (the stream's value lattice: integer weights, their exponents,
    a dynamic product's multiplier; :func:`~snncc.quant.loihi._input_exp`), u starts on the
    lattice ``2^(input_exp + 6)``, and each decay costs ``12 - q`` bits (``2^q`` the power of two
    in the decay factor, :func:`_decay_loss`) but is exact while the bits are there. u's lattice
    at each step (u is never reset) and the bias's power of two are v's input lattice; v's own
    decay costs ``12 - q_v`` bits per step since its last reset. Tracking both step by step over
    the sample's ``steps`` gives the coarsest lattice every reachable v lies on, whatever the
    reset history. Everything is integer arithmetic on 2-adic valuations.

    Without decay (``dv = 0`` and ``du`` in {-1, 4095}) the lattice holds for any number of
    steps; with decay it needs ``steps`` (the sample length) and is 1 without it. u's wrap by
    2^24 keeps every lattice up to 2^24; positive saturation at 2^23 - 1 leaves the lattice but
    exceeds every ``vth << 6``, so it fires under both rules. Like the no-leak rule this assumes
    v never saturates at ``-(2^23 - 1)`` (the stream scale keeps every per-step ``|a_in|`` below
    2^15). The result is capped at 2^23 (a membrane that is always 0 has every granule).
    """
    bias = np.asarray(bias_mant, dtype=np.int64)
    eff = bias << bias_exp if bias_exp >= 0 else bias >> -bias_exp
    cap = LOIHI.state_bits - 1
    u_factor = LOIHI.decay_unity - (du + 1)
    v_factor = LOIHI.decay_unity - dv
    if not (0 <= u_factor <= LOIHI.decay_unity and 0 < v_factor <= LOIHI.decay_unity):
        return 1
    leaky = u_factor not in (0, LOIHI.decay_unity) or v_factor != LOIHI.decay_unity
    if leaky and steps is None:
        return 1
    a = min(input_exp + LOIHI.act_shift, 24)  # u wraps by 2^24
    b = two_adic(eff)
    # Step by step: u_t = decay(u_{t-1}) + a_in_t << 6 (never reset); v_t = decay(v_{t-1}) +
    # u_t + bias, where v_{t-1} is either 0 (a reset) or on the lattice of step t - 1, so the
    # lattice of step t holds whatever the reset history. Without leak the lattice is the same
    # at every step: one step says it all.
    p_u = p_v = _ZERO
    worst = _ZERO
    for _ in range(steps if leaky and steps is not None else 1):
        p_u = min(_decayed(p_u, u_factor), a)
        p_v = min(_decayed(p_v, v_factor), p_u, _ZERO if b is None else b)
        worst = min(worst, p_v)
    p_v = worst
    return 1 << min(max(p_v, 0), cap)


def place_threshold(target: float | Fraction, granule: int) -> Threshold:
    """Choose ``vth`` for a threshold ``target`` in ``a_in`` units (``theta_v = 64·target``).

    SpikingJelly fires iff ``v >= theta_v``; on reachable values (multiples of ``granule``,
    :func:`membrane_granule`) that is ``v >= wanted`` with ``wanted = granule·ceil(theta_v /
    granule)``. Lava fires iff ``v > 64·vth``, i.e. on reachable values iff v reaches the first
    multiple of ``granule`` above ``64·vth``. With ``h = min(granule, 64)`` the rule is
    ``vth = (h·ceil(theta_v / h) - h) / 64``, rounded half up:

    - granule >= 64 (no leak, or a leaky membrane whose input lattice is coarse enough, e.g. an
      attention neuron fed counts times 128): ``vth = ceil(target) - 1``, **exact**: ``64·vth``
      is the largest multiple of 64 below ``theta_v``, and no reachable value (a multiple of
      64) lies between it and ``theta_v``;
    - granule < 64: exact only when ``wanted - granule ≡ 0 (mod 64)``; otherwise the nearest
      ``vth = round((wanted - granule) / 64)`` (ties up), so the chip's first firing value
      differs from SpikingJelly's by at most 32 v-units (half a ``vth`` step). Nothing finer is
      expressible: ``vth`` is the 17 high bits of v.

    ``vth`` is clipped to [0, 2^17 - 1]; the stream scale keeps ``target`` below 2^17.

    Every step is exact: ``target`` is a float or an exact :class:`~fractions.Fraction` (the
    quantizer passes ``c·gain·v_th`` unrounded), the ceilings are taken on the exact rational,
    and "round half up" is the integer ``(x + 32) // 64``.
    """
    theta_v = Fraction(target) * (1 << LOIHI.vth_shift)
    unit = 1 << LOIHI.vth_shift
    h = min(granule, unit)
    vth = (h * math.ceil(theta_v / h) - h + unit // 2) // unit
    vth = min(max(vth, 0), VTH_MAX)
    base = vth << LOIHI.vth_shift
    wanted = granule * math.ceil(theta_v / granule)
    fire_at = granule * (base // granule + 1)
    return Threshold(vth, granule, base + h / 2, fire_at, wanted)


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


def lif_neuron(
    g: Graph, n: str, c: float, bias: np.ndarray, stream: Stream, input_exp: int = 0
) -> dict[str, Any]:
    """Replace float LIF/IF ``n`` (hard reset) by its :class:`~snncc.ir.ops.LoihiLIF` at scale c.

    ``input_exp``: every ``a_in`` of the stream is a multiple of ``2^input_exp``; with the
    decay and the sample length (graph meta ``timesteps``) it decides the membrane granule and
    so where the threshold goes (:func:`membrane_granule`, :func:`place_threshold`).
    """
    spec = neuron_spec(g, n, "loihi")
    gain = spec.tau if (spec.tau is not None and spec.decay_input) else 1.0
    # The threshold in a_in units, exactly (c is a power of two times D, gain and v_th floats).
    target = Fraction(c) * Fraction(gain) * Fraction(spec.v_threshold) * input_gain(g, n)
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
    steps = g.meta.get("timesteps")
    granule = membrane_granule(
        du, dv, bias_mant, BIAS_EXP, input_exp=input_exp, steps=int(steps) if steps else None
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


def programmable_neuron(
    g: Graph, n: str, c: float, bias: np.ndarray, stream: Stream
) -> dict[str, Any]:
    """Replace ExpG-IF or soft-reset IF ``n`` by a :class:`~snncc.ir.ops.LoihiExpGIF` at scale c.

    Thresholds ``ceil(c·N·th_k)`` (``N`` the input gain), bias ``rint(c·b)`` in ``a_in`` units
    added every step, payload unit recorded for the synapses that read it (meta
    ``quant.payload_unit``).
    """
    op = g.op(n)
    ths, unit = threshold_schedule(op)
    exact = [Fraction(c) * Fraction(th) * input_gain(g, n) for th in ths]
    thresholds = tuple(max(1, math.ceil(t)) for t in exact)
    scaled = np.rint(np.asarray(bias, np.float64) * c)
    if scaled.size and np.abs(scaled).max() > LOIHI.bias_mant_max:  # choose_scale prevents it
        raise SnnccError(
            f"{n}: bias {np.abs(bias).max():.4g} needs {np.abs(scaled).max():.0f} > "
            f"{LOIHI.bias_mant_max}",
            code="QNT007",
            exit_code=70,
        )
    new = O.LoihiExpGIF(
        bits=len(thresholds),
        thresholds=thresholds,
        bias=scaled.astype(np.int64),
        host_scale=c if stream.host else 0.0,
        start=op.start if isinstance(op, O.ExpGIF) else None,
    )
    g.set_op(n, new)
    q = {"scale": c, "stream": stream.index, "thresholds": list(thresholds)}
    q["threshold_exact"] = all(t.denominator == 1 for t in exact)
    q.update({"payload_unit": unit, "runs_as": PROGRAMMABLE, "host_fed": bool(stream.host)})
    g.node_meta(n)["quant"] = q
    return {
        "node": n,
        "kind": "LoihiExpGIF",
        **q,
        "max_abs_bias": int(np.abs(scaled).max(initial=0)),
    }
