"""Spikingformer: published parameter counts, official names, op order, and the demo checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import snncc.models
from snncc.models.blocks import param_counts
from snncc.nn import LIF

# docs/seed-models.md §2.8: (total with the unused LayerNorms, total without them, published M).
DOC_COUNTS = {
    "spikingformer-8-384": (16_828_312, 16_816_024, 16.81),
    "spikingformer-8-512": (29_705_768, 29_689_384, 29.68),
    "spikingformer-8-768": (66_363_208, 66_338_632, 66.34),
    "spikingformer-4-384": (9_326_266, 9_320_122, 9.32),
    "spikingformer-4-256": (4_156_202, 4_152_106, 4.15),
    "spikingformer-2-384": (5_765_818, 5_762_746, 5.76),
    "spikingformer-2-256-dvs": (2_568_714, 2_566_666, 2.57),
}


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


@pytest.mark.parametrize("name", sorted(DOC_COUNTS))
def test_parameter_counts_match_the_paper(name: str) -> None:
    total, compute, published = DOC_COUNTS[name]
    with torch.device("meta"):  # 66 M parameters cost nothing on the meta device
        model = snncc.models.create(name)
    counts = param_counts(model)
    assert counts.total == total
    assert counts.compute == compute
    assert abs(counts.total - published * 1e6) / (published * 1e6) < 0.005
    assert abs(counts.compute - published * 1e6) / (published * 1e6) < 0.005


def _official_keys(depth: int, layout: str) -> set[str]:
    """State-dict keys of the authors' code (cifar10/model.py, imagenet/model.py), by pattern."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"head.weight", "head.bias"}
    if layout == "cifar":
        stages = [("block0_conv", "block0_bn")] + [
            (f"block{i}_conv", f"block{i}_bn") for i in (1, 2, 3, 4)
        ]
    else:
        stages = [("proj_conv", "proj_bn")] + [
            (f"proj{i}_conv", f"proj{i}_bn") for i in (1, 2, 3, 4)
        ]
    for conv, norm in stages:
        keys.add(f"patch_embed.{conv}.weight")
        keys.update(f"patch_embed.{norm}.{s}" for s in bn)
    for j in range(depth):
        b = f"block.{j}"
        keys.update(f"{b}.{n}.{s}" for n in ("norm1", "norm2") for s in ("weight", "bias"))
        for p in ("q", "k", "v"):
            keys.add(f"{b}.attn.{p}_conv.weight")
            keys.update(f"{b}.attn.{p}_bn.{s}" for s in bn)
        keys.update({f"{b}.attn.proj_conv.weight", f"{b}.attn.proj_conv.bias"})
        keys.update(f"{b}.attn.proj_bn.{s}" for s in bn)
        for m in ("mlp1", "mlp2"):
            keys.update({f"{b}.mlp.{m}_conv.weight", f"{b}.mlp.{m}_conv.bias"})
            keys.update(f"{b}.mlp.{m}_bn.{s}" for s in bn)
    return keys


@pytest.mark.parametrize(
    ("name", "overrides", "layout"),
    [
        ("spikingformer-tiny", {}, "cifar"),
        ("spikingformer-4-384", {"embed_dims": 64, "num_heads": 4}, "cifar"),
        ("spikingformer-8-512", {"embed_dims": 64, "depths": 2, "img_size": 64}, "imagenet"),
        ("spikingformer-2-256-dvs", {"embed_dims": 64, "num_heads": 4}, "imagenet"),
    ],
)
def test_state_dict_names_are_the_official_ones(name: str, overrides: dict, layout: str) -> None:
    model = snncc.models.create(name, **overrides)
    sd = model.state_dict()
    depth = snncc.models.spec(name).config["depths"] if "depths" not in overrides else 2
    assert set(sd) == _official_keys(depth, layout)
    fresh = snncc.models.create(name, **overrides)
    fresh.load_state_dict(sd, strict=True)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_neuron_modules_sit_where_the_official_code_has_them() -> None:
    model = snncc.models.create("spikingformer-2-256-dvs", embed_dims=64, num_heads=4)
    lifs = {n: m for n, m in model.named_modules() if isinstance(m, LIF)}
    for n in ("patch_embed.proj1_lif", "patch_embed.proj4_lif", "block.1.attn.proj_lif",
              "block.0.attn.q_lif", "block.0.attn.attn_lif", "block.0.mlp.mlp2_lif"):  # fmt: skip
        assert n in lifs, n
    assert all(m.tau == 1.5 and m.detach_reset for m in lifs.values())  # DVS code: tau 1.5
    assert lifs["block.0.attn.attn_lif"].v_threshold == 0.5
    assert {m.v_threshold for n, m in lifs.items() if not n.endswith("attn_lif")} == {1.0}
    pools = [n for n, m in model.named_modules() if isinstance(m, nn.MaxPool2d)]
    assert pools == [f"patch_embed.maxpool{i}" for i in (1, 2, 3, 4)]


