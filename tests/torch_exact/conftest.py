"""Hand-built graphs for the torch_exact kernel tests (types from the IR shape rules)."""

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

    def input(self, name: str, shape: tuple[int, ...], *, temporal: bool = True,
              kind: Kind = Kind.CURRENT) -> str:  # fmt: skip
        self.g.add(name, O.Input(shape=shape, kind_in=kind, temporal=temporal), TensorType(shape))
        self.g.inputs.append(name)
        return name

    def node(self, name: str, op: O.Op, *srcs: str, quant: dict | None = None) -> str:
        ins = [self.g.type(s) for s in srcs]
        shape = output_shape(op, [t.shape for t in ins])
        temporal = all(t.temporal for t in ins) and not isinstance(op, O.TimeMean)
        kind = Kind.SPIKE if op.NEURON else Kind.CURRENT
        self.g.add(name, op, TensorType(shape, kind, None, temporal))
        for src, port in zip(srcs, op.in_ports, strict=True):
            self.g.connect(src, name, port)
        if quant is not None:
            self.g.node_meta(name)["quant"] = quant
        return name

    def done(self, *outputs: str) -> Graph:
        self.g.outputs.extend(outputs)
        problems = lint(self.g)
        assert not problems, "; ".join(map(str, problems))
        return self.g


@pytest.fixture
def builder() -> Callable[..., Builder]:
    """``builder(T)`` -> a fresh :class:`Builder`."""
    return Builder


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20250101)


@pytest.fixture
def one_thread():  # noqa: ANN201
    """One torch thread for the training tests (this host's 2 cores are shared), then restored."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
