"""End-to-end float parity: PyTorch model == trace + front passes + reference interpreter.

This is the foundation's central promise (architecture.md, "Reference interpreter"): on a
Spikformer-style (SEW residual) and a Spikingformer-style (membrane shortcut) model with 2 blocks,
D = 32, 4 heads and T = 4, the interpreter reproduces the model's outputs within 1e-5 and every
neuron's spike train exactly. Spikes are recorded from the torch modules themselves with forward
hooks, independently of snncc.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import snncc
from snncc.models import create, spec
from snncc.nn import LIF
from snncc.passes.manager import run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.reference import run

MODELS = ["spikformer-tiny", "spikingformer-tiny", "sdt-tiny"]


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Random BN statistics and affine terms so that layers fire at varied rates."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g, dtype=m.running_mean.dtype) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g, dtype=m.running_var.dtype) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g, dtype=m.weight.dtype) * 2 + 1)
            m.bias.data.copy_(torch.randn(n, generator=g, dtype=m.bias.dtype) * 0.8 + 1.0)


def _torch_spikes(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    spikes: dict[str, np.ndarray] = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, p=path: spikes.__setitem__(p, o.numpy()))
        for path, m in model.named_modules()
        if isinstance(m, LIF)
    ]
    with torch.no_grad():
        out = model(x)
    for h in hooks:
        h.remove()
    return out, spikes


@pytest.mark.parametrize("name", MODELS)
def test_reference_reproduces_pytorch(name: str) -> None:
    s = spec(name)
    torch.manual_seed(0)
    model = create(name).double().eval()
    _randomise(model, seed=1)
    batch = 3
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(batch, *s.input_shape, dtype=torch.float64, generator=gen)
    if s.time_axis is not None:
        x = (x > 0.8).double()  # event frames are 0/1
    out, torch_spikes = _torch_spikes(model, x)

    g = snncc.trace(model, x[:1], timesteps=s.timesteps, time_axis=s.time_axis)
    g, _ = run_pipeline(g, FRONT_PIPELINE)
    feed = x.numpy() if s.time_axis is None else x.numpy().swapaxes(0, 1)  # IR inputs are [T, B]
    res = run(g, {g.inputs[0]: feed})

    # Outputs within 1e-5 (float64: in practice ~1e-12).
    np.testing.assert_allclose(res.outputs[g.outputs[0]], out.numpy(), rtol=0, atol=1e-5)
    # Every neuron module is a node with the same name, and its spike train is identical.
    assert set(res.spikes) == set(torch_spikes)
    for node, ref in torch_spikes.items():
        np.testing.assert_array_equal(res.spikes[node], ref, err_msg=node)
    # The comparison is not trivial: the network as a whole fires 5-50 % of the time, and
    # every layer fires at least once.
    rate = np.mean(np.concatenate([v.ravel() for v in torch_spikes.values()]))
    assert 0.05 <= rate <= 0.5, rate
    assert all(v.any() for v in torch_spikes.values())
