"""LSFormer (snncc interpretation): SPooling and dilated local-window SSA, traced and verified.

The expected values are worked by hand or computed independently of ``snncc.models.lsformer``
(a 0/1 window mask built from token coordinates, applied to global attention), so a wrong
partition, a wrong dilation group or a wrong pooling rule fails these tests.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snncc
import snncc.models as M
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind
from snncc.models.lsformer import SPooling, local_attention, window_partition, window_reverse
from snncc.nn import IF, LIF
from snncc.passes.manager import run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.verify_spike_driven import check_spike_driven
from snncc.reference import run

NAME = "lsformer-tiny"


# -- SPooling -------------------------------------------------------------------------------------
def _spike_frames() -> torch.Tensor:
    """``[T=2, B=1, C=1, 4, 4]`` binary input used by the hand-worked SPooling cases."""
    t0 = [[1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 1], [0, 0, 1, 1]]
    t1 = [[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    return torch.tensor([t0, t1], dtype=torch.float64).reshape(2, 1, 1, 4, 4)


def test_spooling_2x2_if_counts_window_spikes_over_time() -> None:
    # Windows at t0 hold 2, 1, 1, 4 spikes -> 0.5, 0.25, 0.25, 1.0: TL and BR reach 0.5 and fire
    # (hard reset). At t1 only TR receives 1 spike: 0.25 carried + 0.25 = 0.5 fires.
    pool = SPooling(kernel_size=2, stride=2, padding=0, threshold=0.5, neuron="if")
    out = pool(_spike_frames())
    want = torch.tensor([[[1, 0], [0, 1]], [[0, 1], [0, 0]]], dtype=torch.float64)
    assert torch.equal(out.reshape(2, 2, 2), want)
    # Max pooling (an OR) would fire in all four windows at t0: SPooling is not max pooling.
    assert torch.equal(F.max_pool2d(_spike_frames()[0], 2), torch.ones(1, 1, 2, 2).double())


def test_spooling_default_3x3_window_divides_by_nine_including_padding() -> None:
    # k=3, s=2, p=1 on 4x4: output (1,1) sees rows/cols 1..3 = 5 spikes -> 5/9 >= 0.5 fires;
    # (0,0) sees 2, (0,1) 2 and (1,0) 1 (padding counts in the 9). At t1 the only spike, at
    # (0, 2), lies in the window of output (0,1) only: 2/9 carried + 1/9 = 1/3 < 0.5.
    out = SPooling()(_spike_frames())
    want = torch.tensor([[[0, 0], [0, 1]], [[0, 0], [0, 0]]], dtype=torch.float64)
    assert torch.equal(out.reshape(2, 2, 2), want)


def test_spooling_lif_variant_needs_a_full_window() -> None:
    # LIF (tau 2, decay_input): H = 0.5 * r at t0, so threshold 0.5 needs r = 1 (all 4 inputs).
    out = SPooling(kernel_size=2, stride=2, padding=0, neuron="lif")(_spike_frames())
    assert out[0].reshape(2, 2).tolist() == [[0.0, 0.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="neuron"):
        SPooling(neuron="max")


# -- dilated windows ------------------------------------------------------------------------------
def _token_ids(h: int = 4, w: int = 4) -> torch.Tensor:
    """``[1, 1, 1, h, w]`` tensor whose value at token (i, j) is its id ``i * w + j``."""
    return torch.arange(h * w, dtype=torch.float64).reshape(1, 1, 1, h, w)


@pytest.mark.parametrize(
    ("window", "dilation", "groups"),
    [
        (2, 2, [{0, 2, 8, 10}, {1, 3, 9, 11}, {4, 6, 12, 14}, {5, 7, 13, 15}]),
        (2, 1, [{0, 1, 4, 5}, {2, 3, 6, 7}, {8, 9, 12, 13}, {10, 11, 14, 15}]),
        (4, 1, [set(range(16))]),
    ],
)
def test_window_partition_groups_tokens_by_hand(window: int, dilation: int, groups) -> None:
    parts = window_partition(_token_ids(), 1, window, dilation)  # [1, 1, 1, nW, w², 1]
    got = [set(int(v) for v in win.flatten()) for win in parts[0, 0, 0]]
    assert sorted(got, key=min) == groups


@pytest.mark.parametrize(("window", "dilation"), [(2, 1), (2, 2), (4, 2), (2, 4), (8, 1)])
def test_window_reverse_inverts_partition(window: int, dilation: int) -> None:
    x = torch.randn(2, 3, 8, 8, 8)
    y = window_partition(x, 4, window, dilation)
    assert y.shape == (2, 3, 4, 64 // window**2, window**2, 2)
    assert torch.equal(window_reverse(y, 8, 8, window, dilation), x)


def _window_mask(h: int, w: int, window: int, dilation: int) -> torch.Tensor:
    """``[N, N]`` 0/1 mask from coordinates: same dilation phase and same tile in both axes."""
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    i, j = i.flatten(), j.flatten()

    def same(a: torch.Tensor) -> torch.Tensor:
        phase = (a[:, None] % dilation) == (a[None, :] % dilation)
        tile = (a[:, None] // dilation // window) == (a[None, :] // dilation // window)
        return phase & tile

    return (same(i) & same(j)).double()


def _masked_global(q, k, v, heads: int, mask: torch.Tensor, scale: float) -> torch.Tensor:
    """Global SSA ``((Q Kᵀ) ⊙ mask) V * scale`` on ``[T, B, C, H, W]``; head j = channels j*d…"""
    T, B, C, H, W = q.shape
    d = C // heads
    qh, kh, vh = (t.reshape(T, B, heads, d, H * W).transpose(-1, -2) for t in (q, k, v))
    a = ((qh @ kh.transpose(-1, -2)) * mask) @ vh * scale
    return a.transpose(-1, -2).reshape(T, B, C, H, W)


@pytest.mark.parametrize(("window", "dilation"), [(2, 1), (2, 2), (4, 1), (4, 2), (8, 1)])
def test_local_attention_equals_globally_masked_attention(window: int, dilation: int) -> None:
    g = torch.Generator().manual_seed(window * 10 + dilation)
    q, k, v = ((torch.rand(2, 2, 16, 8, 8, generator=g) < 0.4).double() for _ in range(3))
    mask = _window_mask(8, 8, window, dilation)
    want = _masked_global(q, k, v, 4, mask, 0.125)
    assert torch.equal(local_attention(q, k, v, 4, window, dilation, 0.125), want)
    assert torch.equal(local_attention(q, k, v, 4, window, dilation, 0.125, "q_kv"), want)
    unmasked = _masked_global(q, k, v, 4, torch.ones_like(mask), 0.125)
    assert torch.equal(want, unmasked) == (window == 8)  # the mask matters unless global


# -- the model ------------------------------------------------------------------------------------
def _lively(model: nn.Module, seed: int = 1) -> nn.Module:
    """Spread BN statistics and affine terms (as tests/test_float_parity.py) so layers fire."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n, dt = m.num_features, m.running_mean.dtype
                m.running_mean.copy_(torch.randn(n, generator=g, dtype=dt) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g, dtype=dt) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g, dtype=dt) * 2 + 1)
                m.bias.copy_(torch.randn(n, generator=g, dtype=dt) * 0.8 + 1.0)
    return model.eval()


