"""Helpers for reference-interpreter tests: a hand graph builder that types nodes correctly.

Types come from the IR shape rules (``snncc.ir.shapes``) so that the graphs the tests build are
the graphs ``lint`` accepts; ``temporal`` flows as the IR defines it (only ``TimeMean`` makes a
value static). The expected values in the tests come from torch, never from the code under test.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.shapes import output_shape
from snncc.ir.types import Kind, TensorType
from snncc.ir.verify import lint


class Builder:
    """Build a graph node by node with correct types; ``done`` lints and returns it."""

    def __init__(self, timesteps: int, name: str = "t") -> None:
        self.g = Graph(name)
        self.g.meta["timesteps"] = timesteps

    def input(
        self,
        name: str,
        shape: tuple[int, ...],
        *,
        temporal: bool = True,
        kind: Kind = Kind.CURRENT,
    ) -> str:
        """An ``Input``; its node type is per-step even for a static feed (direct encoding)."""
        self.g.add(name, O.Input(shape=shape, kind_in=kind, temporal=temporal), TensorType(shape))
        self.g.inputs.append(name)
        return name

    def node(self, name: str, op: O.Op, *srcs: str) -> str:
        """Add ``op`` reading ``srcs`` in port order; shape and temporal from the IR rules."""
        ins = [self.g.type(s) for s in srcs]
        shape = output_shape(op, [t.shape for t in ins])
        temporal = all(t.temporal for t in ins) and not isinstance(op, O.TimeMean)
        kind = Kind.SPIKE if op.NEURON else Kind.CURRENT
        self.g.add(name, op, TensorType(shape, kind, None, temporal))
        for src, port in zip(srcs, op.in_ports, strict=True):
            self.g.connect(src, name, port)
        return name

    def done(self, *outputs: str) -> Graph:
        """Set the outputs and return the graph, failing the test if it does not lint."""
        self.g.outputs.extend(outputs)
        problems = lint(self.g)
        if problems:
            raise AssertionError("test graph does not lint: " + "; ".join(map(str, problems)))
        return self.g


@pytest.fixture
def builder() -> Callable[..., Builder]:
    """``builder(T)`` -> a fresh :class:`Builder`."""
    return Builder


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every test is reproducible."""
    return np.random.default_rng(20240611)


def to_torch(x: np.ndarray) -> torch.Tensor:
    """float64 torch tensor sharing nothing with ``x``."""
    return torch.tensor(np.array(x, dtype=np.float64))


@pytest.fixture
def tt() -> Callable[[np.ndarray], torch.Tensor]:
    """The :func:`to_torch` helper as a fixture (test modules cannot import conftest)."""
    return to_torch
