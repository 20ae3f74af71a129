"""Output-shape rules, one small function per op (a table, like the other rule sets).

Used by :func:`snncc.ir.verify.lint` to check that the types stored on a graph are consistent, and
by passes that create nodes. Shapes are per sample and per timestep.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from snncc.diagnostics import IRError
from snncc.ir import ops as O

Shape = tuple[int, ...]


def _conv_len(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _linear(op: O.Linear, ins: list[Shape]) -> Shape:
    (x,) = ins
    if not x or x[-1] != op.weight.shape[1]:
        raise IRError(f"Linear expects last axis {op.weight.shape[1]}, got input {x}")
    return x[:-1] + (op.weight.shape[0],)


def _conv1d(op: O.Conv1d, ins: list[Shape]) -> Shape:
    (x,) = ins
    if len(x) != 2 or x[0] != op.weight.shape[1] * op.groups:
        raise IRError(f"Conv1d expects [{op.weight.shape[1] * op.groups}, L], got {x}")
    k = op.weight.shape[2]
    return (op.weight.shape[0], _conv_len(x[1], k, op.stride, op.padding, op.dilation))


def _conv2d(op: O.Conv2d, ins: list[Shape]) -> Shape:
    (x,) = ins
    if len(x) != 3 or x[0] != op.weight.shape[1] * op.groups:
        raise IRError(f"Conv2d expects [{op.weight.shape[1] * op.groups}, H, W], got {x}")
    kh, kw = op.weight.shape[2:]
    h = _conv_len(x[1], kh, op.stride[0], op.padding[0], op.dilation[0])
    w = _conv_len(x[2], kw, op.stride[1], op.padding[1], op.dilation[1])
    return (op.weight.shape[0], h, w)


def _pool(op: O.AvgPool2d | O.MaxPool2d, ins: list[Shape]) -> Shape:
    (x,) = ins
    if len(x) != 3:
        raise IRError(f"{op.kind} expects [C, H, W], got {x}")
    dil = getattr(op, "dilation", (1, 1))
    h = _conv_len(x[1], op.kernel[0], op.stride[0], op.padding[0], dil[0])
    w = _conv_len(x[2], op.kernel[1], op.stride[1], op.padding[1], dil[1])
    return (x[0], h, w)


def _same(op: O.Op, ins: list[Shape]) -> Shape:
    return ins[0]


def _batchnorm(op: O.BatchNorm, ins: list[Shape]) -> Shape:
    (x,) = ins
    if not -len(x) <= op.axis < len(x) or x[op.axis] != op.weight.shape[0]:
        raise IRError(f"BatchNorm over axis {op.axis} of size {op.weight.shape[0]}, input {x}")
    return x


def _broadcast(op: O.Op, ins: list[Shape]) -> Shape:
    try:
        return tuple(np.broadcast_shapes(*ins))
    except ValueError as e:
        raise IRError(f"{op.kind}: inputs {ins} do not broadcast") from e


def _matmul(op: O.MatMul, ins: list[Shape]) -> Shape:
    a, b = ins
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        raise IRError(f"MatMul shapes {a} @ {b} do not match")
    return tuple(np.broadcast_shapes(a[:-2], b[:-2])) + (a[-2], b[-1])


def _reshape(op: O.Reshape, ins: list[Shape]) -> Shape:
    (x,) = ins
    if int(np.prod(x)) != int(np.prod(op.shape)):
        raise IRError(f"Reshape {x} -> {op.shape} changes the number of elements")
    return op.shape


def _permute(op: O.Permute, ins: list[Shape]) -> Shape:
    (x,) = ins
    if len(op.dims) != len(x):
        raise IRError(f"Permute {op.dims} on a rank-{len(x)} input")
    return tuple(x[d] for d in op.dims)


def _repeat(op: O.Repeat, ins: list[Shape]) -> Shape:
    (x,) = ins
    x = (1,) * (len(op.repeats) - len(x)) + x
    return tuple(a * r for a, r in zip(x, op.repeats, strict=True))


def _slice(op: O.Slice, ins: list[Shape]) -> Shape:
    (x,) = ins
    n = len(range(*slice(op.start, op.stop, op.step).indices(x[op.axis])))
    return x[: op.axis % len(x)] + (n,) + x[op.axis % len(x) + 1 :]


def _pad(op: O.Pad, ins: list[Shape]) -> Shape:
    (x,) = ins
    a = op.axis % len(x)
    return x[:a] + (x[a] + op.before + op.after,) + x[a + 1 :]


def _reduce(op: O.Mean | O.Sum, ins: list[Shape]) -> Shape:
    (x,) = ins
    axes = {a % len(x) for a in op.axes}
    if op.keepdim:
        return tuple(1 if i in axes else s for i, s in enumerate(x))
    return tuple(s for i, s in enumerate(x) if i not in axes)


def _input(op: O.Input, ins: list[Shape]) -> Shape:
    return op.shape


RULES: dict[type[O.Op], Callable[..., Shape]] = {
    O.Input: _input,  # the declared per-step sample shape
    O.Linear: _linear,  # last axis in -> out
    O.Conv1d: _conv1d,  # [C, L] -> [C', L']
    O.Conv2d: _conv2d,  # [C, H, W] -> [C', H', W']
    O.BatchNorm: _batchnorm,  # shape-preserving, channel axis checked
    O.AvgPool2d: _pool,  # [C, H, W] -> [C, H', W']
    O.MaxPool2d: _pool,
    O.LIF: _same,  # neurons are element-wise
    O.IF: _same,
    O.ExpGIF: _same,
    O.Add: _broadcast,  # numpy broadcasting
    O.Mul: _broadcast,
    O.Scale: _same,
    O.MatMul: _matmul,  # batched over leading axes
    O.Reshape: _reshape,
    O.Permute: _permute,
    O.Repeat: _repeat,
    O.Slice: _slice,
    O.Pad: _pad,
    O.Mean: _reduce,
    O.Sum: _reduce,
    O.TimeMean: _same,  # same shape, static
    O.Delay: _same,
    O.LoihiLIF: _same,  # target neurons are element-wise too
    O.LoihiExpGIF: _same,
    O.SpiNNakerLIF: _same,
}


def output_shape(op: O.Op, in_shapes: list[Shape]) -> Shape:
    """The output shape of ``op`` given its input shapes, or IRError."""
    return tuple(int(s) for s in RULES[type(op)](op, [tuple(s) for s in in_shapes]))
