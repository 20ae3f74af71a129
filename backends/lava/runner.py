"""Compile side of running a program spec on Lava: one runtime job per batch of samples.

``snncc run`` (and the parity tests) call :func:`run_on_lava` with a balanced spec and the host
inputs from :func:`snncc.backends.lower.host.encode`; it ships the spec's arrays and document to
:mod:`snncc.backends.lava.runtime.program` through :func:`snncc.runtime.bridge.run_in_runtime`
(files only: the Lava side runs Python 3.10) and returns the spikes per population. Imports numpy
and the snncc core only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snncc.backends.lower.spec import ProgramSpec
from snncc.diagnostics import SnnccError
from snncc.runtime.bridge import run_in_runtime

PROGRAM_MODULE = "snncc.backends.lava.runtime.program"
#: What ``snncc run --simulator`` offers for a Loihi build: the emitted per-layer Lava network, or
#: the same program fused into one CPU process (bit-exact, faster, no Loihi 2 counterpart).
SIMULATORS = ("lava", "lava-fused")
HOST_PREFIX = "host:"  # snncc.backends.lava.runtime.program.HOST_PREFIX (that module imports Lava)


@dataclass
class LavaRun:
    """What a Lava run gave: per population ``spikes`` ``[T, B, *shape]`` (uint8, aligned with
    the samples' steps), ``counts`` ``[B, *shape]`` (int64), and the job's ``info``."""

    spikes: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    info: dict[str, Any]


def run_on_lava(
    spec: ProgramSpec,
    host: dict[str, np.ndarray],
    batch: int,
    timeout: float = 600,
    *,
    progress: Callable[[int], None] | None = None,
    log_path: str | Path | None = None,
    fused: bool = False,
    simulator: str = "lava",
) -> LavaRun:
    """Run ``batch`` samples of ``spec`` in the runtime environment under Lava ``fixed_pt``.

    Requires: a balanced spec; ``host[pop]`` ``[T, batch, size]`` integers per host input.
    Ensures:  spikes as the numpy executor's :func:`~snncc.backends.lower.simulate.windows`
              lays them out; raises ``SnnccError`` ``RT00x`` when the job fails (its stderr
              saved to ``log_path`` when given). ``progress(k)`` is called as samples finish.
    With ``fused``, the whole program runs as one ``SpecProgram`` CPU process (same spikes,
    much faster on CPU, no Loihi 2 counterpart: :mod:`snncc.backends.lava.runtime.fused`);
    ``simulator="lava-fused"`` (``snncc run --simulator lava-fused``) asks for the same.
    """
    if simulator not in SIMULATORS:
        raise SnnccError(
            f"unknown Lava simulator {simulator!r}", code="RUN002", hint="use lava or lava-fused"
        )
    fused = fused or simulator == "lava-fused"
    doc, arrays = spec.to_payload()
    inputs = dict(arrays)
    for pop, a in host.items():
        inputs[HOST_PREFIX + pop] = np.asarray(a, np.int64)
    params = {"spec": doc, "batch": batch, "progress": progress is not None, "fused": fused}
    outputs, info = run_in_runtime(
        PROGRAM_MODULE, inputs, params, timeout, progress=progress, log_path=log_path
    )
    spikes, counts = {}, {}
    for i, p in enumerate(spec.populations):
        spikes[p.name] = outputs[f"s{i}"].reshape((spec.timesteps, batch) + p.shape)
        counts[p.name] = outputs[f"n{i}"].reshape((batch,) + p.shape)
    return LavaRun(spikes, counts, info)
