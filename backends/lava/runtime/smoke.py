"""Lava smoke network: LIF(2) -> Dense(2x2) -> LIF(2) under ``Loihi2SimCfg(select_tag="fixed_pt")``.

Runs only in the runtime environment (Python 3.10, lava-nc 0.10.0), as
``python -m snncc.backends.lava.runtime.smoke JOBDIR`` (see :mod:`snncc.runtime.bridge`). It proves
that the runtime environment works end to end and pins down the bit-accurate semantics the Lava
backend relies on (docs/hardware-semantics.md §2.1 LIF arithmetic, §2.4 one step per Dense hop),
so a test can compare its spikes with times derived by hand.

Parameters (``params.json``):

- ``weights``: 2x2 Dense weights, ``weights[post, pre]`` (Lava's layout), integers
- ``du``, ``dv``, ``vth``: LIF parameters of both layers (scalar or one per neuron)
- ``bias_mant``, ``bias_exp``: bias of the first layer (scalar or one per neuron); the second layer
  has no bias, so it only fires from its input
- ``steps``: time steps to run (default 10)

Outputs (``outputs.npz``), each ``[steps, 2]``, row ``t`` is Lava time step ``t + 1``:
``s1``, ``s2`` spikes of the two layers (``s_out``), ``v1``, ``v2`` membrane after the step.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from typing import Any

import numpy as np

from snncc.runtime.jobs import job_dir_from_argv, read_job, write_result


def run(params: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Build and run the network; return ``(outputs, result)`` for :func:`write_result`."""
    # Lava is imported here, not at module level, so the module can be imported (for docs, ruff,
    # or a test that only checks it exists) where lava-nc is absent.
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    steps = int(params.get("steps", 10))
    weights = np.asarray(params["weights"], dtype=np.int64)
    if weights.shape != (2, 2):
        raise ValueError(f"weights must be 2x2, got shape {weights.shape}")
    common = {
        "du": np.asarray(params["du"], dtype=np.int64),
        "dv": np.asarray(params["dv"], dtype=np.int64),
        "vth": np.asarray(params["vth"], dtype=np.int64),
    }
    lif1 = LIF(
        shape=(2,),
        bias_mant=np.asarray(params["bias_mant"], dtype=np.int64),
        bias_exp=np.asarray(params["bias_exp"], dtype=np.int64),
        name="lif1",
        **common,
    )
    dense = Dense(weights=weights, name="dense")
    lif2 = LIF(shape=(2,), bias_mant=0, bias_exp=0, name="lif2", **common)
    lif1.s_out.connect(dense.s_in)
    dense.a_out.connect(lif2.a_in)

    # One Monitor per probe (a Monitor can hold several, but one each is the documented use).
    probes = {
        "s1": (lif1, lif1.s_out),
        "v1": (lif1, lif1.v),
        "s2": (lif2, lif2.s_out),
        "v2": (lif2, lif2.v),
    }
    monitors = {}
    for key, (_, target) in probes.items():
        monitors[key] = Monitor()
        monitors[key].probe(target, steps)

    t0 = time.perf_counter()
    lif1.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    try:
        outputs = {}
        for key, (proc, target) in probes.items():
            data = monitors[key].get_data()[proc.name][target.name]
            outputs[key] = np.asarray(data).reshape(steps, 2).astype(np.int64)
    finally:
        lif1.stop()
    wall = time.perf_counter() - t0
    result = {
        "lava_nc": version("lava-nc"),
        "numpy": np.__version__,
        "run_cfg": "Loihi2SimCfg(select_tag='fixed_pt')",
        "steps": steps,
        "wall_s": round(wall, 3),
    }
    return outputs, result


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m snncc.backends.lava.runtime.smoke JOBDIR``."""
    job_dir = job_dir_from_argv(argv)
    _inputs, params = read_job(job_dir)
    outputs, result = run(params)
    write_result(job_dir, outputs, result)


if __name__ == "__main__":
    main()
