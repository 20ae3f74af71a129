"""snncc's CPU model of Lava's ``DelayDense`` (``backends/lava/runtime/fast_models.py``) against
Lava's own ``PyDelayDenseModelBitAcc``: the same process, run once under each model, must send
the same ``a_out`` at every step (scalar and per-synapse delays, positive and negative weight
exponents, binary and graded input)."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import DelayDense
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor
    from lava.utils.weightutils import SignMode
    from snncc.backends.lava.runtime.fast_models import sim_config

    STEPS = 40

    def trace(data, cfg, **kw):
        src = RingBuffer(data=data)
        conn = DelayDense(sign_mode=SignMode.MIXED, **kw)
        src.s_out.connect(conn.s_in)
        mon = Monitor()
        mon.probe(conn.a_out, STEPS)
        src.run(RunSteps(num_steps=STEPS), cfg)
        try:
            return np.asarray(mon.get_data()[conn.name]["a_out"]).copy()
        finally:
            src.stop()

    rng = np.random.default_rng(11)
    n_in, n_out = 37, 23
    w = rng.integers(-255, 256, (n_out, n_in))
    spikes = (rng.random((n_in, STEPS)) < 0.4).astype(np.int32)
    graded = rng.integers(0, 256, (n_in, STEPS)).astype(np.int32)
    cases = [
        (spikes, dict(weights=w, delays=3, weight_exp=-2)),
        (spikes, dict(weights=w, delays=rng.integers(0, 6, w.shape), weight_exp=1)),
        (graded, dict(weights=w, delays=2, weight_exp=-3, num_message_bits=8)),
    ]
    for i, (data, kw) in enumerate(cases):
        want = trace(data, Loihi2SimCfg(select_tag="fixed_pt"), **kw)
        got = trace(data, sim_config(), **kw)
        assert np.abs(want).sum() > 0, i  # the case carries signal
        assert np.array_equal(got, want), (i, np.argwhere(got != want)[:3])
    print("ok")
    """
)


@pytest.mark.runtime
def test_fast_delay_dense_sends_what_lavas_model_sends(runtime_python: str) -> None:
    done = subprocess.run(
        [runtime_python, "-c", _SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
