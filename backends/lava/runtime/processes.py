"""The custom Lava processes snncc emits: ``SpecSynapse`` (``conv`` and ``product``
connections) and ``ExpGIFNeuron`` (the programmable neuron).

``SpecSynapse`` is one connection of a program spec (:mod:`snncc.backends.lower.spec`): it reads
the spikes of up to :data:`MAX_OPERANDS` populations and sends the target population's ``a_in``.
Its ``fixed_pt`` model computes exactly :func:`snncc.backends.lower.kernels.connection_output`,
the arithmetic the numpy executor checks against the reference, with Lava's timing: like
``Dense`` it sends the value it computed on the previous step, so a hop costs one step, and each
operand waits its ``delay`` steps in a delay line first (``DelayDense`` semantics).

Why a custom process and not Lava's ``Conv``: ``PyConvModelFixed`` loops in Python over
``groups x C_out x C_in`` calls of ``scipy.signal.convolve2d`` per step (hardware-semantics §3),
which dominates a step for the patch embedding; this model does the same integer convolution
(true convolution with the Lava-layout kernel, 24-bit wrap) as one im2col product, and folds the
re-indexing before and after it into gathers. ``product`` connections (attention's ``Q·Kᵀ·V``)
have no Lava process at all: they are exact integer arithmetic on spikes, not neurocore-native,
and this model has no Loihi 2 (``NcProcessModel``) counterpart.

Imports Lava: only the runtime environment (Python 3.10, lava-nc 0.10.0) loads this module.
"""

from __future__ import annotations

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

from snncc.backends.lava.conv_plan import ConvPlan
from snncc.backends.lower.kernels import connection_output
from snncc.backends.lower.spec import Connection
from snncc.reference.loihi_kernels import expgif_step

#: Most populations one connection reads (a spike product reads Q, K and V).
MAX_OPERANDS = 4


class SpecSynapse(AbstractProcess):
    """One ``conv`` or ``product`` connection of an snncc program spec.

    Ports: ``s_in0 … s_in{k-1}`` read the operands' source populations (flat ``s_out``),
    ``a_out`` drives the target population's ``a_in`` (flat). Unused ``s_in`` ports stay
    unconnected.
    """

    def __init__(
        self,
        *,
        connection: Connection,
        source_sizes: list[int],
        target_size: int,
        name: str | None = None,
    ) -> None:
        n = len(source_sizes)
        if not 1 <= n <= MAX_OPERANDS:
            raise ValueError(f"{connection.name}: {n} operands, at most {MAX_OPERANDS}")
        sizes = [int(s) for s in source_sizes] + [1] * (MAX_OPERANDS - n)
        super().__init__(connection=connection, sizes=sizes, target_size=target_size, name=name)
        self.s_in0 = InPort(shape=(sizes[0],))
        self.s_in1 = InPort(shape=(sizes[1],))
        self.s_in2 = InPort(shape=(sizes[2],))
        self.s_in3 = InPort(shape=(sizes[3],))
        self.a_out = OutPort(shape=(target_size,))

    def operand_port(self, k: int) -> InPort:
        """The input port of operand ``k``."""
        return (self.s_in0, self.s_in1, self.s_in2, self.s_in3)[k]


@implements(proc=SpecSynapse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpecSynapseModelFixed(PyLoihiProcessModel):
    """Bit-exact integer model of :class:`SpecSynapse` (see the module docstring)."""

    s_in0: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_in1: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_in2: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_in3: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        self.connection: Connection = proc_params["connection"]
        sizes = proc_params["sizes"]
        # lines[k][j]: what operand k carried j steps ago (j = 0 is this step).
        self.lines = [
            np.zeros((o.delay + 1, size), np.int64)
            for o, size in zip(self.connection.operands, sizes, strict=False)
        ]
        self.a_buf = np.zeros(int(proc_params["target_size"]), np.int64)
        self.plan = _conv_plan(self.connection)

    def run_spk(self) -> None:
        """Send last step's sum, then read this step's spikes and compute the next one."""
        self.a_out.send(self.a_buf)
        ports = (self.s_in0, self.s_in1, self.s_in2, self.s_in3)  # set by Lava after __init__
        xs = []
        for line, port in zip(self.lines, ports, strict=False):  # unused ports idle
            line[1:] = line[:-1].copy()
            line[0] = port.recv()
            xs.append(line[-1][None])
        if self.plan is not None:  # the same sum, im2col gather precomputed
            self.a_buf = self.plan(xs[0][0])
        else:
            self.a_buf = connection_output(self.connection, xs)[0]


def _conv_plan(c: Connection) -> ConvPlan | None:
    """A precomputed :class:`ConvPlan` for a ``conv`` connection whose sums stay exact for any
    24-bit input (the port's precision), else None (``connection_output`` every step)."""
    if c.kind != "conv":
        return None
    try:
        return ConvPlan(c, max_input=1 << 23)
    except ValueError:
        return None


class ExpGIFNeuron(AbstractProcess):
    """The programmable neuron (:class:`~snncc.ir.ops.LoihiExpGIF`): snncc's ExpG-IF.

    Integrate-and-fire with a threshold per step of a group (``thresholds``, ``K`` of them),
    soft reset, and a graded payload ``2^(K-1-k)`` on ``s_out``. Like ``LIFReset`` it zeroes its
    state at every step with ``time_step % reset_interval == reset_offset`` (the first step of a
    sample); Lava step ``τ`` is step ``t = (τ - depth - 1) mod reset_interval`` of a sample, bit
    ``t mod K``, or the one-group schedule when ``start`` is set (``LoihiExpGIF.start``). On
    Loihi 2 this is neuron microcode; here, an exact fixed-point CPU model.
    """

    def __init__(
        self,
        *,
        shape: tuple[int, ...],
        thresholds: tuple[int, ...],
        bias: np.ndarray,
        depth: int,
        reset_interval: int,
        reset_offset: int,
        start: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(
            shape=shape,
            thresholds=tuple(int(t) for t in thresholds),
            bias=np.asarray(bias, np.int64),
            depth=int(depth),
            reset_interval=int(reset_interval),
            reset_offset=int(reset_offset),
            start=None if start is None else int(start),
            name=name,
        )
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)


@implements(proc=ExpGIFNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyExpGIFModelFixed(PyLoihiProcessModel):
    """Bit-exact model of :class:`ExpGIFNeuron`: :func:`~snncc.reference.loihi_kernels.
    expgif_step`, the reference's own step, once per Lava step."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        self.thresholds = tuple(proc_params["thresholds"])
        self.bias = np.asarray(proc_params["bias"], np.int64)
        self.depth = int(proc_params["depth"])
        self.reset_interval = int(proc_params["reset_interval"])
        self.reset_offset = int(proc_params["reset_offset"]) % self.reset_interval
        self.one_group_start = proc_params["start"]  # not self.start: Lava's run loop
        self.v = np.zeros(proc_params["shape"], np.int64)

    def run_spk(self) -> None:
        """Receive, reset at a sample's first step, integrate, fire, send the payload."""
        a = self.a_in.recv().astype(np.int64)
        if self.time_step % self.reset_interval == self.reset_offset:
            self.v[:] = 0
        t = (self.time_step - self.depth - 1) % self.reset_interval  # the step of the sample
        self.v, y = expgif_step(self.v, a, self.bias, self.thresholds, t, self.one_group_start)
        self.s_out.send(y)
