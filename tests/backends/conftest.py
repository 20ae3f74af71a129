"""Programs the backend tests share: one per zoo family, plus the committed checkpoints.

Each program is the quantized, lowered and balanced graph with three input samples, plus the
``loihi`` reference run of every node (``record="all"``): the oracle a backend must match
population by population. Random-weight models have their thresholds set so that every neuron
fires about a fifth of the time on real data (random weights alone leave the network silent
after the first layer, which would make an equality test vacuous): for a LIF with
``v_reset = 0`` a threshold divided by ``k`` is the same neuron as its input weights multiplied
by ``k``; an ExpG-IF's ``theta`` plays the same role. Programs are built once per session and
shared by the numpy-executor and the Lava tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from snncc.backends.lower.passes import SPEC_KEY, balance_latency, lower
from snncc.backends.lower.spec import ProgramSpec
from snncc.data.digits import digits
from snncc.data.gestures import gestures
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.shapes import output_shape
from snncc.ir.types import TensorType
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.reference import RunResult, run
from snncc.reference.context import KernelCtx
from snncc.reference.float_kernels import KERNELS as FLOAT_KERNELS

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "examples/checkpoints"
CHECKPOINT = CHECKPOINTS / "spikingformer-tiny-digits.pt"
SAMPLES = 3
TARGET_RATE = 0.2


@dataclass
class Program:
    """A lowered program with its inputs and the reference run it must reproduce."""

    name: str
    graph: Graph
    spec: ProgramSpec
    inputs: dict[str, np.ndarray]
    reference: RunResult
    trained: bool = False

    def reference_spikes(self, node: str) -> np.ndarray:
        """The reference's spikes of a population node, ``[T, B, *shape]`` uint8 (a relay
        population ``<source>.relay<j>`` carries its source's spikes, at its own depth)."""
        if node not in self.reference.values:
            node = node.rsplit(".relay", 1)[0]
        return (self.reference.values[node] != 0).astype(np.uint8)

    def assert_lively(self, rates: dict[str, float]) -> None:
        """Guard against a vacuous comparison: every population fires; in a random-weight
        model (thresholds tuned) most fire 5-50 % of the time. A trained checkpoint fires as
        it was trained to (sparser in places), so only silence is refused there."""
        silent = [n for n, r in rates.items() if r == 0]
        assert not silent, f"{self.name}: silent populations {silent}"
        if not self.trained:
            lively = [n for n, r in rates.items() if 0.05 <= r <= 0.5]
            assert len(lively) >= 0.6 * len(rates), f"{self.name}: firing rates {rates}"


# -- building ---------------------------------------------------------------------------------
def _front(ref: str, slice_: tuple[int, int, int] | None = None) -> Graph:
    from snncc.loading import resolve_model, to_graph

    loaded = resolve_model(ref)
    if slice_ is not None:
        from snncc.models.elastic import export_slice

        f, a, m = slice_
        loaded = dataclasses.replace(
            loaded, module=export_slice(loaded.module, feature=f, attention=a, mlp=m)
        )
    g, _ = run_pipeline(to_graph(loaded), FRONT_PIPELINE)
    return g


#: Neuron op -> the field that sets its threshold (the tuning knob).
THRESHOLD_FIELD = {O.LIF: "v_threshold", O.IF: "v_threshold", O.ExpGIF: "theta"}


def _tune_thresholds(g: Graph, calib: dict[str, np.ndarray], rate: float) -> Graph:
    """Set each neuron's threshold, in graph order, so it fires ``rate`` of the time on ``calib``.

    "Fires" is a non-zero output (an ExpG-IF's graded event too); bisection on log2 of the
    threshold, each neuron seeing the tuned neurons before it.
    """
    for n in g.topo_order():
        op = g.op(n)
        field = THRESHOLD_FIELD.get(type(op))
        if field is None:
            continue
        x = run(g, calib, "float", record="all").values[g.inputs_of(n)[0]]
        ctx = KernelCtx(n, 2, x.shape[0], x.shape[1], g.type(n))
        lo, hi = -12.0, 12.0  # log2 of the threshold
        for _ in range(30):
            mid = (lo + hi) / 2
            out = FLOAT_KERNELS[type(op)](op.replace(**{field: 2.0**mid}), [x], ctx)
            lo, hi = (mid, hi) if (out != 0).mean() > rate else (lo, mid)
        g.set_op(n, op.replace(**{field: float(2.0**hi)}))
    return g


