"""``SpecProgram``: a whole program spec as one Lava process (the CPU-fused network).

Lava's CPU runtime costs ~0.45 ms per process per step however little a process computes
(hardware-semantics §3), so the per-population program ``network.py`` builds (46 processes for
spikingformer-tiny) is capped near 50 steps/s on 2 cores. This process runs the same arithmetic
for every population and connection in one ProcessModel — :class:`snncc.backends.lava.stepper.
SpecStepper`, bit-exact with the executor and hence with the per-process network — which the
issue allows for a custom ProcessModel that stays bit-exact and says so. It is a CPU
simulation device only: it has no Loihi 2 (``NcProcessModel``) counterpart; the per-process
network remains what maps to a chip.

Ports: ``a_in`` receives the host inputs of every host-fed population, concatenated in
``spec.host_inputs`` order (one ``RingBuffer`` feeds it); ``s_out`` sends every population's
0/1 spikes, concatenated in ``spec.populations`` order (one ``Monitor`` records it).

Imports Lava: only the runtime environment (Python 3.10, lava-nc 0.10.0) loads this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.io.source import RingBuffer
from lava.proc.monitor.process import Monitor

from snncc.backends.lava.stepper import SpecStepper
from snncc.backends.lower.spec import ProgramSpec


def host_sizes(spec: ProgramSpec) -> list[tuple[str, int]]:
    """``(population, size)`` of each host input, in the order ``a_in`` concatenates them."""
    return [(h.population, spec.population(h.population).size) for h in spec.host_inputs]


class SpecProgram(AbstractProcess):
    """Every population and connection of ``spec`` in one process (see the module docstring)."""

    def __init__(self, *, spec: ProgramSpec, name: str | None = None) -> None:
        n_in = max(1, sum(n for _, n in host_sizes(spec)))
        n_out = sum(p.size for p in spec.populations)
        super().__init__(spec=spec, name=name)
        self.a_in = InPort(shape=(n_in,))
        self.s_out = OutPort(shape=(n_out,))


@implements(proc=SpecProgram, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpecProgramModelFixed(PyLoihiProcessModel):
    """One :meth:`SpecStepper.step` per Lava step: receive the host inputs, send all spikes."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        spec: ProgramSpec = proc_params["spec"]
        self.stepper = SpecStepper(spec)
        self.hosts = host_sizes(spec)

    def run_spk(self) -> None:
        """Split ``a_in`` per host-fed population, step the program, send its spikes."""
        a = self.a_in.recv()
        host, lo = {}, 0
        for pop, n in self.hosts:
            host[pop] = a[lo : lo + n]
            lo += n
        out = self.stepper.step(host)
        self.s_out.send(np.concatenate(out) != 0)


def fused_network(
    w: dict[str, np.ndarray], spec: ProgramSpec, host: dict[str, np.ndarray], steps: int
) -> tuple[SpecProgram, Callable[[], dict[str, np.ndarray]]]:
    """``spec`` as one :class:`SpecProgram` fed by one ``RingBuffer``, recorded by one
    ``Monitor``: ``(the process to run, a function reading every population's spikes
    [steps, n] uint8)``, the interface of ``network.probed``. ``w`` is unused (the spec
    carries its arrays); ``host[pop]`` is ``[T, B, n]`` integer a_in."""
    del w
    prog = SpecProgram(spec=spec, name="program")
    data = np.zeros((prog.a_in.shape[0], steps), np.int32)
    lo = 0
    for pop, n in host_sizes(spec):
        t, b, _ = host[pop].shape
        data[lo : lo + n, : b * t] = np.asarray(host[pop]).transpose(2, 1, 0).reshape(n, b * t)
        lo += n
    RingBuffer(data=data).s_out.connect(prog.a_in)
    monitor = Monitor()
    monitor.probe(prog.s_out, steps)

    def spikes() -> dict[str, np.ndarray]:
        data = np.asarray(monitor.get_data()[prog.name]["s_out"]).reshape(steps, -1)
        bounds = np.cumsum([0] + [p.size for p in spec.populations])
        return {
            p.name: (data[:, lo:hi] != 0).astype(np.uint8)
            for p, lo, hi in zip(spec.populations, bounds[:-1], bounds[1:], strict=True)
        }

    return prog, spikes
