"""Spike products on Loihi: the AND expansion (``--attention and``) and the choice by budget.

The expanded program is executed by the numpy executor (Lava's timing and integer arithmetic)
and compared with the ``loihi`` reference interpreter: every neuron population of the graph
spike for spike, the outputs exactly; the AND populations (which have no node value of their
own) against the reference's product values: per step and sample, the AND neurons of a product
that fire number exactly the sum of the reference's counts over the product's elements. The
choice is checked against the partition the compile pipeline makes afterwards (what is costed is
what is emitted) and against budgets on either side of the AND expansion's cost.
"""

from __future__ import annotations

import numpy as np
import pytest

from snncc.backends.lower import host
from snncc.backends.lower.lower import lower_program
from snncc.backends.lower.passes import SPEC_KEY
from snncc.backends.lower.simulate import simulate, windows
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.partition import partition
from snncc.passes.quantize import quantize
from snncc.reference import run
from snncc.resources.budget import parse_budget

X = np.random.default_rng(13).normal(0.5, 1, (4, 3, 4, 6))


def _lowered(g: Graph, **config) -> tuple[Graph, PassContext]:
    from snncc.backends.lower.passes import balance_latency, lower

    ctx = PassContext(config={"target": "loihi", "require_program": True, **config})
    return run_pipeline(g, [quantize, lower, balance_latency, partition], ctx)