def _digits(split: str, n: int) -> np.ndarray:
    return digits(split)[0][:n]


def _gestures(split: str, n: int) -> np.ndarray:
    x, _ = gestures(n_per_class=2, split=split)
    return np.moveaxis(x[:n], 1, 0)  # [B, T, ...] -> [T, B, ...]


def _program(
    name: str, g: Graph, data: Callable[[str, int], np.ndarray], attention: str | None = None
) -> Program:
    config = {"target": "loihi", "require_program": True}
    if attention is not None:
        config["attention"] = attention
    ctx = PassContext(config=config)
    q, ctx = run_pipeline(g, [quantize, lower, balance_latency], ctx)
    inputs = {q.inputs[0]: data("test", SAMPLES)}
    ref = run(q, inputs, "loihi", record="all")
    return Program(name, q, ctx.config[SPEC_KEY], inputs, ref, trained=name in TRAINED)


def _random(ref: str, data: Callable[[str, int], np.ndarray], slice_=None) -> Callable[[], Graph]:
    def build() -> Graph:
        g = _front(ref, slice_)
        return _tune_thresholds(g, {g.inputs[0]: data("train", 8)}, TARGET_RATE)

    return build


#: name -> (graph builder, data). Random-weight zoo models are tuned to fire; checkpoints as
#: trained. The elastic models run a reduced slice (channel slices and padded heads on chip).
PROGRAMS: dict[str, tuple[Callable[[], Graph], Callable[[str, int], np.ndarray]]] = {
    "digits": (lambda: _front(str(CHECKPOINT)), _digits),
    "sdt-gestures": (lambda: _front(str(CHECKPOINTS / "sdt-tiny-gestures.pt")), _gestures),
    "spikingformer": (_random("spikingformer-tiny", _digits), _digits),
    "spikformer": (_random("spikformer-tiny", _digits), _digits),
    "sdt": (_random("sdt-tiny", _gestures), _gestures),
    "elastic-spikingformer-slice": (
        lambda: _front(str(CHECKPOINTS / "elastic-spikingformer-tiny-digits.pt"), (1, 2, 1)),
        _digits,
    ),
    "elastic-spikformer": (_random("elastic-spikformer-tiny", _digits, (1, 2, 1)), _digits),
    "lsformer": (_random("lsformer-tiny", _digits), _digits),
    "ge2mst": (_random("ge2mst-tiny", _digits), _digits),
}
#: Programs from committed, trained checkpoints.
TRAINED = frozenset({"digits", "sdt-gestures", "elastic-spikingformer-slice"})
_BUILT: dict[str, Program] = {}


def get_program(name: str) -> Program:
    """The program ``name`` of :data:`PROGRAMS`, built once per session."""
    if name not in _BUILT:
        build, data = PROGRAMS[name]
        _BUILT[name] = _program(name, build(), data)
    return _BUILT[name]


@pytest.fixture(params=sorted(PROGRAMS))
def program(request: pytest.FixtureRequest) -> Program:
    """Every program of :data:`PROGRAMS` in turn."""
    return get_program(request.param)


@pytest.fixture(scope="session")
def digits_program() -> Program:
    """The committed digits checkpoint (spikingformer-tiny, trained)."""
    return get_program("digits")


@pytest.fixture(scope="session")
def random_program() -> Program:
    """spikingformer-tiny with seeded random weights and thresholds tuned to fire."""
    return get_program("spikingformer")


@pytest.fixture(scope="session")
def programs() -> Callable[[str], Program]:
    """:func:`get_program`, for tests that need several programs by name."""
    return get_program


