"""A converted ONNX ANN on Loihi (issue 13, deliverable 3): it quantizes, lowers and runs on Lava.

``snncc convert`` emits plain synapse -> one-group ExpG-IF chains (no gate products), so the
Loihi quantizer maps every layer to the programmable neuron ``LoihiExpGIF`` with the same
``start``. The oracle is snncc's bit-accurate ``loihi`` reference interpreter run on the
quantized graph: the numpy executor of the lowered program and, on the runtime, the emitted Lava
network must reproduce it spike for spike on every population, and every population must fire
(else the comparison would be vacuous).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest

from snncc import data
from snncc.backends.lower import host
from snncc.backends.lower.passes import SPEC_KEY, balance_latency, lower
from snncc.backends.lower.simulate import simulate, windows
from snncc.backends.lower.spec import ProgramSpec
from snncc.cli import main
from snncc.interop.ann2snn import Conversion, convert
from snncc.interop.onnx_read import read_onnx
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.reference import RunResult, run

BITS, T, SAMPLES = 4, 13, 3


@dataclass
class Converted:
    conv: Conversion
    graph: Graph  # quantized for Loihi
    spec: ProgramSpec
    inputs: dict[str, np.ndarray]
    reference: RunResult  # the loihi reference, every node

    def reference_spikes(self, node: str) -> np.ndarray:
        return (self.reference.values[node] != 0).astype(np.uint8)


@pytest.fixture(scope="module")
def converted(rescnn_onnx) -> Converted:
    ann = read_onnx(rescnn_onnx)
    x_cal, _ = data.digits("train", size=8)
    g, conv = convert(ann, x_cal[:128], bits=BITS, timesteps=T)
    g, _ = run_pipeline(g, FRONT_PIPELINE)
    ctx = PassContext(config={"target": "loihi", "require_program": True})
    q, ctx = run_pipeline(g, [quantize, lower, balance_latency], ctx)
    x_test, _ = data.digits("test", size=8)
    inputs = {q.inputs[0]: x_test[:SAMPLES]}
    return Converted(conv, q, ctx.config[SPEC_KEY], inputs, run(q, inputs, "loihi", record="all"))


def test_every_layer_is_a_one_group_programmable_neuron(converted: Converted) -> None:
    c = converted
    neurons = {n: c.graph.op(n) for n in c.graph.nodes() if c.graph.op(n).NEURON}
    assert all(isinstance(op, O.LoihiExpGIF) for op in neurons.values())
    want = {j: (level - 1) * BITS for j, level in c.conv.levels.items()}
    assert {j: neurons[j].start for j in want} == want
    assert neurons["clock"].start == 0 and neurons["clock"].bits == 1
    assert {p.name: p.start for p in c.spec.populations} == {**want, "clock": 0}
    assert all(conn.kind != "product" for conn in c.spec.connections)  # no gate on chip


def test_numpy_executor_equals_the_loihi_reference(converted: Converted) -> None:
    c = converted
    a_in, batch = host.encode(c.graph, c.spec, c.inputs)
    got = windows(c.spec, simulate(c.spec, a_in, batch), batch)
    for p in c.spec.populations:
        want = c.reference_spikes(p.name)
        np.testing.assert_array_equal(got[p.name], want, err_msg=p.name)
        assert want.any(), f"{p.name} never fires"
    out = host.readout(c.graph, c.spec, got, c.inputs)
    for name, want in c.reference.outputs.items():
        np.testing.assert_array_equal(out[name], want)


def test_fused_stepper_equals_the_executor(converted: Converted) -> None:
    """The fused single-process variant (``network.run(fused=True)``) keeps the one-group
    schedule: it equals the executor on every population at every Lava step."""
    from snncc.backends.lava.stepper import SpecStepper
    from snncc.backends.lower.simulate import host_trace

    c = converted
    a_in, batch = host.encode(c.graph, c.spec, c.inputs)
    want = simulate(c.spec, a_in, batch)
    steps = c.spec.run_steps(batch)
    traces = {
        h.population: host_trace(
            c.spec, a_in[h.population].reshape(c.spec.timesteps, batch, -1), steps
        )
        for h in c.spec.host_inputs
    }
    stepper = SpecStepper(c.spec)
    for row in range(steps):
        out = stepper.step({k: v[row] for k, v in traces.items()})
        for q, y in zip(c.spec.populations, out, strict=True):
            np.testing.assert_array_equal(y != 0, want[q.name][row], err_msg=f"{q.name} {row}")


def test_convert_then_compile_for_loihi(tmp_path, rescnn_onnx, capsys) -> None:
    snn = tmp_path / "snn.pt"
    assert main(["convert", str(rescnn_onnx), "--timesteps", str(T), "--bits", str(BITS),
                 "--calibrate", "digits", "-o", str(snn)]) == 0  # fmt: skip
    code = main(["compile", str(snn), "--target", "loihi", "--budget", "8MiB",
                 "-o", str(tmp_path / "build")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    source = (tmp_path / "build" / "network.py").read_text()
    assert sorted(re.findall(r"depth=\d+, start=(\d+),", source)) == ["0", "0", "4", "8"]


@pytest.mark.runtime
def test_lava_spikes_equal_the_reference(converted: Converted) -> None:
    """The emitted Lava network on 3 samples: per neuron counts and per step spikes."""
    from snncc.backends.lava.runner import run_on_lava

    c = converted
    a_in, batch = host.encode(c.graph, c.spec, c.inputs)
    lava = run_on_lava(c.spec, a_in, batch, timeout=300)
    assert lava.info["batch"] == batch == SAMPLES
    for p in c.spec.populations:
        want = c.reference_spikes(p.name)
        np.testing.assert_array_equal(lava.counts[p.name], want.sum(axis=0), err_msg=p.name)
        np.testing.assert_array_equal(lava.spikes[p.name], want, err_msg=p.name)
        assert lava.counts[p.name].sum() > 0, f"{p.name} never fires"
    out = host.readout(c.graph, c.spec, lava.spikes, c.inputs)
    for name, want in c.reference.outputs.items():
        np.testing.assert_array_equal(out[name], want)
