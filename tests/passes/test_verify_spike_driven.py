"""Spike-driven verification: rule table on hand-built graphs, the seed zoo, and the CLI."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
import torch

import snncc
import snncc.models as M
from snncc.cli import analysis_cmds as cli_cmds
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.passes.infer_types import infer_types
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.verify_spike_driven import (
    SEW_FIX,
    check_spike_driven,
    spike_status,
    verify_spike_driven,
)

SCHEMA = {"spike_driven", "violations", "encoding", "readout", "dynamic_ops"}
VIOLATION_KEYS = {"node", "op", "input_kind", "max_count", "source", "reason", "fix"}


# -- hand-built graphs ---------------------------------------------------------------------------
class _G:
    """Tiny builder: per-sample shapes, every node connected to the previous by default."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.g = Graph("t")
        self.g.add("x", O.Input(shape=shape))
        self.g.inputs.append("x")
        self.g.meta["timesteps"] = 2

    def add(self, name: str, op: O.Op, *srcs: str) -> str:
        self.g.add(name, op, loc=f"model.py:{len(self.g) + 1}")
        ports = op.in_ports
        for port, src in zip(ports, srcs, strict=True):
            self.g.connect(src, name, port)
        return name

    def typed(self, *outputs: str) -> Graph:
        self.g.outputs.extend(outputs)
        g, _ = run_pipeline(self.g, [infer_types], lint=False)
        return g


def _lin(n_in: int, n_out: int) -> O.Linear:
    return O.Linear(weight=np.ones((n_out, n_in)))


def test_sew_residual_count_is_a_violation_with_the_membrane_shortcut_fix() -> None:
    b = _G((4,))
    b.add("enc", _lin(4, 4), "x")
    b.add("a", O.LIF(), "enc")
    b.add("fc", _lin(4, 4), "a")
    b.add("b", O.LIF(), "fc")
    b.add("res", O.Add(n=2), "a", "b")  # SEW: spike + spike = count<=2
    b.add("fc2", _lin(4, 4), "res")
    b.add("out", O.LIF(), "fc2")
    r = check_spike_driven(b.typed("out"))
    assert not r.spike_driven
    assert r.encoding == ["enc"]
    (v,) = r.violations
    assert (v.node, v.op, v.input_kind, v.max_count) == ("fc2", "Linear", "count<=2", 2)
    assert v.reason.startswith("integer × float weight multiplications (MAC)")
    assert "sum of up to 2 spikes" in v.reason and v.fix == SEW_FIX
    assert v.source == "model.py:7"
    assert set(r.to_json()) == SCHEMA and set(r.to_json()["violations"][0]) == VIOLATION_KEYS


def test_current_mid_network_is_float_times_float_and_readout_is_exempt() -> None:
    b = _G((3, 4))
    b.add("enc", _lin(4, 4), "x")
    b.add("s", O.LIF(), "enc")
    b.add("fc", _lin(4, 4), "s")  # spike input: fine
    b.add("fc2", _lin(4, 4), "fc")  # reads the current fc produces: float × float
    b.add("s2", O.LIF(), "fc2")
    b.add("tok", O.Mean(axes=(0,)), "s2")
    b.add("t", O.TimeMean(), "tok")
    b.add("head", _lin(4, 2), "t")
    g = b.typed("head")
    r = check_spike_driven(g)
    assert [v.node for v in r.violations] == ["fc2"]
    assert r.violations[0].reason.startswith("float × float") and r.violations[0].max_count is None
    assert r.readout == ["head"] and r.encoding == ["enc"]
    status = spike_status(g)
    assert status["fc"] == "spike-driven" and status["fc2"] == "MAC (current)"
    assert status["head"] == "readout" and "s" not in status


def test_mean_feeding_a_neuron_is_not_a_readout() -> None:
    b = _G((3, 4))
    b.add("s", O.LIF(), "x")
    b.add("tok", O.Mean(axes=(0,)), "s")
    b.add("fc", _lin(4, 4), "tok")  # a gate in mid-network: its output drives a neuron
    b.add("s2", O.LIF(), "fc")
    r = check_spike_driven(b.typed("s2"))
    assert [v.node for v in r.violations] == ["fc"] and r.readout == []


def test_dynamic_products_spikes_pass_and_real_operands_fail() -> None:
    b = _G((4, 8))
    b.add("q", O.LIF(), "x")
    b.add("k", O.LIF(), "x")
    b.add("kt", O.Permute(dims=(1, 0)), "k")
    b.add("qk", O.MatMul(), "q", "kt")  # spike × spike: AND + accumulate
    b.add("sc", O.Scale(factor=0.125), "qk")  # a constant scale is looked through
    b.add("v", O.LIF(), "x")
    b.add("qkv", O.MatMul(), "sc", "v")
    b.add("real", O.Scale(factor=2.0), "x")  # a real operand: x is pixels
    b.add("bad", O.Mul(), "q", "real")
    r = check_spike_driven(b.typed("qkv", "bad"))
    assert r.dynamic_ops == ["qk", "qkv"]
    (v,) = r.violations
    assert v.node == "bad" and v.input_kind == "spike × current ×2"


def test_pass_records_warnings_and_strict_raises_exit_1() -> None:
    b = _G((4,))
    b.add("a", O.LIF(), "x")
    b.add("c", O.LIF(), "x")
    b.add("res", O.Add(n=2), "a", "c")
    b.add("fc", _lin(4, 4), "res")
    g = b.typed("fc")
    g2, ctx = run_pipeline(g, [verify_spike_driven])
    assert g2 == g
    assert [d.code for d in ctx.diagnostics] == ["SD001"]
    assert ctx.records[0].stats["max_count"] == 2 and not ctx.records[0].stats["spike_driven"]
    with pytest.raises(SnnccError) as e:
        run_pipeline(g, [verify_spike_driven], PassContext(config={"strict": True}))
    assert e.value.exit_code == 1 and e.value.diagnostics[0].node == "fc"


