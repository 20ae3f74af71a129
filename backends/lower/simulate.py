"""A numpy executor of a balanced program spec, step-exact with the Lava network it describes.

It runs the schedule the Lava runtime runs: ``B`` samples back to back, one every ``T`` Lava
steps, each population resetting u and v at the first step of each of its sample windows
(``LIFReset``), every connection delivering at step ``τ`` what its operands carried at step
``τ - 1 - delay``. Why population by population over the whole run instead of one global step
loop: the spec is acyclic (balance_latency checks it), so a population's input trace depends only
on earlier populations' complete traces; each connection then becomes one vectorised product
over all steps, and each population one call of the reference's
:func:`~snncc.reference.loihi_kernels.lif_trace` per reset segment (a reset sets u = v = 0,
which is exactly where a fresh trace starts). The result is the same step for step.

Units: ``a_in`` and the host inputs are integers; spikes are uint8 ``[steps, neurons]`` with row
``τ - 1`` holding Lava step ``τ``. A programmable-neuron population (role ``expgif``) sends its
graded payload ``2^(K-1-k)`` to the connections reading it; its spike train is still 0/1. Lava
step ``τ`` is step ``t = (τ - depth - 1) mod T`` of a sample for it, and its bit there is
``t mod K`` (sample windows start at a group's first bit since ``T`` is then a multiple of
``K``) or, for a one-group neuron (``start``), its schedule around ``start``: the step its Lava
process counts too.
"""

from __future__ import annotations

import numpy as np

from snncc.backends.lower.kernels import connection_output
from snncc.backends.lower.spec import Population, ProgramSpec
from snncc.reference.loihi_kernels import expgif_trace, lif_trace


def reset_steps(p: Population, period: int, steps: int) -> list[int]:
    """0-based rows where ``p`` starts from u = v = 0: row 0 and every LIFReset step.

    Lava's ``LIFReset`` resets before the dynamics of 1-based step ``τ`` when ``τ % period ==
    (depth + 1) % period``; the population's first window starts at ``τ = depth + 1``.
    """
    offset = (p.depth + 1) % period
    rows = {0} | {tau - 1 for tau in range(1, steps + 1) if tau % period == offset}
    return sorted(rows)


def host_trace(spec: ProgramSpec, a_in: np.ndarray, steps: int) -> np.ndarray:
    """The host's ``[steps, n]`` input: sample ``b``'s step ``t`` at row ``b·T + t``.

    ``a_in`` is ``[T, B, n]`` integers (what :func:`snncc.backends.lower.host.encode` gives).
    """
    t, b, n = a_in.shape
    trace = np.zeros((steps, n), np.int64)
    trace[: b * spec.period] = np.asarray(a_in, np.int64).transpose(1, 0, 2).reshape(b * t, n)
    return trace


def run_population(p: Population, a: np.ndarray, period: int) -> np.ndarray:
    """Outputs ``[steps, n]`` of ``p`` for input ``a`` (``[steps, n]`` int), with resets: 0/1
    spikes (uint8), or the graded payloads (int64) of a programmable neuron."""
    rows = reset_steps(p, period, len(a)) + [len(a)]
    out = np.zeros(a.shape, np.int64 if p.role == "expgif" else np.uint8)
    for lo, hi in zip(rows[:-1], rows[1:], strict=True):
        if p.role == "expgif":
            step = (lo - p.depth) % period
            _, out[lo:hi] = expgif_trace(a[lo:hi], p.thresholds, p.bias_mant, step, p.start)
        else:
            _, _, out[lo:hi] = lif_trace(a[lo:hi], p.du, p.dv, p.vth, p.bias_mant, p.bias_exp)
    return out


def delayed(s: np.ndarray, by: int) -> np.ndarray:
    """``s`` shifted ``by`` rows later (zeros first): what a reader sees ``by`` steps on."""
    out = np.zeros_like(s)
    if by < len(s):
        out[by:] = s[: len(s) - by]
    return out


def simulate(spec: ProgramSpec, host: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """Every population's spikes over the whole run, ``[run_steps(batch), size]`` uint8.

    Requires: ``spec.balanced``; ``host[pop]`` is ``[T, batch, size]`` integer ``a_in`` for
              every host-fed population.
    Ensures:  row ``τ - 1`` is Lava step ``τ`` of the same program on ``Loihi2SimCfg(fixed_pt)``.
    """
    if not spec.balanced:
        raise ValueError("simulate needs a balanced spec (run balance_latency first)")
    steps = spec.run_steps(batch)
    fed = {h.population for h in spec.host_inputs}
    sent: dict[str, np.ndarray] = {}  # what each population sends: spikes or graded payloads
    for p in spec.populations:
        a = np.zeros((steps, p.size), np.int64)
        if p.name in fed:
            a += host_trace(spec, host[p.name].reshape(spec.timesteps, batch, p.size), steps)
        for c in spec.into(p.name):
            xs = [delayed(sent[o.source], 1 + o.delay) for o in c.operands]
            a += connection_output(c, xs)
        sent[p.name] = run_population(p, a, spec.period)
    return {name: (x != 0).astype(np.uint8) for name, x in sent.items()}


def windows(spec: ProgramSpec, raw: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """Per population ``[T, batch, *shape]`` uint8: each sample's reference-aligned spikes.

    Sample ``b``'s step ``t`` of population ``p`` is row ``b·T + p.depth + t`` of ``raw[p]``.
    """
    out = {}
    for p in spec.populations:
        rows = (
            np.arange(batch)[None, :] * spec.period + p.depth + np.arange(spec.timesteps)[:, None]
        )
        out[p.name] = raw[p.name][rows].reshape((spec.timesteps, batch) + p.shape)
    return out
