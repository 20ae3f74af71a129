"""The SpiNNaker lowering against the ``spinnaker`` reference, without a simulator.

Each case is a graph quantized for SpiNNaker, lowered to a PyNN program (populations and
synapse lists) and balanced, with three input samples and the reference run of every node.
The numpy executor (:mod:`snncc.backends.spinnaker.simulate`) runs the program with the
schedule the emitted ``network.py`` uses (one run of ``T + depth`` steps per sample, hops of
``1 + delay``, the bias clock) and sPyNNaker's own s16.15 arithmetic; every population's spikes,
per neuron and per step, and the host readout must equal the reference's. The same cases run
on Brian2 in test_spinnaker_parity.py. Random-weight models get thresholds that make every
neuron fire about a fifth of the time on digits (as tests/backends/conftest.py does for Lava).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from snncc.backends.lower.passes import SPEC_KEY, balance_latency, lower
from snncc.backends.lower.spec import Connection
from snncc.backends.spinnaker import emit, host, simulate
from snncc.backends.spinnaker.exact import check_population, unit_neuron
from snncc.backends.spinnaker.spec import SpiNNakerPopulation, SpiNNakerProgram, hop, identity
from snncc.data.digits import digits
from snncc.data.gestures import gestures
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.reference import RunResult, run
from snncc.reference.context import KernelCtx
from snncc.reference.float_kernels import KERNELS as FLOAT_KERNELS

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "examples/checkpoints"
SAMPLES = 3
RATE = 0.2


# -- cases ------------------------------------------------------------------------------------
def front(ref: str, slice_: tuple[int, int, int] | None = None, **config: object) -> Graph:
    """The float graph after the front passes; ``config`` overrides a zoo model's config."""
    from snncc.loading import resolve_model, to_graph

    loaded = resolve_model(ref)
    if config:
        import torch

        import snncc.models as M

        torch.manual_seed(0)
        module = M.create(ref, **config).eval()
        cfg = {**(loaded.config or {}), **config}
        loaded = dataclasses.replace(loaded, module=module, config=cfg)
    if slice_ is not None:
        from snncc.models.elastic import export_slice

        f, a, m = slice_
        loaded = dataclasses.replace(
            loaded, module=export_slice(loaded.module, feature=f, attention=a, mlp=m)
        )
    g, _ = run_pipeline(to_graph(loaded), FRONT_PIPELINE)
    return g


def _digits(split: str, n: int) -> np.ndarray:
    return digits(split)[0][:n]


def _gestures(split: str, n: int) -> np.ndarray:
    x, _ = gestures(n_per_class=2, split=split)
    return np.moveaxis(x[:n], 1, 0)  # [B, T, ...] -> [T, B, ...]


def tuned(g: Graph, rate: float = RATE, data: Callable[[str, int], np.ndarray] = _digits) -> Graph:
    """Each LIF's threshold, in graph order, set so that it fires ``rate`` of the time."""
    calib = {g.inputs[0]: data("train", 8)}
    for n in g.topo_order():
        op = g.op(n)
        if not isinstance(op, O.LIF):
            continue
        x = run(g, calib, "float", record="all").values[g.inputs_of(n)[0]]
        ctx = KernelCtx(n, 2, x.shape[0], x.shape[1], g.type(n))
        lo, hi = -12.0, 12.0
        for _ in range(30):
            mid = (lo + hi) / 2
            out = FLOAT_KERNELS[O.LIF](op.replace(v_threshold=2.0**mid), [x], ctx)
            lo, hi = (mid, hi) if (out != 0).mean() > rate else (lo, mid)
        g.set_op(n, op.replace(v_threshold=float(2.0**hi)))
    return g


#: name -> graph builder. The digits checkpoint as trained; zoo models with random weights,
#: tuned; the elastic model as its slice (feature 1, attention 2, mlp 1) of a 4-level model.
CASES: dict[str, Callable[[], Graph]] = {
    "digits": lambda: front(str(CHECKPOINTS / "spikingformer-tiny-digits.pt")),
    "spikingformer": lambda: tuned(front("spikingformer-tiny")),
    "spikformer": lambda: tuned(front("spikformer-tiny")),
    "elastic-slice": lambda: tuned(front("elastic-spikingformer-tiny", (1, 2, 1))),
    "lsformer-lif": lambda: tuned(front("lsformer-tiny", spool_neuron="lif")),
    "elastic-spikformer": lambda: tuned(front("elastic-spikformer-tiny", (1, 2, 1))),
    # SDT with its last tokenizer max-pool on spikes (the original pools currents: QNT001)
    "sdt-spikes": lambda: tuned(front("sdt-tiny", last_pool="spikes"), data=_gestures),
}
#: Cases whose input is not digits (the rest read digits("test")).
DATA: dict[str, Callable[[str, int], np.ndarray]] = {"sdt-spikes": _gestures}