def _torch_run(model: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    spikes: dict[str, np.ndarray] = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, p=p: spikes.__setitem__(p, o.numpy()))
        for p, m in model.named_modules()
        if isinstance(m, (LIF, IF))
    ]
    try:
        with torch.no_grad():
            out = model(x).numpy()
    finally:
        for h in hooks:
            h.remove()
    return out, spikes


def test_registry_exposes_every_knob() -> None:
    assert {"lsformer-tiny", "lsformer-4-384"} <= set(M.names())
    cfg = M.spec(NAME).config
    for knob in ("window", "dilations", "spool_threshold", "spool_neuron", "attn_scale"):
        assert knob in cfg
    assert M.spec(NAME).input_shape == (1, 16, 16) and M.spec(NAME).timesteps == 4
    with pytest.raises(ValueError, match="divisible"):
        M.create(NAME, window=3)  # 4x4 token grid
    model = M.create(NAME, dilations=(2,))
    assert [b.attn.dilation for b in model.block] == [2, 2]
    assert [b.attn.dilation for b in M.create(NAME).block] == [1, 2]


def test_model_attention_is_the_dilated_window_attention() -> None:
    model = _lively(M.create(NAME).double())
    seen: dict[str, torch.Tensor] = {}
    for i, blk in enumerate(model.block):
        for n in ("q_lif", "k_lif", "v_lif"):
            getattr(blk.attn, n).register_forward_hook(
                lambda m, inp, o, key=f"{i}.{n}": seen.__setitem__(key, o)
            )
        blk.attn.attn_lif.register_forward_hook(
            lambda m, inp, o, key=f"{i}.in": seen.__setitem__(key, inp[0])
        )
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(x)
    for i, dilation in enumerate((1, 2)):
        q, k, v = (seen[f"{i}.{n}"] for n in ("q_lif", "k_lif", "v_lif"))
        want = _masked_global(q, k, v, 4, _window_mask(4, 4, 2, dilation), 0.125)
        assert torch.equal(seen[f"{i}.in"], want.flatten(3))
        assert float(want.sum()) > 0