def _check(q: Graph, spec, inputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Executor vs reference (module docstring); firing rates of the populations."""
    ref = run(q, inputs, "loihi", record="all")
    a_in, batch = host.encode(q, spec, inputs)
    win = windows(spec, simulate(spec, a_in, batch), batch)
    rates = {}
    for pop in spec.populations:
        got = win[pop.name]
        value = ref.values[pop.name]
        if not pop.checked:  # an expanded product
            fired = got.reshape(*got.shape[:2], -1).sum(axis=-1)
            want = value.reshape(*value.shape[:2], -1).sum(axis=-1)
            np.testing.assert_array_equal(fired, want, err_msg=pop.name)
        else:
            np.testing.assert_array_equal(got, (value != 0).astype(np.uint8), err_msg=pop.name)
        rates[pop.name] = float(got.mean())
    out = host.readout(q, spec, win, inputs)
    for name, want in ref.outputs.items():
        np.testing.assert_array_equal(out[name], want)
    return rates


def test_and_expansion_is_exact_on_the_executor(attention_graph) -> None:
    q, ctx = _lowered(attention_graph(), attention="and")
    spec = ctx.config[SPEC_KEY]
    assert not [c for c in spec.connections if c.kind == "product"]
    ands = {p.name: p.size for p in spec.populations if p.role == "and"}
    assert ands == {"qk": 4 * 4 * 6, "qkv": 4 * 6 * 4 * 6}  # a term per (i, j, c), (i, j, m, c)
    assert [p.name for p in spec.populations if not p.checked] == ["qk", "qkv"]  # snncc run
    rates = _check(q, spec, {"x": X})
    assert rates["qk"] > 0 and rates["qkv"] > 0 and 0 < rates["o"] < 1, rates


def test_each_expansion_level_adds_one_lava_step(attention_graph) -> None:
    g = attention_graph()
    spec_p = _lowered(g, attention="process")[1].config[SPEC_KEY]
    spec_a = _lowered(g, attention="and")[1].config[SPEC_KEY]
    assert spec_p.population("o").depth == 1  # q, k, v at 0 (host-fed), the process: one hop
    assert spec_a.population("qk").depth == 1 and spec_a.population("qkv").depth == 2
    assert spec_a.population("o").depth == 3
    (v_in,) = [c for c in spec_a.into("qkv") if c.sources() == ["v"]]
    assert v_in.operands[0].delay == 1  # v waits for q·kᵀ's AND neurons
    assert spec_a.run_steps(3) == spec_p.run_steps(3) + 2  # the readout window moves with it


def test_a_linear_reading_a_product_is_exact_or_refused(attention_graph) -> None:
    """A synaptic op reading a product: its weights composed with the AND counts (exponent
    >= 0), or LOW030 (a negative exponent floors the whole sum), and auto then falls back."""
    g = attention_graph("linear")
    q, ctx = _lowered(g, attention="and")
    assert q.node_meta("mix")["quant"]["weight_exp"] >= 0
    _check(q, ctx.config[SPEC_KEY], {"x": X})
    g = attention_graph("biased")
    q, _ = run_pipeline(g, [quantize], PassContext(config={"target": "loihi"}))
    assert q.node_meta("mix")["quant"]["weight_exp"] < 0
    with pytest.raises(SnnccError) as e:
        lower_program(q, "and")
    assert e.value.code == "LOW030" and "mix" in e.value.message
    q, ctx = _lowered(g, attention="auto", budget=parse_budget("1GiB"))
    rec = ctx.config[SPEC_KEY].attention
    assert rec["chosen"] == "process" and "cannot express" in rec["why"]
    assert rec["costs"]["and"]["fits"]  # it fitted: the refusal, not the budget, decided
    _check(q, ctx.config[SPEC_KEY], {"x": X})


def test_the_choice_flips_with_the_budget_and_costs_what_is_emitted(attention_graph) -> None:
    g = attention_graph()
    _, ctx = _lowered(g, attention="process")
    process_plan = ctx.config["partition_plan"]
    _, ctx = _lowered(g, attention="and")
    and_plan = ctx.config["partition_plan"]
    assert and_plan.memory_bytes > process_plan.memory_bytes
    for budget, chosen in ((and_plan.memory_bytes, "and"), (and_plan.memory_bytes - 1, "process")):
        _, ctx = _lowered(g, attention="auto", budget=parse_budget(f"{budget}B"))
        rec, plan = ctx.config[SPEC_KEY].attention, ctx.config["partition_plan"]
        assert rec["chosen"] == chosen, rec
        for choice, want in (("and", and_plan), ("process", process_plan)):
            assert rec["costs"][choice]["memory_bytes"] == want.memory_bytes
            assert rec["costs"][choice]["cores"] == want.cores
        assert rec["costs"][chosen]["memory_bytes"] == plan.memory_bytes  # what was emitted
    _, ctx = _lowered(g, attention="process", budget=parse_budget("1GiB"))
    rec = ctx.config[SPEC_KEY].attention  # forced, and both costed for the report
    assert rec["chosen"] == "process" and rec["costs"]["and"]["fits"]
    assert rec["costs"]["and"]["memory_bytes"] == and_plan.memory_bytes
    _, ctx = _lowered(g, attention="auto")
    rec = ctx.config[SPEC_KEY].attention
    assert rec["chosen"] == "process" and rec["costs"] == {}  # no budget: no AND, no costs


def test_the_report_lists_the_process_and_the_choice(attention_graph) -> None:
    from snncc.reports.program import program_summary

    g = attention_graph()
    _, ctx = _lowered(g, attention="auto", budget=parse_budget("1cores"))
    p = program_summary(ctx.config[SPEC_KEY])
    assert p["attention"]["chosen"] == "process"
    assert set(p["attention"]["costs"]) == {"and", "process"}
    (row,) = p["not_neurocore_native"]
    assert row["kind"] == "product" and "Q·Kᵀ·V" in row["why"] and "custom" in row["why"]
    _, ctx = _lowered(g, attention="and")
    p = program_summary(ctx.config[SPEC_KEY])
    assert p["not_neurocore_native"] == [] and p["attention"]["chosen"] == "and"


def test_spikingformer_and_expansion_on_the_executor(attention_programs) -> None:
    """The small spikingformer of conftest: both programs exact, the AND one two steps deeper
    per block."""
    p, a = attention_programs["process"], attention_programs["and"]
    assert sum(q.size for q in a.spec.populations if q.role == "and") == 4096 + 16384
    for prog in (p, a):
        rates = _check(prog.graph, prog.spec, prog.inputs)
        prog.assert_lively({k: v for k, v in rates.items() if k in prog.reference.values})
    assert a.spec.depth == p.spec.depth + 2


def test_bad_attention_options_are_refused(tmp_path) -> None:
    from snncc.cli import main

    code = main(["compile", "spikingformer-tiny", "--target", "loihi", "--budget", "1GiB",
                 "-o", str(tmp_path / "a"), "--attention", "sometimes"])  # fmt: skip
    assert code == 2 and not (tmp_path / "a").exists()
    from snncc.compiler import compile_model

    with pytest.raises(SnnccError) as err:
        compile_model("spikingformer-tiny", target="spinnaker", budget="1GiB",
                      out_dir=tmp_path / "b", attention="process")  # fmt: skip
    assert err.value.code == "LOW032" and err.value.exit_code == 2
    assert not (tmp_path / "b").exists()


def test_the_no_fit_hint_names_the_attention_option_on_loihi() -> None:
    from snncc.reports.facts import largest_product

    plan = {"layers": [{"name": "lif", "kind": "population", "op": "LIF", "cores": 1},
                       {"name": "qkv", "kind": "and", "op": "MatMul", "neurons": 576,
                        "cores": 2}]}  # fmt: skip
    loihi, spinnaker = largest_product(plan, "loihi"), largest_product(plan, "spinnaker")
    assert "qkv" in loihi and "576 AND neurons on 2 cores" in loihi
    assert "--attention auto or process" in loihi and "--attention" not in spinnaker