@dataclass
class Case:
    """A lowered, balanced SpiNNaker program with its inputs and the reference run."""

    name: str
    graph: Graph
    spec: SpiNNakerProgram
    inputs: dict[str, np.ndarray]
    reference: RunResult
    decisions: dict[str, list[str]]  # pass name -> its decision lines

    def reference_spikes(self, node: str) -> np.ndarray:
        return (np.asarray(self.reference.values[node]) != 0).astype(np.uint8)

    def assert_lively(self, rates: dict[str, float]) -> None:
        """No population silent; most fire 5-50 % of the time (the comparison is not vacuous)."""
        assert not [n for n, r in rates.items() if r == 0], f"{self.name}: silent {rates}"
        lively = [n for n, r in rates.items() if 0.05 <= r <= 0.5]
        assert len(lively) >= 0.6 * len(rates), f"{self.name}: firing rates {rates}"


_BUILT: dict[str, Case] = {}


def get_case(name: str) -> Case:
    """Case ``name`` of :data:`CASES`, built once per session (quantize, lower, balance)."""
    if name not in _BUILT:
        ctx = PassContext(config={"target": "spinnaker", "require_program": True})
        q, ctx = run_pipeline(CASES[name](), [quantize, lower, balance_latency], ctx)
        inputs = {q.inputs[0]: DATA.get(name, _digits)("test", SAMPLES)}
        ref = run(q, inputs, "spinnaker", record="all")
        decisions = {r.name: r.decisions for r in ctx.records}
        _BUILT[name] = Case(name, q, ctx.config[SPEC_KEY], inputs, ref, decisions)
    return _BUILT[name]


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return get_case(request.param)


# -- tests ------------------------------------------------------------------------------------
def test_executor_equals_the_reference(case: Case) -> None:
    """Every checked population, step and neuron; and the readout, exactly."""
    spikes, batch = host.encode(case.graph, case.spec, case.inputs)
    win = simulate.windows(case.spec, simulate.simulate(case.spec, spikes, batch), batch)
    rates = {}
    for p in case.spec.populations:
        if p.checked:
            want = case.reference_spikes(p.name)
            assert np.array_equal(win[p.name], want), f"{case.name}: {p.name} differs"
            rates[p.name] = float(want.mean())
    case.assert_lively(rates)
    out = host.readout(case.graph, case.spec, win, case.inputs)
    for k, v in out.items():
        np.testing.assert_array_equal(v, case.reference.outputs[k])


def test_every_projection_arrives_at_its_depth(case: Case) -> None:
    depth = {p.name: p.depth for p in case.spec.populations}
    for c in case.spec.connections:
        (o,) = c.operands
        assert depth[o.source] + hop(o) == depth[c.target], c.name
        assert hop(o) >= 1
    assert all(p.depth == 0 for p in case.spec.populations if p.role == "host")
    assert all(p.depth >= 1 for p in case.spec.populations if p.role != "host")


def test_balance_states_the_spinnaker_schedule() -> None:
    """The shared balancing pass reports SpiNNaker's schedule (a run per sample), not Lava's."""
    case = get_case("lsformer-lif")
    (line,) = [d for d in case.decisions["balance_latency"] if "pipeline depth" in d]
    t, depth = case.spec.timesteps, case.spec.depth
    assert f"B*({t} + {depth}) simulator steps: one sim.run" in line and "Lava" not in line


def test_digits_program_structure() -> None:
    """What the digits checkpoint becomes (docs/spinnaker.md walks through it)."""
    spec = get_case("digits").spec
    roles = [p.role for p in spec.populations]
    assert roles.count("host") == 1 and roles.count("or") == 2 and roles.count("and") == 4
    sizes = {p.name: p.size for p in spec.populations}
    # Q·Kᵀ: N²·d AND neurons per head; (Q·Kᵀ)·V: N²·d² (N = 16 tokens, d = 8, 4 heads)
    assert sizes["block.0.attn.matmul"] == 4 * 16 * 16 * 8
    assert sizes["block.0.attn.matmul_1"] == 4 * 16 * 16 * 8 * 8
    # the membrane shortcut: one projection per source population reaching the neuron
    sources = {c.operands[0].source for c in spec.into("block.1.mlp.mlp1_lif")}
    assert sources == {
        "patch_embed.block4_mp", "block.0.attn.attn_lif", "block.0.mlp.mlp2_lif",
        "block.1.attn.attn_lif",
    }  # fmt: skip
    for c in spec.connections:
        w = np.asarray(c.params["weight"])
        assert np.all(w != 0) and np.all(np.abs(w) <= 0xFFFF)