def _sew_graph() -> Graph:
    """x -> two host convs -> LIFs a, b -> a + b (a SEW sum) -> fc -> c, with a BN-like bias
    large enough that the stream scale gives fc a negative weight exponent: each projection's
    floor then matters (one floor of the summed projections would differ)."""
    rng = np.random.default_rng(5)
    g = Graph("sew")
    g.meta["timesteps"] = 4
    g.add("x", O.Input(shape=(2, 4, 4)), TensorType((2, 4, 4)))
    g.inputs.append("x")
    for n in ("a", "b"):
        g.add(f"enc_{n}", O.Conv2d(weight=rng.normal(size=(3, 2, 3, 3)), padding=(1, 1)),
              TensorType((3, 4, 4)))  # fmt: skip
        g.connect("x", f"enc_{n}")
        g.add(n, O.LIF(tau=2.0, v_threshold=0.5), TensorType((3, 4, 4)))
        g.connect(f"enc_{n}", n)
    g.add("sum", O.Add(), TensorType((3, 4, 4)))
    g.connect("a", "sum", "in0")
    g.connect("b", "sum", "in1")
    g.add("flat", O.Reshape((48,)), TensorType((48,)))
    g.connect("sum", "flat")
    fc = O.Linear(weight=rng.uniform(-0.4, 0.6, (7, 48)), bias=np.full(7, 30.0))
    g.add("fc", fc, TensorType((7,)))
    g.connect("flat", "fc")
    g.add("c", O.LIF(tau=2.0, v_threshold=30.5), TensorType((7,)))
    g.connect("fc", "c")
    g.add("rate", O.TimeMean(), TensorType((7,), temporal=False))
    g.connect("c", "rate")
    g.outputs.append("rate")
    return run_pipeline(g, FRONT_PIPELINE)[0]


@pytest.fixture(scope="session")
def sew_program() -> Program:
    """A SEW sum read by a synapse with a negative weight exponent (one projection per source)."""
    x = np.random.default_rng(6).normal(1.0, 1.0, (4, SAMPLES, 2, 4, 4))
    return _program("sew", _sew_graph(), lambda split, n: x)


def _deep_skip_graph(layers: int) -> Graph:
    """a -> ``layers`` x (identity fc -> LIF) -> joined with a skip projection of a: the skip
    waits ``layers`` steps on chip."""
    rng = np.random.default_rng(8)
    g = Graph("deep")
    g.meta["timesteps"] = 4

    def add(name: str, op: O.Op, src: str) -> str:
        shape = output_shape(op, [g.type(src).shape])
        g.add(name, op, TensorType(shape, temporal=not isinstance(op, O.TimeMean)))
        g.connect(src, name)
        return name

    g.add("x", O.Input(shape=(8,)), TensorType((8,)))
    g.inputs.append("x")
    add("enc", O.Linear(weight=rng.normal(0.5, 1, (8, 8))), "x")
    prev = add("a", O.LIF(tau=2.0, v_threshold=0.5), "enc")
    for i in range(layers):  # identity layers: each LIF copies its input spikes one step on
        add(f"fc{i}", O.Linear(weight=1.5 * np.eye(8)), prev)
        prev = add(f"l{i}", O.LIF(tau=2.0, v_threshold=0.5), f"fc{i}")
    add("skip", O.Linear(weight=rng.uniform(0.2, 0.6, (8, 8))), "a")
    add("last", O.Linear(weight=rng.uniform(-0.3, 0.3, (8, 8))), prev)
    g.add("join", O.Add(), TensorType((8,)))
    g.connect("skip", "join", "in0")
    g.connect("last", "join", "in1")
    add("out", O.LIF(tau=2.0, v_threshold=0.5), "join")
    add("rate", O.TimeMean(), "out")
    g.outputs.append("rate")
    return run_pipeline(g, FRONT_PIPELINE)[0]


@pytest.fixture(scope="session")
def relay_program() -> Program:
    """A skip connection waiting 9 steps, balanced with the per-connection delay limit lowered
    to 2 so that it goes through relay chains (small enough to run on Lava quickly)."""
    from snncc.backends.lower import balance

    x = np.random.default_rng(9).normal(0.0, 1, (4, SAMPLES, 8))
    saved, balance.MAX_DELAY = balance.MAX_DELAY, 2
    try:
        return _program("relay", _deep_skip_graph(8), lambda split, n: x)
    finally:
        balance.MAX_DELAY = saved


