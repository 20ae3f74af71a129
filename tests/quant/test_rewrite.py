"""The Loihi quantizer's rewrites (snncc.quant.rewrite): each keeps the model's float value.

Every rewrite is applied to the front graph of a zoo model and the float reference of the
rewritten graph is compared with the original's (the PyTorch-equal oracle): same spikes, outputs
equal up to float summation order. Then the quantized semantics: a SEW projection per source,
each shifted on its own, is what the ``loihi`` reference computes.
"""

from __future__ import annotations

import numpy as np
import pytest

from snncc.data.digits import digits
from snncc.data.gestures import gestures
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import TensorType
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.quant.rewrite import (
    distribute_spike_sums,
    fold_channel_maps,
    mean_currents_as_gain,
    prune_deployed,
    sums_as_synapses,
)
from snncc.quant.streams import partition_nodes
from snncc.reference import run
from snncc.reference.loihi_kernels import shift_sum


def _front(name: str) -> Graph:
    from snncc.loading import resolve_model, to_graph

    return run_pipeline(to_graph(resolve_model(name)), FRONT_PIPELINE)[0]


def _inputs(g: Graph) -> dict[str, np.ndarray]:
    if g.op(g.inputs[0]).shape[0] == 2:  # sdt-tiny: event frames [T, B, 2, 32, 32]
        return {g.inputs[0]: np.moveaxis(gestures(n_per_class=1, split="test")[0][:2], 1, 0)}
    return {g.inputs[0]: digits("test")[0][:2]}


def _same_float_model(before: Graph, after: Graph) -> None:
    x = _inputs(before)
    a, b = run(before, x, "float"), run(after, x, "float")
    for n, s in a.spikes.items():
        np.testing.assert_array_equal(b.spikes[n], s, err_msg=n)
    for n, v in a.outputs.items():
        np.testing.assert_allclose(b.outputs[n], v, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "rewrite", "expect"),
    [
        ("spikformer-tiny", distribute_spike_sums, "sew_sources"),
        ("elastic-spikformer-tiny", distribute_spike_sums, "sew_sources"),
        ("elastic-spikformer-tiny", fold_channel_maps, "folded_channel_map"),
        ("sdt-tiny", sums_as_synapses, "reduction_as_synapse"),
    ],
)
def test_rewrite_keeps_the_float_model(name: str, rewrite, expect: str) -> None:
    before = _front(name)
    after = before.copy()
    done = rewrite(after, partition_nodes(after)[0])
    assert done and all(expect in after.node_meta(n)["rewritten"] for n in done)
    prune_deployed(after)
    _same_float_model(before, after)


def test_mean_of_currents_becomes_a_sum_with_the_neuron_gain() -> None:
    """sdt's head neuron reads the token mean of the residual stream: a sum, gain 16."""
    before = _front("sdt-tiny")
    after = before.copy()
    assert mean_currents_as_gain(after, partition_nodes(after)[0]) == ["mean"]
    assert isinstance(after.op("mean"), O.Sum) and after.node_meta("head_lif")["input_gain"] == 16
    # the stream before the mean is a private copy: the residual stream keeps its readers
    assert after.inputs_of("mean")[0] == "flatten.for.mean"
    head = after.op("head_lif")  # LIF(16·x, 16·v_th) is LIF(x, v_th): check it in float
    after.set_op("head_lif", head.replace(v_threshold=16 * head.v_threshold))
    _same_float_model(before, after)


def _sew_graph(bias: float) -> Graph:
    """x -> two host convs -> LIFs a, b -> a + b (a SEW sum) -> fc -> c -> time mean."""
    rng = np.random.default_rng(5)
    g = Graph("sew")
    g.meta["timesteps"] = 4
    g.add("x", O.Input(shape=(2, 4, 4)), TensorType((2, 4, 4)))
    g.inputs.append("x")
    for n in ("a", "b"):
        conv = O.Conv2d(weight=rng.normal(size=(3, 2, 3, 3)), padding=(1, 1))
        g.add(f"enc_{n}", conv, TensorType((3, 4, 4)))
        g.connect("x", f"enc_{n}")
        g.add(n, O.LIF(tau=2.0, v_threshold=0.5), TensorType((3, 4, 4)))
        g.connect(f"enc_{n}", n)
    g.add("sum", O.Add(), TensorType((3, 4, 4)))
    g.connect("a", "sum", "in0")
    g.connect("b", "sum", "in1")
    g.add("flat", O.Reshape((48,)), TensorType((48,)))
    g.connect("sum", "flat")
    fc = O.Linear(weight=rng.uniform(-0.05, 0.05, (7, 48)), bias=np.full(7, bias))
    g.add("fc", fc, TensorType((7,)))
    g.connect("flat", "fc")
    g.add("c", O.LIF(tau=2.0, v_threshold=bias + 0.1), TensorType((7,)))
    g.connect("fc", "c")
    g.add("rate", O.TimeMean(), TensorType((7,), temporal=False))
    g.connect("c", "rate")
    g.outputs.append("rate")
    return run_pipeline(g, FRONT_PIPELINE)[0]


def test_sew_projections_are_floored_one_by_one() -> None:
    """The deployed semantics: each source's projection is shifted by the exponent on its own,
    as one Lava Dense per source computes it (exact whatever the exponent's sign)."""
    g, _ = run_pipeline(_sew_graph(30.0), [quantize], PassContext(config={"target": "loihi"}))
    assert g.node_meta("fc")["rewritten"]["sew_sources"] == ["flat.sew0", "flat.sew1"]
    copies = ["fc", "fc.sew1"]
    exps = {g.node_meta(c)["quant"]["weight_exp"] for c in copies}
    assert len(exps) == 1 and np.array_equal(g.op("fc.sew1").weight, g.op("fc").weight)
    x = {"x": np.random.default_rng(6).normal(1.0, 1.0, (4, 8, 2, 4, 4))}
    res = run(g, x, "loihi", record="all")
    w, (exp,) = np.asarray(g.op("fc").weight, np.int64), exps
    spikes = [res.values[g.inputs_of(c)[0]].astype(np.int64) for c in copies]
    assert all(0.1 < s.mean() < 0.9 for s in spikes)
    want = sum(shift_sum(s @ w.T, exp) for s in spikes)
    np.testing.assert_array_equal(res.values["fc.sew_sum"], want)
    assert exp < 0  # the per-source floors are the point: one floor of the whole sum differs
    assert not np.array_equal(shift_sum(sum(s @ w.T for s in spikes), exp), want)


def test_spinnaker_quantization_is_not_rewritten() -> None:
    g, _ = run_pipeline(
        _front("spikformer-tiny"), [quantize], PassContext(config={"target": "spinnaker"})
    )
    assert not any("rewritten" in g.node_meta(n) for n in g.nodes())