@pytest.mark.parametrize("name", ["digits", "sdt-spikes"])
def test_and_expansion_matches_the_memory_model(name: str) -> None:
    """The partitioner costs exactly the AND and OR neurons the lowering builds
    (snncc.resources.memory): attention products (digits), SDT's masks and its chained spike
    max-pools (sdt-spikes)."""
    from snncc.resources.memory import deployed_units

    case = get_case(name)
    units = {u.name: u for u in deployed_units(case.graph, "spinnaker")}
    for p in case.spec.populations:
        if p.role in ("and", "or"):
            assert units[p.name].neurons == p.size, p.name


def test_payload_round_trip_and_deterministic_emission(tmp_path: Path) -> None:
    case = get_case("elastic-slice")
    doc, arrays = case.spec.to_payload()
    back = SpiNNakerProgram.from_payload(doc, arrays)
    assert back.to_payload()[0] == doc
    for c1, c2 in zip(case.spec.connections, back.connections, strict=True):
        for k in ("pre", "post", "weight"):
            np.testing.assert_array_equal(c1.params[k], c2.params[k])
    a, b = tmp_path / "a", tmp_path / "b"
    files = [p.read_bytes() for p in emit.emit(case.spec, a, label="x")]
    assert files == [p.read_bytes() for p in emit.emit(back, b, label="x")]
    source = (a / "network.py").read_text()
    compile(source, "network.py", "exec")  # valid Python 3.10+ without running it
    ns: dict = {"__name__": "test"}
    exec(compile(source, "network.py", "exec"), ns)  # noqa: S102 - defines tables only
    assert [p[0] for p in ns["POPULATIONS"]] == [p.name for p in case.spec.populations]
    assert ns["neuron_parameters"]("brian2", 3, 1 << 14)["v_thresh"] == 2.5 / 2**15
    assert ns["neuron_parameters"]("spinnaker", 3, 1 << 14)["v_thresh"] == 3 / 2**15
    assert ns["delay_ms"]("brian2", 3) == 2.0 and ns["delay_ms"]("spinnaker", 3) == 3.0


def _population(exp_tc: int, shift: int, bias: list[int]) -> SpiNNakerPopulation:
    b = np.asarray(bias, np.int64)
    return SpiNNakerPopulation("p", (len(b),), "lif", 1 << 20, exp_tc, shift, shift, b)


def _into(p: SpiNNakerPopulation, w: int) -> list[Connection]:
    params = {"pre": np.array([0]), "post": np.array([0]), "weight": np.array([w])}
    from snncc.backends.lower.spec import Operand

    return [Connection("s->p", "p", "p", "synapses", [Operand("s", identity(1))], params)]


def test_exactness_is_checked_per_population() -> None:
    ok = _population(1 << 14, 15, [3 << 15, -(5 << 15)])
    check_population(ok, _into(ok, 7), timesteps=4)
    # tau = 3: exp_TC = 21845/2^15 has 15 fraction bits, no shift makes 4 steps exact
    with pytest.raises(SnnccError) as e:
        bad = _population(21845, 15, [0, 0])
        check_population(bad, _into(bad, 7), timesteps=4)
    assert e.value.code == "LOW020"
    with pytest.raises(SnnccError) as e:  # a bias off the ring-buffer grid
        bad = _population(1 << 14, 15, [3 << 14, 0])
        check_population(bad, _into(bad, 7), timesteps=4)
    assert e.value.code == "LOW021"
    with pytest.raises(SnnccError) as e:  # a shift too small for 16 exact steps
        bad = _population(1 << 14, 15, [0, 0])
        check_population(bad, _into(bad, 7), timesteps=16)
    assert e.value.code == "LOW021"
    with pytest.raises(SnnccError) as e:  # ring buffer could saturate
        bad = _population(1 << 14, 15, [0, 0])
        check_population(bad, _into(bad, 7) * 10000, timesteps=4)
    assert e.value.code == "LOW021"
    gate = unit_neuron("and", (4,), "and", operands=2)
    assert gate.exc_shift == 2 and gate.v_thresh == 2 * 2**15 - 2**14 and gate.exp_tc == 0


