"""Runtime job: run a SpiNNaker program with PyNN (Brian2, sPyNNaker, or a virtual board).

``python -m snncc.backends.spinnaker.runtime.program JOBDIR`` (protocol of
:mod:`snncc.runtime.jobs`; the compile side calls it through
:func:`snncc.backends.spinnaker.runner.run_on_pynn`). It generates the program's ``network.py``
with :func:`snncc.backends.spinnaker.emit.network_source`, executes that source and calls its
``setup`` and ``run``, so the job runs exactly the program ``emit`` writes.

Inputs (``inputs.npz``): the program's arrays (:meth:`SpiNNakerProgram.to_payload` keys) and
``host:<population>``, ``[T, B, n]`` 0/1 spikes for every host-fed population.
Parameters (``params.json``): ``spec`` (the payload document), ``batch``, ``simulator``.
Outputs (``outputs.npz``), for population ``i``: ``s<i>``, its spikes ``[T, B, n]`` (uint8, the
pipeline latency removed) and ``n<i>``, its spike counts per neuron ``[B, n]``.
Result (``result.json``): PyNN / simulator versions, steps, populations, synapses, wall times
(``sample_s``: each sample's run; the first one also builds the network).
"""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from snncc.backends.spinnaker.emit import network_source
from snncc.backends.spinnaker.spec import SpiNNakerProgram
from snncc.runtime.jobs import job_dir_from_argv, read_job, report_progress, write_result

HOST_PREFIX = "host:"
#: Distribution that carries each simulator's version.
PACKAGES = {"brian2": "brian2", "spinnaker": "sPyNNaker", "virtual": "sPyNNaker"}


def load_network(spec: SpiNNakerProgram) -> dict[str, Any]:
    """The namespace of the program's generated ``network.py`` (imports nothing yet)."""
    namespace: dict[str, Any] = {"__name__": "snncc_generated_network"}
    exec(compile(network_source(spec), "network.py", "exec"), namespace)  # noqa: S102
    return namespace


def run(
    inputs: dict[str, np.ndarray], params: dict[str, Any], job_dir: Path | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run the job; ``(outputs, result)`` for :func:`snncc.runtime.jobs.write_result`."""
    t0 = time.perf_counter()
    spec = SpiNNakerProgram.from_payload(params["spec"], inputs)
    batch = int(params["batch"])
    simulator = str(params.get("simulator", "brian2"))
    host = {h.population: inputs[HOST_PREFIX + h.population] for h in spec.host_inputs}
    if params.get("spynnaker_cfg") and job_dir is not None:  # the user's machine (runner.py)
        (Path(job_dir) / ".spynnaker.cfg").write_text(params["spynnaker_cfg"])
    net = load_network(spec)
    sim = net["setup"](simulator, str(job_dir) if job_dir is not None else None)
    t1 = time.perf_counter()
    finished: list[float] = []  # when each sample's run ended (the first also builds)

    def progress(done: int) -> None:
        finished.append(time.perf_counter())
        if job_dir is not None and params.get("progress"):
            report_progress(job_dir, done)

    raw = net["run"](sim, simulator, host, batch, inputs, progress)
    t2 = time.perf_counter()
    sim.end()
    win = net["windows"](raw, batch)
    outputs: dict[str, np.ndarray] = {}
    for i, p in enumerate(spec.populations):
        outputs[f"s{i}"] = np.ascontiguousarray(win[p.name])
        outputs[f"n{i}"] = outputs[f"s{i}"].sum(axis=0, dtype=np.int64)
    result = {
        "simulator": simulator,
        "pyNN": version("pyNN"),
        PACKAGES[simulator]: version(PACKAGES[simulator]),
        "steps_per_sample": spec.period,
        "steps": spec.run_steps(batch),
        "batch": batch,
        "populations": [p.name for p in spec.populations],
        "synapses": int(sum(len(c.params["pre"]) for c in spec.connections)),
        "setup_s": round(t1 - t0, 3),
        "run_s": round(t2 - t1, 3),
        "sample_s": [round(b - a, 4) for a, b in zip([t1, *finished[:-1]], finished, strict=True)],
    }
    return outputs, result


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m snncc.backends.spinnaker.runtime.program JOBDIR``."""
    job_dir = job_dir_from_argv(argv)
    inputs, params = read_job(job_dir)
    outputs, result = run(inputs, params, job_dir)
    write_result(job_dir, outputs, result)


if __name__ == "__main__":
    main()
