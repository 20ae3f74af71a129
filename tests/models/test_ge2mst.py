"""Ge²mS-T (snncc interpretation): ExpG-IF coding, GW-SSA, reference parity and verification.

The ExpG-IF expectations are binary expansions worked by hand and the QCFS-style quantisation
formula of docs/seed-models.md §5.2; the GW-SSA expectation is global attention with a per-head
0/1 window mask built from token coordinates, independent of the model's reshapes.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import torch
from torch import nn

import snncc
import snncc.models as M
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind, TensorType
from snncc.nn import IF, LIF, ExpGIF
from snncc.passes.manager import run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.verify_spike_driven import check_spike_driven
from snncc.reference import run

NAME = "ge2mst-tiny"


# -- ExpG-IF ------------------------------------------------------------------------------------
def _group_input(values: list[float], bits: int) -> torch.Tensor:
    """Each value delivered at the first step of its group, zeros at the others: ``[G*K, n]``."""
    x = torch.zeros(len(values) * bits, 1, dtype=torch.float64)
    for g, a in enumerate(values):
        x[g * bits, 0] = a
    return x


@pytest.mark.parametrize(
    ("theta", "bits", "a", "want"),
    [
        (1.0, 4, 0.7, [0.5, 0.0, 0.125, 0.0625]),  # floor(0.7 * 16) = 11 = 1011b
        (1.0, 4, 0.3, [0.0, 0.25, 0.0, 0.0]),  # floor(4.8) = 4 = 0100b
        (2.0, 3, 1.5, [1.0, 0.5, 0.0]),  # 1.5 / 2 = 0.75 = 0.110b, bit weights 1, 0.5, 0.25
        (1.0, 4, 1.2, [0.5, 0.25, 0.125, 0.0625]),  # saturates at 15/16
        (1.0, 2, 0.2, [0.0, 0.0]),  # below the LSB weight 1/4: silent
    ],
)
def test_expgif_group_emits_the_k_bit_code_msb_first(theta, bits, a, want) -> None:
    y = ExpGIF(theta=theta, bits=bits)(_group_input([a], bits))
    assert y[:, 0].tolist() == want


def test_expgif_code_equals_k_bit_quantization_for_many_values() -> None:
    theta, bits = 1.5, 5
    a = torch.linspace(-0.2, 1.7, 397, dtype=torch.float64)
    y = ExpGIF(theta=theta, bits=bits)(a.reshape(1, -1).repeat(bits, 1) * _first_step(bits))
    levels = 2**bits
    want = [
        theta * min(max(math.floor(v / theta * levels), 0), levels - 1) / levels for v in a.tolist()
    ]
    assert y.sum(0).tolist() == want  # exact: every subtraction is of a power-of-two fraction


def _first_step(bits: int) -> torch.Tensor:
    mask = torch.zeros(bits, 1, dtype=torch.float64)
    mask[0] = 1.0
    return mask


def test_expgif_groups_carry_the_quantization_residual() -> None:
    # Group 1: 23/32 codes as 11/16 (1011b), residual 1/32 carries; group 2 sees 9/32 + 1/32 =
    # 5/16 = 0101b.
    y = ExpGIF(theta=1.0, bits=4)(_group_input([23 / 32, 9 / 32], 4))
    assert y[:, 0].tolist() == [0.5, 0, 0.125, 0.0625, 0, 0.25, 0, 0.0625]


def test_reference_expgif_kernel_matches_the_module() -> None:
    g = Graph("expgif")
    g.add("x", O.Input(shape=(7,)), TensorType((7,)))
    g.inputs.append("x")
    g.add("n", O.ExpGIF(theta=0.75, bits=3), TensorType((7,), Kind.SPIKE))
    g.connect("x", "n", "in")
    g.outputs.append("n")
    g.meta["timesteps"] = 6
    x = torch.randn(6, 4, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    want = ExpGIF(theta=0.75, bits=3)(x).numpy()
    res = run(g, {"x": x.numpy()})
    assert np.array_equal(res.outputs["n"], want)
    assert np.array_equal(res.spikes["n"], (want != 0).astype(np.uint8)) and want.any()


# -- GW-SSA ---------------------------------------------------------------------------------------
def _window_mask(n: int, window: int) -> torch.Tensor:
    """``[N, N]`` 0/1: tokens (i, j), (i', j') of an n x n grid share a window x window tile."""
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    i, j = i.flatten(), j.flatten()
    ti, tj = i // window, j // window
    return ((ti[:, None] == ti[None, :]) & (tj[:, None] == tj[None, :])).double()


def test_gwssa_runs_each_head_group_at_its_scale() -> None:
    model = _lively(M.create(NAME).double())
    attn = model.block[1].attn  # block 0 is the conv block
    assert attn.windows == (2, 4) and attn.heads_per_scale == (2, 2)
    seen: dict[str, torch.Tensor] = {}
    for n in ("q_neuron", "k_neuron", "v_neuron"):
        getattr(attn, n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o))
    attn.attn_neuron.register_forward_hook(lambda m, i, o: seen.__setitem__("in", i[0]))
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(x)
    q, k, v = (seen[n] for n in ("q_neuron", "k_neuron", "v_neuron"))  # [T, B, C, 4, 4]
    assert all(bool(((t == 0) | (t == 1)).all()) for t in (q, k, v))  # binary IF spikes
    T, B, C = q.shape[:3]
    qh, kh, vh = (t.reshape(T, B, 4, 8, 16).transpose(-1, -2) for t in (q, k, v))
    # Heads 0-1: 2x2 windows; heads 2-3: global (the whole 4x4 grid).
    mask = torch.stack([_window_mask(4, 2)] * 2 + [torch.ones(16, 16).double()] * 2)
    want = ((qh @ kh.transpose(-1, -2)) * mask) @ vh * 0.125
    want = want.transpose(-1, -2).reshape(T, B, C, 16)
    assert torch.equal(seen["in"], want)
    all_global = ((qh @ kh.transpose(-1, -2)) @ vh * 0.125).transpose(-1, -2).reshape_as(want)
    assert not torch.equal(want, all_global)  # the local scale is not vacuous


def test_config_validation_and_grouping() -> None:
    assert {"ge2mst-tiny", "ge2mst-4-384-cifar100"} <= set(M.names())
    cfg = M.spec(NAME).config
    for knob in ("bits", "theta", "attn_theta", "scales", "heads_per_scale", "qkv_neuron"):
        assert knob in cfg
    model = M.create(NAME)
    assert (model.T, model.bits, model.groups) == (4, 2, 2)
    assert {m.bits for m in model.modules() if isinstance(m, ExpGIF)} == {2}
    with pytest.raises(ValueError, match="multiple of bits"):
        M.create(NAME, T=5)
    with pytest.raises(ValueError, match="sum to num_heads"):
        M.create(NAME, heads_per_scale=(1, 2))
    with pytest.raises(ValueError, match="divide"):
        M.create(NAME, scales=(3, 0))


# -- the model in the reference interpreter -------------------------------------------------------
def _lively(model: nn.Module, seed: int = 1) -> nn.Module:
    """Spread BN statistics and affine terms so every layer fires (bias centred at 0: ExpG-IF
    neurons fire already at theta/2**K, much more readily than a LIF at 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n, dt = m.num_features, m.running_mean.dtype
                m.running_mean.copy_(torch.randn(n, generator=g, dtype=dt) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g, dtype=dt) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g, dtype=dt) * 2 + 1)
                m.bias.copy_(torch.randn(n, generator=g, dtype=dt) * 0.8)
    return model.eval()


