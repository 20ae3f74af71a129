"""The runtime environment and the bridge to it (snncc.runtime.bridge, snncc.runtime.jobs).

The Lava test doubles as a check of the fixed-point semantics the Lava backend is built on:
expected spike times are derived by hand from docs/hardware-semantics.md §2.1 (LIF arithmetic)
and §2.4 (one step per Dense hop), not taken from a previous run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snncc.diagnostics import SnnccError
from snncc.runtime.bridge import run_in_runtime, runtime_python

LAVA_SMOKE = "snncc.backends.lava.runtime.smoke"
SPINNAKER_SMOKE = "snncc.backends.spinnaker.runtime.smoke"


def spike_steps(raster: np.ndarray) -> list[list[int]]:
    """Per neuron, the 1-based Lava time steps at which it spiked (row t is step t + 1)."""
    return [(np.flatnonzero(raster[:, i]) + 1).tolist() for i in range(raster.shape[1])]


@pytest.mark.runtime
def test_lava_fixed_pt_spike_times_and_one_step_hop() -> None:
    # Derivation (hardware-semantics §2.1, PyLifModelBitAcc; v-units are the integers in u, v):
    #   u <- trunc(u * (4096 - (du + 1)) / 4096) + (a_in << 6)
    #   v <- trunc(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp)
    #   spike when v > vth << 6 (strict), then v <- 0
    # With du = 4095 the current is this step's input only (u = 64 * a_in); with dv = 0 there
    # is no leak; vth = 1 gives the threshold 64.
    #
    # LIF1 has no input (u = 0) and bias b per step, so v = b, 2b, ... until v > 64:
    #   neuron 0, b = 40: v = 40, 80 > 64 -> spike at step 2, v = 0; period 2 -> 2, 4, 6, 8, 10
    #   neuron 1, b = 24: v = 24, 48, 72 > 64 -> spike at step 3; period 3  -> 3, 6, 9
    # LIF2 has no bias. Dense delivers a spike of step t at step t + 1 (§2.4), as a_in = w = 2,
    # so u = 128 and v = 128 > 64: LIF2 fires in that step and resets; otherwise u = v = 0.
    # The weights cross over (weights[post, pre]): LIF2 neuron 0 listens to LIF1 neuron 1,
    # LIF2 neuron 1 to LIF1 neuron 0:
    #   LIF2 neuron 0: 3 + 1, 6 + 1, 9 + 1 = 4, 7, 10
    #   LIF2 neuron 1: 2 + 1, ..., 8 + 1   = 3, 5, 7, 9   (10 + 1 is past the 10 steps)
    params = {
        "weights": [[0, 2], [2, 0]],
        "du": 4095,
        "dv": 0,
        "vth": 1,
        "bias_mant": [40, 24],
        "bias_exp": 0,
        "steps": 10,
    }
    out, result = run_in_runtime(LAVA_SMOKE, {}, params, timeout=300)

    assert result["lava_nc"] == "0.10.0"
    assert out["s1"].shape == out["s2"].shape == (10, 2)
    assert spike_steps(out["s1"]) == [[2, 4, 6, 8, 10], [3, 6, 9]]
    assert spike_steps(out["s2"]) == [[4, 7, 10], [3, 5, 7, 9]]
    # The hop latency is exactly one step: LIF2 is LIF1 crossed over and shifted by one.
    shifted = np.zeros_like(out["s1"])
    shifted[1:] = out["s1"][:-1, ::-1]
    np.testing.assert_array_equal(out["s2"], shifted)
    # Monitor records v after the step: reset to 0 in a spiking step, LIF2 never holds charge.
    np.testing.assert_array_equal(out["v1"][:, 0], [40, 0] * 5)
    np.testing.assert_array_equal(out["v1"][:, 1], [24, 48, 0] * 3 + [24])
    np.testing.assert_array_equal(out["v2"], np.zeros((10, 2)))


@pytest.mark.runtime
def test_pynn_brian2_and_spinnaker_import() -> None:
    _, result = run_in_runtime(SPINNAKER_SMOKE, {}, {}, timeout=300)
    assert result["pyNN"] == "0.13.0"
    assert result["brian2"] == "2.9.0"
    assert result["sPyNNaker"] == "1!7.4.1"
    # The bridge gives every job a fresh HOME, so the virtual-board config is always written.
    assert result["spynnaker_cfg_written"] is True


@pytest.mark.runtime
def test_failing_runtime_job_quotes_stderr() -> None:
    with pytest.raises(SnnccError) as info:
        run_in_runtime("snncc.no_such_runtime_module", {}, {}, timeout=120)
    assert info.value.code == "RT002"
    assert "No module named snncc.no_such_runtime_module" in str(info.value)


def test_runtime_python_missing_names_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-python-here"
    monkeypatch.setenv("SNNCC_RUNTIME_PYTHON", str(missing))
    with pytest.raises(SnnccError) as info:
        runtime_python()
    message = str(info.value)
    assert "make setup" in message
    assert "SNNCC_RUNTIME_PYTHON" in message
    assert str(missing) in message
    assert info.value.code == "RT001"
    # run_in_runtime reports the same error before writing anything.
    with pytest.raises(SnnccError, match="make setup"):
        run_in_runtime("snncc.backends.lava.runtime.smoke", {}, {})
