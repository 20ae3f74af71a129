"""Average pooling of spikes on chip (LSFormer's SPooling) and the refusal of ExpGIF (Ge²mS-T).

``quantize`` lowers a deployed ``AvgPool2d`` that reads spikes to a depthwise ``Conv2d`` with
weights ``1/k²`` (``snncc.quant.lower``) and gives its stream the scale ``k²·2^j``, so the integer
weight is exact. Checked here: the lowering against hand-computed windows (borders included)
and torch; the quantized pool on both targets against an *exact integer* evaluation of the same
SPooling neuron on the chip's own input spikes; ``compile_model`` for ``lsformer-tiny`` end to
end; and the messages for what cannot be mapped (ExpGIF, IF on SpiNNaker, pools of currents).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snncc import models
from snncc.compiler import compile_model
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir import serialize
from snncc.ir.graph import Graph
from snncc.ir.shapes import output_shape
from snncc.ir.types import Kind, TensorType
from snncc.loading import resolve_model, to_graph
from snncc.loading.checkpoint import save_checkpoint
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.quant.loihi import membrane_granule
from snncc.quant.lower import avg_pool_as_conv
from snncc.reference import run
from snncc.reference.context import KernelCtx
from snncc.reference.float_kernels import KERNELS
from snncc.reference.loihi_kernels import lif_trace
from snncc.resources.core_fit import layer_memory

TARGETS = ("loihi", "spinnaker")
POOLS = ("patch_embed.spool3", "patch_embed.spool4")


# -- the lowering, by hand ------------------------------------------------------------------------
def _eval(op: O.Op, x: np.ndarray) -> np.ndarray:
    """One op's float kernel on one ``[C, H, W]`` sample."""
    shape = output_shape(op, [x.shape])
    ctx = KernelCtx(node="n", lead=2, timesteps=1, batch=1, out_type=TensorType(shape))
    return KERNELS[type(op)](op, [x[None, None]], ctx)[0, 0]


X = np.array(
    [
        [[1, 0, 1, 1], [0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]],
        np.ones((4, 4)),
    ],
    dtype=np.float64,
)