@cache
def _traced(double: bool, **overrides: object) -> tuple[nn.Module, Graph]:
    s = M.spec(NAME)
    torch.manual_seed(0)
    model = M.create(NAME, **overrides)
    model = _lively(model.double() if double else model)
    x = torch.zeros((1, *s.input_shape), dtype=torch.float64 if double else torch.float32)
    return model, snncc.trace(model, x, timesteps=s.timesteps, time_axis=s.time_axis)


def test_reference_reproduces_pytorch_spike_for_spike() -> None:
    model, graph = _traced(True)
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    outs: dict[str, np.ndarray] = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, p=p: outs.__setitem__(p, o.numpy()))
        for p, m in model.named_modules()
        if isinstance(m, (LIF, IF, ExpGIF))
    ]
    with torch.no_grad():
        want = model(x).numpy()
    for h in hooks:
        h.remove()
    front, _ = run_pipeline(graph, FRONT_PIPELINE)
    for g in (graph, front):  # as traced, and after canonicalize + fold_bn
        res = run(g, {g.inputs[0]: x.numpy()}, mode="float", record="all")
        np.testing.assert_allclose(res.outputs[g.outputs[0]], want, rtol=0, atol=1e-5)
        assert set(res.spikes) == set(outs)
        counts = res.spike_counts()
        for node, y in outs.items():
            assert np.array_equal(res.values[node], y), node  # bit weights included
            assert np.array_equal(res.spikes[node], (y != 0).astype(np.uint8)), node
            assert np.array_equal(counts[node], (y != 0).sum(axis=0)), node
    spikes = {n: y != 0 for n, y in outs.items()}
    assert all(s.any() for s in spikes.values())
    overall = np.mean(np.concatenate([s.ravel() for s in spikes.values()]))
    assert 0.05 <= overall <= 0.5, overall
    n_exp = sum(isinstance(m, ExpGIF) for m in model.modules())
    assert n_exp == 12 and sum(isinstance(m, IF) for m in model.modules()) == 3


def test_default_ge2mst_is_spike_driven_with_graded_events() -> None:
    _, graph = _traced(False)
    g, _ = run_pipeline(graph, FRONT_PIPELINE)
    r = check_spike_driven(g)
    assert r.spike_driven and r.violations == []
    assert r.encoding == ["patch_embed.proj_conv"] and r.readout == ["head"]
    assert len(r.dynamic_ops) == 4  # (Q Kᵀ) and (·) V at each of the two scales
    for n in g.nodes():
        op = g.op(n)
        if isinstance(op, O.ExpGIF):
            assert (g.type(n).kind, g.type(n).bound) == (Kind.GRADED, 2)
        elif isinstance(op, O.IF):
            assert g.type(n).kind is Kind.SPIKE


def test_bit_weighted_qkv_makes_attention_products_violations() -> None:
    _, graph = _traced(False, qkv_neuron="expgif")
    g, _ = run_pipeline(graph, FRONT_PIPELINE)
    r = check_spike_driven(g)
    assert not r.spike_driven
    assert len(r.violations) == 4 and {v.op for v in r.violations} == {"MatMul"}
    assert all("graded2" in v.input_kind for v in r.violations)
