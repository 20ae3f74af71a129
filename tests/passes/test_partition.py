"""The partitioner and the per-target byte models on hand-built graphs (issue 5, deliverable 4).

Expected numbers are computed by hand from the formulas and measurements in
hardware-semantics.md (§4.1, §4.3) and the constraints modules, never read back from the code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from snncc.backends.lava.constraints import LOIHI
from snncc.backends.spinnaker.constraints import SPINNAKER
from snncc.backends.spinnaker.memory import SpiNNakerMemoryModel
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind, TensorType
from snncc.passes.manager import PassContext
from snncc.passes.partition import partition, plan_partition
from snncc.resources.memory import Projection


def chain(sizes: tuple[int, ...]) -> Graph:
    """spikes[sizes[0]] -> Linear -> LIF -> Linear -> LIF ... (dense, all weights nonzero)."""
    g = Graph("chain")
    g.add("x", O.Input(shape=(sizes[0],), kind_in=Kind.SPIKE), TensorType((sizes[0],), Kind.SPIKE))
    g.inputs.append("x")
    prev = "x"
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        w = np.full((n_out, n_in), 0.5)
        g.add(f"fc{i}", O.Linear(weight=w), TensorType((n_out,), Kind.CURRENT))
        g.connect(prev, f"fc{i}", "in")
        g.add(f"lif{i}", O.LIF(), TensorType((n_out,), Kind.SPIKE))
        g.connect(f"fc{i}", f"lif{i}", "in")
        prev = f"lif{i}"
    g.outputs.append(prev)
    return g


def test_spinnaker_sdram_of_a_single_slice_source_matches_the_measured_52016_bytes() -> None:
    # hardware-semantics.md §4.3: a 1000-neuron SpikeSourceArray all-to-all into a 10-neuron
    # population: "out SynBlocks=52016 B" = 1000 rows x (3 header + 10) words x 4 B + 16 B.
    p = Projection("src", "fc", "synaptic", synapses=10_000, n_pre=1000, rf=1000, fan_out=10,
                   single_slice_source=True)  # fmt: skip
    assert SpiNNakerMemoryModel().matrix_bytes(p, 10) == 52_016


def test_spinnaker_rows_are_padded_per_256_neuron_pre_slice() -> None:
    # 600 presynaptic neurons in pre-slices of 256 (3 blocks), dense into a 256-neuron post slice:
    # every one of the 600 rows is padded to the longest row (256): 600 x (3 + 256) x 4 + 3 x 16.
    p = Projection("a", "fc", "synaptic", synapses=600 * 300, n_pre=600, rf=600, fan_out=300)
    assert SpiNNakerMemoryModel().matrix_bytes(p, 256) == 600 * 259 * 4 + 3 * 16


def test_spinnaker_never_shares_a_core_and_slices_like_spynnaker() -> None:
    plan = plan_partition(chain((600, 600, 300, 10)), "spinnaker")
    rows = {r["name"]: r for r in plan.layers}
    # sPyNNaker slices 600 neurons at 256 per core as 0:256, 256:512, 512:600 (§4.1): a run of
    # two identical full cores, then the remainder.
    lif0 = [c for c in plan.core_map if c["layer"] == "lif0"]
    assert [(c["core"], c["count"], c["atoms"], c["atoms_per_core"]) for c in lif0] == [
        (0, 2, [["lif0", 0, 512]], 256), (2, 1, [["lif0", 512, 600]], 88)
    ]  # fmt: skip
    assert [c["neurons"] for c in lif0] == [256, 88]  # per core
    assert (rows["lif0"]["cores"], rows["lif1"]["cores"], rows["lif2"]["cores"]) == (3, 2, 1)
    assert plan.cores == 6
    assert all(len(c["layers"]) == 1 for c in plan.core_map)
    # each layer needs ceil(n / 256) cores of its own, so 3 + 2 + 1 is also the lower bound.
    assert plan.cores_lower_bound["layers"] == 6
    for c in plan.core_map:
        assert c["neurons"] <= SPINNAKER.neurons_per_core and c["dtcm"] <= SPINNAKER.dtcm_bytes


# The tests below exercise the conservative byte model (``--conv-synapses per-connection``),
# which packs layers into shared cores; the calibrated default gives each layer cores of its own
# (tests/backends/test_loihi_calibration.py covers it).
def test_loihi_packs_small_layers_into_one_core() -> None:
    # 100 + 50 + 10 neurons with 8-bit synapses: far below one core's 8192 neurons / 128 KiB.
    plan = plan_partition(chain((64, 100, 50, 10)), "loihi", conv_synapses="per-connection")
    assert plan.cores == 1
    assert plan.core_map[0]["layers"] == ["lif0", "lif1", "lif2"]
    # synapses are 1 byte each (8-bit weights, no delay): 64*100 + 100*50 + 50*10 = 11,900.
    assert sum(r["synapse_bytes"] for r in plan.layers) == 64 * 100 + 100 * 50 + 50 * 10
    assert sum(r["synapses"] for r in plan.layers) == 11_900


def test_loihi_splits_a_layer_by_memory_and_respects_every_limit() -> None:
    # 2000 x 2000 dense synapses = 4,000,000 B of weights: at least ceil(4e6 / 131072) = 31 cores.
    g = chain((2000, 2000))
    plan = plan_partition(g, "loihi", conv_synapses="per-connection")
    assert plan.cores >= math.ceil(2000 * 2000 / LOIHI.core_memory_bytes)
    assert plan.cores_lower_bound["memory"] >= 31
    assert max(plan.cores_lower_bound.values()) <= plan.cores
    for c in plan.core_map:
        assert c["memory_bytes"] <= LOIHI.core_memory_bytes
        assert c["neurons"] <= LOIHI.neurons_per_core
        assert c["fan_in"] <= LOIHI.fan_in_per_core
    assert sum(c["count"] for c in plan.core_map) == plan.cores
    covered = sorted((a, b) for c in plan.core_map for _, a, b in c["atoms"])
    assert covered[0][0] == 0 and covered[-1][1] == 2000
    assert all(b1 == a2 for (_, b1), (a2, _) in zip(covered, covered[1:], strict=False))


def test_core_memory_override_changes_the_partition() -> None:
    g = chain((2000, 2000))
    small = plan_partition(g, "loihi", core_memory=64 * 1024, conv_synapses="per-connection")
    large = plan_partition(g, "loihi", conv_synapses="per-connection")
    assert small.cores > large.cores
    assert all(c["memory_bytes"] <= 64 * 1024 for c in small.core_map)


def test_one_neuron_larger_than_a_core_is_exit_4() -> None:
    from snncc.diagnostics import SnnccError

    # a Loihi neuron's state is 8 bytes: with 4 bytes per core, not even one neuron fits
    # (and relays cannot help: the neuron itself is too big).
    with pytest.raises(SnnccError) as e:
        plan_partition(chain((10, 1)), "loihi", core_memory=4, conv_synapses="per-connection")
    assert e.value.exit_code == 4 and "lif0" in e.value.message


def test_partition_pass_leaves_the_graph_and_a_plan() -> None:
    g = chain((64, 100, 10))
    ctx = PassContext(config={"target": "spinnaker"})
    before = g.copy()
    out = partition(g, ctx)
    assert out == before
    plan = ctx.config["partition_plan"]
    assert plan.to_dict()["cores"] == plan.cores == 2
    assert ctx.stats["cores"] == 2 and ctx.decisions


def test_runs_of_cores_are_expanded_in_the_core_map_picture() -> None:
    from snncc.reports.figures import _core_grid

    plan = plan_partition(chain((600, 600, 300, 10)), "spinnaker")
    names = [r["name"] for r in plan.layers]
    img = _core_grid(plan.core_map, names, SPINNAKER.sdram_per_core).reshape(-1, 4)
    white = np.ones(3)
    painted = [i for i in range(len(img)) if not np.allclose(img[i, :3], white)]
    assert painted == list(range(plan.cores))  # one pixel per core, runs included
    assert np.allclose(img[0, :3], img[1, :3]) and not np.allclose(img[0, :3], img[3, :3])


def test_loihi_splits_a_neuron_wider_than_a_core_into_partial_sum_relays() -> None:
    # 8000 inputs per neuron > 4096 input axons per core: Loihi 2 sums them in graded relays
    # of at most 2048 sources each (ceil(8000 / 2048) = 4 relays), then the neuron reads 4.
    plan = plan_partition(chain((8000, 10)), "loihi", conv_synapses="per-connection")
    relays = [r for r in plan.layers if r["kind"] == "relay"]
    assert [r["name"] for r in relays] == [f"lif0.partial{i}" for i in range(4)]
    assert sum(r["synapses"] for r in relays) == 8000 * 10
    main = next(r for r in plan.layers if r["name"] == "lif0")
    assert main["synapses"] == 4 * 10 and any("graded relays" in n for n in main["notes"])
    for c in plan.core_map:
        assert c["fan_in"] <= LOIHI.fan_in_per_core and c["memory_bytes"] <= LOIHI.core_memory_bytes


def test_spinnaker_has_no_graded_relays_so_a_too_wide_neuron_is_exit_4() -> None:
    from snncc.diagnostics import SnnccError

    # one neuron reading 8,000,000 sources needs 8e6 rows x 4 words x 4 B = 128 MB of synaptic
    # matrix, more than a whole chip's 123,469,792 B of SDRAM.
    with pytest.raises(SnnccError) as e:
        plan_partition(chain((8_000_000, 1)), "spinnaker")
    assert e.value.exit_code == 4 and "sdram" in e.value.message


def test_spinnaker_cores_share_their_chip_sdram() -> None:
    from snncc.passes.partition import Core, _chips
    from snncc.resources.core_fit import target_model

    model = target_model("spinnaker")
    # 20 small cores: 16 application cores per chip -> 2 chips.
    assert _chips(model, [Core(0, 20, [], {"sdram": 1000})], 20) == 2
    # 50 MB each: two fit a 123,469,792-byte chip, a third does not -> 3 cores on 2 chips.
    assert _chips(model, [Core(0, 3, [], {"sdram": 50_000_000})], 3) == 2
    # a 100 MB core fits a chip alone (more than the even 1/16 share of 7.7 MB).
    assert _chips(model, [Core(0, 1, [], {"sdram": 100_000_000}),
                          Core(1, 1, [], {"sdram": 30_000_000})], 2) == 2  # fmt: skip
    plan = plan_partition(chain((600, 600, 300, 10)), "spinnaker")
    assert plan.chips == 1
    assert plan_partition(chain((64, 100)), "loihi").chips == 1


def conv_graph() -> Graph:
    """spikes [4, 6, 6] -> Conv2d(4 -> 8, 3x3, pad 1) -> LIF: 288 neurons, 36 weights each."""
    g = Graph("conv")
    g.add("x", O.Input(shape=(4, 6, 6), kind_in=Kind.SPIKE), TensorType((4, 6, 6), Kind.SPIKE))
    g.inputs.append("x")
    w = np.full((8, 4, 3, 3), 0.5)
    g.add("conv", O.Conv2d(weight=w, padding=(1, 1)), TensorType((8, 6, 6), Kind.CURRENT))
    g.connect("x", "conv", "in")
    g.add("lif", O.LIF(), TensorType((8, 6, 6), Kind.SPIKE))
    g.connect("conv", "lif", "in")
    g.outputs.append("lif")
    return g


def test_loihi_conv_weights_per_connection_or_shared() -> None:
    per = plan_partition(conv_graph(), "loihi", conv_synapses="per-connection").layers[0]
    shared = plan_partition(conv_graph(), "loihi", conv_synapses="shared").layers[0]
    # per connection: 8 x 6 x 6 outputs x 4 x 3 x 3 taps (snncc counts every tap of a padded
    # convolution, the upper bound), one byte each.
    assert per["synapse_bytes"] == per["synapses"] == 288 * 36
    # shared (the calibrated model, docs/budget.md §3): the one core holds the kernel once: per
    # input channel and tap, ceil(8 channels x 8 bits / 64) + 1 = 2 SynMem units of 8 bytes:
    # 4 x 9 x 2 = 72 units = 576 bytes.
    assert shared["synmem"] == 4 * 9 * 2 and shared["synapse_bytes"] == 72 * 8
    assert shared["tile"] == [8, 6, 8] and shared["cores"] == 1  # all channels, 8 = 2^3 wide
    assert shared["state_bytes"] == per["state_bytes"] == 288 * LOIHI.neuron_state_bytes


def test_shared_conv_synapses_are_a_loihi_assumption_only() -> None:
    from snncc.diagnostics import SnnccError

    with pytest.raises(SnnccError) as e:
        plan_partition(conv_graph(), "spinnaker", conv_synapses="shared")
    assert e.value.exit_code == 2 and e.value.code == "MM003"


def test_convolution_windows_overlap_so_neighbours_share_input_axons() -> None:
    from snncc.resources.memory import conv_sources

    # Conv2d 4 -> 8 channels, 3x3, stride 1, pad 1, on 6x6 (outputs 8 x 6 x 6), as conv_graph():
    geometry = (1, 4, 6, 6, 8, 6, 6, 1, 3, 1, 3)
    # one output reads at most 4 channels x (1 + 3) rows x (0 + 6) columns by the bound, capped
    # by the 6x6 map: 4 x 4 x 6 = 96 (the true window is 4 x 3 x 3 = 36: k·rf is tighter here)
    assert conv_sources(geometry, 1) == 4 * 4 * 6
    # a whole output channel (36 outputs) reads the whole input: 4 x 6 x 6
    assert conv_sources(geometry, 36) == 4 * 36
    # ten consecutive outputs (more than a row): rows ceil(10/6) + 2 = 4 -> 3 + 3 = 6 input rows
    assert conv_sources(geometry, 10) == 4 * 6 * 6
    # on a 32 x 32 map, one output row (32 atoms) reads 4 channels x 5 rows x 32 columns = 640
    # inputs, not 32 x 36 = 1,152 (k·rf) nor the 4,096 of the whole input
    from snncc.backends.lava.memory import axons

    wide = (1, 4, 32, 32, 8, 32, 32, 1, 3, 1, 3)
    assert conv_sources(wide, 32) == 640
    p = Projection("x", "conv", "synaptic", synapses=8 * 1024 * 36, n_pre=4096, rf=36,
                   fan_out=72, conv=wide)  # fmt: skip
    assert axons(p, 32) == 640 and axons(p, 2) == 2 * 36  # k·rf stays the bound for few atoms


def test_core_map_picture_of_a_huge_partition_stays_bounded() -> None:
    from snncc.reports import figures as F

    runs = [{"layer": "a", "count": 30_000_000, "memory_bytes": 10},
            {"layer": "b", "count": 10_000_000, "memory_bytes": 10}]  # fmt: skip
    step = F.cores_per_pixel(runs)
    assert step == 160  # ceil(4e7 / 250,000)
    img = F._core_grid(runs, ["a", "b"], 10).reshape(-1, 4)
    assert len(img) <= 2 * F.MAX_CORE_PIXELS
    # pixels 0 .. 187,499 show layer a (cores 0 .. 3e7 - 1), the next 62,500 layer b
    assert np.allclose(img[0, :3], img[187_499, :3])
    assert not np.allclose(img[187_499, :3], img[187_500, :3])
    assert np.allclose(img[187_500, :3], img[249_999, :3])
