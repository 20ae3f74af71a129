"""Runtime job for ``benchmarks/lava_throughput.py``: Lava steps per second of a program spec.

``python -m snncc.backends.lava.runtime.throughput JOBDIR``. Parameters: ``spec`` (payload
document), ``batch``, ``steps`` (timed steps), and for the *naive* emission ``extra``
(``{population: k}``: ``k`` pass-through processes chained off that population's spikes, so the
network has one Lava process per IR node of the deployed part, as an emitter that does not fuse
would produce) and ``lava_conv`` (every convolution also run by Lava's own ``Conv`` model, as
a naive emitter would map it). Pass-throughs copy their input to their output every step: the
messages a per-node process would exchange, with no more arithmetic than the fused program
already does (hardware-semantics §3: Lava forks one OS process per ProcessModel and
synchronises all of them every step).

No Monitors are attached (recording is not what is measured). Result: processes, steps, the
one-step startup (compile + fork) and the timed steps per second.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.io.source import RingBuffer

from snncc.backends.lava.runtime.program import HOST_PREFIX, load_network
from snncc.backends.lower.spec import ProgramSpec
from snncc.runtime.jobs import job_dir_from_argv, read_job, write_result


class PassThrough(AbstractProcess):
    """Sends what it received (one vector of ``size`` integers per step)."""

    def __init__(self, *, size: int) -> None:
        super().__init__(size=size)
        self.s_in = InPort(shape=(size,))
        self.s_out = OutPort(shape=(size,))


@implements(proc=PassThrough, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyPassThroughModel(PyLoihiProcessModel):
    """Copy input to output every step."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        self.s_out.send(self.s_in.recv())


def _lava_convs(spec: ProgramSpec, steps: int) -> int:
    """For each ``conv`` connection, Lava's own ``Conv`` process with the same kernel and shapes.

    A naive emitter maps a convolution to Lava's ``Conv``, whose model loops in Python over
    channel pairs every step (hardware-semantics §3). Its cost does not depend on the spike
    values, so each is driven by a RingBuffer of seeded random spikes of its input shape; its
    output is left unconnected. Returns the processes added (Conv + its driver).
    """
    from lava.proc.conv.process import Conv

    rng = np.random.default_rng(0)
    added = 0
    for c in spec.connections:
        if c.kind != "conv":
            continue
        p = c.params
        shape = tuple(int(v) for v in p["input_shape"])
        data = (rng.random((*shape, steps + 1)) < 0.1).astype(np.int32)
        src = RingBuffer(data=data)
        conv = Conv(
            weight=np.asarray(p["kernel"]), input_shape=shape, padding=tuple(p["padding"]),
            stride=tuple(p["stride"]), dilation=tuple(p["dilation"]), groups=int(p["groups"]),
        )  # fmt: skip
        src.s_out.connect(conv.s_in)
        added += 2
    return added


def run(
    inputs: dict[str, np.ndarray], params: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Build the network (plus pass-throughs), time ``steps`` steps; ``(outputs, result)``."""
    spec = ProgramSpec.from_payload(params["spec"], inputs)
    batch, steps = int(params["batch"]), int(params["steps"])
    network = load_network(spec)
    lif, conn = network["build"](inputs, spec)
    n_proc = len(lif) + len(conn)
    for h in spec.host_inputs:
        a_in = inputs[HOST_PREFIX + h.population]
        t, b, n = a_in.shape
        data = np.zeros((n, steps + 1), np.int32)
        m = min(b * t, steps + 1)
        data[:, :m] = np.asarray(a_in).transpose(2, 1, 0).reshape(n, b * t)[:, :m]
        RingBuffer(data=data).s_out.connect(lif[h.population].a_in)
        n_proc += 1
    if params.get("lava_conv"):
        n_proc += _lava_convs(spec, steps)
    for name, k in sorted(params.get("extra", {}).items()):
        port = lif[name].s_out
        for _ in range(int(k)):
            p = PassThrough(size=int(np.prod(lif[name].s_out.shape)))
            port.connect(p.s_in)
            port = p.s_out
            n_proc += 1
    first = next(iter(lif.values()))
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    t0 = time.perf_counter()
    first.run(RunSteps(num_steps=1), cfg)
    t1 = time.perf_counter()
    try:
        first.run(RunSteps(num_steps=steps), cfg)
        t2 = time.perf_counter()
    finally:
        first.stop()
    result = {
        "processes": n_proc,
        "batch": batch,
        "steps": steps,
        "startup_s": round(t1 - t0, 3),
        "run_s": round(t2 - t1, 3),
        "steps_per_s": steps / (t2 - t1),
    }
    return {}, result


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m snncc.backends.lava.runtime.throughput JOBDIR``."""
    job_dir = job_dir_from_argv(argv)
    inputs, params = read_job(job_dir)
    outputs, result = run(inputs, params)
    write_result(job_dir, outputs, result)


if __name__ == "__main__":
    main()
