"""One Lava step of a whole balanced program spec, in numpy: the arithmetic of the fused process.

Why: Lava's CPU runtime forks one OS process per ProcessModel and synchronises every one of them
at every step (~0.45 ms per process per step on 2 cores, hardware-semantics §3), so a program of
46 processes cannot exceed ~50 steps/s however cheap its arithmetic. The issue allows a custom
ProcessModel to do a whole block's arithmetic in numpy if it stays bit-exact;
:class:`SpecStepper` is that arithmetic for the *whole* program, step by step, and
``snncc.backends.lava.runtime.fused.SpecProgram`` runs it as one Lava process (the CPU-fused
variant of the emitted network, ``network.run(..., fused=True)``). It has no Loihi 2
counterpart: the per-process program stays what maps to a chip.

Semantics are those of :func:`snncc.backends.lower.simulate.simulate` (Lava's schedule), but one
step at a time instead of one population's whole trace at a time: at 1-based step ``τ`` every
population first resets if ``τ`` starts one of its sample windows (``LIFReset``), then receives
its host input row ``τ - 1`` plus, from each connection, what the connection computed from its
operands' outputs of step ``τ - 1 - delay``; then it steps once (Lava's ``PyLifModelBitAcc``
arithmetic, the loop body of :func:`~snncc.reference.loihi_kernels.lif_trace`, or
:func:`~snncc.reference.loihi_kernels.expgif_step`). Connections use
:func:`snncc.backends.lower.kernels.connection_output` on one row, except ``dense``, whose
effective weights (:func:`~snncc.reference.loihi_kernels.dense_weights`) are prepared once and
summed over the active inputs only (:class:`_Dense`), in int64, and ``conv``, whose im2col
gather is precomputed (:class:`~snncc.backends.lava.conv_plan.ConvPlan`).
``tests/backends/test_lava_stepper.py`` checks every population's output, step for step,
against ``simulate``.
"""

from __future__ import annotations

import numpy as np

from snncc.backends.lava.conv_plan import ConvPlan
from snncc.backends.lower.kernels import connection_output
from snncc.backends.lower.spec import Connection, Population, ProgramSpec
from snncc.reference.loihi_kernels import (
    ACT_SHIFT,
    DECAY_UNITY,
    MAX_UV,
    VTH_SHIFT,
    dense_weights,
    effective_bias,
    expgif_step,
    shift_sum,
    trunc_decay,
    wrap_current,
)


class _Dense:
    """A ``dense`` connection with its effective weights prepared once, stored transposed.

    Why transposed: the input is sparse (spikes, or payloads mostly 0), so the sum
    ``Σ_j w[:, j] x_j`` reads only the rows ``j`` of ``wᵀ`` where ``x_j ≠ 0``: one contiguous
    row gather and a sum, all in int64 (exact).
    """

    def __init__(self, c: Connection) -> None:
        w = dense_weights(np.asarray(c.params["weights"], np.int64), 8, c.params["sign_mode"])
        self.exp = int(c.params["weight_exp"])
        self.w_t = np.ascontiguousarray(w.T)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        nz = np.flatnonzero(x)
        vals = x[nz]
        rows = self.w_t[nz]
        acc = rows.sum(axis=0) if np.all(vals == 1) else vals @ rows
        return shift_sum(acc, self.exp)


class _Neurons:
    """One population's state and one-step update (LIFReset or the programmable neuron)."""

    def __init__(self, p: Population, period: int) -> None:
        self.p = p
        self.period = period
        self.offset = (p.depth + 1) % period
        self.v = np.zeros(p.size, np.int64)
        self.u = np.zeros(p.size, np.int64)
        self.bias = effective_bias(np.asarray(p.bias_mant, np.int64).reshape(-1), p.bias_exp)
        self.u_factor, self.v_factor = DECAY_UNITY - (p.du + 1), DECAY_UNITY - p.dv
        self.eff_vth = int(p.vth) << VTH_SHIFT

    def step(self, tau: int, a: np.ndarray) -> np.ndarray:
        """Lava step ``tau`` (1-based) on input ``a``: the output sent (0/1 or payloads)."""
        if tau % self.period == self.offset:
            self.u[:] = 0
            self.v[:] = 0
        if self.p.role == "expgif":
            t = (tau - self.p.depth - 1) % self.period  # the step of the sample, as the process
            self.v, y = expgif_step(self.v, a, self.bias, self.p.thresholds, t, self.p.start)
            return y
        self.u = wrap_current(trunc_decay(self.u, self.u_factor) + (a << ACT_SHIFT))
        v = np.clip(trunc_decay(self.v, self.v_factor) + self.u + self.bias, 1 - MAX_UV, MAX_UV - 1)
        s = v > self.eff_vth
        self.v = np.where(s, 0, v)
        return s.astype(np.int64)


class SpecStepper:
    """The whole spec, stepped one Lava step at a time (see the module docstring)."""

    def __init__(self, spec: ProgramSpec) -> None:
        if not spec.balanced:
            raise ValueError("SpecStepper needs a balanced spec (run balance_latency first)")
        self.spec = spec
        self.tau = 0
        self.neurons = [_Neurons(p, spec.period) for p in spec.populations]
        self.index = {p.name: i for i, p in enumerate(spec.populations)}
        # history[i][j]: what population i sent j + 1 steps ago
        depth = {p.name: 1 for p in spec.populations}
        for c in spec.connections:
            for o in c.operands:
                depth[o.source] = max(depth[o.source], 1 + o.delay)
        self.history = [np.zeros((depth[p.name], p.size), np.int64) for p in spec.populations]
        self.fed = {h.population for h in spec.host_inputs}
        self.into: list[list[tuple[Connection, object]]] = []
        for p in spec.populations:
            conns = []
            for c in spec.into(p.name):
                if c.kind == "dense":
                    conns.append((c, _Dense(c)))
                elif c.kind == "conv":
                    top = int(spec.population(c.operands[0].source).payloads().max())
                    conns.append((c, ConvPlan(c, top)))
                else:
                    conns.append((c, None))
            self.into.append(conns)

    def _read(self, c: Connection) -> list[np.ndarray]:
        """Each operand's source output of step ``τ - 1 - delay`` (zeros before step 1)."""
        return [self.history[self.index[o.source]][o.delay] for o in c.operands]

    def step(self, host: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Advance one step; ``host[pop]`` is this step's ``a_in`` of each host-fed population.

        Returns every population's output this step (spec order): 0/1 spikes, or the graded
        payloads of a programmable neuron.
        """
        self.tau += 1
        out = []
        for i, p in enumerate(self.spec.populations):
            a = np.zeros(p.size, np.int64)
            if p.name in self.fed:
                a += np.asarray(host[p.name], np.int64).reshape(-1)
            for c, plan in self.into[i]:
                xs = self._read(c)
                if plan is not None:
                    a += plan(xs[0])
                else:
                    a += connection_output(c, [x[None] for x in xs])[0]
            out.append(self.neurons[i].step(self.tau, a))
        for h, y in zip(self.history, out, strict=True):
            h[1:] = h[:-1]
            h[0] = y
        return out
