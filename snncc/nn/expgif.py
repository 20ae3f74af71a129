"""ExpG-IF: snncc's grouped exponential-coding integrate-and-fire neuron (Ge²mS-T seed model).

The Ge²mS-T paper (arXiv:2604.08894) names an "ExpG-IF" neuron but its equations are not public.
This module is **snncc's own interpretation** (docs/seed-models.md §5.2): a few-spikes style
binary code in which a group of ``K = bits`` consecutive timesteps carries one K-bit value, most
significant bit first. It is not the authors' neuron.
"""

from __future__ import annotations

import torch
from torch import nn

from snncc.ir.ops import expgif_schedule
from snncc.nn.neurons import SigmoidSurrogate


class ExpGIF(nn.Module):
    """Integrate-and-fire neuron with a periodic exponential threshold and soft reset.

    Input and output are ``[T, ...]`` (time first). Time is cut into groups of ``K = bits``
    steps; step ``t`` is bit ``k = t mod K`` of its group (``k = 0`` is the most significant).
    State: one membrane value ``v`` per element, ``v = 0.0`` at the start of every sample (each
    ``forward`` starts fresh). There is no leak and no reset at group boundaries: the residual
    left after the last bit of a group (the quantisation error) carries into the next group.

    Per timestep ``t = 0 … T-1``, in float64 exactly as written (numpy: ``**``, ``+``, ``-``,
    ``*``, ``>=`` on float64 arrays give the same bits)::

        k    = t % K
        th   = theta * (2.0 ** -(k + 1))        # theta/2, theta/4, …, theta/2**K, then repeat
        v    = v + x[t]                         # integrate this step's input (every step)
        s    = 1.0 if v >= th else 0.0          # fire on v >= th (SpikingJelly convention)
        v    = v - s * th                       # soft reset: subtract the threshold just used
        y[t] = s * th                           # output: the spike carrying its bit weight

    ``theta * (2.0 ** -(k + 1))`` is an exact power-of-two scaling of ``theta``, so ``th`` has no
    rounding error. The binary event is ``s = (y > 0)``; the output value is the weighted spike
    ``y = s * theta * 2**-(k+1)`` so that a downstream synapse ``W @ y`` sees bit ``k`` with its
    weight. On hardware that is a 1-bit event whose synaptic effect is shifted right by ``k + 1``
    (no multiplication); a compiler lowers it as spike + per-timestep shift.

    Why this is "lossless": if a group's input arrives at its first step (``x = a`` at ``k = 0``,
    ``0`` after) with ``0 <= a < theta`` and ``v = 0`` before it, the greedy MSB-first comparison
    with soft reset emits the binary expansion of ``a / theta``, so the group's output sum is
    ``theta * floor(a / theta * 2**K) / 2**K``: exactly the QCFS-style K-bit quantisation of
    ``a``. Larger inputs saturate at ``theta * (1 - 2**-K)`` per group (the excess carries on).
    Inputs spread over a group (the weighted spikes of an upstream ExpG-IF layer) are integrated
    as they arrive; the carried residual makes the long-run group average track the input sum.

    Training uses SpikingJelly's sigmoid surrogate on ``v - th`` with slope ``alpha / th``
    (so every bit sees the same relative sharpness); ``detach_reset`` cuts the gradient through
    the soft reset. Neither affects the forward values.

    ``start`` (default None) makes a *one-group* neuron (what ANN→SNN conversion emits): it
    integrates ``x[t]`` only at ``t <= start``, fires only at ``start … start + K - 1`` with
    ``k = t - start``, and is silent afterwards (:func:`snncc.ir.ops.expgif_schedule`). Its K
    events are the K-bit code of everything it received up to ``start``, so it needs no gate on
    its input, and a neuron reading it sums exactly one group of its events.

    Attributes read by the snncc frontend: ``theta`` (float), ``bits`` (int, ``K``), ``start``.
    """

    def __init__(
        self,
        theta: float = 1.0,
        bits: int = 4,
        detach_reset: bool = True,
        surrogate_alpha: float = 4.0,
        start: int | None = None,
    ) -> None:
        super().__init__()
        if not theta > 0:
            raise ValueError(f"ExpGIF theta must be positive, got {theta}")
        if int(bits) != bits or bits < 1:
            raise ValueError(f"ExpGIF bits must be a positive integer, got {bits}")
        if start is not None and (int(start) != start or start < 0):
            raise ValueError(f"ExpGIF start must be None or an integer >= 0, got {start}")
        self.theta = float(theta)
        self.start = None if start is None else int(start)
        self.bits = int(bits)
        self.detach_reset = bool(detach_reset)
        self.surrogate_alpha = float(surrogate_alpha)

    def threshold(self, t: int) -> float:
        """The threshold at timestep ``t``: ``theta * 2**-((t mod K) + 1)`` (exact in float)."""
        return self.theta * (2.0 ** -((t % self.bits) + 1))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Run all ``T = x_seq.shape[0]`` steps from ``v = 0`` and return the weighted spikes."""
        v: torch.Tensor | float = 0.0
        out = []
        for t in range(x_seq.shape[0]):
            integrates, k = expgif_schedule(t, self.bits, self.start)
            if integrates:
                v = v + x_seq[t]
            if k is None:  # a one-group neuron outside its group: silent
                out.append(torch.zeros_like(x_seq[t]))
                continue
            th = self.theta * (2.0 ** -(k + 1))
            s = SigmoidSurrogate.apply(v - th, self.surrogate_alpha / th)
            s_d = s.detach() if self.detach_reset else s
            v = v - s_d * th
            out.append(s * th)
        return torch.stack(out)

    def extra_repr(self) -> str:
        start = "" if self.start is None else f", start={self.start}"
        return f"theta={self.theta}, bits={self.bits}{start}, detach_reset={self.detach_reset}"
