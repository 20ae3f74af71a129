"""Training-side spiking neurons (torch). The frontend treats them as leaf ops."""

from snncc.nn.expgif import ExpGIF
from snncc.nn.neurons import IF, LIF, SigmoidSurrogate

__all__ = ["IF", "LIF", "ExpGIF", "SigmoidSurrogate"]