@cache
def _traced(double: bool) -> tuple[nn.Module, Graph]:
    s = M.spec(NAME)
    torch.manual_seed(0)
    model = M.create(NAME)
    model = _lively(model.double() if double else model)
    x = torch.zeros((1, *s.input_shape), dtype=torch.float64 if double else torch.float32)
    return model, snncc.trace(model, x, timesteps=s.timesteps, time_axis=s.time_axis)


def test_reference_reproduces_pytorch_spike_for_spike() -> None:
    model, graph = _traced(True)
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    want, spikes = _torch_run(model, x)
    front, _ = run_pipeline(graph, FRONT_PIPELINE)
    for g in (graph, front):  # as traced, and after canonicalize + fold_bn
        res = run(g, {g.inputs[0]: x.numpy()}, mode="float")
        np.testing.assert_allclose(res.outputs[g.outputs[0]], want, rtol=0, atol=1e-5)
        assert set(res.spikes) == set(spikes)
        counts = res.spike_counts()
        for node, s in spikes.items():
            assert np.array_equal(res.spikes[node], s.astype(np.uint8)), node
            assert np.array_equal(counts[node], s.sum(axis=0).astype(np.int64)), node
    rates = {n: float(s.mean()) for n, s in spikes.items()}
    assert all(r > 0 for r in rates.values()), rates  # every layer fires, SPooling included
    overall = np.mean(np.concatenate([s.ravel() for s in spikes.values()]))
    assert 0.05 <= overall <= 0.5, overall
    assert {"patch_embed.spool3.neuron", "patch_embed.spool4.neuron"} <= set(spikes)


def test_lsformer_is_spike_driven() -> None:
    _, graph = _traced(False)
    g, _ = run_pipeline(graph, FRONT_PIPELINE)
    r = check_spike_driven(g)
    assert r.spike_driven and r.violations == []
    assert r.encoding == ["patch_embed.proj_conv"] and r.readout == ["head"]
    assert len(r.dynamic_ops) == 4  # (Q Kᵀ) and (·) V in each of the 2 blocks
    pools = [n for n in g.nodes() if isinstance(g.op(n), O.AvgPool2d)]
    assert len(pools) == 2
    for n in pools:  # SPooling averages spikes: an accumulate, read by a spiking neuron
        assert g.type(g.inputs_of(n)[0]).kind is Kind.SPIKE
        assert all(g.op(u).NEURON for u, _ in g.users(n))
