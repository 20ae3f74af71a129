"""Why a SpiNNaker program gives the reference's spikes on every simulator, checked per population.

The ``spinnaker`` reference is sPyNNaker's s16.15 arithmetic; PyNN on Brian2 computes in
float64. They agree spike for spike when no step of the reference ever rounds and no ring
buffer saturates, because then both compute the same real numbers (Brian2's float64 error is
below 2^-30 of a raw unit here, and thresholds sit half a raw unit off every reachable value).
The quantizer places values so (:mod:`snncc.quant.spinnaker`); :func:`check_population`
verifies it on the lowered program, so an emitted program is exact by construction or refused:

1. **The leak is exact.** ``V ← alpha − exp_TC·(alpha − V)`` with ``exp_TC = a/2^p`` (``a``
   odd) is exact while ``alpha − V`` is a multiple of ``2^p``. Every current the neuron gets
   is a multiple of ``2^s`` raw (a stored weight shifted left by the receptor's shift ``s``;
   the bias is a stored weight too), ``V`` starts at 0 each sample and is reset to 0, so after
   ``t`` steps ``V`` is a multiple of ``2^(s − p·t)``: exact for ``T`` steps iff ``s >= p·T``
   for every receptor that carries input. ``exp_TC = 0`` (AND/OR neurons) never rounds.
2. **The input is exact.** ``alpha = I·R`` with ``R = 1`` (``c_m = tau_m``); the bias is a
   stored weight (``|b| = w·2^s``, ``w <= 65535``).
3. **Nothing saturates or clips.** The largest possible excitatory (inhibitory) ring-buffer sum
   of each neuron, every positive (negative) synapse and the bias at once, is at most 65535,
   and the current it makes stays inside s16.15, so ``V`` (a convex combination of currents)
   never clips.
4. **Thresholds separate.** ``V_thresh`` is an integer raw value and every reachable ``V`` is an
   integer: sPyNNaker's ``V >= V_thresh`` is Brian2's ``v > V_thresh − 1/2`` (:mod:`.params`).
"""

from __future__ import annotations

import math

import numpy as np

from snncc.backends.lower.spec import Connection
from snncc.backends.spinnaker.spec import SpiNNakerPopulation
from snncc.diagnostics import SnnccError
from snncc.quant.spinnaker import leak_bits
from snncc.reference.spinnaker_kernels import ACCUM_MAX, RING_MAX, ring_buffer_shift

#: A spike into an AND/OR threshold neuron is worth 1 mV (2^15 raw).
UNIT_RAW = 1 << 15
MAX_SHIFT = 16


def unit_neuron(name: str, shape: tuple[int, ...], role: str, operands: int) -> SpiNNakerPopulation:
    """A memoryless threshold neuron (``exp_TC = 0``) over unit inputs.

    ``and``: fires iff all ``operands`` inputs spiked (``V = n·1 mV >= operands − 1/2 mV``);
    ``or``: fires iff any of up to ``operands`` inputs spiked (``V >= 1/2 mV``). The shift is
    sPyNNaker's rule for ``operands`` mV at most, so a unit input is the stored weight
    ``2^(15 − shift)`` exactly.
    """
    shift = ring_buffer_shift(operands)
    vth = operands * UNIT_RAW - UNIT_RAW // 2 if role == "and" else UNIT_RAW // 2
    size = math.prod(shape)
    return SpiNNakerPopulation(name, tuple(shape), role, vth, 0, shift, 0, np.zeros(size, np.int64))


def _refuse(p: SpiNNakerPopulation, problem: str, hint: str, code: str) -> SnnccError:
    return SnnccError(f"lower (spinnaker): {p.name}: {problem}", code=code, hint=hint, exit_code=2)


