"""Float kernels against torch's own functions on random float64 data (max abs diff < 1e-12).

Each test builds a tiny hand graph (which must lint), runs ``snncc.reference.run`` on
``[T, B, *shape]`` data and compares with the torch function applied to the same data with T and B
merged into torch's batch axis, or, for ops whose per-sample axes matter (structure, reductions,
broadcasting), applied to every ``[t, b]`` sample separately so the leading-axis bookkeeping is
checked independently.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snncc.ir import ops as O
from snncc.reference import run

T, B = 2, 3
TOL = 1e-12


def _run_single(builder, op: O.Op, shape: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    b = builder(T)
    b.input("x", shape)
    b.node("y", op, "x")
    return run(b.done("y"), {"x": x}).outputs["y"]


def _merged(fn: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray) -> np.ndarray:
    """Apply a torch function to ``x`` with ``[T, B]`` merged into one batch axis."""
    y = fn(torch.tensor(x.reshape((T * B,) + x.shape[2:])))
    return y.numpy().reshape((T, B) + tuple(y.shape[1:]))


def _per_sample(fn: Callable[..., torch.Tensor], *xs: np.ndarray) -> np.ndarray:
    """Apply a torch function to each ``[t, b]`` sample separately and stack the results."""
    rows = [
        torch.stack([fn(*(torch.tensor(x[t, i]) for x in xs)) for i in range(B)]) for t in range(T)
    ]
    return torch.stack(rows).numpy()


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.max(np.abs(got - want), initial=0.0) < TOL


# -- synaptic and spatial ops -------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(builder, rng, bias: bool) -> None:
    w = rng.standard_normal((5, 7))
    bb = rng.standard_normal(5) if bias else None
    x = rng.standard_normal((T, B, 4, 7))
    got = _run_single(builder, O.Linear(weight=w, bias=bb), (4, 7), x)
    want = F.linear(torch.tensor(x), torch.tensor(w), None if bb is None else torch.tensor(bb))
    _close(got, want.numpy())


CONV2D_CASES = [
    # c_in, c_out, kernel, stride, padding, dilation, groups, bias, (H, W)
    (3, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, True, (8, 8)),
    (4, 6, (3, 2), (2, 1), (0, 2), (1, 1), 2, False, (9, 7)),
    (4, 4, (3, 3), (2, 2), (2, 1), (2, 3), 4, True, (11, 10)),
    (2, 3, (1, 1), (1, 2), (0, 0), (1, 1), 1, True, (5, 6)),
    (6, 4, (2, 3), (3, 2), (1, 2), (2, 1), 2, True, (12, 9)),
]


@pytest.mark.parametrize("case", CONV2D_CASES)
def test_conv2d_matches_torch(builder, rng, case) -> None:
    cin, cout, k, stride, padding, dilation, groups, bias, hw = case
    w = rng.standard_normal((cout, cin // groups) + k)
    bb = rng.standard_normal(cout) if bias else None
    op = O.Conv2d(
        weight=w, bias=bb, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    x = rng.standard_normal((T, B, cin) + hw)
    got = _run_single(builder, op, (cin,) + hw, x)
    tb = None if bb is None else torch.tensor(bb)
    want = _merged(lambda t: F.conv2d(t, torch.tensor(w), tb, stride, padding, dilation, groups), x)
    _close(got, want)


CONV1D_CASES = [
    # c_in, c_out, k, stride, padding, dilation, groups, bias, L
    (4, 6, 1, 1, 0, 1, 1, True, 9),
    (4, 6, 3, 2, 1, 1, 2, False, 10),
    (6, 6, 3, 1, 3, 2, 6, True, 7),
    (3, 5, 2, 3, 2, 3, 1, True, 13),
]


@pytest.mark.parametrize("case", CONV1D_CASES)
def test_conv1d_matches_torch(builder, rng, case) -> None:
    cin, cout, k, stride, padding, dilation, groups, bias, length = case
    w = rng.standard_normal((cout, cin // groups, k))
    bb = rng.standard_normal(cout) if bias else None
    op = O.Conv1d(
        weight=w, bias=bb, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    x = rng.standard_normal((T, B, cin, length))
    got = _run_single(builder, op, (cin, length), x)
    tb = None if bb is None else torch.tensor(bb)
    want = _merged(lambda t: F.conv1d(t, torch.tensor(w), tb, stride, padding, dilation, groups), x)
    _close(got, want)


@pytest.mark.parametrize(
    "kernel,stride,padding,include_pad",
    [
        ((2, 2), (2, 2), (0, 0), True),
        ((3, 3), (2, 2), (1, 1), True),
        ((3, 3), (2, 2), (1, 1), False),
        ((3, 2), (1, 2), (1, 1), False),
        ((2, 3), (3, 1), (0, 1), True),
    ],
)
def test_avg_pool2d_matches_torch(builder, rng, kernel, stride, padding, include_pad) -> None:
    op = O.AvgPool2d(kernel=kernel, stride=stride, padding=padding, count_include_pad=include_pad)
    x = rng.standard_normal((T, B, 3, 7, 8))
    got = _run_single(builder, op, (3, 7, 8), x)
    want = _merged(
        lambda t: F.avg_pool2d(t, kernel, stride, padding, count_include_pad=include_pad), x
    )
    _close(got, want)


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation",
    [
        ((2, 2), (2, 2), (0, 0), (1, 1)),
        ((3, 3), (2, 2), (1, 1), (1, 1)),
        ((3, 2), (1, 2), (1, 1), (2, 1)),
        ((2, 3), (2, 1), (1, 1), (2, 2)),
    ],
)
def test_max_pool2d_matches_torch(builder, rng, kernel, stride, padding, dilation) -> None:
    # All values negative: zero padding instead of -inf padding would change the border outputs.
    x = rng.standard_normal((T, B, 2, 7, 8)) - 10.0
    op = O.MaxPool2d(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    got = _run_single(builder, op, (2, 7, 8), x)
    want = _merged(lambda t: F.max_pool2d(t, kernel, stride, padding, dilation), x)
    _close(got, want)
    assert np.all(got < -5.0)


def _bn_op(rng: np.random.Generator, c: int, axis: int) -> O.BatchNorm:
    return O.BatchNorm(
        weight=rng.standard_normal(c),
        bias=rng.standard_normal(c),
        running_mean=rng.standard_normal(c),
        running_var=rng.uniform(0.2, 3.0, c),
        eps=1e-5,
        axis=axis,
    )


def _torch_bn(op: O.BatchNorm, t: torch.Tensor) -> torch.Tensor:
    p = {k: torch.tensor(v) for k, v in op.arrays().items()}
    return F.batch_norm(
        t, p["running_mean"], p["running_var"], p["weight"], p["bias"], False, 0.0, op.eps
    )


def test_batch_norm_channel_axis_matches_torch(builder, rng) -> None:
    op = _bn_op(rng, 4, 0)
    x = rng.standard_normal((T, B, 4, 5, 6)) * 3
    got = _run_single(builder, op, (4, 5, 6), x)
    _close(got, _merged(lambda t: _torch_bn(op, t), x))


def test_batch_norm_last_axis_matches_torch(builder, rng) -> None:
    # BatchNorm1d over tokens [N, D] normalises D: torch wants it on axis 1, so transpose around.
    op = _bn_op(rng, 6, -1)
    x = rng.standard_normal((T, B, 5, 6)) * 3
    got = _run_single(builder, op, (5, 6), x)
    want = _merged(lambda t: _torch_bn(op, t.transpose(1, 2)).transpose(1, 2), x)
    _close(got, want)


# -- element-wise, products and broadcasting ----------------------------------------------------
def _run_binary(builder, op: O.Op, sa, sb, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    bl = builder(T)
    bl.input("a", sa)
    bl.input("b", sb)
    bl.node("y", op, "a", "b")
    return run(bl.done("y"), {"a": a, "b": b}).outputs["y"]


def test_add_aligns_per_sample_ranks(builder, rng) -> None:
    # A [D] operand must broadcast against the last axis of [N, D], not against B or T.
    a, b = rng.standard_normal((T, B, 4, 3)), rng.standard_normal((T, B, 3))
    got = _run_binary(builder, O.Add(n=2), (4, 3), (3,), a, b)
    _close(got, _per_sample(torch.add, a, b))


def test_add_three_inputs(builder, rng) -> None:
    xs = [rng.standard_normal((T, B, 2, 5)) for _ in range(3)]
    bl = builder(T)
    for i in range(3):
        bl.input(f"x{i}", (2, 5))
    bl.node("y", O.Add(n=3), "x0", "x1", "x2")
    got = run(bl.done("y"), {f"x{i}": x for i, x in enumerate(xs)}).outputs["y"]
    _close(got, _per_sample(lambda p, q, r: p + q + r, *xs))


def test_mul_broadcasts_per_sample(builder, rng) -> None:
    a, b = rng.standard_normal((T, B, 3, 4, 5)), rng.standard_normal((T, B, 4, 1))
    got = _run_binary(builder, O.Mul(), (3, 4, 5), (4, 1), a, b)
    _close(got, _per_sample(torch.mul, a, b))


@pytest.mark.parametrize(
    "sa,sb", [((2, 4, 3), (2, 3, 5)), ((2, 4, 3), (3, 5)), ((4, 3), (2, 3, 5)), ((4, 3), (3, 2))]
)
def test_matmul_batched_matches_torch(builder, rng, sa, sb) -> None:
    a, b = rng.standard_normal((T, B) + sa), rng.standard_normal((T, B) + sb)
    got = _run_binary(builder, O.MatMul(), sa, sb, a, b)
    _close(got, _per_sample(torch.matmul, a, b))


def test_scale(builder, rng) -> None:
    x = rng.standard_normal((T, B, 3, 2))
    got = _run_single(builder, O.Scale(factor=0.125), (3, 2), x)
    _close(got, (torch.tensor(x) * 0.125).numpy())


# -- structure and reductions (per-sample axes) --------------------------------------------------
STRUCTURE_CASES = [
    (O.Reshape(shape=(3, 8)), (2, 3, 4), lambda t: t.reshape(3, 8)),
    (O.Permute(dims=(2, 0, 1)), (2, 3, 4), lambda t: t.permute(2, 0, 1)),
    (O.Repeat(repeats=(2, 1, 3)), (3, 4), lambda t: t.repeat(2, 1, 3)),
    (O.Repeat(repeats=(1, 2)), (3, 4), lambda t: t.repeat(1, 2)),
    (O.Slice(axis=-1, start=1, stop=4, step=2), (3, 5), lambda t: t[:, 1:4:2]),
    (O.Slice(axis=0, start=0, stop=2), (3, 5), lambda t: t[0:2]),
    (O.Pad(axis=1, before=2, after=1), (3, 4), lambda t: F.pad(t, (2, 1))),
    (O.Pad(axis=0, before=0, after=2), (3, 4), lambda t: F.pad(t, (0, 0, 0, 2))),
    (O.Mean(axes=(1,)), (3, 4, 5), lambda t: t.mean(dim=1)),
    (O.Mean(axes=(-1, 0), keepdim=True), (3, 4, 5), lambda t: t.mean(dim=(0, 2), keepdim=True)),
    (O.Sum(axes=(0,)), (3, 4), lambda t: t.sum(dim=0)),
    (O.Sum(axes=(0, 2), keepdim=True), (3, 4, 5), lambda t: t.sum(dim=(0, 2), keepdim=True)),
]


@pytest.mark.parametrize("op,shape,fn", STRUCTURE_CASES, ids=lambda c: getattr(c, "kind", None))
def test_structure_and_reductions_per_sample(builder, rng, op, shape, fn) -> None:
    x = rng.standard_normal((T, B) + shape)
    got = _run_single(builder, op, shape, x)
    _close(got, _per_sample(fn, x))


def test_conv2d_in_column_chunks_matches_torch(builder, rng, monkeypatch) -> None:
    # A tiny column budget forces one-sample chunks: the chunked im2col path must agree too.
    from snncc.reference import float_spatial

    monkeypatch.setattr(float_spatial, "_COLUMN_BYTES", 1)
    w = rng.standard_normal((4, 1, 3, 3))
    op = O.Conv2d(weight=w, stride=(2, 1), padding=(1, 1), groups=2)
    x = rng.standard_normal((T, B, 2, 6, 5))
    got = _run_single(builder, op, (2, 6, 5), x)
    want = _merged(lambda t: F.conv2d(t, torch.tensor(w), None, (2, 1), (1, 1), 1, 2), x)
    _close(got, want)
