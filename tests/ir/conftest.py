"""Shared fixture for the IR tests: a small traced spiking model with non-trivial weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snncc
from snncc.ir.graph import Graph
from snncc.nn import IF, LIF


class Tiny(nn.Module):
    """Conv → BN → LIF → max-pool → attention-like spike product → IF → mean → head."""

    def __init__(self) -> None:
        super().__init__()
        self.T = 3
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.lif = LIF(tau=1.5, v_threshold=0.7)
        self.pool = nn.MaxPool2d(2)
        self.q = nn.Conv1d(4, 4, 1, bias=False)
        self.q_lif = LIF(v_reset=None)
        self.out_if = IF(v_threshold=0.5)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        T, B, C, H, W = x.shape
        x = self.lif(self.bn(self.conv(x.flatten(0, 1))).reshape(T, B, C * 4, H, W))
        x = self.pool(x.flatten(0, 1)).flatten(2)  # [T*B, 4, N]
        q = self.q_lif(self.q(x).reshape(T, B, 4, -1))
        a = (q.transpose(-1, -2) @ q) * 0.25  # [T, B, N, N]
        y = self.out_if(q @ a)
        return self.head(y.mean(3)).mean(0)


@pytest.fixture(scope="session")
def traced() -> Graph:
    """The tiny model traced (BN not yet folded), with seeded random weights and BN statistics."""
    torch.manual_seed(1)
    m = Tiny()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.3, 0.3)
        m.bn.running_var.uniform_(0.5, 1.5)
        m.bn.weight.uniform_(0.5, 1.5)
    return snncc.trace(m.eval(), torch.rand(1, 1, 8, 8), name="tiny")