def test_lowered_conv_equals_hand_computed_avg_pool_with_padding() -> None:
    pool = O.AvgPool2d(kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    conv = avg_pool_as_conv(pool, 2)
    assert conv.groups == 2 and conv.weight.shape == (2, 1, 3, 3) and conv.bias is None
    np.testing.assert_array_equal(conv.weight, np.full((2, 1, 3, 3), 1 / 9))
    # Windows rows/cols {-1, 0, 1} and {1, 2, 3}; the padded taps count as zeros, divisor 9.
    # Channel 0: (0,0) sees 1,0 / 0,1 -> 2; (0,1) sees 0,1,1 / 1,0,0 -> 3; (1,0) sees 0,1 / 1,1 /
    # 0,0 -> 3; (1,1) sees 1,0,0 / 1,1,0 / 0,1,1 -> 5. Channel 1 (all ones): 4, 6, 6, 9 inputs.
    hand = np.array([[[2, 3], [3, 5]], [[4, 6], [6, 9]]]) / 9
    np.testing.assert_allclose(_eval(conv, X), hand, rtol=0, atol=1e-15)
    np.testing.assert_allclose(_eval(pool, X), hand, rtol=0, atol=1e-15)
    ref = F.avg_pool2d(torch.from_numpy(X)[None], 3, 2, 1)[0].numpy()
    np.testing.assert_allclose(_eval(conv, X), ref, rtol=0, atol=1e-15)


def test_power_of_two_window_is_bit_identical_and_channels_do_not_mix() -> None:
    pool = O.AvgPool2d(kernel=(2, 2), stride=(2, 2))
    y = _eval(avg_pool_as_conv(pool, 2), X)
    np.testing.assert_array_equal(y, [[[0.5, 0.5], [0.5, 0.75]], [[1, 1], [1, 1]]])
    np.testing.assert_array_equal(y, F.avg_pool2d(torch.from_numpy(X)[None], 2)[0].numpy())
    # count_include_pad is irrelevant without padding: still a convolution.
    no_pad = O.AvgPool2d(kernel=(2, 2), stride=(1, 1), count_include_pad=False)
    np.testing.assert_array_equal(_eval(avg_pool_as_conv(no_pad, 2), X), _eval(no_pad, X))


def test_count_exclude_pad_with_padding_is_refused() -> None:
    pool = O.AvgPool2d(kernel=(3, 3), stride=(2, 2), padding=(1, 1), count_include_pad=False)
    with pytest.raises(SnnccError) as e:
        avg_pool_as_conv(pool, 2, "p")
    assert e.value.code == "QNT001" and e.value.exit_code == 2
    assert "p: AvgPool2d(count_include_pad=False" in e.value.message
    assert "count_include_pad=True" in (e.value.hint or "")


# -- the quantized pool on a hand graph ---------------------------------------------------------
T, B, C = 4, 4, 3


def _add(g: Graph, name: str, op: O.Op, *srcs: str) -> str:
    shape = output_shape(op, [g.type(s).shape for s in srcs])
    g.add(name, op, TensorType(shape, Kind.CURRENT, None, not isinstance(op, O.TimeMean)))
    for src, port in zip(srcs, op.in_ports, strict=True):
        g.connect(src, name, port)
    return name


def _spool_graph(neuron: O.Op, pool_input: str = "lif0") -> Graph:
    """x -> conv0 (host) -> lif0 -> [conv1] -> avgpool 3/2/1 -> neuron -> fc -> lif2 -> mean."""
    rng = np.random.default_rng(3)
    g = Graph("spool")
    g.meta["timesteps"] = T
    g.add("x", O.Input(shape=(2, 8, 8)), TensorType((2, 8, 8)))
    g.inputs.append("x")
    _add(g, "conv0", O.Conv2d(weight=rng.normal(0, 1.5, (C, 2, 3, 3)), padding=(1, 1)), "x")
    _add(g, "lif0", O.LIF(tau=2.0), "conv0")
    if pool_input == "conv1":
        _add(g, "conv1", O.Conv2d(weight=rng.normal(0, 1, (C, C, 1, 1))), "lif0")
    _add(g, "pool", O.AvgPool2d(kernel=(3, 3), stride=(2, 2), padding=(1, 1)), pool_input)
    _add(g, "spool", neuron, "pool")
    _add(g, "flat", O.Reshape((C * 16,)), "spool")
    _add(g, "fc", O.Linear(weight=rng.uniform(-1, 1, (5, C * 16))), "flat")
    _add(g, "lif2", O.LIF(tau=2.0), "fc")
    _add(g, "rate", O.TimeMean(), "lif2")
    g.outputs.append("rate")
    return g


def _quantize(g: Graph, target: str) -> tuple[Graph, PassContext]:
    front, _ = run_pipeline(g, FRONT_PIPELINE)
    return run_pipeline(front, [quantize], PassContext(config={"target": target}))


def _exact_spool(s_in: np.ndarray, leaky: bool) -> np.ndarray:
    """SPooling (3x3/2/1 avg pool, neuron at 0.5, hard reset) in exact integers, over T.

    The window count N is an integer; IF: ``9·V += N``, fire at ``2·9·V >= 9``. LIF (tau 2,
    decay_input): ``U = 16·9·V`` stays an integer for T <= 4 steps (``H = U/2 + 8N``), fire at
    ``H >= 72``.
    """
    flat = torch.from_numpy(s_in.reshape(-1, *s_in.shape[2:]))
    counts = F.avg_pool2d(flat, 3, 2, 1, divisor_override=1).numpy()
    n = np.rint(counts).astype(np.int64).reshape(s_in.shape[:2] + counts.shape[1:])
    u = np.zeros(n.shape[1:], np.int64)
    out = []
    for t in range(n.shape[0]):
        if leaky:
            assert not np.any(u % 2)
            h = u // 2 + 8 * n[t]
            s = h >= 72
        else:
            h = u + n[t]
            s = 2 * h >= 9
        u = np.where(s, 0, h)
        out.append(s)
    return np.array(out, dtype=np.uint8)


def _float_if_spool(s_in: np.ndarray) -> np.ndarray:
    """The float64 model: torch's avg_pool2d, then SpikingJelly's IF at 0.5 with hard reset."""
    flat = torch.from_numpy(s_in.reshape(-1, *s_in.shape[2:]))
    x = F.avg_pool2d(flat, 3, 2, 1).numpy()
    x = x.reshape(s_in.shape[:2] + x.shape[1:])
    v, out = np.zeros(x.shape[1:]), []
    for t in range(x.shape[0]):
        h = v + x[t]
        s = h - 0.5 >= 0
        v = np.where(s, 0.0, h)
        out.append(s)
    return np.array(out, dtype=np.uint8)


def _feeds(seed: int = 0) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).random((T, B, 2, 8, 8))}


