"""The programmable neuron ``LoihiExpGIF``: its integer kernel, and its relation to ExpG-IF.

Expectations come from the float ExpG-IF kernel (the PyTorch-equal oracle) on inputs where the
integer neuron must agree with it exactly: integer-valued currents and a theta whose thresholds
``theta·2^-(k+1)`` are integers. Then v stays an integer in both, every comparison and soft
reset is the same operation, and the payload times ``theta·2^-K`` is the float output.
"""

from __future__ import annotations

import numpy as np
import pytest

from snncc.diagnostics import IRError
from snncc.ir import ops as O
from snncc.ir import serialize
from snncc.ir.graph import Graph
from snncc.ir.types import Kind, TensorType
from snncc.passes.infer_types import infer_node
from snncc.reference.context import KernelCtx
from snncc.reference.float_kernels import KERNELS as FLOAT_KERNELS
from snncc.reference.loihi_kernels import expgif_trace, loihi_expgif


@pytest.mark.parametrize(("theta", "bits"), [(8.0, 3), (4.0, 2), (2.0, 1), (64.0, 4)])
def test_integer_neuron_equals_float_expgif_on_an_exact_grid(theta: float, bits: int) -> None:
    rng = np.random.default_rng(bits)
    t, shape = 4 * bits, (2, 40)
    x = rng.integers(-3, int(theta), (t, *shape)).astype(np.float64)
    ctx = KernelCtx("n", 2, t, shape[0], TensorType(shape[1:]))
    want = FLOAT_KERNELS[O.ExpGIF](O.ExpGIF(theta=theta, bits=bits), [x], ctx)
    ths = tuple(int(theta) >> (k + 1) for k in range(bits))
    op = O.LoihiExpGIF(bits=bits, thresholds=ths, bias=np.zeros(1, np.int64))
    got = loihi_expgif(op, [x], ctx)
    assert (want != 0).any() and (want == 0).any()
    np.testing.assert_array_equal(got * (theta / 2**bits), want)


def test_bias_saturation_and_phase() -> None:
    a = np.full((6, 1), 3_000_000, np.int64)
    v, y = expgif_trace(a, (4, 2), bias=np.array([5_000_000]))
    assert v.max() <= 2**23 - 1  # the 24-bit state saturates
    assert y[:, 0].tolist() == [2, 1, 2, 1, 2, 1]
    _, y = expgif_trace(a, (4, 2), bias=0, phase=1)  # a run starting at bit 1
    assert y[:2, 0].tolist() == [1, 2]


def test_op_validates_its_fields() -> None:
    with pytest.raises(IRError, match="one per bit"):
        O.LoihiExpGIF(bits=2, thresholds=(4,))
    with pytest.raises(IRError, match="thresholds"):
        O.LoihiExpGIF(bits=1, thresholds=(0,))
    with pytest.raises(IRError, match="bias"):
        O.LoihiExpGIF(bits=1, thresholds=(1,), bias=np.array([0.5]))
    assert O.LoihiExpGIF(bits=3, thresholds=(4, 2, 1)).payloads == (4, 2, 1)


def test_type_and_serialisation() -> None:
    g = Graph("one")
    g.meta["timesteps"] = 2
    g.add("x", O.Input(shape=(3,)), TensorType((3,)))
    g.inputs.append("x")
    for name, bits in (("graded", 2), ("binary", 1)):
        op = O.LoihiExpGIF(bits=bits, thresholds=(2, 1)[:bits], bias=np.arange(3, dtype=np.int64))
        g.add(name, op)
        g.connect("x", name)
        g.set_type(name, infer_node(g, name))
        g.outputs.append(name)
    assert g.type("graded").kind is Kind.GRADED and g.type("graded").bound == 2
    assert g.type("binary").kind is Kind.SPIKE
    doc, arrays = serialize.to_dict(g)
    assert serialize.from_dict(doc, arrays) == g


