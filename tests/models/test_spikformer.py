"""Spikformer: published parameter counts, official names, SEW residual and SSA semantics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snncc.models
from snncc.models.blocks import param_counts
from snncc.nn import LIF

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _excite(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Calibrate BatchNorm statistics on ``x`` (scaled up) so an untrained model fires enough
    spikes everywhere for the maths below to be tested on non-trivial values; eval mode after."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.fill_(3.0)
                m.bias.fill_(0.5)
                m.momentum = 1.0
        model.train()(x)
    return model.eval()


def _formula(depth: int, dim: int, classes: int, in_ch: int = 3, qkv_bias: bool = False) -> int:
    """Compute-path count from docs/seed-models.md §2.8 (Spikformer's SPS has the same convs)."""
    tokenizer = 9 * (in_ch * dim // 8 + dim**2 // 32 + dim**2 // 8 + dim**2 // 2 + dim**2)
    tokenizer += 2 * (dim // 8 + dim // 4 + dim // 2 + dim + dim)
    block = 12 * dim**2 + 24 * dim + (3 * dim if qkv_bias else 0)  # CIFAR code: Linear q/k/v
    return tokenizer + depth * block + dim * classes + classes


@pytest.mark.parametrize(
    ("name", "published", "depth", "dim", "classes", "qkv_bias"),
    [
        ("spikformer-8-384", 16.81, 8, 384, 1000, False),
        ("spikformer-8-512", 29.68, 8, 512, 1000, False),
        ("spikformer-8-768", 66.34, 8, 768, 1000, False),
        ("spikformer-4-384", 9.32, 4, 384, 10, True),
    ],
)
def test_parameter_counts(
    name: str, published: float, depth: int, dim: int, classes: int, qkv_bias: bool
) -> None:
    with torch.device("meta"):
        model = snncc.models.create(name)
    counts = param_counts(model)
    assert counts.compute == _formula(depth, dim, classes, qkv_bias=qkv_bias)
    assert counts.total - counts.compute == depth * 4 * dim  # two unused LayerNorms per block
    assert abs(counts.total - published * 1e6) / (published * 1e6) < 0.005


def _official_keys(depth: int, layout: str) -> set[str]:
    """Keys of ``ZK-Zhou/spikformer`` imagenet/model.py (conv) or cifar10/model.py (linear)."""
    keys = {"head.weight", "head.bias", "patch_embed.rpe_conv.weight"}
    keys.update(f"patch_embed.rpe_bn.{s}" for s in BN)
    for sfx in ("", "1", "2", "3"):
        keys.add(f"patch_embed.proj_conv{sfx}.weight")
        keys.update(f"patch_embed.proj_bn{sfx}.{s}" for s in BN)
    fc = "conv" if layout == "imagenet" else "linear"
    for j in range(depth):
        b = f"block.{j}"
        keys.update(f"{b}.{n}.{s}" for n in ("norm1", "norm2") for s in ("weight", "bias"))
        for p in ("q", "k", "v"):
            keys.add(f"{b}.attn.{p}_{fc}.weight")
            if layout == "cifar":
                keys.add(f"{b}.attn.{p}_linear.bias")
            keys.update(f"{b}.attn.{p}_bn.{s}" for s in BN)
        keys.update({f"{b}.attn.proj_{fc}.weight", f"{b}.attn.proj_{fc}.bias"})
        keys.update(f"{b}.attn.proj_bn.{s}" for s in BN)
        for m in ("fc1", "fc2"):
            keys.update({f"{b}.mlp.{m}_{fc}.weight", f"{b}.mlp.{m}_{fc}.bias"})
            keys.update(f"{b}.mlp.{m}_bn.{s}" for s in BN)
    return keys


@pytest.mark.parametrize(
    ("name", "overrides", "depth", "layout"),
    [
        ("spikformer-tiny", {}, 2, "cifar"),
        ("spikformer-4-384", {"embed_dims": 64, "num_heads": 4}, 4, "cifar"),
        ("spikformer-8-512", {"embed_dims": 64, "depths": 2, "img_size": 64}, 2, "imagenet"),
    ],
)
def test_state_dict_names_are_the_official_ones(
    name: str, overrides: dict, depth: int, layout: str
) -> None:
    model = snncc.models.create(name, **overrides)
    sd = model.state_dict()
    assert set(sd) == _official_keys(depth, layout)
    fresh = snncc.models.create(name, **overrides)
    fresh.load_state_dict(sd, strict=True)
    config = {**snncc.models.spec(name).config, **overrides}
    x = torch.randn(2, config["in_channels"], config["img_size"], config["img_size"]) * 3
    with torch.no_grad():
        assert torch.equal(model.eval()(x), fresh.eval()(x))


def test_neurons_and_pools_follow_the_official_layout() -> None:
    model = snncc.models.create("spikformer-tiny")
    lifs = {n: m for n, m in model.named_modules() if isinstance(m, LIF)}
    expected = {f"patch_embed.proj_lif{s}" for s in ("", "1", "2", "3")} | {"patch_embed.rpe_lif"}
    for j in range(2):
        expected |= {f"block.{j}.attn.{p}_lif" for p in ("q", "k", "v", "attn", "proj")}
        expected |= {f"block.{j}.mlp.fc1_lif", f"block.{j}.mlp.fc2_lif"}
    assert set(lifs) == expected
    assert all(m.tau == 2.0 and m.detach_reset for m in lifs.values())
    assert {n for n, m in lifs.items() if m.v_threshold != 1.0} == {
        "block.0.attn.attn_lif",
        "block.1.attn.attn_lif",
    }
    assert lifs["block.0.attn.attn_lif"].v_threshold == 0.5
    pools = [n for n, m in model.named_modules() if isinstance(m, nn.MaxPool2d)]
    assert pools == ["patch_embed.maxpool2", "patch_embed.maxpool3"]  # CIFAR SPS


def test_sew_residual_feeds_integer_counts_to_the_next_layers() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 1, 16, 16) * 3
    model = _excite(snncc.models.create("spikformer-tiny"), x)
    seen: dict[str, torch.Tensor] = {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.LayerNorm)):
            m.register_forward_hook(lambda mod, i, o, name=name: seen.__setitem__(name, i[0]))
    model(x)
    assert not any(n.endswith(("norm1", "norm2")) for n in seen)
    # The block input is the RPE sum LIF + spikes: integers in {0, 1, 2}, not just spikes.
    q_in = seen["block.0.attn.q_linear"]
    assert torch.equal(q_in, q_in.round()) and q_in.min() >= 0 and q_in.max() <= 2
    assert q_in.max() == 2
    # After block 0 the stream holds counts up to 2 + 2 (one spike per branch).
    q1 = seen["block.1.attn.q_linear"]
    assert torch.equal(q1, q1.round()) and q1.max() <= 4 and q1.max() > 1
    # Layers fed by a LIF read spikes.
    for n in ("patch_embed.proj_conv1", "patch_embed.rpe_conv", "block.0.mlp.fc2_linear"):
        assert bool(((seen[n] == 0) | (seen[n] == 1)).all()), n


def test_ssa_scales_q_kt_v_by_one_eighth() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 1, 16, 16) * 3
    model = _excite(snncc.models.create("spikformer-tiny"), x)
    attn = model.block[0].attn
    out: dict[str, torch.Tensor] = {}
    for n in ("q_lif", "k_lif", "v_lif"):
        getattr(attn, n).register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o))
    attn.attn_lif.register_forward_hook(lambda m, i, o: out.__setitem__("attn_in", i[0]))
    model(x)
    q, k, v = out["q_lif"], out["k_lif"], out["v_lif"]  # [T, B, N, C] token-major
    T, B, N, C = q.shape
    qh, kh, vh = (x.reshape(T, B, N, 4, C // 4) for x in (q, k, v))
    expected = torch.einsum("tbnhc,tbmhc,tbmhe->tbnhe", qh, kh, vh) * 0.125
    assert torch.allclose(out["attn_in"], expected.reshape(T, B, N, C))
    assert float(out["attn_in"].detach().sum()) > 0  # the check is not vacuous


def test_imagenet_layout_runs_on_small_images() -> None:
    model = snncc.models.create("spikformer-8-768", embed_dims=48, num_heads=6, depths=1,
                                img_size=32, num_classes=7).eval()  # fmt: skip
    assert model.T == 4
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