def ring_peaks(p: SpiNNakerPopulation, conns: list[Connection]) -> tuple[np.ndarray, np.ndarray]:
    """Largest excitatory and inhibitory ring-buffer sums per neuron (stored units): every
    synapse of that sign and the bias at once."""
    exc = np.zeros(p.size, np.int64)
    inh = np.zeros(p.size, np.int64)
    for c in conns:
        w = np.asarray(c.params["weight"], np.int64)
        post = np.asarray(c.params["post"], np.int64)
        exc += np.bincount(post, weights=np.maximum(w, 0), minlength=p.size).astype(np.int64)
        inh += np.bincount(post, weights=np.maximum(-w, 0), minlength=p.size).astype(np.int64)
    b = np.asarray(p.bias, np.int64)
    exc += np.maximum(b, 0) >> p.exc_shift
    inh += np.maximum(-b, 0) >> p.inh_shift
    return exc, inh


def check_population(p: SpiNNakerPopulation, conns: list[Connection], timesteps: int) -> None:
    """Raise ``LOW02x`` unless ``p`` with its incoming ``conns`` is exact (module docstring).

    ``LOW020``: the leak rounds (no ring-buffer shift makes it exact for ``T`` steps);
    ``LOW021``: a stored weight or ring-buffer sum beyond 16 bits, or a current beyond s16.15
    (the quantizer's bounds prevent it: a bug); ``LOW022``: a bias with no synaptic input (its
    population would have pipeline depth 0, where the clock cannot reach it in time).
    """
    bits = leak_bits(p.exp_tc)
    need = bits * timesteps
    b = np.asarray(p.bias, np.int64)
    used = {"excitatory": p.exc_shift, "inhibitory": p.inh_shift}
    has = {
        "excitatory": bool(np.any(b > 0)) or any(np.any(c.params["weight"] > 0) for c in conns),
        "inhibitory": bool(np.any(b < 0)) or any(np.any(c.params["weight"] < 0) for c in conns),
    }
    if need > MAX_SHIFT and any(has.values()):
        raise _refuse(
            p,
            f"its leak exp_TC = {p.exp_tc}/2^15 has {bits} fraction bits: over T = {timesteps} "
            f"steps sPyNNaker's s16.15 update rounds (it would need currents on a 2^{need} grid, "
            f"beyond the largest ring-buffer shift {MAX_SHIFT}), and PyNN on Brian2 computes "
            "the same update in float64 without rounding: no emitted program is exact",
            "use tau = 2 (exp_TC = 1/2) or tau = 4/3, 4 (1/4, 3/4), or fewer timesteps; or "
            "target loihi",
            "LOW020",
        )
    for receptor, shift in used.items():
        if has[receptor] and shift < need:
            raise _refuse(
                p,
                f"{receptor} shift {shift} < {need} = {bits} leak bits x T: the leak would round",
                "the quantizer keeps shifts at least this large: please report it",
                "LOW021",
            )
    for sign, shift in ((1, p.exc_shift), (-1, p.inh_shift)):
        part = np.maximum(sign * b, 0)
        if np.any(part & ((1 << shift) - 1)) or np.any((part >> shift) > RING_MAX):
            raise _refuse(
                p,
                f"bias not a 16-bit stored weight at shift {shift}",
                "the quantizer places biases on the ring-buffer grid: please report it",
                "LOW021",
            )
    exc, inh = ring_peaks(p, conns)
    peak = max(int(exc.max(initial=0)), int(inh.max(initial=0)))
    current = max(int(exc.max(initial=0)) << p.exc_shift, int(inh.max(initial=0)) << p.inh_shift)
    if peak > RING_MAX or current > ACCUM_MAX:
        raise _refuse(
            p,
            f"worst-case ring-buffer sum {peak} (current {current} raw): sPyNNaker would "
            "saturate at 65535 or clip at 2^31, Brian2 would not",
            "the quantizer's ring-buffer bound should prevent this: please report it",
            "LOW021",
        )
    if np.any(b != 0) and not conns:
        raise _refuse(
            p,
            "a bias but no synaptic input: the bias clock cannot reach a population at "
            "pipeline depth 0 in its first step",
            "feed the neuron from another layer, or drop its constant input",
            "LOW022",
        )
