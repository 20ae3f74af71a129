"""Lowering to a program spec, checked by executing the spec against the reference interpreter.

The numpy executor runs the spec with Lava's timing (one step per connection, delays, samples
back to back with per-population resets) and Lava's integer arithmetic; every population's
spikes, re-aligned by its pipeline depth, must equal the ``loihi`` reference's, step by step
and neuron by neuron, and the host readout must give the reference's outputs exactly. The
expected values come from the reference interpreter (or, for the convolution layout, from a
transcription of Lava's own ``conv_scipy``), never from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from snncc.backends.lower import host
from snncc.backends.lower.balance import balance
from snncc.backends.lower.kernels import conv_lava
from snncc.backends.lower.lower import lower_program
from snncc.backends.lower.passes import SPEC_KEY
from snncc.backends.lower.simulate import simulate, windows
from snncc.backends.lower.spec import ProgramSpec
from snncc.backends.lower.structure import lava_kernel, torch_kernel
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.shapes import output_shape
from snncc.ir.types import Kind, TensorType
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import COMPILE_PIPELINE, FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.reference import run


def _check_program(p) -> dict[str, float]:
    """Execute ``p.spec``; assert spikes and outputs equal the reference; return firing rates."""
    a_in, batch = host.encode(p.graph, p.spec, p.inputs)
    win = windows(p.spec, simulate(p.spec, a_in, batch), batch)
    rates = {}
    for pop in p.spec.populations:
        want = p.reference_spikes(pop.name)
        got = win[pop.name]
        if not np.array_equal(got, want):
            t, b, *i = np.argwhere(got != want)[0]
            raise AssertionError(
                f"{p.name}: {pop.name} (depth {pop.depth}) first differs at step {t}, sample "
                f"{b}, neuron {tuple(i)}: {got[t, b][tuple(i)]} vs reference {want[t, b][tuple(i)]}"
            )
        rates[pop.name] = float(want.mean())
    out = host.readout(p.graph, p.spec, win, p.inputs)
    for name, want in p.reference.outputs.items():
        np.testing.assert_array_equal(out[name], want)  # identical, not close
    return rates


def test_executor_spikes_equal_the_reference(program) -> None:
    """Every family (and the committed checkpoints): spikes, step by step, and outputs."""
    program.assert_lively(_check_program(program))


def test_digits_checkpoint_populations(digits_program) -> None:
    assert len(digits_program.spec.populations) == 20  # 18 LIF layers + 2 max-pool ORs


def test_lowering_mechanisms_per_family(programs) -> None:
    """Each family exercises the mechanism it needs (so a parity pass is not a vacuous one)."""
    get_program = programs
    roles = {n: {p.role for p in get_program(n).spec.populations} for n in ("sdt", "ge2mst")}
    assert "and" in roles["sdt"] and "expgif" in roles["ge2mst"]
    (attn,) = get_program("spikformer").spec.into("block.0.attn.attn_lif")
    steps = [type(s).__name__ for s in attn.params["steps"]]
    assert steps[:3] == ["MatMul", "Scale", "MatMul"]  # (Q·Kᵀ·scale)·V: a current x spikes
    spikformer = get_program("spikformer").graph
    # SEW: block 1's fc1 reads 5 spike tensors (rpe, maxpool, 3 branch outputs): 5 projections
    assert len(spikformer.node_meta("block.1.mlp.fc1_linear")["rewritten"]["sew_sources"]) == 5
    kinds = {c.kind for c in get_program("sdt").spec.into("patch_embed.proj_lif3")}
    assert kinds == {"product"}  # conv + max-pool of currents: one exact integer program
    ge2mst = get_program("ge2mst").spec
    graded = [c for c in ge2mst.connections if c.params.get("num_message_bits")]
    assert graded and all(ge2mst.population(c.sources()[0]).graded for c in graded)
    elastic = get_program("elastic-spikformer").graph
    assert (
        "folded_channel_map" in elastic.node_meta("patch_embed.proj_conv1.main_conv")["rewritten"]
    )


def test_every_path_into_a_population_arrives_at_its_depth(digits_program) -> None:
    spec = digits_program.spec
    depth = {p.name: p.depth for p in spec.populations}
    for c in spec.connections:
        for o in c.operands:
            assert depth[o.source] + o.delay + 1 == depth[c.target], c.name
    # The membrane shortcut: block 0's mlp1_lif reads the patch embedding (depth 5) and the
    # attention projection (attn_lif, depth 8); the short path waits 3 steps.
    into = {c.entry: c for c in spec.into("block.0.mlp.mlp1_lif")}
    assert into["patch_embed.block4_conv"].operands[0].delay == 3
    assert into["block.0.attn.proj_conv"].operands[0].delay == 0
    assert spec.depth == 15 and spec.run_steps(3) == 3 * 4 + 15


def test_connection_kinds_follow_the_lava_recipes(digits_program) -> None:
    g, spec = digits_program.graph, digits_program.spec
    kinds = {c.name: c for c in spec.connections}
    q = kinds["block.0.attn.q_conv->block.0.attn.q_lif"]
    e = g.node_meta("block.0.attn.q_conv")["quant"]["weight_exp"]
    assert q.kind == "dense" and q.params["weight_exp"] == e - 1  # trap 2: 2·W, exp - 1
    np.testing.assert_array_equal(q.params["weights"] % 2, 0)
    conv = kinds["patch_embed.block1_conv->patch_embed.block2_lif"]
    w = np.asarray(g.op("patch_embed.block1_conv").weight)
    e = g.node_meta("patch_embed.block1_conv")["quant"]["weight_exp"]
    assert conv.kind == "conv"  # 1024 x 2048 neurons: too large to unroll
    np.testing.assert_array_equal(torch_kernel(conv.params["kernel"]), w << e)  # trap 3
    assert kinds["block.0.attn.mul->block.0.attn.attn_lif"].kind == "product"
    pool = spec.population("patch_embed.block3_mp")
    assert (pool.role, pool.du, pool.dv, pool.vth) == ("or", 4095, 4095, 0)


def test_spec_survives_its_file_form(digits_program) -> None:
    doc, arrays = digits_program.spec.to_payload()
    back = ProgramSpec.from_payload(doc, arrays)
    a_in, batch = host.encode(digits_program.graph, back, digits_program.inputs)
    again = simulate(back, a_in, batch)
    first = simulate(digits_program.spec, a_in, batch)
    assert all(np.array_equal(again[k], first[k]) for k in first)
    assert back.to_payload()[0] == doc


def _lava_conv_scipy(x_whc, kernel, stride, padding, dilation, groups) -> np.ndarray:
    """Lava 0.10's ``conv_scipy`` (lava/proc/conv/utils.py), transcribed: the expectation."""
    k_w, k_h = kernel.shape[1:3]
    dil = np.zeros((kernel.shape[0], dilation[0] * (k_w - 1) + 1, dilation[1] * (k_h - 1) + 1,
                    kernel.shape[-1]))  # fmt: skip
    dil[:, :: dilation[0], :: dilation[1], :] = kernel
    xp = np.pad(x_whc, ((padding[0],) * 2, (padding[1],) * 2, (0, 0)))
    k_grp, c_grp = kernel.shape[0] // groups, x_whc.shape[2] // groups
    outs = []
    for k in range(kernel.shape[0]):
        g = k // k_grp
        acc = sum(
            signal.convolve2d(xp[:, :, c + g * c_grp], dil[k, :, :, c], mode="valid")
            for c in range(c_grp)
        )
        outs.append(acc[:: stride[0], :: stride[1]])
    return np.stack(outs, axis=-1)


