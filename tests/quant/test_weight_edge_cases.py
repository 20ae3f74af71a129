"""Quantizer robustness (issue 9, deliverable 3): odd weights compile, or are refused with a
reason about the model; never exit 70 ("a bug in snncc") and never a Python exception.

Each case edits one layer of the seed zoo's ``spikingformer-tiny`` (seeded random weights),
saves it as a real checkpoint and compiles it with :func:`snncc.compiler.compile_model` for both
targets:

* all-zero layers (weights, BN gamma, the whole network) compile, and the compiled program runs
  in the target's integer reference mode with finite outputs (before: an all-zero stream has an
  infinite input limit, and ``floor(log2(inf))`` crashed Loihi's scale choice, exit 70);
* weights, BN biases or BN statistics far outside any power-of-two scale are refused with exit 2,
  a ``QNT`` code, the node, the value and a fix (before: exit 70 ``QNT004`` on Loihi, an
  ``IR001`` ring-buffer shift out of range on SpiNNaker, an int64 overflow in the bias);
* integer-dtype weights compile to exactly the program of the same values in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import snncc
from snncc import models
from snncc.compiler import compile_model
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import TensorType
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.quantize import quantize
from snncc.reference import run

MODEL = "spikingformer-tiny"
TARGETS = ("loihi", "spinnaker")
BUDGET = {"loihi": "64MiB", "spinnaker": "1GiB"}

Edit = Callable[[nn.Module], None]


def _module(m: nn.Module, name: str) -> nn.Module:
    return dict(m.named_modules())[name]


def _checkpoint(tmp_path: Path, edit: Edit, tag: str) -> Path:
    spec = models.spec(MODEL)
    torch.manual_seed(0)
    m = models.create(MODEL).eval()
    with torch.no_grad():
        edit(m)
    path = tmp_path / f"{tag}.pt"
    snncc.save_checkpoint(path, m, MODEL, spec.config, spec.input_shape, spec.timesteps)
    return path


def _compile(path: Path, target: str, out: Path) -> snncc.compiler.CompileResult:
    return compile_model(str(path), target=target, budget=BUDGET[target], out_dir=out)


def _run_finite(g: Graph, target: str) -> dict[str, np.ndarray]:
    x = np.random.default_rng(4).random((3, *models.spec(MODEL).input_shape))
    res = run(g, {g.inputs[0]: x}, target, record="all")
    for name, v in res.outputs.items():
        assert np.all(np.isfinite(v)), name
    return res.spikes


# -- all-zero layers -----------------------------------------------------------------------------
def _zero_k_conv(m: nn.Module) -> None:
    """Q/K/V's K projection without weights or bias: its stream has no input at all."""
    conv = _module(m, "block.0.attn.k_conv")
    conv.weight.zero_()
    if conv.bias is not None:
        conv.bias.zero_()


def _zero_gamma(m: nn.Module) -> None:
    """BN gamma 0 after a tokenizer conv: the folded weights are all zero, the bias is beta."""
    _module(m, "patch_embed.block2_bn").weight.zero_()


def _zero_everything(m: nn.Module) -> None:
    for mod in m.modules():
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            mod.weight.zero_()
            if mod.bias is not None:
                mod.bias.zero_()


ZERO = {"k_conv": _zero_k_conv, "bn_gamma": _zero_gamma, "everything": _zero_everything}
ZEROED_NODE = {"k_conv": "block.0.attn.k_conv", "bn_gamma": "patch_embed.block2_conv"}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", sorted(ZERO))
def test_zero_layers_compile_and_run_finite(case: str, target: str, tmp_path: Path) -> None:
    path = _checkpoint(tmp_path, ZERO[case], case)
    res = _compile(path, target, tmp_path / "out")
    assert res.report["fits"]
    g = res.graph
    if case in ZEROED_NODE:
        w = np.asarray(g.op(ZEROED_NODE[case]).weight)
        assert np.issubdtype(w.dtype, np.integer) and not w.any()
    _run_finite(g, target)


# -- values no scale can hold --------------------------------------------------------------------
def _huge_weights(m: nn.Module) -> None:
    _module(m, "block.0.mlp.mlp1_conv").weight.mul_(1e30)


def _huge_bn_bias(m: nn.Module) -> None:
    _module(m, "patch_embed.block2_bn").bias.fill_(1e30)


def _negative_var(m: nn.Module) -> None:
    _module(m, "patch_embed.block2_bn").running_var.fill_(-1.0)