def _record(model: nn.Module, types: tuple[type, ...]) -> dict[str, list[torch.Tensor]]:
    seen: dict[str, list[torch.Tensor]] = {}
    for name, m in model.named_modules():
        if isinstance(m, types):
            m.register_forward_hook(
                lambda mod, inp, out, name=name: seen.setdefault(name, []).append(inp[0])
            )
    return seen


def test_every_synaptic_layer_but_the_first_reads_spikes() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 1, 16, 16) * 2
    model = _excite(snncc.models.create("spikingformer-tiny"), x)
    seen = _record(model, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.LayerNorm))
    model(x)
    assert not any(n.endswith(("norm1", "norm2")) for n in seen), "dead LayerNorms were called"
    real = {"patch_embed.block0_conv", "head"}
    for name, inputs in seen.items():
        binary = all(bool(((x == 0) | (x == 1)).all()) for x in inputs)
        assert binary == (name not in real), name


def test_attention_is_q_kt_v_times_one_eighth_per_head() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 1, 16, 16) * 2
    model = _excite(snncc.models.create("spikingformer-tiny"), x)
    attn = model.block[0].attn
    out: dict[str, torch.Tensor] = {}
    for n in ("q_lif", "k_lif", "v_lif"):
        getattr(attn, n).register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o))
    attn.attn_lif.register_forward_hook(lambda m, i, o: out.__setitem__("attn_in", i[0]))
    model(x)
    q, k, v = out["q_lif"], out["k_lif"], out["v_lif"]  # [T, B, C, N]
    T, B, C, N = q.shape
    h, d = 4, C // 4
    qh, kh, vh = (x.reshape(T, B, h, d, N) for x in (q, k, v))  # head j = channels j*d..(j+1)*d
    expected = torch.einsum("tbhcn,tbhcm,tbhem->tbhen", qh, kh, vh) * 0.125
    assert torch.allclose(out["attn_in"], expected.reshape(T, B, C, N))
    assert float(out["attn_in"].detach().sum()) > 0  # the check is not vacuous


def test_imagenet_matmul_order_gives_the_same_network() -> None:
    torch.manual_seed(2)
    a = snncc.models.create("spikingformer-8-384", embed_dims=32, num_heads=4, depths=1,
                            img_size=32, num_classes=5).eval()  # fmt: skip
    b = snncc.models.create("spikingformer-8-384", embed_dims=32, num_heads=4, depths=1,
                            img_size=32, num_classes=5, matmul_order="qk_v").eval()  # fmt: skip
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32) * 3
    assert a(x).shape == (2, 5)
    assert torch.allclose(a(x), b(x), atol=1e-5)


def test_event_input_is_time_major_after_permute() -> None:
    torch.manual_seed(3)
    model = snncc.models.create("spikingformer-2-256-dvs", embed_dims=32, num_heads=4, T=3).eval()
    spec = snncc.models.spec("spikingformer-2-256-dvs")
    assert spec.time_axis == 1 and spec.input_shape == (16, 2, 128, 128)
    x = (torch.rand(2, 3, 2, 128, 128) < 0.1).float()
    y = model(x)
    assert y.shape == (2, 10)
    # Sample 0 alone gives the same logits: the batch axis is not mixed with time.
    assert torch.allclose(model(x[:1]), y[:1], atol=1e-5)


def _load_checkpoint(path: Path) -> tuple[nn.Module, dict]:
    """The module (eval mode) and metrics of a committed checkpoint, through the real snncc
    loader: a weights-only ``torch.load``, a registry rebuild and a ``strict=True`` weight load,
    so the test fails if the file stops being a valid snncc checkpoint (no pickle fallback)."""
    from snncc.loading.checkpoint import load_checkpoint

    ck = load_checkpoint(path)
    assert ck.source == "checkpoint" and ck.metrics is not None
    return ck.module, ck.metrics


def test_committed_digits_checkpoint_reaches_95_percent() -> None:
    from snncc.data import digits

    path = Path(__file__).parents[2] / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"
    assert path.stat().st_size < 1_000_000
    model, metrics = _load_checkpoint(path)
    x, y = digits("test", 16)
    with torch.no_grad():
        acc = float((model.eval()(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    assert acc >= 0.95
    assert abs(acc - metrics["test_accuracy"]) <= 1 / len(y) + 1e-9  # batching may flip one
