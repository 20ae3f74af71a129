"""The calibrated Loihi 2 cost model against Intel's Loihi 2 compiler (issue 12).

The evidence is the saved output of real Loihi 2 compilations in lava-dl's netx tutorials,
extracted verbatim into ``tests/data/loihi2_compiler_evidence.json`` with the repository, commit
and notebook of every row. Expected values here are Intel's numbers from that file (or, for the
per-layer predictions, the table written in docs/budget.md §3), never read back from the code.

Calibration error (docs/budget.md): PilotNet LIF 64 cores predicted against Intel's 74
(-13.5 %), the Oxford dense network 4 against 5 (-20 %); the goal is within ±25 % per network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from snncc.backends.lava.calibrated import LoihiCalibratedModel
from snncc.backends.lava.constraints import LOIHI
from snncc.backends.lava.synmem import conv_units, dense_units, stored_width, units_to_bytes
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.shapes import output_shape
from snncc.ir.types import Kind, TensorType
from snncc.passes.partition import plan_partition

EVIDENCE = json.loads(
    (Path(__file__).resolve().parents[1] / "data/loihi2_compiler_evidence.json").read_text()
)
NETS = EVIDENCE["networks"]
#: Intel's cores per layer (the ``Cores`` column; ``layer`` indexes network.net).
INTEL = {k: {r["layer"]: r["cores"] for r in n["per_core_rows"]} for k, n in NETS.items()}
#: snncc's prediction per layer, as docs/budget.md §3 states it (IR layer -> network.net layer).
PILOTNET = {"in_lif": (0, 10), "lif1": (1, 25), "lif2": (2, 9), "lif3": (3, 3), "lif4": (4, 3),
            "lif5": (5, 2), "fc1_lif": (7, 9), "fc2_lif": (8, 1), "fc3_lif": (9, 1),
            "fc4_lif": (10, 1)}  # fmt: skip
OXFORD = {"fc1_lif": (0, 2), "fc2_lif": (1, 2)}


def _layer(net: str, index: int) -> dict[str, Any]:
    return next(x for x in NETS[net]["layers"] if x["index"] == index)


def _dense_shape(layer: dict[str, Any]) -> tuple[int, int]:
    """``(neurons, input axons)`` of a Dense layer (a 1-D weight is one neuron)."""
    shape = layer["weight_shape"]
    return (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])


# -- the evidence --------------------------------------------------------------------------------
def test_every_row_names_its_source_and_the_12000_unit_limit() -> None:
    for name, net in NETS.items():
        src = net["source"]
        assert src["repository"] == "https://github.com/lava-nc/lava-dl", name
        assert len(src["commit"]) == 40 and src["path"].endswith(".ipynb"), name
        assert sum(r["cores"] for r in net["per_core_rows"]) == net["total_cores"], name
        assert {v["limit"] for v in net["violations"]} == {LOIHI.synmem_units_per_core}
    totals = {k: n["total_cores"] for k, n in NETS.items()}
    assert totals == {"pilotnet_snn": 74, "pilotnet_sdnn": 61, "oxford": 5}


def _single_core_allocations() -> list[tuple[str, int, int]]:
    """``(network, layer, SynMem units)`` of every Dense layer seen with all its neurons on one
    core: the first violation of a core (before any split), and the one-core Dense rows."""
    out = []
    for name, net in NETS.items():
        seen: set[int] = set()
        for v in net["violations"]:
            if v["core_id"] not in seen:
                seen.add(v["core_id"])
                out.append((name, v["layer"], v["allocation"]))
        for r in net["per_core_rows"]:
            if _layer(name, r["layer"])["type"] == "dense" and r["cores"] == 1:
                out.append((name, r["layer"], r["synmem"]))
    return out


def test_dense_synmem_reproduces_every_single_core_allocation_exactly() -> None:
    """axons · ceil((neurons · (w + 12) + 10) / 64), w = netx's weight bits (7 stored as 8)."""
    cases = _single_core_allocations()
    assert len(cases) == 10
    for name, index, units in cases:
        layer = _layer(name, index)
        neurons, axons = _dense_shape(layer)
        assert dense_units(axons, neurons, layer["netx_num_weight_bits"]) == units, (name, index)
    assert stored_width(7) == 8 and stored_width(3) == 3
    # PilotNet's 2560 -> 100 layer at 3 bits: 2560 axons x ceil((100·15 + 10)/64) = 2560 x 24
    assert dense_units(2560, 100, 3) == 61_440
    assert units_to_bytes(LOIHI.synmem_units_per_core) == 96_000


