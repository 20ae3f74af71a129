"""A numpy executor of a balanced SpiNNaker program, step-exact with the PyNN program it describes.

It runs the schedule the emitted ``network.py`` runs: one run of ``T + depth`` steps per sample
(``sim.reset()`` between samples, so every sample starts from ``V = 0``), host-fed populations
spiking at steps ``0 … T-1``, every projection delivering a spike ``hop = 1 + delay`` steps
after it was sent, the bias clock's synapses arriving during each population's window
``depth … depth + T - 1``. Each population's ring-buffer sums then go through the reference's
own :func:`~snncc.reference.spinnaker_kernels.lif_trace` (sPyNNaker's s16.15 update), so the
executor proves the lowering against the reference without any simulator, and the Brian2 run
is held against the same numbers.

Population by population over the whole run (the program is acyclic): a population's input
depends only on earlier populations' complete spike trains. All samples of a batch run at once
(they are independent runs).
"""

from __future__ import annotations

import numpy as np

from snncc.backends.spinnaker.spec import SpiNNakerPopulation, SpiNNakerProgram, hop
from snncc.ir import ops as O
from snncc.reference.spinnaker_kernels import lif_trace


def neuron_op(p: SpiNNakerPopulation) -> O.SpiNNakerLIF:
    """The reference op of a population's neurons (its bias arrives through the clock)."""
    return O.SpiNNakerLIF(
        v_thresh=int(p.v_thresh), exp_tc=int(p.exp_tc), r=1 << 15,
        i_offset=np.zeros(1, np.int64), exc_shift=int(p.exc_shift), inh_shift=int(p.inh_shift),
    )  # fmt: skip


def _delayed(s: np.ndarray, by: int) -> np.ndarray:
    out = np.zeros_like(s)
    if by < len(s):
        out[by:] = s[: len(s) - by]
    return out


def _ring_sums(
    spikes: np.ndarray, pre: np.ndarray, post: np.ndarray, w: np.ndarray, n: int
) -> np.ndarray:
    """``[steps, B, n]``: per target neuron, the sum of ``w`` over synapses whose source spiked."""
    steps, batch, _ = spikes.shape
    out = np.zeros((steps, batch, n), np.int64)
    if not len(w):
        return out
    flat = spikes.reshape(steps * batch, -1)
    rows = np.flatnonzero(flat.any(axis=1))
    for r in rows:
        x = flat[r, pre].astype(np.int64) * w
        out.reshape(steps * batch, n)[r] = np.bincount(post, weights=x, minlength=n)
    return out


def simulate(
    spec: SpiNNakerProgram, host: dict[str, np.ndarray], batch: int
) -> dict[str, np.ndarray]:
    """Every population's spikes over one sample's run, ``[T + depth, batch, size]`` uint8.

    Requires: ``spec.balanced``; ``host[pop]`` ``[T, batch, size]`` 0/1 for every host-fed
              population (:func:`snncc.backends.spinnaker.host.encode`).
    Ensures:  row ``τ`` is simulator step ``τ`` of the emitted program on every simulator.
    """
    if not spec.balanced:
        raise ValueError("simulate needs a balanced program (run balance_latency first)")
    steps, t_len = spec.period, spec.timesteps
    sent: dict[str, np.ndarray] = {}
    for p in spec.populations:
        if p.role == "host":
            s = np.zeros((steps, batch, p.size), np.uint8)
            s[:t_len] = np.asarray(host[p.name]).reshape(t_len, batch, p.size)
            sent[p.name] = s
            continue
        exc = np.zeros((steps, batch, p.size), np.int64)
        inh = np.zeros_like(exc)
        for c in spec.into(p.name):
            (o,) = c.operands
            src = _delayed(sent[o.source], hop(o))
            w = np.asarray(c.params["weight"], np.int64)
            pre = np.asarray(c.params["pre"], np.int64)
            post = np.asarray(c.params["post"], np.int64)
            pos, neg = w > 0, w < 0
            exc += _ring_sums(src, pre[pos], post[pos], w[pos], p.size)
            inh += _ring_sums(src, pre[neg], post[neg], -w[neg], p.size)
        window = slice(p.depth, p.depth + t_len)
        b = np.asarray(p.bias, np.int64)
        exc[window] += np.maximum(b, 0) >> p.exc_shift
        inh[window] += np.maximum(-b, 0) >> p.inh_shift
        _, spikes = lif_trace(exc, inh, neuron_op(p))
        sent[p.name] = spikes.astype(np.uint8)
    return sent


def windows(spec: SpiNNakerProgram, raw: dict[str, np.ndarray], batch: int) -> dict:
    """Per population ``[T, batch, *shape]``: each sample's reference-aligned spikes
    (simulator steps ``depth … depth + T - 1`` of its run)."""
    out = {}
    for p in spec.populations:
        s = np.asarray(raw[p.name])[p.depth : p.depth + spec.timesteps]
        out[p.name] = s.reshape((spec.timesteps, batch) + tuple(p.shape))
    return out
