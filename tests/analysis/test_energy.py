"""SOP / energy analysis: published MAC count, and SOPs checked against PyTorch's own spikes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import snncc
import snncc.models as M
from snncc.analysis import analyze, costed_layers, prepare
from snncc.analysis.energy import MODELS
from snncc.analysis.feeds import load_samples
from snncc.diagnostics import SnnccError
from snncc.ir.types import Kind

TINY = "spikingformer-tiny"
N_SAMPLES = 8


def _trace(module: nn.Module, name: str) -> snncc.ir.graph.Graph:
    s = M.spec(name)
    x = torch.zeros(1, *s.input_shape)
    return prepare(snncc.trace(module, x, timesteps=s.timesteps, time_axis=s.time_axis))


def test_first_conv_macs_of_spikingformer_8_768_match_the_published_log() -> None:
    """Spikingformer's ImageNet log: 0.521 G MAC for 8-768 at 224×224, T = 4 (seed-models §1.3)."""
    torch.manual_seed(0)
    g = _trace(M.create("spikingformer-8-768").eval(), "spikingformer-8-768")
    T = g.meta["timesteps"]
    layers = costed_layers(g)
    first = layers[0]
    assert g.type(first.input_node).kind is Kind.CURRENT  # the encoding conv reads pixels: MAC
    assert first.flops * T == pytest.approx(0.521e9, rel=0.005)
    # The log's MAC total is the first conv plus the head, which runs once per sample (after the
    # mean over T): 3·3·3·96·224²·4 + 768·1000 + 1000 = 0.52099 G.
    host = [la for la in layers if g.type(la.input_node).kind is Kind.CURRENT]
    assert [la.node for la in host] == [first.node, "head"]
    macs = sum(la.flops * (T if la.temporal else 1) for la in host)
    assert macs == pytest.approx(0.521e9, rel=0.001)


@pytest.fixture(scope="module")
def active_tiny() -> nn.Module:
    """spikingformer-tiny with weights scaled so that every layer sees some spikes."""
    torch.manual_seed(0)
    m = M.create(TINY).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                mod.weight.normal_(0.2 / fan_in**0.5, 2.5 / fan_in**0.5)
    return m


def _torch_syops(mod: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """The reference counter's FLOPs for one call, on the module's own [T·B, …] tensors."""
    if isinstance(mod, nn.Linear):
        rows = int(np.prod(inp.shape[:-1]))
        bias = rows * mod.out_features if mod.bias is not None else 0
        return rows * mod.in_features * mod.out_features + bias
    positions = inp.shape[0] * int(np.prod(out.shape[2:]))
    per = int(np.prod(mod.kernel_size)) * mod.in_channels * (mod.out_channels // mod.groups)
    return per * positions + (mod.out_channels * positions if mod.bias is not None else 0)


def _torch_costs(m: nn.Module, x: torch.Tensor) -> tuple[dict, dict]:
    """Per-layer (class, SOPs per sample) and LIF firing rates, from forward hooks only."""
    costs: dict[str, tuple[str, float]] = {}
    rates: dict[str, float] = {}

    def layer_hook(name: str):
        def hook(mod: nn.Module, args: tuple, out: torch.Tensor) -> None:
            inp = args[0].detach().double()
            flops = _torch_syops(mod, inp, out)
            binary = bool(((inp == 0) | (inp == 1)).all())
            sops = flops * inp.mean().item() if binary else float(flops)
            costs[name] = ("AC" if binary else "MAC", sops / x.shape[0])

        return hook

    def lif_hook(name: str):
        def hook(mod: nn.Module, args: tuple, out: torch.Tensor) -> None:
            rates[name] = out.detach().double().mean().item()

        return hook

    handles = []
    for name, mod in m.named_modules():
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            handles.append(mod.register_forward_hook(layer_hook(name)))
        elif name.endswith(("q_lif", "k_lif", "v_lif")):
            handles.append(mod.register_forward_hook(lif_hook(name)))
    with torch.no_grad():
        m(x)
    for h in handles:
        h.remove()
    return costs, rates


def test_per_layer_sops_match_pytorch_recorded_spikes(active_tiny: nn.Module) -> None:
    g = _trace(active_tiny, TINY)
    x, _ = load_samples("digits", g, N_SAMPLES)
    report = analyze(g, x, model=TINY, data="digits")
    want, rates = _torch_costs(active_tiny, torch.from_numpy(x))

    got = {r.node: (r.klass, r.sops) for r in report.layers}
    assert set(got) == set(want)
    assert any(0.01 < (r.fr_in or 0) < 0.99 for r in report.layers)  # a non-trivial check
    for node, (klass, sops) in want.items():
        assert got[node][0] == klass, node
        assert got[node][1] == pytest.approx(sops, rel=1e-9, abs=1e-6), node

    # Attention: T·h·N·d²·(min(fr_K, fr_V) + fr_Q) per block, from the torch LIF outputs.
    T, h, n_tok, d = 4, 4, 16, 8
    assert len(report.attention) == 2
    for i, a in enumerate(report.attention):
        fq, fk, fv = (rates[f"block.{i}.attn.{p}_lif"] for p in "qkv")
        assert a.sops == pytest.approx(T * h * n_tok * d * d * (min(fk, fv) + fq), rel=1e-9)

    t = report.totals
    assert t.acs == pytest.approx(
        sum(s for k, s in want.values() if k == "AC") + sum(a.sops for a in report.attention)
    )
    assert t.macs == pytest.approx(sum(s for k, s in want.values() if k == "MAC"))
    by_name = {e["name"]: e for e in report.energy}
    assert by_name["45nm"]["joules"] == pytest.approx(4.6e-12 * t.macs + 0.9e-12 * t.acs)
    assert {e["name"] for e in report.energy} == {m.name for m in MODELS}
    assert all(e["provenance"] for e in report.energy)
    assert "pre-silicon, 0.75 V, minimum" in by_name["loihi"]["label"]


def test_count_inputs_are_macs_and_cost_events_per_spike() -> None:
    """Spikformer's SEW residual feeds counts: MAC in the 45 nm model, k events on a chip."""
    torch.manual_seed(0)
    g = _trace(M.create("spikformer-tiny").eval(), "spikformer-tiny")
    x, _ = load_samples(None, g, 2, random=True)
    report = analyze(g, x)
    counts = [r for r in report.layers if r.input_kind.startswith("count")]
    assert counts and all(r.klass == "MAC" and r.sops == r.runs * r.flops for r in counts)
    for r in counts:
        assert r.events == pytest.approx(r.fr_in * r.runs * r.flops)


def test_energy_needs_data_unless_random_is_asked_for() -> None:
    torch.manual_seed(0)
    g = _trace(M.create("spikformer-tiny").eval(), "spikformer-tiny")
    with pytest.raises(SnnccError) as e:
        load_samples(None, g, 4)
    assert e.value.exit_code == 2 and "--random" in (e.value.hint or "")
    with pytest.raises(SnnccError):
        load_samples("gestures", g, 4)  # a static-image model cannot take event frames
