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
from dataclasses import replace
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
from lava.proc.monitor.process import Monitor

from snncc.backends.lava.runtime.fast_models import sim_config
from snncc.backends.lava.runtime.program import HOST_PREFIX, load_network
from snncc.backends.lower.spec import Connection, ProgramSpec
from snncc.runtime_io import job_dir_from_argv, read_job, write_result


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


def _split_convs(spec: ProgramSpec) -> tuple[ProgramSpec, list[Connection]]:
    """``spec`` without its plain convolutions, and those convolutions.

    Plain: the operand is its source population in torch layout (identity index) and the output
    is the target's ``a_in`` in order (identity ``out_index``), so Lava's own ``Conv`` between
    the two populations, behind transposing ports, computes the same input
    (:func:`_stock_convs`). Other ``conv`` connections stay ``SpecSynapse`` processes.
    """
    plain, rest = [], []
    for c in spec.connections:
        idx = [np.asarray(o.index) for o in c.operands]
        out = np.asarray(c.out_index)
        ident = (
            c.kind == "conv"
            and len(idx) == 1
            and np.array_equal(idx[0].ravel(), np.arange(idx[0].size))
            and out.ndim == 1
            and np.array_equal(out, np.arange(out.size))
            and int(c.params.get("weight_exp", 0)) == 0
            and all(o.delay == 0 for o in c.operands)
        )
        (plain if ident else rest).append(c)
    return replace(spec, connections=rest), plain


def _stock_convs(convs: list[Connection], lif: dict[str, Any]) -> int:
    """Lava's own ``Conv`` process for each plain convolution, wired population to population.

    The population holds ``[C, H, W]`` flat (torch layout), Lava's ``Conv`` reads and writes
    ``(X, Y, C)``: the ports reshape and transpose (``(2, 1, 0)``) on the way. ``PyConvModelFixed``
    loops over ``groups x C_out x C_in`` calls of ``scipy.signal.convolve2d`` per step
    (hardware-semantics §3); like ``SpecSynapse`` it sends the sum it computed one step earlier.
    Returns the processes added.
    """
    from lava.proc.conv.process import Conv

    for c in convs:
        p = c.params
        x, y, ch = (int(v) for v in p["input_shape"])
        conv = Conv(
            weight=np.asarray(p["kernel"]), input_shape=(x, y, ch), padding=tuple(p["padding"]),
            stride=tuple(p["stride"]), dilation=tuple(p["dilation"]), groups=int(p["groups"]),
        )  # fmt: skip
        (src,) = c.sources()
        lif[src].s_out.reshape((ch, y, x)).transpose((2, 1, 0)).connect(conv.s_in)
        ox, oy, oc = conv.a_out.shape
        conv.a_out.transpose((2, 1, 0)).reshape((oc * oy * ox,)).connect(lif[c.target].a_in)
    return len(convs)


def run(
    inputs: dict[str, np.ndarray], params: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Build the network (plus pass-throughs), time ``steps`` steps; ``(outputs, result)``."""
    spec = ProgramSpec.from_payload(params["spec"], inputs)
    batch, steps = int(params["batch"]), int(params["steps"])
    stock = bool(params.get("lava_conv"))
    fused, convs = _split_convs(spec) if stock else (spec, [])
    lif, conn = load_network(fused)["build"](fused.to_payload()[1], fused)
    n_proc = len(lif) + len(conn) + _stock_convs(convs, lif)
    for h in spec.host_inputs:
        a_in = inputs[HOST_PREFIX + h.population]
        t, b, n = a_in.shape
        data = np.zeros((n, steps + 1), np.int32)
        m = min(b * t, steps + 1)
        data[:, :m] = np.asarray(a_in).transpose(2, 1, 0).reshape(n, b * t)[:, :m]
        RingBuffer(data=data).s_out.connect(lif[h.population].a_in)
        n_proc += 1
    for name, k in sorted(params.get("extra", {}).items()):
        port = lif[name].s_out
        for _ in range(int(k)):
            p = PassThrough(size=int(np.prod(lif[name].s_out.shape)))
            port.connect(p.s_in)
            port = p.s_out
            n_proc += 1
    record = int(params.get("record", 0))
    monitors = {name: Monitor() for name in lif} if record else {}
    for name, mon in monitors.items():
        mon.probe(lif[name].s_out, record)
    first = next(iter(lif.values()))
    cfg = sim_config() if params.get("fast", True) else Loihi2SimCfg(select_tag="fixed_pt")
    outputs: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    first.run(RunSteps(num_steps=1), cfg)
    t1 = time.perf_counter()
    try:
        first.run(RunSteps(num_steps=steps), cfg)
        t2 = time.perf_counter()
        for i, p in enumerate(spec.populations):
            if p.name in monitors:
                data = monitors[p.name].get_data()[lif[p.name].name]["s_out"]
                outputs[f"s{i}"] = np.asarray(data).reshape(record, -1).astype(np.int64)
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
    return outputs, result


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m snncc.backends.lava.runtime.throughput JOBDIR``."""
    job_dir = job_dir_from_argv(argv)
    inputs, params = read_job(job_dir)
    outputs, result = run(inputs, params)
    write_result(job_dir, outputs, result)


if __name__ == "__main__":
    main()