@pytest.fixture(scope="session")
def long_relay_program() -> Program:
    """The same with 130 layers and the real 62-step limit: a wait of 130 steps."""
    x = np.random.default_rng(9).normal(0.0, 1, (4, SAMPLES, 8))
    return _program("long-relay", _deep_skip_graph(130), lambda split, n: x)


@pytest.fixture(scope="session")
def attention_programs() -> dict[str, Program]:
    """A smaller spikingformer-tiny (16 channels, 4 heads of 4, one block: 20,480 AND neurons
    when expanded), thresholds tuned, lowered both ways from the same graph: spike products as
    the custom process (``"process"``) and as AND neurons (``"and"``)."""
    from snncc import models
    from snncc.loading import resolve_model, to_graph

    loaded = resolve_model("spikingformer-tiny")
    module = models.create("spikingformer-tiny", embed_dims=16, depths=1)
    g, _ = run_pipeline(to_graph(dataclasses.replace(loaded, module=module)), FRONT_PIPELINE)
    g = _tune_thresholds(g, {g.inputs[0]: _digits("train", 8)}, TARGET_RATE)
    return {a: _program(f"attention-{a}", g, _digits, attention=a) for a in ("process", "and")}


def _add_node(g: Graph, name: str, op: O.Op, *srcs: str) -> None:
    shape = output_shape(op, [g.type(s).shape for s in srcs])
    g.add(name, op, TensorType(shape, temporal=not isinstance(op, O.TimeMean)))
    for src, port in zip(srcs, op.in_ports, strict=True):
        g.connect(src, name, port)


def _attention_graph(consumer: str = "scale", seed: int = 12) -> Graph:
    """x -> q, k, v LIFs [4 tokens, 6] -> (q·kᵀ)·v -> Scale 1/8 (or a Linear) -> LIF o.

    ``consumer="biased"``: a Linear with a large constant input (a folded BN shift) and a
    threshold just above it, so the stream's scale gives the Linear a negative exponent.
    """
    rng = np.random.default_rng(seed)
    g = Graph("attn")
    g.meta["timesteps"] = 4
    g.add("x", O.Input(shape=(4, 6)), TensorType((4, 6)))
    g.inputs.append("x")
    for n in ("q", "k", "v"):
        _add_node(g, f"enc_{n}", O.Linear(weight=rng.normal(0.3, 1, (6, 6))), "x")
        _add_node(g, n, O.LIF(tau=2.0, v_threshold=0.5), f"enc_{n}")
    _add_node(g, "kt", O.Permute((1, 0)), "k")
    _add_node(g, "qk", O.MatMul(), "q", "kt")  # [4, 4]: counts up to 6
    _add_node(g, "qkv", O.MatMul(), "qk", "v")  # [4, 6]: counts up to 24
    if consumer == "scale":
        _add_node(g, "mix", O.Scale(0.125), "qkv")
    else:
        bias = np.full(6, 100.0) if consumer == "biased" else None
        _add_node(g, "mix", O.Linear(weight=rng.uniform(-0.5, 1, (6, 6)), bias=bias), "qkv")
    threshold = {"scale": 0.3, "linear": 1.0, "biased": 100.5}[consumer]
    _add_node(g, "o", O.LIF(tau=2.0, v_threshold=threshold), "mix")
    _add_node(g, "rate", O.TimeMean(), "o")
    g.outputs.append("rate")
    return run_pipeline(g, FRONT_PIPELINE)[0]


@pytest.fixture(scope="session")
def attention_graph() -> Callable[..., Graph]:
    """``attention_graph(consumer="scale", seed=12)``: a hand-written attention (q, k, v LIFs,
    ``(q·kᵀ)·v``, a Scale or Linear, a LIF) small enough to expand and cost quickly."""
    return _attention_graph
