"""Spike-driven Transformer: parameter counts, official names, SDSA and membrane shortcuts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import snncc.models
from snncc.models.blocks import param_counts
from snncc.nn import LIF

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

# SDT paper / README parameter counts (M); the compute path equals Spikingformer's without
# LayerNorms (docs/seed-models.md §2.8), plus h² per block for the unused talking_heads conv.
PUBLISHED = {
    "sdt-8-384": (16.81, 16_816_024, 8, 8),
    "sdt-8-512": (29.68, 29_689_384, 8, 8),
    "sdt-8-768": (66.34, 66_338_632, 8, 8),
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


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts(name: str) -> None:
    published, compute, depth, heads = PUBLISHED[name]
    with torch.device("meta"):
        model = snncc.models.create(name)
    counts = param_counts(model)
    assert counts.compute == compute
    assert counts.total == compute + depth * heads * heads
    assert abs(counts.total - published * 1e6) / (published * 1e6) < 0.005


def _official_keys(depth: int) -> set[str]:
    """State-dict keys of BICLab/Spike-Driven-Transformer (module/sps.py, module/ms_conv.py)."""
    keys = {"head.weight", "head.bias", "patch_embed.rpe_conv.weight"}
    keys.update(f"patch_embed.rpe_bn.{s}" for s in BN)
    for sfx in ("", "1", "2", "3"):
        keys.add(f"patch_embed.proj_conv{sfx}.weight")
        keys.update(f"patch_embed.proj_bn{sfx}.{s}" for s in BN)
    for j in range(depth):
        b = f"block.{j}"
        for p in ("q", "k", "v"):
            keys.add(f"{b}.attn.{p}_conv.weight")
            keys.update(f"{b}.attn.{p}_bn.{s}" for s in BN)
        keys.update({f"{b}.attn.talking_heads.weight", f"{b}.attn.proj_conv.weight"})
        keys.add(f"{b}.attn.proj_conv.bias")
        keys.update(f"{b}.attn.proj_bn.{s}" for s in BN)
        for m in ("fc1", "fc2"):
            keys.update({f"{b}.mlp.{m}_conv.weight", f"{b}.mlp.{m}_conv.bias"})
            keys.update(f"{b}.mlp.{m}_bn.{s}" for s in BN)
    return keys


@pytest.mark.parametrize(
    ("name", "overrides", "depth"),
    [
        ("sdt-tiny", {}, 2),
        ("sdt-8-512", {"embed_dims": 64, "depths": 3, "img_size": 64}, 3),
        ("sdt-2-256-gesture", {"embed_dims": 64, "num_heads": 4}, 2),
    ],
)
def test_state_dict_names_are_the_official_ones(name: str, overrides: dict, depth: int) -> None:
    model = snncc.models.create(name, **overrides)
    sd = model.state_dict()
    assert set(sd) == _official_keys(depth)
    fresh = snncc.models.create(name, **overrides)
    fresh.load_state_dict(sd, strict=True)
    lifs = {n for n, m in model.named_modules() if isinstance(m, LIF)}
    assert {"head_lif", "block.0.attn.shortcut_lif", "block.0.attn.talking_heads_lif"} <= lifs
    assert {"patch_embed.proj_lif3", "block.0.mlp.fc1_lif", "block.0.mlp.fc2_lif"} <= lifs


def _hooks(model: nn.Module, types: tuple[type, ...]) -> dict[str, tuple[torch.Tensor, ...]]:
    seen: dict[str, tuple[torch.Tensor, ...]] = {}
    for name, m in model.named_modules():
        if isinstance(m, types):
            m.register_forward_hook(lambda mod, i, o, name=name: seen.__setitem__(name, (i[0], o)))
    return seen


def _events(batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 4, 2, 32, 32, generator=g) < 0.15).float()


def test_sdsa_is_q_masked_by_a_spiking_column_sum_of_k_and_v() -> None:
    torch.manual_seed(0)
    x = _events(3, 0) * 2
    model = _excite(snncc.models.create("sdt-tiny"), x)
    seen = _hooks(model, (LIF, nn.Conv2d, nn.Conv1d))
    model(x)
    a = "block.0.attn"
    q, k, v = (seen[f"{a}.{p}_lif"][1] for p in ("q", "k", "v"))  # [T, B, C, H, W] spikes
    T, B, C, H, W = q.shape
    qf, kf, vf = (s.reshape(T, B, C, H * W) for s in (q, k, v))
    kv_in = seen[f"{a}.talking_heads_lif"][0]  # [T, B, h, 1, d]
    expected = (kf * vf).sum(-1).reshape(T, B, 4, 1, C // 4)  # head j = channels j*d..(j+1)*d
    assert torch.equal(kv_in, expected)
    assert 0 < float(kv_in.detach().sum()) and 0 < float(
        q.detach().sum()
    )  # the check is not vacuous
    kv = seen[f"{a}.talking_heads_lif"][1].reshape(T, B, C, 1)
    proj_in = seen[f"{a}.proj_conv"][0].reshape(T, B, C, H * W)
    assert torch.equal(proj_in, qf * kv)
    assert float(proj_in.detach().sum()) > 0
    assert f"{a}.talking_heads" not in seen  # built but never called, as in the original


def test_membrane_shortcuts_and_spike_inputs() -> None:
    torch.manual_seed(1)
    x = _events(2, 1) * 2
    model = _excite(snncc.models.create("sdt-tiny"), x)
    seen = _hooks(model, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))
    blocks: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for n in ("attn", "mlp"):
        getattr(model.block[0], n).register_forward_hook(
            lambda m, i, o, n=n: blocks.__setitem__(n, (i[0], o))
        )
    model(x)
    for name, (inp, _) in seen.items():
        if isinstance(model.get_submodule(name), nn.BatchNorm2d):
            continue
        binary = bool(((inp == 0) | (inp == 1)).all())
        assert binary == (name != "patch_embed.proj_conv"), name  # only the encoder reads reals
    x_in, x_out = blocks["attn"]
    proj_bn = seen["block.0.attn.proj_bn"][1].reshape(x_in.shape)
    assert torch.allclose(x_out, x_in + proj_bn)
    m_in, m_out = blocks["mlp"]
    fc2_bn = seen["block.0.mlp.fc2_bn"][1].reshape(m_in.shape)
    assert torch.allclose(m_out, m_in + fc2_bn)


def test_event_frames_are_batch_first_time_second() -> None:
    spec = snncc.models.spec("sdt-tiny")
    assert spec.time_axis == 1 and spec.input_shape == (4, 2, 32, 32) and spec.num_classes == 8
    x = _events(3, 2)
    model = _excite(snncc.models.create("sdt-tiny"), x)
    assert model.T == 4
    y = model(x)
    assert y.shape == (3, 8)
    assert torch.allclose(model(x[1:2]), y[1:2], atol=1e-5)
    # Reversing time changes the output: the model really reads the frames in order.
    assert not torch.allclose(model(x.flip(1)), y)


def test_imagenet_config_on_small_images() -> None:
    model = snncc.models.create("sdt-8-512", embed_dims=32, num_heads=4, depths=1, img_size=32,
                                num_classes=5).eval()  # fmt: skip
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    with pytest.raises(ValueError):
        snncc.models.create("sdt-tiny", pooling_stat="01")


def test_last_pool_spikes_pools_the_spikes_entering_the_last_conv() -> None:
    """``last_pool="spikes"`` (the SpiNNaker variant) max-pools proj_lif2's spikes before
    proj_conv3, which then runs at the pooled 4x4; the original pools proj_conv3's BN output."""
    x = _events(2, 2)
    seen: dict[str, dict[str, torch.Tensor]] = {}
    for mode in ("currents", "spikes"):
        model = _excite(snncc.models.create("sdt-tiny", last_pool=mode), x)
        got = seen.setdefault(mode, {})

        def keep(name: str, got: dict = got):  # records the module's input, returns None
            return lambda _m, inputs, _out: got.update({name: inputs[0]})

        hooks = [
            getattr(model.patch_embed, m).register_forward_hook(keep(m))
            for m in ("maxpool3", "proj_conv3")
        ]
        assert model(x).shape == (2, 8)
        for h in hooks:
            h.remove()
    spikes = seen["spikes"]["maxpool3"]
    assert spikes.shape[-2:] == (8, 8) and set(spikes.unique().tolist()) == {0.0, 1.0}
    assert seen["spikes"]["proj_conv3"].shape[-2:] == (4, 4)
    assert seen["currents"]["proj_conv3"].shape[-2:] == (8, 8)
    assert len(seen["currents"]["maxpool3"].unique()) > 2  # BN outputs, not spikes
    with pytest.raises(ValueError):
        snncc.models.create("sdt-tiny", last_pool="tokens")


def test_committed_gestures_checkpoint_reaches_90_percent() -> None:
    from snncc.data import gestures
    from snncc.loading.checkpoint import load_checkpoint

    path = Path(__file__).parents[2] / "examples" / "checkpoints" / "sdt-tiny-gestures.pt"
    assert path.stat().st_size < 1_000_000
    # The real snncc loader (weights-only load, registry rebuild, strict weights): no fallback.
    ck = load_checkpoint(path)
    assert ck.source == "checkpoint" and ck.metrics is not None
    model, metrics = ck.module, ck.metrics
    x, y = gestures(64, 4, 32, 0, split="test")
    with torch.no_grad():
        acc = float((model.eval()(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    assert acc >= 0.90
    assert abs(acc - metrics["test_accuracy"]) <= 1 / len(y) + 1e-9  # batching may flip one