# -- the one-group schedule (``start``): what ANN conversion deploys ----------------------------
def test_one_group_float_neuron_by_hand() -> None:
    """theta 8, 3 bits, start 2: integrates 1 + 2 + 3 = 6 by step 2, emits 6 = 110b as 4, 2, 0
    at steps 2..4, then stays silent and ignores the later inputs of 9."""
    x = np.array([1.0, 2.0, 3.0, 9.0, 9.0, 9.0, 9.0])[:, None, None]
    ctx = KernelCtx("n", 2, 7, 1, TensorType((1,)))
    y = FLOAT_KERNELS[O.ExpGIF](O.ExpGIF(theta=8.0, bits=3, start=2), [x], ctx)
    assert y[:, 0, 0].tolist() == [0.0, 0.0, 4.0, 2.0, 0.0, 0.0, 0.0]
    # without start the same input keeps firing in every group
    y = FLOAT_KERNELS[O.ExpGIF](O.ExpGIF(theta=8.0, bits=3), [x], ctx)
    assert y[5:, 0, 0].any()


def test_one_group_integer_neuron_by_hand() -> None:
    """thresholds (4, 2, 1), bias 1, start 1: v = (2 + 1) + (2 + 1) = 6 at step 1; payloads
    4, 2, 0 at steps 1..3; nothing after, and neither input nor bias is added after step 1."""
    a = np.array([2, 2, 50, 50, 50, 50])[:, None]
    v, y = expgif_trace(a, (4, 2, 1), bias=np.array([1]), start=1)
    assert y[:, 0].tolist() == [0, 4, 2, 0, 0, 0]
    assert v[:, 0].tolist() == [3, 2, 0, 0, 0, 0]
    _, y = expgif_trace(a[1:], (4, 2, 1), bias=np.array([1]), phase=1, start=1)  # mid-sample
    # a run from step 1 (v not carried in): only a[1] + bias = 3 = 011b, payloads 0, 2, 1
    assert y[:, 0].tolist() == [0, 2, 1, 0, 0]


@pytest.mark.parametrize(("theta", "bits", "start"), [(8.0, 3, 0), (4.0, 2, 3), (64.0, 4, 5)])
def test_one_group_integer_neuron_equals_float(theta: float, bits: int, start: int) -> None:
    rng = np.random.default_rng(start)
    t, shape = start + bits + 3, (2, 40)
    x = rng.integers(-3, int(theta), (t, *shape)).astype(np.float64)
    ctx = KernelCtx("n", 2, t, shape[0], TensorType(shape[1:]))
    want = FLOAT_KERNELS[O.ExpGIF](O.ExpGIF(theta=theta, bits=bits, start=start), [x], ctx)
    ths = tuple(int(theta) >> (k + 1) for k in range(bits))
    op = O.LoihiExpGIF(bits=bits, thresholds=ths, bias=np.zeros(1, np.int64), start=start)
    got = loihi_expgif(op, [x], ctx)
    assert (want[start : start + bits] != 0).any() and not want[:start].any()
    assert not want[start + bits :].any()
    np.testing.assert_array_equal(got * (theta / 2**bits), want)


def test_start_is_validated() -> None:
    with pytest.raises(IRError, match="start"):
        O.ExpGIF(theta=1.0, bits=2, start=-1)
    with pytest.raises(IRError, match="start"):
        O.LoihiExpGIF(bits=1, thresholds=(1,), start=1.5)


def test_nn_module_start_matches_the_ir_kernel() -> None:
    import torch

    from snncc.nn import ExpGIF

    x = np.random.default_rng(3).uniform(-0.2, 1.0, (9, 2, 5))
    ctx = KernelCtx("n", 2, 9, 2, TensorType((5,)))
    want = FLOAT_KERNELS[O.ExpGIF](O.ExpGIF(theta=1.0, bits=3, start=4), [x], ctx)
    got = ExpGIF(theta=1.0, bits=3, start=4)(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_array_equal(got, want)
    assert want[4:7].any() and not want[:4].any() and not want[7:].any()
