"""Multi-step spiking neurons with the semantics of SpikingJelly's ``MultiStepLIFNode``/``IFNode``.

Input and output are ``[T, ...]`` (time first; usually ``[T, B, ...]``). State is created fresh on
every forward, so samples never leak into each other and no ``reset_net`` call is needed. The
arithmetic is written exactly as SpikingJelly 0.0.0.0.12 writes it (the same float operations in
the same order), because the reference interpreter must reproduce the spikes bit for bit:

    charge (LIF, decay_input, v_reset in {None, 0}):  v = v + (x - v) / tau
    charge (LIF, decay_input, v_reset = r):           v = v + (x - (v - r)) / tau
    charge (LIF, no decay_input, v_reset in {None, 0}): v = v * (1 - 1/tau) + x
    charge (LIF, no decay_input, v_reset = r):        v = v - (v - r) / tau + x
    charge (IF):                                      v = v + x
    fire:   s = heaviside(v - v_threshold)            (spike iff v >= v_threshold)
    reset:  hard: v = (1 - s) * v + s * v_reset;  soft (v_reset None): v = v - s * v_threshold

The backward pass uses the sigmoid surrogate ``alpha * sigmoid(alpha x) * (1 - sigmoid(alpha x))``
with ``alpha = 4``; ``detach_reset`` cuts the gradient through the reset.
"""

from __future__ import annotations

import torch
from torch import nn


class SigmoidSurrogate(torch.autograd.Function):
    """Heaviside forward, sigmoid-derivative backward (SpikingJelly ``surrogate.Sigmoid``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(ctx.alpha * x)
        return grad * ctx.alpha * sg * (1.0 - sg), None


class _MultiStepNode(nn.Module):
    """Shared loop over time: charge, fire, reset."""

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate_alpha: float = 4.0,
    ) -> None:
        super().__init__()
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.detach_reset = bool(detach_reset)
        self.surrogate_alpha = float(surrogate_alpha)

    def neuronal_charge(self, x: torch.Tensor, v: torch.Tensor | float) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Run all ``T = x_seq.shape[0]`` steps from a fresh state and return the spikes."""
        v: torch.Tensor | float = self.v_reset if self.v_reset is not None else 0.0
        spikes = []
        for t in range(x_seq.shape[0]):
            v = self.neuronal_charge(x_seq[t], v)
            s = SigmoidSurrogate.apply(v - self.v_threshold, self.surrogate_alpha)
            s_d = s.detach() if self.detach_reset else s
            if self.v_reset is None:
                v = v - s_d * self.v_threshold
            else:
                v = (1.0 - s_d) * v + s_d * self.v_reset
            spikes.append(s)
        return torch.stack(spikes)


class LIF(_MultiStepNode):
    """Leaky integrate-and-fire (``MultiStepLIFNode``); see the module docstring for the math."""

    def __init__(
        self,
        tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate_alpha: float = 4.0,
    ) -> None:
        super().__init__(v_threshold, v_reset, detach_reset, surrogate_alpha)
        if not tau > 1.0:
            raise ValueError(f"LIF tau must be > 1, got {tau}")
        self.tau = float(tau)
        self.decay_input = bool(decay_input)

    def neuronal_charge(self, x: torch.Tensor, v: torch.Tensor | float) -> torch.Tensor:
        r = self.v_reset
        if self.decay_input:
            if r is None or r == 0.0:
                return v + (x - v) / self.tau
            return v + (x - (v - r)) / self.tau
        if r is None or r == 0.0:
            return v * (1.0 - 1.0 / self.tau) + x
        return v - (v - r) / self.tau + x

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
            f"decay_input={self.decay_input}, detach_reset={self.detach_reset}"
        )


class IF(_MultiStepNode):
    """Integrate-and-fire (``MultiStepIFNode``): ``v = v + x``, then fire and reset."""

    def neuronal_charge(self, x: torch.Tensor, v: torch.Tensor | float) -> torch.Tensor:
        return v + x

    def extra_repr(self) -> str:
        return f"v_threshold={self.v_threshold}, v_reset={self.v_reset}"