@pytest.mark.parametrize(
    "stride, padding, dilation, groups",
    [((1, 1), (1, 1), (1, 1), 1), ((2, 1), (0, 2), (1, 2), 2), ((1, 2), (1, 0), (2, 1), 4)],
)
def test_vectorised_conv_equals_lavas_conv(stride, padding, dilation, groups) -> None:
    rng = np.random.default_rng(7)
    x = (rng.random((4, 7, 9)) < 0.4).astype(np.int64)  # torch layout [C, H, W]
    w = rng.integers(-2000, 2000, (8, 4 // groups, 3, 2))  # torch [O, I/g, KH, KW]
    kernel = lava_kernel(w)
    np.testing.assert_array_equal(torch_kernel(kernel), w)
    got = conv_lava(x[None], kernel, stride, padding, dilation, groups)[0]
    want = _lava_conv_scipy(x.transpose(2, 1, 0), kernel, stride, padding, dilation, groups)
    np.testing.assert_array_equal(got, want.transpose(2, 1, 0))


def _add(g: Graph, name: str, op: O.Op, *srcs: str) -> str:
    shape = output_shape(op, [g.type(s).shape for s in srcs])
    g.add(name, op, TensorType(shape, Kind.CURRENT, None, not isinstance(op, O.TimeMean)))
    for src, port in zip(srcs, op.in_ports, strict=True):
        g.connect(src, name, port)
    return name


def _index_graph(rng: np.random.Generator) -> Graph:
    """Re-indexing on both sides of synapses, repeated sources, a padded pool, a merge."""
    g = Graph("idx")
    g.meta["timesteps"] = 6
    g.add("x", O.Input(shape=(2, 6, 6)), TensorType((2, 6, 6)))
    g.inputs.append("x")
    _add(g, "enc", O.Conv2d(weight=rng.normal(size=(4, 2, 3, 3)), padding=(1, 1)), "x")
    _add(g, "a", O.LIF(tau=2.0, v_threshold=0.5), "enc")
    _add(g, "pool", O.MaxPool2d(kernel=(2, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1)), "a")
    _add(g, "flat", O.Reshape((4, 36)), "a")
    _add(g, "rep", O.Repeat((1, 2)), "flat")  # every spike feeds two inputs of one output
    _add(g, "fc", O.Linear(weight=rng.uniform(0.9, 1, (5, 72))), "rep")
    _add(g, "t", O.Permute((1, 0)), "fc")
    _add(g, "sl", O.Slice(axis=1, start=1, stop=4), "t")
    _add(g, "pd", O.Pad(axis=1, before=0, after=1), "sl")
    _add(g, "pc", O.Conv2d(weight=rng.uniform(-1, 1, (5, 4, 3, 3))), "pool")  # [5, 4, 1]
    _add(g, "pf", O.Reshape((5, 4)), "pc")
    _add(g, "sum", O.Add(), "pd", "pf")
    _add(g, "b", O.LIF(tau=2.0, v_threshold=1.5), "sum")
    _add(g, "rate", O.TimeMean(), "b")
    g.outputs.append("rate")
    return g


def test_index_maps_and_or_pools_on_a_hand_graph() -> None:
    rng = np.random.default_rng(3)
    front, _ = run_pipeline(_index_graph(rng), FRONT_PIPELINE)
    q, _ = run_pipeline(front, [quantize], PassContext(config={"target": "loihi"}))
    spec = balance(lower_program(q))
    inputs = {"x": rng.normal(0.8, 1.0, (6, 4, 2, 6, 6))}
    ref = run(q, inputs, "loihi", record="all")
    a_in, batch = host.encode(q, spec, inputs)
    win = windows(spec, simulate(spec, a_in, batch), batch)
    for p in spec.populations:
        want = (ref.values[p.name] != 0).astype(np.uint8)
        assert 0 < want.mean() < 0.9, p.name
        np.testing.assert_array_equal(win[p.name], want, err_msg=p.name)
    kinds = {c.entry: c.kind for c in spec.connections}
    # Repeat sums two mantissas into one Dense weight: beyond 8 bits, so it stays unfolded.
    assert kinds == {"pool": "dense", "fc": "conv", "pc": "dense"}
    # b reads a directly (one hop) and through the OR population (two hops): fc waits a step.
    delays = {c.entry: c.operands[0].delay for c in spec.into("b")}
    assert spec.population("b").depth == 2 and delays == {"fc": 1, "pc": 0}


def test_compile_pipeline_leaves_a_balanced_spec() -> None:
    from snncc.loading import resolve_model, to_graph

    g = to_graph(resolve_model("spikingformer-tiny"))
    q, ctx = run_pipeline(g, COMPILE_PIPELINE, PassContext(config={"target": "loihi"}))
    spec = ctx.config[SPEC_KEY]
    assert spec.balanced and "partition_plan" in ctx.config
    assert q.node_meta("block.1.mlp.mlp2_lif")["lowered"] == {
        "population": 19,
        "role": "lif",
        "depth": 15,
    }
    # the pipeline runs for SpiNNaker too (whose program, if any, is that backend's business)
    _, ctx = run_pipeline(g, COMPILE_PIPELINE, PassContext(config={"target": "spinnaker"}))
    assert "partition_plan" in ctx.config


def _delay_graph() -> Graph:
    """x -> conv (host) -> a -> Delay(2) -> fc -> b: a delayed spike train on chip."""
    rng = np.random.default_rng(4)
    g = Graph("delay")
    g.meta["timesteps"] = 4
    g.add("x", O.Input(shape=(2, 4, 4)), TensorType((2, 4, 4)))
    g.inputs.append("x")
    _add(g, "enc", O.Conv2d(weight=rng.normal(size=(3, 2, 3, 3)), padding=(1, 1)), "x")
    _add(g, "a", O.LIF(tau=2.0, v_threshold=0.5), "enc")
    _add(g, "late", O.Delay(steps=2), "a")
    _add(g, "flat", O.Reshape((48,)), "late")
    _add(g, "fc", O.Linear(weight=rng.uniform(-1, 1, (5, 48))), "flat")
    _add(g, "b", O.LIF(tau=2.0), "fc")
    _add(g, "rate", O.TimeMean(), "b")
    g.outputs.append("rate")
    return g


def test_a_construct_without_lowering_is_a_warning_or_an_error() -> None:
    g = _delay_graph()  # an IR Delay: back-to-back samples would leak into each other
    _, ctx = run_pipeline(g, COMPILE_PIPELINE, PassContext(config={"target": "loihi"}))
    assert ctx.config[SPEC_KEY] is None
    assert [d.code for d in ctx.diagnostics if d.code.startswith("LOW")] == ["LOW004"]
    strict = PassContext(config={"target": "loihi", "require_program": True})
    with pytest.raises(SnnccError, match="late: an IR Delay on chip"):
        run_pipeline(g, COMPILE_PIPELINE, strict)


def _executor_equals_reference(g: Graph, inputs: dict[str, np.ndarray]) -> ProgramSpec:
    """Quantize, lower, balance ``g``; assert executor spikes and outputs equal the reference."""
    front, _ = run_pipeline(g, FRONT_PIPELINE)
    q, _ = run_pipeline(front, [quantize], PassContext(config={"target": "loihi"}))
    spec = balance(lower_program(q))
    ref = run(q, inputs, "loihi", record="all")
    a_in, batch = host.encode(q, spec, inputs)
    win = windows(spec, simulate(spec, a_in, batch), batch)
    for p in spec.populations:
        if p.name in ref.values:  # relays have no node: their readers prove them
            want = (ref.values[p.name] != 0).astype(np.uint8)
            assert 0 < want.mean() < 0.95, p.name
            np.testing.assert_array_equal(win[p.name], want, err_msg=p.name)
    out = host.readout(q, spec, win, inputs)
    for name, want in ref.outputs.items():
        np.testing.assert_array_equal(out[name], want)
    return spec


def test_waits_beyond_one_connection_go_through_relay_chains(long_relay_program) -> None:
    """The skip from a waits 130 = 63 + 63 + 4 steps: two relays, each 62 steps late."""
    p = long_relay_program
    relays = [q for q in p.spec.populations if q.role == "relay"]
    assert [q.name for q in relays] == ["a.relay1", "a.relay2"]
    assert [q.depth for q in relays] == [63, 126] and p.spec.population("out").depth == 131
    assert max(o.delay for c in p.spec.connections for o in c.operands) == 62
    p.assert_lively(_check_program(p))


def test_relay_chain_with_a_lower_delay_limit(relay_program) -> None:
    """With the limit lowered to 2 (the program the Lava test runs): 8 = 3 + 3 + 2."""
    p = relay_program
    relays = [q for q in p.spec.populations if q.role == "relay"]
    assert [q.depth for q in relays] == [3, 6] and p.spec.population("out").depth == 9
    p.assert_lively(_check_program(p))


def test_a_synaptic_op_reading_a_spike_product_is_one_program() -> None:
    """q·kᵀ (a count) read by a Linear: the product and the synapse in one exact program."""
    rng = np.random.default_rng(10)
    g = Graph("qk")
    g.meta["timesteps"] = 4
    g.add("x", O.Input(shape=(4, 6)), TensorType((4, 6)))
    g.inputs.append("x")
    for n in ("q", "k"):
        _add(g, f"enc_{n}", O.Linear(weight=rng.normal(0.3, 1, (6, 6))), "x")
        _add(g, n, O.LIF(tau=2.0, v_threshold=0.5), f"enc_{n}")
    _add(g, "kt", O.Permute((1, 0)), "k")
    _add(g, "qk", O.MatMul(), "q", "kt")  # [4, 4] counts up to 6
    _add(g, "fc", O.Linear(weight=rng.uniform(-0.5, 1, (3, 4))), "qk")
    _add(g, "o", O.LIF(tau=2.0, v_threshold=1.0), "fc")
    _add(g, "rate", O.TimeMean(), "o")
    g.outputs.append("rate")
    spec = _executor_equals_reference(g, {"x": rng.normal(0.5, 1, (4, 3, 4, 6))})
    (c,) = spec.into("o")
    steps = [type(s).__name__ for s in c.params["steps"]]
    assert c.kind == "product" and steps == ["MatMul", "Linear"]  # kᵀ folds into an index map


def test_sew_projections_floor_one_by_one_on_the_executor(sew_program) -> None:
    """Two Dense connections into c, each shifting its own sum (exponent < 0), as the loihi
    reference does for the two copies of fc."""
    p = sew_program
    assert p.graph.node_meta("fc")["quant"]["weight_exp"] < 0
    dense = [c for c in p.spec.into("c") if c.kind == "dense"]
    assert len(dense) == 2 and {c.sources()[0] for c in dense} == {"a", "b"}
    rates = _check_program(p)
    assert all(0 < r < 0.9 for r in rates.values()), rates


def test_a_token_mean_read_by_a_neuron_sums_separately_floored_projections() -> None:
    """Mean over tokens -> a Sum with gain 4; with exponent < 0 each token's projection keeps
    its own floor, so the connection is a per-output-shifted one with a [n, J] map."""
    rng = np.random.default_rng(11)
    g = Graph("mean")
    g.meta["timesteps"] = 4
    g.add("x", O.Input(shape=(4, 6)), TensorType((4, 6)))
    g.inputs.append("x")
    _add(g, "enc", O.Linear(weight=rng.normal(0.3, 1, (6, 6))), "x")
    _add(g, "a", O.LIF(tau=2.0, v_threshold=0.5), "enc")
    _add(g, "fc", O.Linear(weight=rng.uniform(-0.3, 0.6, (5, 6)), bias=np.full(5, 40.0)), "a")
    _add(g, "tok", O.Mean(axes=(0,)), "fc")
    _add(g, "c", O.LIF(tau=2.0, v_threshold=36.5), "tok")
    _add(g, "rate", O.TimeMean(), "c")
    g.outputs.append("rate")
    spec = _executor_equals_reference(g, {"x": rng.normal(0.5, 1, (4, 3, 4, 6))})
    (conn,) = spec.into("c")
    assert conn.kind == "conv" and conn.out_index.shape == (5, 4)
    assert conn.params["weight_exp"] < 0


def test_not_native_lists_programs_and_programmable_neurons(programs) -> None:
    from snncc.backends.lower.spec import not_native

    rows = not_native(programs("ge2mst").spec)
    neurons = [r for r in rows if r["kind"] == "population"]
    assert len(neurons) == 15
    assert all(r["why"] == "programmable neuron (microcode on Loihi 2)" for r in neurons)
    why = {r["why"].split(":")[0] for r in rows if r["kind"] == "product"}
    assert why == {
        "a max-pool of currents (with the synapses before it)",
        "a product of spike trains (attention's Q·Kᵀ·V)",
    }
    assert not [r for r in not_native(programs("digits").spec) if r["kind"] == "population"]
