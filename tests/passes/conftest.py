"""Shared helpers for pass tests: a hand graph builder and an independent evaluator.

The evaluator is deliberately separate from ``snncc.reference`` (written concurrently): it is a
direct float64 transcription of each op's docstring, with torch only for convolution and pooling,
so that "same outputs before and after a pass" does not rely on the code being tested.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.shapes import output_shape
from snncc.ir.types import Kind, TensorType


class Builder:
    """Build a graph node by node; types come from the IR shape rules (kind given by the test)."""

    def __init__(self, name: str = "t") -> None:
        self.g = Graph(name)

    def input(self, name: str, shape: tuple[int, ...], kind: Kind = Kind.CURRENT) -> str:
        self.g.add(name, O.Input(shape=shape, kind_in=kind), TensorType(shape, kind))
        self.g.inputs.append(name)
        return name

    def node(
        self, name: str, op: O.Op, *srcs: str, kind: Kind = Kind.CURRENT, bound: int | None = None
    ) -> str:
        ins = [self.g.type(s).shape for s in srcs]
        self.g.add(name, op, TensorType(output_shape(op, ins), kind, bound))
        for src, port in zip(srcs, op.in_ports, strict=True):
            self.g.connect(src, name, port)
        return name

    def output(self, *names: str) -> Graph:
        self.g.outputs.extend(names)
        return self.g


def _conv(op: O.Conv1d | O.Conv2d, x: np.ndarray) -> np.ndarray:
    fn = F.conv1d if isinstance(op, O.Conv1d) else F.conv2d
    bias = None if op.bias is None else torch.tensor(np.array(op.bias, np.float64))
    y = fn(
        torch.tensor(np.array(x, np.float64))[None],
        torch.tensor(np.array(op.weight, np.float64)),
        bias,
        stride=op.stride,
        padding=op.padding,
        dilation=op.dilation,
        groups=op.groups,
    )
    return y[0].numpy()


def _bn(op: O.BatchNorm, x: np.ndarray) -> np.ndarray:
    shape = [1] * x.ndim
    shape[op.axis % x.ndim] = -1
    p = {k: np.asarray(v).reshape(shape) for k, v in op.arrays().items()}
    return (x - p["running_mean"]) / np.sqrt(p["running_var"] + op.eps) * p["weight"] + p["bias"]


def _maxpool(op: O.MaxPool2d, x: np.ndarray) -> np.ndarray:
    t = torch.tensor(np.array(x, np.float64))[None]
    y = F.max_pool2d(t, op.kernel, op.stride, op.padding, op.dilation)
    return y[0].numpy()


STATELESS: dict[type[O.Op], Callable[..., np.ndarray]] = {
    O.Linear: lambda op, x: x @ op.weight.T + (0 if op.bias is None else op.bias),
    O.Conv1d: _conv,
    O.Conv2d: _conv,
    O.BatchNorm: _bn,
    O.MaxPool2d: _maxpool,
    O.Permute: lambda op, x: np.transpose(x, op.dims),
    O.Reshape: lambda op, x: np.reshape(x, op.shape),
    O.Repeat: lambda op, x: np.tile(x, op.repeats),
    O.Scale: lambda op, x: op.factor * x,
    O.Add: lambda op, *xs: sum(xs),
    O.Mul: lambda op, a, b: a * b,
    O.MatMul: lambda op, a, b: a @ b,
    O.Sum: lambda op, x: np.sum(x, axis=op.axes, keepdims=op.keepdim),
    O.Mean: lambda op, x: np.mean(x, axis=op.axes, keepdims=op.keepdim),
}


def _lif_step(op: O.LIF | O.IF, v: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vr = 0.0 if op.v_reset is None else op.v_reset
    if isinstance(op, O.IF):
        h = v + x
    elif op.decay_input:
        h = v + (x - (v - vr)) / op.tau
    else:
        h = v - (v - vr) / op.tau + x
    s = (h >= op.v_threshold).astype(np.float64)
    v = h - s * op.v_threshold if op.v_reset is None else h * (1 - s) + vr * s
    return s, v


def simulate(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``g`` for ``T`` steps (feeds are ``[T, *shape]``); return ``[T, *shape]`` per node."""
    steps = next(iter(feeds.values())).shape[0]
    vals: dict[str, list[np.ndarray]] = {n: [] for n in g.nodes()}
    state: dict[str, np.ndarray] = {}
    for t in range(steps):
        for n in g.topo_order():
            op, xs = g.op(n), [vals[d][t] for d in g.inputs_of(n)]
            if isinstance(op, O.Input):
                y = np.asarray(feeds[n][t], np.float64)
            elif isinstance(op, (O.LIF, O.IF)):
                v0 = state.get(n, np.full(xs[0].shape, 0.0 if op.v_reset is None else op.v_reset))
                y, state[n] = _lif_step(op, v0, xs[0])
            elif isinstance(op, O.Delay):
                src = vals[g.inputs_of(n)[0]]
                y = src[t - op.steps] if t >= op.steps else np.zeros_like(xs[0])
            else:
                y = STATELESS[type(op)](op, *xs)
            vals[n].append(np.asarray(y, np.float64))
    return {n: np.stack(v) for n, v in vals.items()}


@pytest.fixture
def builder() -> Callable[..., Builder]:
    return Builder


@pytest.fixture
def run() -> Callable[[Graph, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Evaluate a graph and return only its outputs (by output position)."""

    def _run(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vals = simulate(g, feeds)
        return {f"out{i}": vals[o] for i, o in enumerate(g.outputs)}

    return _run