# -- the seed zoo --------------------------------------------------------------------------------
@cache
def _zoo(name: str) -> Graph:
    s = M.spec(name)
    torch.manual_seed(0)
    m = M.create(name).eval()
    g = snncc.trace(m, torch.zeros(1, *s.input_shape), timesteps=s.timesteps, time_axis=s.time_axis)
    out, _ = run_pipeline(g, FRONT_PIPELINE)
    return out


def _sew_bounds(depths: int, attn: tuple[str, ...], mlp: str) -> dict[str, int]:
    """Spikformer's rule: the tokenizer's RPE add gives 2; each block adds 1 before the MLP and 1
    after it, so block i's Q/K/V read 2 + 2i and its MLP 3 + 2i (last MLP: 2·L + 1)."""
    want = {}
    for i in range(depths):
        for p in attn:
            want[f"block.{i}.attn.{p}"] = 2 + 2 * i
        want[f"block.{i}.mlp.{mlp}"] = 3 + 2 * i
    return want


def test_spikformer_8_512_flags_residual_fed_convs_up_to_count_17() -> None:
    r = check_spike_driven(_zoo("spikformer-8-512"))
    got = {v.node: v.max_count for v in r.violations}
    assert got == _sew_bounds(8, ("q_conv", "k_conv", "v_conv"), "fc1_conv")
    assert r.max_count == 17 == 2 * 8 + 1
    assert got["block.7.mlp.fc1_conv"] == 17
    assert all(v.fix == SEW_FIX for v in r.violations)
    assert all(v.source.rsplit(":", 1)[0].endswith("spikformer.py") for v in r.violations)
    assert r.encoding == ["patch_embed.proj_conv"] and r.readout == ["head"]
    assert len(r.dynamic_ops) == 16  # Kᵀ·V and Q·(KᵀV) in 8 blocks


def test_spikformer_tiny_obeys_the_2l_plus_1_rule() -> None:
    r = check_spike_driven(_zoo("spikformer-tiny"))
    got = {v.node: v.max_count for v in r.violations}
    assert got == _sew_bounds(2, ("q_linear", "k_linear", "v_linear"), "fc1_linear")
    assert r.max_count == 5


@pytest.mark.parametrize("name", ["spikingformer-tiny", "sdt-tiny"])
def test_membrane_shortcut_models_are_spike_driven(name: str) -> None:
    r = check_spike_driven(_zoo(name))
    assert r.spike_driven and r.violations == []
    assert len(r.encoding) == 1 and r.dynamic_ops


def _smallest(prefix: str) -> str:
    names = [n for n in M.names() if n.startswith(prefix)]
    assert names, f"no {prefix}* model registered"
    tiny = [n for n in names if "tiny" in n]
    return (tiny or names)[0]


def test_elastic_spikingformer_is_spike_driven() -> None:
    assert check_spike_driven(_zoo(_smallest("elastic-spikingformer-"))).spike_driven


def test_elastic_spikformer_has_sew_violations() -> None:
    """XiSpikformer keeps Spikformer's SEW residual, so its Q/K/V and fc1 convs read spike
    counts that follow the 2·L + 1 rule exactly as spikformer-tiny's do.

    It also has a second, independent kind of violation, faithful to the authors' code: every
    ``XiConv``/``XiConvMultiGran`` with compression ``gamma = 2`` (the XiSPSv2 stages and the
    RPE conv) is a 1x1 ``compression_conv`` feeding the 3x3 ``main_conv`` with no neuron in
    between, so ``main_conv`` multiplies real values (``max_count`` is None: not a count). The
    test pins both sets exactly rather than asserting that every violation is a count.
    """
    r = check_spike_driven(_zoo(_smallest("elastic-spikformer-")))
    counts = {v.node: v.max_count for v in r.violations if v.input_kind.startswith("count")}
    assert counts == _sew_bounds(2, ("q_conv", "k_conv", "v_conv"), "fc1_conv")
    assert all(v.fix == SEW_FIX for v in r.violations if v.node in counts)
    real = {v.node for v in r.violations if v.node not in counts}
    stages = ("proj_conv", "proj_conv1", "proj_conv2", "proj_conv3", "rpe_conv")
    assert real == {f"patch_embed.{s}.main_conv" for s in stages}
    assert all(v.input_kind == "current" and v.max_count is None
               for v in r.violations if v.node in real)  # fmt: skip
    assert r.encoding == ["patch_embed.proj_conv.compression_conv"] and not r.spike_driven


# -- CLI -----------------------------------------------------------------------------------------
def _run(argv: list[str]) -> int:
    """The real CLI (it prints errors and maps them to exit codes)."""
    from snncc.cli import main

    return main(argv)


def test_cli_verify_exit_codes_and_json(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_cmds, "load_graph", lambda ref, **kw: _zoo(ref))
    assert _run(["verify", "spikformer-tiny", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == SCHEMA and not out["spike_driven"] and len(out["violations"]) == 8
    assert _run(["verify", "spikformer-tiny", "--strict"]) == 1
    text = capsys.readouterr()
    assert "8 synaptic op(s) are not spike-driven" in text.out
    assert "SD001 warning: block.1.mlp.fc1_linear" in text.err
    assert _run(["verify", "spikingformer-tiny", "--strict"]) == 0
    assert "spike-driven" in capsys.readouterr().out


def test_cli_bad_model_is_exit_2(capsys) -> None:
    assert _run(["verify", "no-such-model"]) == 2
    assert _run(["energy", "no-such-model", "--random"]) == 2
    assert "no-such-model" in capsys.readouterr().err