def test_conv_synmem_is_an_upper_bound_at_most_one_unit_per_channel_and_tap_over() -> None:
    equal = 0
    for name, net in NETS.items():
        for r in net["per_core_rows"]:
            layer = _layer(name, r["layer"])
            if layer["type"] != "conv":
                continue
            c_out, c_in, kh, kw = layer["weight_shape"]  # every tile holds all channels
            got = conv_units(kh * kw, c_in, c_out, layer["twos_complement_bits"])
            assert r["synmem"] <= got <= r["synmem"] + kh * kw * c_in, (name, r["line"])
            assert r["axon_in"] <= LOIHI.conv_axons_in
            equal += got == r["synmem"]
    assert equal == 3  # of 10 rows


def test_neurons_per_core_and_tile_widths_match_the_conv_tiles() -> None:
    rows = [r for n in NETS.values() for r in n["per_core_rows"]]
    assert max(r["neurons"] for r in rows) == 3168 <= LOIHI.compiled_neurons_per_core
    # PilotNet conv4 (22 x 4 x 64) and conv5 (20 x 2 x 64) took 8- and 16-wide tiles: the next
    # power of two, 16 x 4 x 64 and 32 x 2 x 64 = 4,096 neurons, was refused.
    assert 16 * 4 * 64 == 32 * 2 * 64 == LOIHI.compiled_neurons_per_core + 1
    widths = [int(r["tile"].split("(")[1].split(",")[0]) for r in rows if r["tile"]]
    assert widths and all(w & (w - 1) == 0 for w in widths)


# -- the networks as snncc IR --------------------------------------------------------------------
def _add(g: Graph, name: str, op: O.Op, *srcs: str) -> str:
    shape = output_shape(op, [g.type(s).shape for s in srcs])
    kind = Kind.SPIKE if op.NEURON else Kind.CURRENT
    g.add(name, op, TensorType(shape, kind))
    for src, port in zip(srcs, op.in_ports, strict=True):
        g.connect(src, name, port)
    return name


def pilotnet() -> Graph:
    """PilotNet LIF as the notebook prints it: input neurons (3 x 66 x 200, fed by the image as
    a bias: a host current here), five 3x3 convolutions, flatten, Dense 2560-100-50-10-1."""
    g = Graph("pilotnet")
    g.add("x", O.Input(shape=(3, 66, 200)), TensorType((3, 66, 200), Kind.CURRENT))
    g.inputs.append("x")
    prev = _add(g, "in_lif", O.LIF(), "x")
    convs = [
        (24, (2, 2), (0, 0)),
        (36, (2, 2), (0, 0)),
        (48, (2, 2), (0, 0)),
        (64, (2, 1), (1, 0)),
        (64, (1, 1), (0, 0)),
    ]  # (C_out, stride, pad) as (H, W)
    for i, (c_out, stride, pad) in enumerate(convs, 1):
        c_in = g.type(prev).shape[0]
        w = np.ones((c_out, c_in, 3, 3))
        _add(g, f"conv{i}", O.Conv2d(weight=w, stride=stride, padding=pad), prev)
        prev = _add(g, f"lif{i}", O.LIF(), f"conv{i}")
    assert g.type(prev).shape == (64, 2, 20)  # the notebook's last Conv row: W 20, H 2, C 64
    prev = _add(g, "flat", O.Reshape((2560,)), prev)
    for i, n in enumerate((100, 50, 10, 1), 1):
        _add(g, f"fc{i}", O.Linear(weight=np.ones((n, g.type(prev).shape[0]))), prev)
        prev = _add(g, f"fc{i}_lif", O.LIF(), f"fc{i}")
    g.outputs.append(prev)
    return g


def oxford() -> Graph:
    """The Oxford network: 200 input spikes (from the host), Dense 256, Dense 200."""
    g = Graph("oxford")
    g.add("x", O.Input(shape=(200,), kind_in=Kind.SPIKE), TensorType((200,), Kind.SPIKE))
    g.inputs.append("x")
    prev = "x"
    for i, n in enumerate((256, 200), 1):
        _add(g, f"fc{i}", O.Linear(weight=np.ones((n, g.type(prev).shape[0]))), prev)
        prev = _add(g, f"fc{i}_lif", O.LIF(), f"fc{i}")
    g.outputs.append(prev)
    return g