@pytest.mark.parametrize(
    ("target", "neuron"),
    [
        ("loihi", O.IF(v_threshold=0.5)),
        ("loihi", O.LIF(tau=2.0, v_threshold=0.5)),
        ("spinnaker", O.LIF(tau=2.0, v_threshold=0.5)),
    ],
    ids=["loihi-if", "loihi-lif", "spinnaker-lif"],
)
def test_quantized_spool_equals_exact_spool_on_chip_spikes(target: str, neuron: O.Op) -> None:
    g, ctx = _quantize(_spool_graph(neuron), target)
    op, meta = g.op("pool"), g.node_meta("pool")
    assert isinstance(op, O.Conv2d) and op.groups == C and op.weight.dtype == np.int64
    assert meta["lowered_from"]["divisor"] == 9 and meta["quant"]["stream"] is not None
    # The stream scale is 9·2^j, so the single weight c/9 is an exact power of two.
    scale = g.node_meta("spool")["quant"]["scale"]
    j = math.log2(scale / 9)
    assert j == int(j)
    assert len(set(np.unique(op.weight).tolist())) == 1
    pass_rec = ctx.records[-1]
    assert any("pool: AvgPool2d of spikes lowered" in d for d in pass_rec.decisions)
    assert any("scale 9*2^" in d and "spool" in d for d in pass_rec.decisions)
    if target == "loihi":
        assert g.node_meta("spool")["quant"]["threshold_exact"] is True
    res = run(g, _feeds(), target, record="all")
    chip = res.spikes["spool"]
    assert 0.05 < chip.mean() < 0.95, chip.mean()
    exact = _exact_spool(res.values["lif0"], leaky=isinstance(neuron, O.LIF))
    np.testing.assert_array_equal(chip, exact)
    if isinstance(neuron, O.IF):  # N/9 >= 0.5 has no ties (4.5 is not a count): float64 agrees
        np.testing.assert_array_equal(chip, _float_if_spool(res.values["lif0"]))


