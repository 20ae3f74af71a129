"""The mission's CI check: the simulated chip's spike counts equal the PyTorch module's, exactly.

The committed digits checkpoint is compiled for the target; the build's emitted program runs on
the target's simulator (``snncc.runtime.execute.simulate`` on ``open_build(dir)``: Lava
``Loihi2SimCfg(fixed_pt)`` for Loihi); the same build is opened as a torch module
(``snncc.torch_exact.from_build``) and run on the same test digits. Every population's
per-neuron spike count must be equal — and, stronger, every spike at every step — with the
host readout's predictions. Nothing is compared with the numpy reference here: this is the
chip against PyTorch.

One parametrisation per (target, simulator): Lava for Loihi, Brian2 (PyNN) for SpiNNaker.
Populations that exist only in the program (a SpiNNaker AND expansion of an attention product:
one neuron per product term, ``checked = False``) have no IR node and so no torch value; every
other population is compared, and every neuron node of the graph must be one of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snncc.compiler import compile_model
from snncc.data.digits import digits
from snncc.runtime.build import open_build
from snncc.runtime.execute import simulate
from snncc.torch_exact import from_build

from .zoo import CHECKPOINT

SAMPLES = 4
BUDGETS = {"loihi": "2MiB", "spinnaker": "1GiB"}
#: (target, simulator) pairs whose builds ``snncc run`` can simulate.
SIMULATORS = [
    pytest.param("loihi", "lava", id="loihi-lava"),
    pytest.param("spinnaker", "brian2", id="spinnaker-brian2"),
]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Lazily compiled digits-checkpoint builds, one per target."""
    root = tmp_path_factory.mktemp("ci")

    class Builds(dict):
        def __missing__(self, target: str) -> Path:
            out = root / target
            compile_model(str(CHECKPOINT), target=target, budget=BUDGETS[target], out_dir=out)
            self[target] = out
            return out

    return Builds()


@pytest.mark.runtime
@pytest.mark.parametrize(("target", "simulator"), SIMULATORS)
def test_simulated_spike_counts_equal_the_torch_module(
    builds: dict[str, Path], target: str, simulator: str
) -> None:
    path = builds[target]
    build = open_build(path, simulator=simulator)
    x, y = digits("test")
    x, y = x[:SAMPLES], y[:SAMPLES]
    chip = simulate(build, x, y, batch_size=SAMPLES)
    prog = from_build(path)
    assert prog.mode == target
    res = prog(prog.feeds(x), record="all")
    counts = chip.counts()
    assert set(counts) == {p.name for p in build.spec.populations}
    compared = [p for p in build.spec.populations if getattr(p, "checked", True)]
    assert set(prog.neurons) <= {p.name for p in compared}
    for p in compared:
        trains = (res.values[p.name] != 0).to(torch.uint8).numpy()
        want = trains.sum(axis=0, dtype=np.int64)
        assert counts[p.name].shape == want.shape, p.name
        diff = np.argwhere(counts[p.name] != want)
        if diff.size:
            at = tuple(diff[0])
            pytest.fail(
                f"{p.name}: sample/neuron {list(at)} spiked {counts[p.name][at]} times on "
                f"{simulator}, {want[at]} times in torch"
            )
        assert np.array_equal(chip.spikes[p.name], trains), f"{p.name}: same counts, other steps"
    assert sum(int(c.sum()) for c in counts.values()) > 0
    (out,) = res.outputs.values()
    torch_pred = out.reshape(SAMPLES, -1).argmax(dim=-1).numpy()
    assert np.array_equal(torch_pred, chip.predictions)
