"""NIR export and import (issue 13, deliverable 1).

- IR -> NIR -> IR gives an equal graph (ops, parameters, edges, types, names) for a hand model, the
  zoo's tiny transformers and a quantized graph;
- a graph written with only standard nodes reads back with ``nir.read``; extension nodes make
  ``nir.read`` fail instead of being dropped;
- graphs built the way Norse and snnTorch export them import, and the float reference equals a
  numpy simulation of the NIR semantics (and snnTorch's own forward pass) spike for spike; the one
  discretisation difference (``>=`` vs ``>`` at an exact tie) is pinned;
- nodes snncc cannot lower are all listed, exit 3.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from snncc.diagnostics import SnnccError
from snncc.interop.nir_common import read_file
from snncc.interop.nir_export import nir_bytes, to_nir, write_nir
from snncc.interop.nir_import import from_nir
from snncc.ir import ops as O
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.reference import run

from .conftest import simulate_nir


def _roundtrip(g, tmp_path, name="g.nir"):
    path = write_nir(g, tmp_path / name)
    return from_nir(path)


# -- round trips ----------------------------------------------------------------------------------
def test_hand_model_round_trip(hand_graph, tmp_path):
    assert _roundtrip(hand_graph, tmp_path) == hand_graph
    front, _ = run_pipeline(hand_graph, FRONT_PIPELINE)
    back = _roundtrip(front, tmp_path, "front.nir")
    assert back == front
    assert [back.op(n).kind for n in back.nodes()] == [front.op(n).kind for n in front.nodes()]


@pytest.mark.parametrize("name", ["spikingformer-tiny", "sdt-tiny", "ge2mst-tiny"])
def test_zoo_round_trip(name, tmp_path):
    from snncc.loading import resolve_model, to_graph

    g, _ = run_pipeline(to_graph(resolve_model(name)), FRONT_PIPELINE)
    assert _roundtrip(g, tmp_path) == g


def test_quantized_graph_round_trip(hand_graph, tmp_path):
    from snncc.passes.quantize import quantize

    ctx = PassContext(config={"target": "loihi"})
    q, _ = run_pipeline(hand_graph, [*FRONT_PIPELINE, quantize], ctx)
    back = _roundtrip(q, tmp_path)
    assert back == q
    doc = to_nir(q)
    assert doc.nodes["lif1"]["type"] == "snncc.LoihiLIF"  # integer neurons are extension nodes
    assert doc.nodes["fc"]["type"] == "snncc.Linear"  # so are quantized synapses (weight_exp)


def test_edited_weights_are_read_as_nir(hand_graph, tmp_path):
    """A record whose NIR fields were changed by another tool is ignored: the file rules."""
    import h5py

    path = write_nir(hand_graph, tmp_path / "g.nir")
    with h5py.File(path, "a") as f:
        f["node/nodes/fc/weight"][0, 0] += 1.0
    back = from_nir(path)
    assert back.op("fc").weight[0, 0] == hand_graph.op("fc").weight[0, 0] + 1.0
    assert back.op("conv2") is not None  # the rest still imports


# -- NIR's own reader -----------------------------------------------------------------------------
def test_standard_nodes_read_with_nir(hand_graph, tmp_path):
    import nir

    g = hand_graph.copy()
    g.outputs = ["out"]
    g.remove(next(n for n in g.nodes() if isinstance(g.op(n), O.TimeMean)))
    path = write_nir(g, tmp_path / "std.nir")
    read = nir.read(path)
    kinds = {k: type(v).__name__ for k, v in read.nodes.items()}
    assert kinds == {
        "input": "Input", "conv": "Conv2d", "lif1": "LIF", "conv2": "Conv2d", "lif2": "LIF",
        "flatten": "Flatten", "fc": "Affine", "out": "IF", "output": "Output",
    }  # fmt: skip
    assert read.metadata["dt"] == 1e-4
    np.testing.assert_array_equal(read.nodes["lif1"].tau, np.full((4, 8, 8), 1.5 * 1e-4))


def test_extension_nodes_fail_loudly_in_nir_read(tmp_path):
    import nir

    from snncc.loading import resolve_model, to_graph

    g, _ = run_pipeline(to_graph(resolve_model("sdt-tiny")), FRONT_PIPELINE)
    path = tmp_path / "sdt.nir"
    path.write_bytes(nir_bytes(g))
    types = {str(d["type"]) for d in read_file(path).nodes.values()}
    assert {"snncc.SpikeAnd", "snncc.SpikeOr", "snncc.TimeMean"} <= types
    with pytest.raises(Exception):  # noqa: B017 - nir raises a bare AssertionError for them
        nir.read(path)


# -- other frameworks -----------------------------------------------------------------------------
def _norse_style_graph(rng: np.random.Generator):
    """Built with the nir API the way Norse's exporter maps Conv2d / LIFBoxCell / Linear:
    numpy weights, ``tau = 1 / tau_mem_inv`` in seconds, ``r = 1``, zero leak and reset."""
    import nir

    shape = (4, 8, 8)
    tau = np.full(shape, 1 / 100.0)  # LIFBoxParameters(tau_mem_inv=100)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([2, 8, 8])),
            "conv": nir.Conv2d(
                input_shape=(8, 8),
                weight=rng.normal(0, 0.6, (4, 2, 3, 3)),
                stride=1,
                padding=1,
                dilation=1,
                groups=1,
                bias=rng.normal(0, 0.1, 4),
            ),  # fmt: skip
            "lif": nir.LIF(
                tau=tau,
                r=np.ones(shape),
                v_leak=np.zeros(shape),
                v_threshold=np.full(shape, 0.2),
                v_reset=np.zeros(shape),
            ),  # fmt: skip
            "pool": nir.SumPool2d(
                kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
            ),  # fmt: skip
            "flat": nir.Flatten(input_type=np.array([4, 4, 4]), start_dim=0, end_dim=-1),
            "fc": nir.Affine(weight=rng.normal(0, 0.5, (10, 64)), bias=np.zeros(10)),
            "out": nir.LIF(
                tau=np.full(10, 0.02),
                r=np.ones(10),
                v_leak=np.zeros(10),
                v_threshold=np.full(10, 0.1),
                v_reset=np.zeros(10),
            ),  # fmt: skip
            "output": nir.Output(output_type=np.array([10])),
        },
        edges=[
            ("input", "conv"),
            ("conv", "lif"),
            ("lif", "pool"),
            ("pool", "flat"),
            ("flat", "fc"),
            ("fc", "out"),
            ("out", "output"),
        ],  # fmt: skip
    )


def test_norse_style_graph_matches_numpy_nir_semantics(tmp_path):
    import nir

    rng = np.random.default_rng(1)
    graph = _norse_style_graph(rng)
    nir.write(tmp_path / "norse.nir", graph)  # through a file, as a user would get it
    dt, T = 1e-3, 20  # Norse simulates with dt = 1e-3
    g = from_nir(tmp_path / "norse.nir", dt=dt, timesteps=T)
    assert isinstance(g.op("lif"), O.LIF) and g.op("lif").tau == pytest.approx(10.0)
    assert g.op("lif").decay_input  # r = 1: X = I, leak on the input too
    assert isinstance(g.op("pool"), O.Conv2d) and g.op("pool").groups == 4  # sum pool
    x = rng.normal(0.5, 1.0, (T, 3, 2, 8, 8))
    want = simulate_nir(graph, x, dt)
    got = run(g, {"input": x})
    for n in ("lif", "out"):
        assert got.spikes[n].sum() > 0
        np.testing.assert_array_equal(got.spikes[n], want[n].astype(np.uint8))
    np.testing.assert_allclose(got.outputs[g.outputs[0]], want["out"].mean(0))


def _snntorch_net():
    import snntorch as snn

    torch.manual_seed(0)
    C, H, W, N = 4, 8, 8, 10
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, C, 3, padding=1),
        # snnTorch's exporter writes v_reset = 0 (reset to zero) and needs per-neuron beta and
        # threshold tensors for NIR's shape check (a scalar beta fails nir.NIRGraph's type check).
        snn.Leaky(
            beta=torch.full((C, H, W), 0.9),
            threshold=torch.ones(C, H, W),
            reset_mechanism="zero",
            init_hidden=True,
        ),  # fmt: skip
        torch.nn.Flatten(),
        torch.nn.Linear(C * H * W, N),
        snn.Leaky(
            beta=torch.full((N,), 0.8),
            threshold=torch.full((N,), 0.5),
            reset_mechanism="zero",
            init_hidden=True,
            output=True,
        ),  # fmt: skip
    )


def test_snntorch_export_matches_its_forward_and_nir_semantics(tmp_path):
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    net = _snntorch_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    T, B = 12, 6
    g = from_nir(graph, timesteps=T)  # dt = 1e-4: snnTorch's exporter's
    assert not g.op("1").decay_input and g.op("1").tau == pytest.approx(10.0, rel=1e-6)
    x = torch.rand(T, B, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2
    utils.reset(net)
    spikes: dict[str, list] = {"1": [], "4": []}
    with torch.no_grad():
        for t in range(T):
            s1 = net[1](net[0](x[t]))
            s2, _ = net[4](net[3](net[2](s1)))
            spikes["1"].append(s1.numpy())
            spikes["4"].append(s2.numpy())
    got = run(g, {"input": x.numpy().astype(np.float64)})
    want = simulate_nir(graph, x.numpy().astype(np.float64), 1e-4)
    for n in ("1", "4"):
        theirs = np.stack(spikes[n]).astype(np.uint8)
        assert theirs.sum() > 0
        np.testing.assert_array_equal(got.spikes[n], theirs)  # snnTorch's own forward pass
        np.testing.assert_array_equal(got.spikes[n], want[n].astype(np.uint8))  # NIR, numpy
    # and through a file written by nir.write, as snnTorch users save it
    import nir

    nir.write(tmp_path / "snntorch.nir", graph)
    assert from_nir(tmp_path / "snntorch.nir", timesteps=T) == g


def test_threshold_tie_is_the_one_pinned_difference():
    """NIR and snnTorch fire on v > v_threshold, snncc (SpikingJelly) on v >= v_threshold: a
    membrane exactly on the threshold spikes in snncc only. Any other value agrees."""
    import nir
    import snntorch as snn

    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1])),
            "w": nir.Linear(weight=np.ones((1, 1))),
            "lif": nir.LIF(
                tau=np.array([2e-4]),
                r=np.array([2.0]),
                v_leak=np.zeros(1),
                v_threshold=np.ones(1),
                v_reset=np.zeros(1),
            ),  # fmt: skip
            "output": nir.Output(output_type=np.array([1])),
        },
        edges=[("input", "w"), ("w", "lif"), ("lif", "output")],
    )
    g = from_nir(graph, timesteps=2)
    eps = 2.0**-20  # exact in float32 too (snnTorch computes in float32)
    for value, snncc_spikes in ((1.0, 1), (1.0 + eps, 1), (1.0 - eps, 0)):
        x = np.array([value, 0.0]).reshape(2, 1, 1)
        mine = int(run(g, {"input": x}).spikes["lif"][0, 0, 0])
        nir_sim = int(simulate_nir(graph, x, 1e-4)["lif"][0, 0, 0])
        leaky = snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero")
        theirs = int(leaky(torch.tensor([value]), torch.zeros(1))[0].item())
        assert mine == snncc_spikes
        assert nir_sim == theirs == (1 if value > 1.0 else 0)


# -- refusals -------------------------------------------------------------------------------------
def _unsupported_graph():
    import nir

    def lif(tau):
        n = len(tau)
        return nir.LIF(tau=np.asarray(tau), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n))  # fmt: skip

    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([4])),
            "a1": nir.Affine(weight=np.ones((3, 4)), bias=np.zeros(3)),
            "cuba": nir.CubaLIF(
                tau_syn=np.full(3, 5e-3),
                tau_mem=np.full(3, 1e-2),
                r=np.ones(3),
                v_leak=np.zeros(3),
                v_threshold=np.ones(3),
            ),  # fmt: skip
            "a2": nir.Affine(weight=np.ones((3, 3)), bias=np.zeros(3)),
            "mixed": lif([1e-2, 2e-2, 3e-2]),
            "a3": nir.Affine(weight=np.ones((3, 3)), bias=np.zeros(3)),
            "thr": nir.Threshold(threshold=np.ones(3)),
            "a4": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
            "li": nir.LI(tau=np.full(2, 1e-2), r=np.ones(2), v_leak=np.zeros(2)),
            "output": nir.Output(output_type=np.array([2])),
        },
        edges=[
            ("input", "a1"),
            ("a1", "cuba"),
            ("cuba", "a2"),
            ("a2", "mixed"),
            ("mixed", "a3"),
            ("a3", "thr"),
            ("thr", "a4"),
            ("a4", "li"),
            ("li", "output"),
        ],  # fmt: skip
    )


def test_unsupported_nodes_are_all_listed():
    with pytest.raises(SnnccError) as e:
        from_nir(_unsupported_graph(), timesteps=4)
    err = e.value
    assert err.exit_code == 3 and err.code == "NIR010"
    assert [d.node for d in err.diagnostics] == ["cuba", "mixed", "thr", "li"]
    assert all(d.hint for d in err.diagnostics)  # what would work
    text = err.format()
    assert "tau_syn" in text and "tau varies" in text and "stateless threshold" in text