@pytest.mark.parametrize(
    ("build", "net", "expected", "intel_total"),
    [(pilotnet, "pilotnet_snn", PILOTNET, 74), (oxford, "oxford", OXFORD, 5)],
)
def test_total_cores_within_25_percent_of_intels(
    build: Any, net: str, expected: dict[str, tuple[int, int]], intel_total: int
) -> None:
    plan = plan_partition(build(), "loihi", conv_synapses="shared")
    cores = {r["name"]: r["cores"] for r in plan.layers}
    assert {n: c for n, (_, c) in expected.items()} == cores  # the table in docs/budget.md
    assert sorted(i for i, _ in expected.values()) == sorted(INTEL[net])
    assert sum(INTEL[net].values()) == intel_total
    error = (plan.cores - intel_total) / intel_total
    assert abs(error) <= 0.25, f"{net}: {plan.cores} cores vs Intel's {intel_total} ({error:+.1%})"
    assert plan.cores == sum(cores.values())  # no core holds two layers (as Intel's compiler)


def test_pilotnet_convolutions_get_intels_tiles() -> None:
    """All channels, full height, power-of-two widths: Intel's Conv(4,32,24), Conv(8,7,48),
    Conv(8,4,64), Conv(16,2,64) (width, height, channels) for conv1, conv3, conv4, conv5."""
    rows = {
        r["name"]: r for r in plan_partition(pilotnet(), "loihi", conv_synapses="shared").layers
    }
    tiles = {n: rows[n]["tile"] for n in ("lif1", "lif3", "lif4", "lif5")}
    assert tiles == {"lif1": [24, 32, 4], "lif3": [48, 7, 8], "lif4": [64, 4, 8],
                     "lif5": [64, 2, 16]}  # fmt: skip
    assert {n: rows[n]["binding"] for n in tiles} == dict.fromkeys(tiles, "neurons")
    # conv2: the model finds 4-channel tiles of the whole 15 x 49 map (9 cores); Intel kept all
    # 36 channels in 4-wide tiles (13 cores). The 2560 -> 100 Dense binds on SynMem.
    assert rows["lif2"]["tile"] == [4, 15, 64] and rows["fc1_lif"]["binding"] == "synmem"


# -- agreement with the lowering (deliverable 5) -------------------------------------------------
def spec_graph() -> Graph:
    """Large enough that ``backends/lower`` emits every weight-shared op as a Conv: a 3x3 conv,
    an OR max-pool, a residual join read by two layers (fan-in expansion), a Linear over 256
    tokens, and a 4096 -> 10 Linear the lowering emits as a Dense (4,096 input axons: no
    partial-sum relays, which the lowering does not emit)."""
    rng = np.random.default_rng(12)
    g = Graph("spec")
    g.meta["timesteps"] = 2
    g.add("x", O.Input(shape=(3, 32, 32)), TensorType((3, 32, 32)))
    g.inputs.append("x")
    _add(g, "enc", O.Conv2d(weight=rng.normal(size=(8, 3, 3, 3)), padding=(1, 1)), "x")
    _add(g, "l0", O.LIF(), "enc")
    _add(g, "c1", O.Conv2d(weight=rng.normal(size=(16, 8, 3, 3)), padding=(1, 1)), "l0")
    _add(g, "l1", O.LIF(), "c1")
    _add(g, "pool", O.MaxPool2d(kernel=(2, 2), stride=(2, 2)), "l1")
    _add(g, "ca", O.Conv2d(weight=rng.normal(size=(32, 16, 3, 3)), padding=(1, 1)), "pool")
    _add(g, "cb", O.Conv2d(weight=rng.normal(size=(32, 16, 1, 1))), "pool")
    _add(g, "join", O.Add(), "ca", "cb")
    _add(g, "l2", O.LIF(), "join")
    _add(g, "l3", O.LIF(), "join")
    _add(g, "tok", O.Reshape((32, 256)), "l2")
    _add(g, "tt", O.Permute((1, 0)), "tok")
    _add(g, "fc", O.Linear(weight=rng.normal(size=(64, 32))), "tt")
    _add(g, "l4", O.LIF(), "fc")
    _add(g, "flat", O.Reshape((4096,)), "pool")
    _add(g, "head", O.Linear(weight=rng.normal(size=(10, 4096)) * 0.05), "flat")
    _add(g, "l5", O.LIF(), "head")
    g.outputs += ["l3", "l4", "l5"]
    return g


def spec_weights(spec: Any) -> dict[tuple[str, str], tuple[str, int]]:
    """``(entry, target) -> (kind, stored weights)`` of every emitted dense/conv connection:
    a Conv's kernel (``C_out · kW · kH · C_in/groups``), a Dense's whole matrix."""
    out = {}
    for c in spec.connections:
        if c.kind in ("conv", "dense"):
            key = "kernel" if c.kind == "conv" else "weights"
            out[(c.entry, c.target)] = (c.kind, int(np.asarray(c.params[key]).size))
    return out


