"""SpikingJelly as an outside oracle for snncc's float reference.

snncc's float reference was written against snncc's own ``snncc.nn.LIF``/``IF``; here the
neurons come from SpikingJelly itself (``spikingjelly.activation_based.neuron``, multi-step
``step_mode='m'``, its Torch implementation: float64 inputs take SpikingJelly's reference path,
no CuPy, no Triton), and so do the spikes the reference must reproduce:

- every LIF charge form (decay_input, hard reset to 0 / to r / soft reset) and IF, on random
  inputs and on dyadic inputs whose arithmetic is exact so that the membrane lands *on* the
  threshold (the ``>=`` convention is tested, not just the generic case);
- zoo models (spikingformer-tiny: LIF; lsformer-tiny: IF and LIF) rebuilt with SpikingJelly
  neurons in place of snncc's: their forward spikes, layer by layer, equal the float reference
  run of the graph snncc traces from that very model, which is the graph traced from the
  snncc-neuron model.

Note (SpikingJelly 2.0.0): for ``decay_input=False`` with ``v_reset`` in {None, 0} it charges
``v - v / tau + x`` where SpikingJelly 0.0.0.0.12 (and snncc) charge ``v * (1 - 1/tau) + x``;
the membranes may differ in the last bit, the spikes here do not (no zoo model uses that form).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

# Installed by `make setup` from constraints/compile-nodeps.txt; a missing one is a setup bug
# and fails here, locally as in CI.
from spikingjelly.activation_based import functional, neuron
from torch import nn

from snncc.frontend.trace import trace
from snncc.ir import ops as O
from snncc.ir.types import TensorType
from snncc.models import registry
from snncc.nn.neurons import IF, LIF
from snncc.reference import run
from snncc.reference.context import KernelCtx
from snncc.reference.float_kernels import KERNELS

T, B, N = 12, 4, 3000
CHARGES = list(itertools.product([2.0, 1.7, 3.0], [True, False], [0.0, None, -0.25]))


def _reference(op: O.Op, x: np.ndarray) -> np.ndarray:
    ctx = KernelCtx("n", 2, x.shape[0], x.shape[1], TensorType(tuple(x.shape[2:])))
    return KERNELS[type(op)](op, [x], ctx)


def _inputs(kind: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    if kind == "random":
        return rng.normal(0.4, 0.8, (T, B, N))
    return rng.integers(-2, 14, (T, B, N)) / 8.0  # dyadic: IF and tau = 2 charges are exact


@pytest.mark.parametrize("kind", ["random", "dyadic"])
@pytest.mark.parametrize(("tau", "decay_input", "v_reset"), CHARGES)
def test_lif_node_equals_the_reference(
    kind: str, tau: float, decay_input: bool, v_reset: float | None
) -> None:
    x = _inputs(kind)
    threshold = 0.5
    sj = neuron.LIFNode(tau=tau, decay_input=decay_input, v_threshold=threshold,
                        v_reset=v_reset, step_mode="m")  # fmt: skip
    got = sj(torch.from_numpy(x)).numpy()
    op = O.LIF(tau=tau, v_threshold=threshold, v_reset=v_reset, decay_input=decay_input)
    want = _reference(op, x)
    assert np.array_equal(got, want)
    assert 0.02 < want.mean() < 0.9  # neither silent nor saturated


@pytest.mark.parametrize("kind", ["random", "dyadic"])
@pytest.mark.parametrize("v_reset", [0.0, None, -0.25])
def test_if_node_equals_the_reference(kind: str, v_reset: float | None) -> None:
    x = _inputs(kind)
    sj = neuron.IFNode(v_threshold=0.75, v_reset=v_reset, step_mode="m")
    got = sj(torch.from_numpy(x)).numpy()
    want = _reference(O.IF(v_threshold=0.75, v_reset=v_reset), x)
    assert np.array_equal(got, want)
    assert 0.02 < want.mean() < 0.9  # neither silent nor saturated


def test_dyadic_inputs_land_on_the_threshold() -> None:
    """The dyadic case is not vacuous: some membranes equal the threshold exactly (and fire)."""
    x = _inputs("dyadic")
    v = np.zeros(x.shape[1:])
    hits = 0
    for t in range(T):
        v = v + x[t]
        hits += int(np.count_nonzero(v == 0.75))
        v = np.where(v >= 0.75, 0.0, v)
    assert hits > 100


def with_spikingjelly(model: nn.Module) -> nn.Module:
    """``model`` with every snncc LIF/IF replaced by SpikingJelly's multi-step node."""
    for path, mod in list(model.named_modules()):
        if isinstance(mod, LIF):
            new: nn.Module = neuron.LIFNode(
                tau=mod.tau, decay_input=mod.decay_input, v_threshold=mod.v_threshold,
                v_reset=mod.v_reset, detach_reset=mod.detach_reset, step_mode="m",
            )  # fmt: skip
        elif isinstance(mod, IF):
            new = neuron.IFNode(v_threshold=mod.v_threshold, v_reset=mod.v_reset,
                                detach_reset=mod.detach_reset, step_mode="m")  # fmt: skip
        else:
            continue
        parent, _, leaf = path.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, new)
    return model


def _lively(name: str) -> nn.Module:
    """The zoo model in float64 with BatchNorm spread out so that its layers fire."""
    torch.manual_seed(0)
    model = registry.create(name).double().eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.weight.uniform_(1.0, 4.0, generator=gen)
                mod.bias.normal_(0.3, 0.5, generator=gen)
    return model


@pytest.mark.parametrize("name", ["spikingformer-tiny", "lsformer-tiny"])
def test_zoo_model_rebuilt_with_spikingjelly(name: str) -> None:
    spec = registry.spec(name)
    native = _lively(name)
    x = torch.rand((B, *spec.input_shape), dtype=torch.float64,
                   generator=torch.Generator().manual_seed(2))  # fmt: skip
    graph = trace(native, x, timesteps=spec.timesteps, time_axis=spec.time_axis)
    sj_model = with_spikingjelly(_lively(name))
    kinds = {type(m).__name__ for m in sj_model.modules()}
    assert "LIFNode" in kinds and "LIF" not in kinds and "IF" not in kinds
    assert trace(sj_model, x, timesteps=spec.timesteps, time_axis=spec.time_axis) == graph
    spikes: dict[str, np.ndarray] = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, p=p: spikes.__setitem__(p, o.detach().numpy()))
        for p, m in sj_model.named_modules()
        if isinstance(m, (neuron.LIFNode, neuron.IFNode))
    ]
    functional.reset_net(sj_model)
    with torch.no_grad():
        out = sj_model(x).numpy()
    for h in hooks:
        h.remove()
    feed = x.numpy().swapaxes(0, 1) if spec.time_axis == 1 else x.numpy()
    ref = run(graph, {graph.inputs[0]: feed})
    assert set(ref.spikes) == set(spikes)
    for n, s in ref.spikes.items():
        assert np.array_equal(s, spikes[n].reshape(s.shape).astype(np.uint8)), n
    rates = ref.firing_rates()
    assert sum(0.01 < r < 0.9 for r in rates.values()) >= 0.75 * len(rates), rates
    (ref_out,) = ref.outputs.values()
    assert np.max(np.abs(ref_out - out)) < 1e-9
