"""Runtime job: run a program spec on Lava (``Loihi2SimCfg(select_tag="fixed_pt")``, with the
fast ``DelayDense`` model of :mod:`.fast_models`).

``python -m snncc.backends.lava.runtime.program JOBDIR`` (protocol of :mod:`snncc.runtime.jobs`;
the compile side calls it through :func:`snncc.backends.lava.runner.run_on_lava`). It generates
the spec's ``network.py`` with :func:`snncc.backends.lava.emit.network_source`, executes that
source and calls its ``run``, so the job runs exactly the program ``emit`` writes.

Inputs (``inputs.npz``): the spec's arrays (:meth:`ProgramSpec.to_payload` keys) and
``host:<population>``, ``[T, B, n]`` integer ``a_in`` for every host-fed population.
Parameters (``params.json``): ``spec`` (the payload document), ``batch``, optional ``fused``
(run the whole program as one ``SpecProgram`` CPU process, :mod:`.fused`).
Outputs (``outputs.npz``), for population ``i`` of the spec: ``s<i>``, its spikes ``[T, B, n]``
(uint8, the pipeline latency removed) and ``n<i>``, its spike counts per neuron ``[B, n]``.
Result (``result.json``): lava-nc version, Lava steps, process count, wall times, populations.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from typing import Any

import numpy as np

from snncc.backends.lava.emit import network_source
from snncc.backends.lower.simulate import windows
from snncc.backends.lower.spec import ProgramSpec
from snncc.runtime.jobs import job_dir_from_argv, read_job, report_progress, write_result

HOST_PREFIX = "host:"


def load_network(spec: ProgramSpec) -> dict[str, Any]:
    """The namespace of the spec's generated ``network.py`` (imports Lava)."""
    namespace: dict[str, Any] = {"__name__": "snncc_generated_network"}
    exec(compile(network_source(spec), "network.py", "exec"), namespace)  # noqa: S102
    return namespace


def run(
    inputs: dict[str, np.ndarray], params: dict[str, Any], job_dir: Any = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run the job; ``(outputs, result)`` for :func:`snncc.runtime.jobs.write_result`.

    With ``job_dir`` and ``params["progress"]`` true, the samples done are reported there as
    the run proceeds (:func:`snncc.runtime.jobs.report_progress`).
    """
    t0 = time.perf_counter()
    spec = ProgramSpec.from_payload(params["spec"], inputs)
    batch = int(params["batch"])
    host = {h.population: inputs[HOST_PREFIX + h.population] for h in spec.host_inputs}
    network = load_network(spec)
    t1 = time.perf_counter()
    progress = None
    if job_dir is not None and params.get("progress"):

        def progress(done: int) -> None:
            report_progress(job_dir, done)

    fused = bool(params.get("fused"))
    raw = network["run"](inputs, spec, host, batch, progress=progress, fused=fused)
    t2 = time.perf_counter()
    win = windows(spec, raw, batch)
    outputs: dict[str, np.ndarray] = {}
    for i, p in enumerate(spec.populations):
        outputs[f"s{i}"] = win[p.name].reshape(spec.timesteps, batch, p.size)
        outputs[f"n{i}"] = outputs[f"s{i}"].sum(axis=0, dtype=np.int64)
    result = {
        "lava_nc": version("lava-nc"),
        "run_cfg": "Loihi2SimCfg(select_tag='fixed_pt') + fast DelayDense (fast_models)",
        "steps": spec.run_steps(batch),
        "batch": batch,
        # populations, connections, one RingBuffer per host input, one Monitor per population;
        # fused: the SpecProgram, one RingBuffer, one Monitor
        "processes": 3 if fused else 2 * len(spec.populations) + len(spec.connections) + len(host),
        "fused": fused,
        "populations": [p.name for p in spec.populations],
        "setup_s": round(t1 - t0, 3),
        "run_s": round(t2 - t1, 3),
    }
    return outputs, result


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m snncc.backends.lava.runtime.program JOBDIR``."""
    job_dir = job_dir_from_argv(argv)
    inputs, params = read_job(job_dir)
    outputs, result = run(inputs, params, job_dir)
    write_result(job_dir, outputs, result)


if __name__ == "__main__":
    main()