def model_weights(g: Graph) -> dict[tuple[str, str], tuple[str, int]]:
    """The same, from the calibrated model's projections (before any partial-sum split)."""
    from snncc.resources.memory import deployed_units

    model = LoihiCalibratedModel()
    out = {}
    for unit in deployed_units(g, "loihi", join_relays=model.join_relays):
        for p in unit.projections:
            if p.kind == "synaptic":
                out[(p.via, unit.name)] = (model.form(unit, p), model.stored_weights(unit, p))
    return out


def test_what_is_costed_is_what_the_lowering_emits() -> None:
    from snncc.backends.lower.lower import lower_program
    from snncc.passes.manager import PassContext, run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE
    from snncc.passes.quantize import quantize

    front, _ = run_pipeline(spec_graph(), FRONT_PIPELINE)
    q, _ = run_pipeline(front, [quantize], PassContext(config={"target": "loihi"}))
    emitted, costed = spec_weights(lower_program(q)), model_weights(q)
    assert emitted == costed
    # per layer, as the report shows it: the plan's stored_weights total the spec's connections
    per_layer: dict[str, int] = {}
    for (_, target), (_, n) in emitted.items():
        per_layer[target] = per_layer.get(target, 0) + n
    plan = plan_partition(q, "loihi", conv_synapses="shared")
    reported = {r["name"]: r["stored_weights"] for r in plan.layers if r["stored_weights"]}
    assert reported == per_layer
    # the join is expanded: both of its layers read both branches, each kernel stored twice
    assert {t for (e, t) in emitted if e in ("ca", "cb")} == {"l2", "l3"}
    assert emitted[("head", "l5")] == ("dense", 10 * 4096)
    assert emitted[("fc", "l4")] == ("conv", 64 * 32)  # a Linear over 256 tokens: one kernel


# -- Spikingformers on a realistic number of cores (deliverable 3) -------------------------------
@pytest.mark.parametrize(
    ("name", "most_chips"),
    [("spikingformer-4-384", 8), pytest.param("spikingformer-8-768", 1152, marks=pytest.mark.slow)],
)
def test_spikingformers_fill_their_cores(name: str, most_chips: int) -> None:
    """Utilisation (lower bound / cores) of at least 80 %; every core within every limit; the
    CIFAR model fits a Kapoho Point (8 chips), the ImageNet one Hala Point (1,152 chips)."""
    from snncc.loading import resolve_model, to_graph
    from snncc.passes.manager import run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE

    g, _ = run_pipeline(to_graph(resolve_model(name)), FRONT_PIPELINE)
    plan = plan_partition(g, "loihi", conv_synapses="shared")
    bound = max(plan.cores_lower_bound.values())
    assert bound / plan.cores >= 0.8, (plan.cores, plan.cores_lower_bound)
    assert plan.chips == -(-plan.cores // LOIHI.cores_per_chip) <= most_chips
    for core in plan.core_map:
        assert all(core[r if r != "memory" else "memory_bytes"] <= cap
                   for r, cap in plan.limits.items()), core  # fmt: skip
    assert all(r["binding"] in (*plan.limits, "whole layer") for r in plan.layers)


def test_what_is_costed_is_what_the_lowering_emits_with_and_expanded_attention(
    attention_graph,
) -> None:
    """``--attention and``: the AND layers' neurons and every layer's stored weights (the unit
    synapses into the AND neurons, the consumer's synapses from them) as the spec holds them."""
    from snncc.backends.lower.passes import lower
    from snncc.passes.manager import PassContext, run_pipeline
    from snncc.passes.quantize import quantize

    ctx = PassContext(config={"target": "loihi", "attention": "and", "require_program": True})
    q, ctx = run_pipeline(attention_graph(), [quantize, lower], ctx)
    spec = ctx.config["program_spec"]
    emitted: dict[str, int] = {}
    for c in spec.connections:  # every connection (the two operands of a product share keys)
        assert c.kind == "conv" or c.target not in ("qk", "qkv", "o")
        key = "kernel" if c.kind == "conv" else "weights"
        emitted[c.target] = emitted.get(c.target, 0) + int(np.asarray(c.params[key]).size)
    plan = plan_partition(q, "loihi", conv_synapses="shared")
    reported = {r["name"]: r["stored_weights"] for r in plan.layers if r["stored_weights"]}
    assert reported == emitted
    assert emitted["qk"] == 2 * 96 and emitted["qkv"] == 2 * 576  # one weight per AND input
    assert emitted["o"] == 576  # o sums its 24 terms' AND neurons x 24 elements
    neurons = {r["name"]: r["neurons"] for r in plan.layers}
    assert {n: neurons[n] for n in ("qk", "qkv")} == {"qk": 96, "qkv": 576}