# case -> (edit, code, node named first in the message, text in the message)
REFUSED = {
    "huge_weights": (_huge_weights, "QNT004", "block.0.mlp.mlp1_conv", "weights up to"),
    "huge_bn_bias": (_huge_bn_bias, "QNT007", "patch_embed.block3_lif", "constant input"),
    "negative_running_var": (  # refused when the checkpoint is read, before any NaN exists
        _negative_var,
        "E032",
        "patch_embed.block2_bn.running_var",
        "negative variance",
    ),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_values_out_of_range_are_refused_with_the_reason(
    case: str, target: str, tmp_path: Path
) -> None:
    edit, code, node, text = REFUSED[case]
    path = _checkpoint(tmp_path, edit, case)
    out = tmp_path / "out"
    with pytest.raises(SnnccError) as e:
        _compile(path, target, out)
    err = e.value
    assert (err.code, err.exit_code) == (code, 2), err
    assert f"{node}: " in err.message and text in err.message, err.message
    assert err.hint and any(w in err.hint for w in ("checkpoint", "BatchNorm", "batch norm"))
    assert not out.exists()


# -- integer dtypes ------------------------------------------------------------------------------
def _as_dtype(name: str, dtype: torch.dtype) -> Edit:
    def edit(m: nn.Module) -> None:
        mod = _module(m, name)
        mod.weight = nn.Parameter(torch.round(mod.weight * 20).to(dtype), requires_grad=False)

    return edit


def _as_float(name: str) -> Edit:
    def edit(m: nn.Module) -> None:
        mod = _module(m, name)
        mod.weight.copy_(torch.round(mod.weight * 20))

    return edit


INTEGER = {
    "int32_conv2d": ("patch_embed.block2_conv", torch.int32),
    "int64_conv1d": ("block.0.attn.k_conv", torch.int64),
    "int8_conv1d": ("block.0.mlp.mlp2_conv", torch.int8),
}


def _program(g: Graph) -> dict[str, str]:
    out = {}
    for n in g.topo_order():
        op = g.op(n)
        fields = {}
        for f in getattr(op, "__dataclass_fields__", {}):
            v = getattr(op, f)
            # + 0 turns -0.0 (round(-0.01) in float32) into 0.0, as an integer weight has it
            fields[f] = repr((np.asarray(v) + 0).tolist()) if isinstance(v, np.ndarray) else repr(v)
        out[n] = repr((op.kind, fields, g.node_meta(n).get("quant")))
    return out


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", sorted(INTEGER))
def test_integer_weights_compile_like_the_same_float_values(
    case: str, target: str, tmp_path: Path
) -> None:
    name, dtype = INTEGER[case]
    ints = _compile(_checkpoint(tmp_path, _as_dtype(name, dtype), "int"), target, tmp_path / "i")
    floats = _compile(_checkpoint(tmp_path, _as_float(name), "float"), target, tmp_path / "f")
    assert _program(ints.graph) == _program(floats.graph)
    _run_finite(ints.graph, target)


# -- neurons no integer neuron reproduces ----------------------------------------------------------
def _neuron_net(neuron: O.Op) -> Graph:
    from snncc.ir.shapes import output_shape
    from snncc.ir.types import Kind
    from snncc.passes.pipeline import FRONT_PIPELINE

    g = Graph("n")
    g.meta["timesteps"] = 2
    g.add("x", O.Input(shape=(2,)), TensorType((2,)))
    g.inputs.append("x")
    for name, op, src in (
        ("enc", O.Linear(weight=np.eye(2)), "x"),
        ("lif0", O.LIF(tau=2.0), "enc"),
        ("fc", O.Linear(weight=np.full((2, 2), 0.5)), "lif0"),
        ("n1", neuron, "fc"),
        ("rate", O.TimeMean(), "n1"),
    ):
        shape = output_shape(op, [g.type(src).shape])
        g.add(name, op, TensorType(shape, Kind.CURRENT, None, not isinstance(op, O.TimeMean)))
        g.connect(src, name, op.in_ports[0])
    g.outputs.append("rate")
    front, _ = run_pipeline(g, FRONT_PIPELINE)
    return front


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    ("neuron", "text"),
    [
        (O.LIF(tau=float("inf")), "tau = inf"),
        (O.LIF(v_threshold=float("inf")), "v_threshold = inf"),
        (O.IF(v_threshold=float("inf")), "v_threshold = inf"),
    ],
)
def test_infinite_neuron_parameters_are_refused(neuron: O.Op, text: str, target: str) -> None:
    g = _neuron_net(neuron)
    with pytest.raises(SnnccError) as e:
        run_pipeline(g, [quantize], PassContext(config={"target": target}))
    err = e.value
    assert (err.code, err.exit_code) == ("QNT003", 2) and f"n1: {text}" in err.message