def test_float_reference_of_lowered_graph_equals_unlowered() -> None:
    """Before quantization the lowered pool is the same float function (the pass swaps ops)."""
    from snncc.quant.lower import lower_avg_pools

    front, _ = run_pipeline(_spool_graph(O.IF(v_threshold=0.5)), FRONT_PIPELINE)
    lowered = front.copy()
    assert lower_avg_pools(lowered, set(lowered.nodes())) == ["pool"]
    a = run(front, _feeds(1), "float", record="all")
    b = run(lowered, _feeds(1), "float", record="all")
    np.testing.assert_allclose(b.values["pool"], a.values["pool"], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(b.spikes["spool"], a.spikes["spool"])
    # The memory model counts the same synapses for both forms.
    for target in TARGETS:
        before = {m.name: m.memory_bytes for m in layer_memory(front, target)}
        after = {m.name: m.memory_bytes for m in layer_memory(lowered, target)}
        assert before == after


def test_if_after_pool_on_spinnaker_names_the_knob() -> None:
    with pytest.raises(SnnccError) as e:
        _quantize(_spool_graph(O.IF(v_threshold=0.5)), "spinnaker")
    assert e.value.code == "QNT008" and "spool: a non-leaky IF neuron" in e.value.message
    assert 'spool_neuron="lif"' in (e.value.hint or "")


def test_pool_of_currents_message_says_current() -> None:
    with pytest.raises(SnnccError) as e:
        _quantize(_spool_graph(O.IF(v_threshold=0.5), pool_input="conv1"), "loihi")
    msg = e.value.message
    assert e.value.code == "QNT001" and "pool: AvgPool2d of a current value" in msg


def _mean_of_spikes_graph(neuron: O.Op | None = None) -> Graph:
    neuron = neuron or O.IF(v_threshold=0.5)
    g = _spool_graph(neuron)
    g.add("absmean", O.Mean(axes=(1, 2), keepdim=True), TensorType((C, 1, 1)))
    g.connect("lif0", "absmean")
    g.add("lifm", neuron, TensorType((C, 1, 1)))
    g.connect("absmean", "lifm")
    g.add("fcm", O.Linear(weight=np.ones((2, 1))), TensorType((C, 1, 2)))
    g.connect("lifm", "fcm")
    g.add("lifn", O.LIF(tau=2.0), TensorType((C, 1, 2)))
    g.connect("fcm", "lifn")
    g.add("rate2", O.TimeMean(), TensorType((C, 1, 2), temporal=False))
    g.connect("lifn", "rate2")
    g.outputs.append("rate2")
    return g


def test_unsupported_op_message_names_the_real_input_kind() -> None:
    """The generic message used to say "on currents" whatever the input was. Both quantizers
    now rewrite a mean of spikes read by a neuron into a synapse first, so the classifier is
    asked directly, as it sees a graph without that rewrite."""
    from snncc.quant.lower import lower_avg_pools
    from snncc.quant.streams import partition_nodes, split_graph

    front, _ = run_pipeline(_mean_of_spikes_graph(), FRONT_PIPELINE)
    lower_avg_pools(front, partition_nodes(front)[0])  # as quantize does first
    with pytest.raises(SnnccError) as e:
        split_graph(front)
    assert e.value.code == "QNT001"
    assert "absmean: Mean of spike inputs cannot run on chip" in e.value.message
    assert "currents" not in e.value.message


def test_mean_of_spikes_read_by_a_neuron_is_a_synapse_on_loihi() -> None:
    """On Loihi it is a Linear with weights 1/N over the reduced axes (moved last)."""
    g, _ = _quantize(_mean_of_spikes_graph(), "loihi")
    op = g.op("absmean")
    assert isinstance(op, O.Linear) and op.weight.shape == (1, 64)  # 8x8 spikes per channel
    assert g.node_meta("absmean")["rewritten"]["reduction_as_synapse"] == "Mean"
    front, _ = run_pipeline(_mean_of_spikes_graph(), FRONT_PIPELINE)
    want = run(front, _feeds(), "float").spikes["lifm"]
    got = run(g, _feeds(), "loihi").spikes["lifm"]
    assert want.any() and not want.all()
    np.testing.assert_array_equal(got, want)  # 1/64 and the 0.5 threshold are exact integers


def test_mean_of_spikes_read_by_a_neuron_is_a_synapse_on_spinnaker() -> None:
    """The same rewrite on SpiNNaker (with LIF neurons: an IF has no IF_curr_delta form)."""
    lif = O.LIF(tau=2.0, v_threshold=0.25)
    g, _ = _quantize(_mean_of_spikes_graph(lif), "spinnaker")
    op = g.op("absmean")
    assert isinstance(op, O.Linear) and op.weight.shape == (1, 64)
    assert g.node_meta("absmean")["rewritten"]["reduction_as_synapse"] == "Mean"
    assert isinstance(g.op("lifm"), O.SpiNNakerLIF)


# -- the leaky-membrane grid --------------------------------------------------------------------
def test_leaky_membrane_granule_hand_values() -> None:
    zero = np.zeros(1, np.int64)
    # dv = 2048 loses 1 bit per step: a_in multiples of 2^3 -> v multiples of 2^9, 2^8, 2^7, 2^6.
    assert membrane_granule(4095, 2048, zero, 6, input_exp=3, steps=4) == 64
    assert membrane_granule(4095, 2048, zero, 6, input_exp=2, steps=4) == 32  # 2^(8 - 3)
    assert membrane_granule(4095, 2048, zero, 6, input_exp=3, steps=5) == 32  # 2^(9 - 4)
    assert membrane_granule(4095, 2048, zero, 6, input_exp=30) == 1  # no step count: unknown
    # bias 3·64: v's input lattice is 2^6, then 3 halvings: 2^3.
    assert membrane_granule(4095, 2048, np.array([3]), 6, input_exp=9, steps=4) == 8
    assert membrane_granule(4095, 2048, np.array([8]), 6, input_exp=3, steps=4) == 64
    # Attention: counts times 128 (2^7), halving leak, T = 4: 2^(13 - 3) = 1024.
    assert membrane_granule(4095, 2048, zero, 6, input_exp=7, steps=4) == 1024
    # dv = 1365 (tau 3): 4096 - 1365 is odd, 12 bits lost per step.
    assert membrane_granule(4095, 1365, zero, 6, input_exp=12, steps=2) == 64
    assert membrane_granule(4095, 1365, zero, 6, input_exp=11, steps=2) == 32  # 2^(17 - 12)
    assert membrane_granule(4095, 1365, zero, 6, input_exp=5, steps=2) == 1  # 11 < 12: any value
    # A leaky current (du = 2047: factor 2048) also loses a bit per step, and u never resets.
    assert membrane_granule(2047, 0, zero, 6, input_exp=3, steps=4) == 64  # u: 2^9 .. 2^6
    # v: each term u_tau decays t - tau times: 2^(9 - (tau - 1) - (t - tau)) >= 2^(9 - 3).
    assert membrane_granule(2047, 2048, zero, 6, input_exp=3, steps=4) == 64


@pytest.mark.parametrize(
    ("du", "dv", "p"), [(4095, 2048, 3), (4095, 1024, 6), (4095, 3072, 13), (4095, 2048, 7),
                        (4095, 2048, 1), (2047, 2048, 4), (-1, 0, 2), (4095, 1365, 12)]
)  # fmt: skip
def test_leaky_membrane_granule_against_lava_traces(du: int, dv: int, p: int) -> None:
    """Lava's integer LIF really keeps every v a multiple of the granule for T steps; with a
    delta or non-decaying current the granule is also tight (some v is an odd multiple of it).
    A leaky current makes it a lower bound only: sums of decayed terms can carry more bits."""
    rng = np.random.default_rng(dv + p)
    steps = 4
    granule = membrane_granule(du, dv, np.zeros(1, np.int64), 6, input_exp=p, steps=steps)
    m = max((2**13 - 1) >> p, 1)  # |a_in| <= 2^13: v stays far from saturation
    a = rng.integers(-m, m + 1, (steps, 5000)) << p
    _, v, _ = lif_trace(a, du, dv, vth=2**17 - 1)
    assert not np.any(v % granule), granule
    if du in (4095, -1):
        assert np.any(v % (2 * granule)), granule


# -- compile_model end to end ---------------------------------------------------------------------
def _checkpoint(path: Path, neuron: str) -> Path:
    """lsformer-tiny with weights large enough that every layer fires on random inputs."""
    torch.manual_seed(0)
    model = models.create("lsformer-tiny", spool_neuron=neuron).eval()
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                mod.weight.normal_(0.0, 2.0 / math.sqrt(mod.weight[0].numel()))
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.bias.fill_(1.0)
    spec = models.spec("lsformer-tiny")
    config = {**spec.config, "spool_neuron": neuron}
    return save_checkpoint(path, model, "lsformer-tiny", config, spec.input_shape, spec.timesteps)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("lsformer")
    rng = np.random.default_rng(0)
    np.savez(d / "eval.npz", x=rng.random((8, 1, 16, 16)), y=rng.integers(0, 10, 8))
    return {
        "if": _checkpoint(d / "lsf_if.pt", "if"),
        "lif": _checkpoint(d / "lsf_lif.pt", "lif"),
        "eval": d / "eval.npz",
    }


@pytest.mark.parametrize("target", TARGETS)
def test_compile_zoo_lsformer_tiny(target: str, tmp_path: Path) -> None:
    """The zoo model (spool_neuron="if") compiles for Loihi; SpiNNaker names the knob to change."""
    out = tmp_path / "out"
    if target == "spinnaker":
        with pytest.raises(SnnccError) as e:
            compile_model("lsformer-tiny", target=target, budget="1GiB", out_dir=out)
        assert e.value.code == "QNT008" and "patch_embed.spool3.neuron" in e.value.message
        assert 'spool_neuron="lif"' in (e.value.hint or "") and not out.exists()
        return
    res = compile_model("lsformer-tiny", target=target, budget="1GiB", out_dir=out)
    assert res.report["fits"] and (out / "report.json").is_file()
    for p in POOLS:
        assert isinstance(res.graph.op(f"{p}.avg_pool2d"), O.Conv2d)
    names = {layer["name"] for layer in res.report["layers"]}
    assert {f"{p}.neuron" for p in POOLS} <= names


@pytest.mark.parametrize(("target", "neuron"), [("loihi", "if"), ("spinnaker", "lif")])
def test_compile_lsformer_checkpoint_runs_and_evaluates(
    target: str, neuron: str, files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    res = compile_model(
        str(files[neuron]), target=target, budget="1GiB", out_dir=out, eval=str(files["eval"])
    )
    acc = res.report["accuracy"]
    assert 0.0 <= acc["float"] <= 1.0 and 0.0 <= acc["quantized"] <= 1.0
    assert acc["samples"] == 8
    assert {f"{p}.neuron" for p in POOLS} <= set(acc["per_layer_drift"])
    # The written IR is the quantized program; it runs in the target's integer mode.
    g = serialize.load(out / "ir")
    x = np.random.default_rng(5).random((4, 1, 16, 16))
    chip = run(g, {g.inputs[0]: x}, target, record="all")
    for p in POOLS:
        s = chip.spikes[f"{p}.neuron"]
        assert s.any(), p
        (src,) = g.inputs_of(f"{p}.avg_pool2d")
        np.testing.assert_array_equal(s, _exact_spool(chip.values[src], leaky=neuron == "lif"))
    # Memory per deployed layer: the lowered conv costs what the float graph's pool costs.
    front, _ = run_pipeline(to_graph(resolve_model(str(files[neuron]))), FRONT_PIPELINE)
    float_mem = {m.name: m.memory_bytes for m in layer_memory(front, target)}
    for layer in res.report["layers"]:
        if "spool" in layer["name"]:
            assert layer["memory_bytes"] == float_mem[layer["name"]] > 0


# -- ExpGIF -------------------------------------------------------------------------------------
def test_ge2mst_runs_as_programmable_neurons_on_loihi() -> None:
    """ExpG-IF (and the soft-reset IF Q/K/V neurons) become LoihiExpGIF on Loihi."""
    front = _zoo_front("ge2mst-tiny")
    g, ctx = run_pipeline(front, [quantize], PassContext(config={"target": "loihi"}))
    prog = {n: g.op(n) for n in g.nodes() if isinstance(g.op(n), O.LoihiExpGIF)}
    assert len(prog) == 15 and {op.bits for op in prog.values()} == {1, 2}
    q = g.node_meta("block.0.mlp.fc1_neuron")["quant"]
    assert q["runs_as"] == "programmable neuron (microcode on Loihi 2)"
    op = prog["block.0.mlp.fc1_neuron"]
    assert op.thresholds[0] == 2 * op.thresholds[1]  # theta/2, theta/4 at one scale
    # the synapse reading the graded payload carries the unit theta·2^-K in its weights
    assert g.node_meta("block.0.mlp.fc1_conv")["quant"]["input_unit"] == 0.25


def _zoo_front(name: str) -> Graph:
    from snncc.loading import resolve_model, to_graph

    return run_pipeline(to_graph(resolve_model(name)), FRONT_PIPELINE)[0]


@pytest.mark.parametrize("target", ["spinnaker"])
def test_ge2mst_is_refused_with_the_reason(target: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(SnnccError) as e:
        compile_model("ge2mst-tiny", target=target, budget="1GiB", out_dir=out)
    err = e.value
    assert err.code == "QNT002" and err.exit_code == 2 and not out.exists()
    assert err.message.count("patch_embed.proj1_neuron (and ") == 1
    assert f"ExpGIF (grouped exponential coding) cannot run exactly on {target}" in err.message
    assert "halves at every step" in err.message and "resets by subtracting" in err.message
    assert "hard-reset snncc.nn.LIF/IF" in (err.hint or "")
