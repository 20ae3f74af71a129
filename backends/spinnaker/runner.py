"""Compile side of running a SpiNNaker program with PyNN: one runtime job per batch of samples.

``snncc run`` (and the parity tests) call :func:`run_on_pynn` with a balanced program and the
host-fed populations' spikes from :func:`snncc.backends.spinnaker.host.encode`; it ships the
program's arrays and document to :mod:`snncc.backends.spinnaker.runtime.program` through
:func:`snncc.runtime.bridge.run_in_runtime` (files only: PyNN runs on Python 3.10) and returns
the spikes per population. Imports numpy and the snncc core only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snncc.backends.spinnaker.spec import SpiNNakerProgram
from snncc.diagnostics import SnnccError
from snncc.runtime.bridge import run_in_runtime

PROGRAM_MODULE = "snncc.backends.spinnaker.runtime.program"
HOST_PREFIX = "host:"  # snncc.backends.spinnaker.runtime.program.HOST_PREFIX
SIMULATORS = ("brian2", "spinnaker")


@dataclass
class PyNNRun:
    """What a PyNN run gave: per population ``spikes`` ``[T, B, *shape]`` (uint8, aligned with
    the samples' steps), ``counts`` ``[B, *shape]`` (int64), and the job's ``info``."""

    spikes: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    info: dict[str, Any]


def _machine_config() -> str:
    """The user's ``~/.spynnaker.cfg`` (it names the machine), for the job's own HOME.

    Why forwarded: a runtime job's HOME is its job directory (:mod:`snncc.runtime.bridge`), so
    sPyNNaker there would not see the user's config; a missing one is RUN002 (no machine).
    """
    cfg = Path.home() / ".spynnaker.cfg"
    if not cfg.is_file():
        raise SnnccError(
            f"--simulator spinnaker needs a SpiNNaker machine: {cfg} does not exist",
            code="RUN002",
            hint="write machine_name (and version) or spalloc_server into ~/.spynnaker.cfg "
            "(docs/spinnaker.md), or use --simulator brian2",
            exit_code=2,
        )
    return cfg.read_text()


def run_on_pynn(
    spec: SpiNNakerProgram,
    host: dict[str, np.ndarray],
    batch: int,
    timeout: float = 1800,
    *,
    simulator: str = "brian2",
    progress: Callable[[int], None] | None = None,
    log_path: str | Path | None = None,
) -> PyNNRun:
    """Run ``batch`` samples of ``spec`` in the runtime environment on ``simulator``.

    Requires: a balanced program; ``host[pop]`` ``[T, batch, size]`` 0/1 per host-fed
              population; ``simulator`` ``brian2`` or ``spinnaker`` (a machine in the user's
              sPyNNaker config).
    Ensures:  spikes as :func:`snncc.backends.spinnaker.simulate.windows` lays them out; raises
              ``SnnccError`` ``RT00x`` when the job fails (its stderr saved to ``log_path``).
    """
    params_extra = {"spynnaker_cfg": _machine_config()} if simulator == "spinnaker" else {}
    doc, arrays = spec.to_payload()
    inputs = dict(arrays)
    for pop, a in host.items():
        inputs[HOST_PREFIX + pop] = np.asarray(a, np.uint8)
    params = {"spec": doc, "batch": batch, "simulator": simulator, "progress": bool(progress)}
    params.update(params_extra)
    outputs, info = run_in_runtime(
        PROGRAM_MODULE, inputs, params, timeout, progress=progress, log_path=log_path
    )
    spikes, counts = {}, {}
    for i, p in enumerate(spec.populations):
        spikes[p.name] = outputs[f"s{i}"].reshape((spec.timesteps, batch) + tuple(p.shape))
        counts[p.name] = outputs[f"n{i}"].reshape((batch,) + tuple(p.shape))
    return PyNNRun(spikes, counts, info)