def test_quantizer_puts_biases_on_the_ring_buffer_grid() -> None:
    """Every LIF bias is a 16-bit stored weight of its sign's receptor, shifts >= T."""
    case = get_case("spikingformer")
    for p in case.spec.populations:
        if p.role != "lif":
            continue
        b = np.asarray(p.bias, np.int64)
        assert not np.any(np.maximum(b, 0) % (1 << p.exc_shift))
        assert not np.any(np.maximum(-b, 0) % (1 << p.inh_shift))
        assert p.exc_shift >= case.spec.timesteps


def test_refusals_name_the_node_and_the_reason() -> None:
    """Families the SpiNNaker quantizer refuses today, each with its code (docs/spinnaker.md)."""
    expected = {"lsformer-tiny": "QNT008", "ge2mst-tiny": "QNT002", "sdt-tiny": "QNT001"}
    for name, code in expected.items():
        ctx = PassContext(config={"target": "spinnaker", "require_program": True})
        with pytest.raises(SnnccError) as e:
            run_pipeline(front(name), [quantize, lower, balance_latency], ctx)
        assert e.value.code == code, (name, e.value.code, e.value.message)


def test_sdt_max_pool_of_currents_is_refused_with_its_cost_and_the_variant() -> None:
    """SDT's last tokenizer max-pool acts on conv currents: no exact IF_curr_delta form at a
    sane cost. The message names the node and its source line, the threshold-level expansion's
    size on the quantized weights, and the variant that pools spikes (which compiles: the
    ``sdt-spikes`` case)."""
    g = front("sdt-tiny")
    with pytest.raises(SnnccError) as e:
        quantize(g, PassContext(config={"target": "spinnaker"}))
    msg, hint = e.value.message, e.value.hint
    assert e.value.code == "QNT001" and e.value.exit_code == 2
    assert msg.startswith("patch_embed.maxpool3 (") and "sdt.py:" in msg
    assert "of currents cannot run exactly on spinnaker" in msg
    assert 'last_pool="spikes"' in hint and "loihi" in hint
    # the levels, independently: the quantized conv's stored weights over one interior window
    # of its 0/1 inputs, positive ones at the excitatory shift, negative at the inhibitory one
    conv = "patch_embed.proj_conv3"
    w, q = np.asarray(g.op(conv).weight, np.int64), g.node_meta(conv)["quant"]
    exc, inh = q["exc_shift"], q["inh_shift"]
    pos, neg = np.maximum(w, 0).sum(axis=(1, 2, 3)), np.maximum(-w, 0).sum(axis=(1, 2, 3))
    span = (pos << exc) + (neg << inh)
    levels = int(span.max()) >> min(exc, inh)
    n_in, n_out = 32 * 8 * 8, 32 * 4 * 4  # 32 channels pooled from 8x8 to 4x4
    assert f"spans {levels} integer levels" in msg
    neurons = f"{levels * (n_in + n_out):,} neurons ({levels} x ({n_in} inputs + {n_out} outputs))"
    assert neurons in msg
    assert levels > 1000  # why the expansion is refused


def test_board_budgets_count_spinn5_boards() -> None:
    from snncc.resources.budget import CHIPS_PER_BOARD, fits, parse_budget, suggest_budget

    b = parse_budget("2 boards")
    assert b.boards == 2 and b.chip_limit == 2 * CHIPS_PER_BOARD == 96
    assert parse_budget("1board").describe() == "1 boards (48 chips)"
    plan = {"memory_bytes": 10, "cores": 700, "chips": 49}
    assert not fits(plan, parse_budget("1board")) and fits(plan, b)
    assert suggest_budget(10, 700, parse_budget("1board"), chips=49) == "2boards"
    for bad in ("0boards", "1.5boards"):
        with pytest.raises(SnnccError) as e:
            parse_budget(bad)
        assert e.value.code == "BU001"
    from snncc.compiler import compile_model

    with pytest.raises(SnnccError) as e:  # boards are SpiNN-5 boards
        compile_model("spikingformer-tiny", target="loihi", budget="1board", out_dir=Path("x"))
    assert e.value.code == "BU001" and "SpiNN-5" in e.value.message
