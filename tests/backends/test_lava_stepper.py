"""The fused process's arithmetic (:class:`snncc.backends.lava.stepper.SpecStepper`) against the
numpy executor :func:`~snncc.backends.lower.simulate.simulate`, which the Lava parity tests pin
to Lava: every population's spikes, per neuron and per Lava step, over a whole run."""

from __future__ import annotations

import numpy as np
import pytest

from snncc.backends.lava.conv_plan import ConvPlan
from snncc.backends.lava.stepper import SpecStepper
from snncc.backends.lower import host
from snncc.backends.lower.kernels import connection_output
from snncc.backends.lower.simulate import host_trace, simulate


@pytest.mark.parametrize("name", ["digits", "sdt", "ge2mst"])
def test_stepper_equals_the_executor(programs, name: str) -> None:
    """Trained spikingformer (DelayDense, convs, spike products), SDT (AND neurons), GE2MST
    (programmable neurons with graded payloads)."""
    p = programs(name)
    a_in, batch = host.encode(p.graph, p.spec, p.inputs)
    want = simulate(p.spec, a_in, batch)
    steps = p.spec.run_steps(batch)
    traces = {
        h.population: host_trace(
            p.spec, a_in[h.population].reshape(p.spec.timesteps, batch, -1), steps
        )
        for h in p.spec.host_inputs
    }
    stepper = SpecStepper(p.spec)
    got = {q.name: np.zeros((steps, q.size), np.uint8) for q in p.spec.populations}
    for row in range(steps):
        out = stepper.step({k: v[row] for k, v in traces.items()})
        for q, y in zip(p.spec.populations, out, strict=True):
            got[q.name][row] = y != 0
    for q in p.spec.populations:
        assert want[q.name].any(), q.name  # a silent population would make this vacuous
        np.testing.assert_array_equal(got[q.name], want[q.name], err_msg=q.name)


@pytest.mark.parametrize("name", ["digits", "sdt", "ge2mst"])
def test_conv_plan_equals_the_connection_kernel(programs, name: str) -> None:
    """Every conv connection: the precomputed plan against ``connection_output`` on random
    source outputs (spikes, and payloads up to the source's largest)."""
    p = programs(name)
    rng = np.random.default_rng(3)
    convs = [c for c in p.spec.connections if c.kind == "conv"]
    assert convs or name != "digits"
    for c in convs:
        src = p.spec.population(c.operands[0].source)
        top = int(src.payloads().max())
        plan = ConvPlan(c, top)
        for density in (0.05, 0.5):
            s = (rng.random(src.size) < density) * rng.integers(1, top + 1, src.size)
            want = connection_output(c, [s[None].astype(np.int64)])[0]
            assert want.any(), c.name
            np.testing.assert_array_equal(plan(s), want, err_msg=c.name)
