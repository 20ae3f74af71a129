"""Runtime job for ``benchmarks/lava_throughput.py``: Lava steps per second of a program spec.

``python -m snncc.backends.lava.runtime.throughput JOBDIR``. Parameters: ``spec`` (payload
document), ``batch``, ``steps`` (timed steps), ``variant`` and, optionally, ``record`` (steps
to record every population's spikes for, to check a variant computes the right thing; off when
timing). Variants:

- ``emitted``: the network ``network.py`` builds (one Lava process per population and per
  connection, host ``RingBuffer``) under the run configuration it uses
  (:func:`~snncc.backends.lava.runtime.fast_models.sim_config`);
- ``fused``: the whole program as one ``SpecProgram`` process fed by one ``RingBuffer``
  (:mod:`snncc.backends.lava.runtime.fused`, ``network.run(..., fused=True)``);
- ``naive``: what a straightforward emitter would produce, one Lava process per IR node with
  Lava's stock processes and models (``Loihi2SimCfg(select_tag="fixed_pt")``): ``LIFReset``,
  ``Dense``/``DelayDense``, Lava's own ``Conv`` for every convolution that is a plain
  population-to-population convolution (:func:`_stock_convs`, exact: it computes the same
  spikes), snncc's ``SpecSynapse`` only where stock Lava has no process (spike products,
  re-indexed convolutions), plus ``extra`` (``{population: k}``) pass-through processes chained
  off a population's spikes, one per IR node the lowering folded into a connection (re-indexing,
  adds, pools: a per-node emitter gives each its own process, which copies its input to its
  output each step; hardware-semantics §3: Lava forks one OS process per ProcessModel and
  synchronises all of them every step).

No Monitors are attached unless ``record``. Result: processes, steps, the one-step startup
(compile + fork) and the timed steps per second; outputs (with ``record``): ``s<i>``, population
``i``'s spikes ``[record, n]``, row ``j`` being Lava step ``j + 1``.
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
from snncc.backends.lava.runtime.fused import SpecProgram
from snncc.backends.lava.runtime.program import HOST_PREFIX, load_network
from snncc.backends.lower.spec import Connection, ProgramSpec
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


def _host_data(spec: ProgramSpec, inputs: dict[str, np.ndarray], steps: int) -> np.ndarray:
    """``[Σ n, steps]`` RingBuffer data: the host inputs of every host-fed population, stacked,
    the batch repeated for as long as the run lasts (so every timed step carries real activity:
    a network left without input would go quiet and flatter the activity-dependent models)."""
    rows = []
    for h in spec.host_inputs:
        a_in = inputs[HOST_PREFIX + h.population]
        t, b, n = a_in.shape
        flat = np.asarray(a_in).transpose(2, 1, 0).reshape(n, b * t)
        rows.append(flat[:, np.arange(steps) % (b * t)].astype(np.int32))
    return np.concatenate(rows)


def _per_process(
    spec: ProgramSpec, inputs: dict[str, np.ndarray], params: dict[str, Any], steps: int
) -> tuple[int, dict[str, Any]]:
    """The emitted or naive network; ``(processes, {population: its spike port})``."""
    naive = params["variant"] == "naive"
    kept, convs = _split_convs(spec) if naive else (spec, [])
    lif, conn = load_network(kept)["build"](kept.to_payload()[1], kept)
    n_proc = len(lif) + len(conn) + _stock_convs(convs, lif)
    for h in spec.host_inputs:
        data = _host_data(replace(spec, host_inputs=[h]), inputs, steps)
        RingBuffer(data=data).s_out.connect(lif[h.population].a_in)
        n_proc += 1
    for name, k in sorted(params.get("extra", {}).items()) if naive else []:
        port = lif[name].s_out
        for _ in range(int(k)):
            p = PassThrough(size=int(np.prod(lif[name].s_out.shape)))
            port.connect(p.s_in)
            port = p.s_out
            n_proc += 1
    return n_proc, {name: p.s_out for name, p in lif.items()}


def run(
    inputs: dict[str, np.ndarray], params: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Build the variant, time ``steps`` steps after a first one; ``(outputs, result)``."""
    spec = ProgramSpec.from_payload(params["spec"], inputs)
    batch, steps = int(params["batch"]), int(params["steps"])
    variant = params["variant"]
    record = int(params.get("record", 0))
    if variant == "fused":
        prog = SpecProgram(spec=spec, name="program")
        RingBuffer(data=_host_data(spec, inputs, steps + 1)).s_out.connect(prog.a_in)
        n_proc, ports = 2, {"program": prog.s_out}
    else:
        n_proc, ports = _per_process(spec, inputs, params, steps + 1)
    monitors = {name: Monitor() for name in ports} if record else {}
    for name, mon in monitors.items():
        mon.probe(ports[name], record)
    first = ports[next(iter(ports))].process
    cfg = Loihi2SimCfg(select_tag="fixed_pt") if variant == "naive" else sim_config()
    outputs: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    first.run(RunSteps(num_steps=1), cfg)
    t1 = time.perf_counter()
    try:
        first.run(RunSteps(num_steps=steps), cfg)
        t2 = time.perf_counter()
        got = {
            name: np.asarray(mon.get_data()[ports[name].process.name]["s_out"]).reshape(record, -1)
            for name, mon in monitors.items()
        }
    finally:
        first.stop()
    if "program" in got:
        bounds = np.cumsum([0] + [p.size for p in spec.populations])
        got = {p.name: got["program"][:, bounds[i] : bounds[i + 1]]
               for i, p in enumerate(spec.populations)}  # fmt: skip
    for i, p in enumerate(spec.populations):
        if p.name in got:
            outputs[f"s{i}"] = (got[p.name] != 0).astype(np.uint8)
    result = {
        "variant": variant,
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
