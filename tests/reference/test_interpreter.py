"""The interpreter around the kernels: coverage, input validation, layouts, modes, recording."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.types import Kind
from snncc.nn import neurons as N
from snncc.reference import RunResult, run
from snncc.reference.float_kernels import KERNELS

T, B = 4, 3


def test_every_ir_op_has_a_float_kernel() -> None:
    missing = [name for name, cls in O.OPS.items() if cls not in KERNELS]
    assert missing == [], f"ops without a float kernel: {missing}"
    assert all(callable(k) for k in KERNELS.values())


# -- input validation ---------------------------------------------------------------------------
def _two_input_graph(builder):
    b = builder(T)
    b.input("x", (2, 5))
    b.input("img", (1, 4, 5), temporal=False)
    b.node("s", O.Sum(axes=(0,)), "x")
    b.node("m", O.Mean(axes=(0, 1)), "img")
    b.node("y", O.Add(n=2), "s", "m")
    return b.done("y")


def _feeds(rng, batch=B):
    return {"x": rng.standard_normal((T, batch, 2, 5)), "img": rng.random((batch, 1, 4, 5))}


def _raises(graph, feeds) -> SnnccError:
    with pytest.raises(SnnccError) as info:
        run(graph, feeds)
    assert info.value.code == "REF001"
    assert info.value.exit_code == 2
    return info.value


def test_valid_feeds_run(builder, rng) -> None:
    feeds = _feeds(rng)
    y = run(_two_input_graph(builder), feeds).outputs["y"]
    want = feeds["x"].sum(axis=2) + feeds["img"].mean(axis=(1, 2))[None]
    assert y.shape == (T, B, 5)
    assert np.max(np.abs(y - want)) < 1e-12


def test_missing_input_is_named(builder, rng) -> None:
    feeds = _feeds(rng)
    del feeds["img"]
    err = _raises(_two_input_graph(builder), feeds)
    assert "img" in err.message and "missing" in err.message


def test_extra_input_is_named(builder, rng) -> None:
    feeds = {**_feeds(rng), "bogus": np.zeros(3)}
    err = _raises(_two_input_graph(builder), feeds)
    assert "bogus" in err.message


@pytest.mark.parametrize(
    "name,shape,expected",
    [
        ("x", (T, B, 5, 2), "[T=4, B, 2, 5]"),  # transposed sample
        ("x", (T + 1, B, 2, 5), "[T=4, B, 2, 5]"),  # wrong number of steps
        ("x", (B, 2, 5), "[T=4, B, 2, 5]"),  # per-step input fed without T
        ("img", (T, B, 1, 4, 5), "[B, 1, 4, 5]"),  # static input fed per step
    ],
)
def test_wrong_shape_names_input_expected_and_got(builder, rng, name, shape, expected) -> None:
    feeds = {**_feeds(rng), name: np.zeros(shape)}
    err = _raises(_two_input_graph(builder), feeds)
    assert repr(name) in err.message
    assert expected in err.message
    assert str(list(shape)) in err.message


def test_batch_sizes_must_agree(builder, rng) -> None:
    feeds = {**_feeds(rng), "img": rng.random((B + 1, 1, 4, 5))}
    err = _raises(_two_input_graph(builder), feeds)
    assert "'img'" in err.message and f"B={B}" in err.message


def test_non_numeric_input(builder, rng) -> None:
    feeds = {**_feeds(rng), "x": "not an array"}
    err = _raises(_two_input_graph(builder), feeds)
    assert "'x'" in err.message


def test_timesteps_from_meta_or_per_step_input(builder, rng) -> None:
    b = builder(T)
    b.input("x", (3,))
    b.node("y", O.Scale(factor=2.0), "x")
    g = b.done("y")
    del g.meta["timesteps"]
    x = rng.standard_normal((5, 2, 3))
    assert run(g, {"x": x}).timesteps == 5
    b2 = builder(T)
    b2.input("img", (3,), temporal=False)
    b2.node("y", O.Scale(factor=2.0), "img")
    g2 = b2.done("y")
    del g2.meta["timesteps"]
    _raises(g2, {"img": x[0]})


# -- layouts: static inputs, static values, delays ------------------------------------------------
def test_static_input_is_presented_at_every_step(builder, rng) -> None:
    w = rng.standard_normal((3, 2, 3, 3))
    conv = O.Conv2d(weight=w, padding=(1, 1))
    lif = O.LIF(tau=1.5)
    b = builder(T)
    b.input("img", (2, 6, 6), temporal=False)
    b.node("conv", conv, "img")
    b.node("lif", lif, "conv")
    img = rng.random((B, 2, 6, 6))
    res = run(b.done("conv", "lif"), {"img": img})
    current = F.conv2d(torch.tensor(img), torch.tensor(w), padding=1)
    assert res.outputs["conv"].shape == (T, B, 3, 6, 6)
    assert np.max(np.abs(res.outputs["conv"] - current.numpy()[None])) < 1e-12
    want = N.LIF(tau=1.5)(current.unsqueeze(0).repeat(T, 1, 1, 1, 1)).numpy()
    assert 0.05 <= want.mean() <= 0.5
    assert np.array_equal(res.spikes["lif"], want.astype(np.uint8))
    # Same as feeding the image repeated over time to a per-step input.
    b2 = builder(T)
    b2.input("img", (2, 6, 6))
    b2.node("conv", conv, "img")
    b2.node("lif", lif, "conv")
    res2 = run(b2.done("lif"), {"img": np.repeat(img[None], T, axis=0)})
    assert np.array_equal(res2.spikes["lif"], res.spikes["lif"])


def test_time_mean_makes_static_values_and_static_ops_work(builder, rng) -> None:
    bn = O.BatchNorm(
        weight=rng.standard_normal(6),
        bias=rng.standard_normal(6),
        running_mean=rng.random(6) * 0.3,
        running_var=rng.uniform(0.5, 2.0, 6),
        axis=-1,
    )
    w = rng.standard_normal((3, 6))
    b = builder(T)
    b.input("x", (4, 6))
    b.node("lif", O.LIF(), "x")
    b.node("tm", O.TimeMean(), "lif")
    b.node("bn", bn, "tm")
    b.node("pool", O.Mean(axes=(0,)), "bn")
    b.node("head", O.Linear(weight=w), "pool")
    g = b.done("head")
    assert not g.type("head").temporal
    x = 2.0 * rng.normal(0.5, 0.8, (T, B, 4, 6))
    got = run(g, {"x": x}).outputs["head"]
    s = N.LIF()(torch.tensor(x)).mean(0)  # [B, 4, 6]
    p = {k: torch.tensor(v) for k, v in bn.arrays().items()}
    s = F.batch_norm(
        s.transpose(1, 2), p["running_mean"], p["running_var"], p["weight"], p["bias"]
    ).transpose(1, 2)
    want = F.linear(s.mean(1), torch.tensor(w)).numpy()
    assert got.shape == (B, 3)
    assert np.max(np.abs(got - want)) < 1e-12


@pytest.mark.parametrize("steps", [0, 1, 2, T, T + 3])
def test_delay_shifts_along_time(builder, rng, steps) -> None:
    b = builder(T)
    b.input("x", (2, 3))
    b.node("d", O.Delay(steps=steps), "x")
    x = rng.standard_normal((T, B, 2, 3))
    got = run(b.done("d"), {"x": x}).outputs["d"]
    k = min(steps, T)
    want = np.concatenate([np.zeros((k, B, 2, 3)), x[: T - k]])
    assert np.array_equal(got, want)


def test_stateful_op_on_static_value_is_rejected(builder, rng) -> None:
    b = builder(T)
    b.input("x", (3,))
    b.node("tm", O.TimeMean(), "x")
    b.node("lif", O.LIF(), "tm")
    with pytest.raises(SnnccError) as info:
        run(b.done("lif"), {"x": rng.standard_normal((T, B, 3))})
    assert info.value.code == "REF003" and "lif" in info.value.message


# -- modes and recording --------------------------------------------------------------------------
def _chain(builder, rng):
    """Input -> Linear -> LIF -> Linear -> LIF -> TimeMean, and the equivalent torch layers."""
    w1, w2 = rng.standard_normal((8, 5)), rng.standard_normal((6, 8))
    b1 = rng.standard_normal(8)
    b = builder(T)
    b.input("x", (4, 5))
    b.node("fc1", O.Linear(weight=w1, bias=b1), "x")
    b.node("lif1", O.LIF(tau=1.5), "fc1")
    b.node("fc2", O.Linear(weight=w2), "lif1")
    b.node("lif2", O.IF(v_reset=None), "fc2")
    b.node("rate", O.TimeMean(), "lif2")

    def torch_model(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        s1 = N.LIF(tau=1.5)(F.linear(torch.tensor(x), torch.tensor(w1), torch.tensor(b1)))
        s2 = N.IF(v_reset=None)(F.linear(s1, torch.tensor(w2)))
        return s1, s2

    return b.done("rate"), torch_model


def test_layer_chain_matches_torch(builder, rng) -> None:
    g, torch_model = _chain(builder, rng)
    x = rng.normal(0.3, 1.0, (T, B, 4, 5))
    res = run(g, {"x": x})
    s1, s2 = torch_model(x)
    for name, want in (("lif1", s1), ("lif2", s2)):
        assert 0.05 <= float(want.mean()) <= 0.5, name
        assert np.array_equal(res.spikes[name], want.numpy().astype(np.uint8)), name
    assert np.max(np.abs(res.outputs["rate"] - s2.mean(0).numpy())) < 1e-12
    assert isinstance(res, RunResult) and res.timesteps == T and res.batch == B


def test_record_modes(builder, rng) -> None:
    g, _ = _chain(builder, rng)
    x = rng.normal(0.3, 1.0, (T, B, 4, 5))
    default = run(g, {"x": x})
    assert set(default.values) == {"rate", "lif1", "lif2"}
    assert set(default.spikes) == {"lif1", "lif2"}
    everything = run(g, {"x": x}, record="all")
    assert set(everything.values) == set(g.nodes())
    assert everything.values["fc2"].shape == (T, B, 4, 6)
    assert everything.values["rate"].shape == (B, 4, 6)
    assert np.array_equal(everything.values["x"], x)
    with pytest.raises(SnnccError) as info:
        run(g, {"x": x}, record="some")
    assert info.value.code == "REF004"


@pytest.mark.parametrize("mode", ["loihi", "spinnaker"])
def test_integer_modes_refuse_float_neurons(builder, rng, mode) -> None:
    # The integer modes run quantized graphs only: a float LIF names itself and the fix.
    g, _ = _chain(builder, rng)
    with pytest.raises(SnnccError) as info:
        run(g, {"x": np.zeros((T, B, 4, 5))}, mode)
    assert info.value.code == "REF003"
    assert "'lif1'" in info.value.message and "quantize" in info.value.message


def _spike_steps(x: list[list[int]]) -> np.ndarray:
    return np.array(x, np.float64)[:, None, :]  # [T, B=1, n]


@pytest.mark.parametrize(("weight_exp", "want"), [(0, [1, 0, 0, 0]), (1, [1, 0, 1, 0])])
def test_loihi_mode_runs_a_quantized_graph(builder, weight_exp, want) -> None:
    # a = (W x) << e with W = [2, -1, 0]: x -> W x = 2, 0, 1, 0. du = 4095, dv = 0: v += 64·a;
    # spike when v > vth << 6 = 64. e = 0: 128 fires; 64 at step 3 does not (strict).
    # e = 1: 256 fires, 128 fires.
    b = builder(4)
    b.input("x", (3,), kind=Kind.SPIKE)
    b.node("fc", O.Linear(weight=np.array([[2, -1, 0]], np.int64)), "x")
    b.g.node_meta("fc")["quant"] = {"weight_exp": weight_exp}
    b.node("lif", O.LoihiLIF(du=4095, dv=0, vth=1, bias_mant=np.zeros(1, np.int64)), "fc")
    x = _spike_steps([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 1]])
    res = run(b.done("lif"), {"x": x}, "loihi")
    assert res.mode == "loihi"
    assert res.spikes["lif"][:, 0, 0].tolist() == want


def test_spinnaker_mode_runs_a_quantized_graph(builder) -> None:
    # Stored weights [3, -2]: exc = 3, 3, 0 and inh = 0, 2, 2 -> I = 3, 1, -2 raw; exp_tc = 0
    # so V = I; V >= 3 fires only at step 1 (non-strict: V equals the threshold).
    b = builder(3)
    b.input("x", (2,), kind=Kind.SPIKE)
    b.node("fc", O.Linear(weight=np.array([[3, -2]], np.int64)), "x")
    b.g.node_meta("fc")["quant"] = {"receptor": "split"}
    b.node("lif", O.SpiNNakerLIF(v_thresh=3, exp_tc=0, r=2**15), "fc")
    res = run(b.done("lif"), {"x": _spike_steps([[1, 0], [1, 1], [0, 1]])}, "spinnaker")
    assert res.spikes["lif"][:, 0, 0].tolist() == [1, 0, 0]


def test_unknown_mode(builder, rng) -> None:
    g, _ = _chain(builder, rng)
    with pytest.raises(SnnccError) as info:
        run(g, {"x": np.zeros((T, B, 4, 5))}, "fixed")
    assert info.value.code == "REF002" and "fixed" in info.value.message


def test_kernel_with_wrong_shape_is_an_internal_error(builder, rng, monkeypatch) -> None:
    monkeypatch.setitem(KERNELS, O.Scale, lambda op, xs, ctx: xs[0][..., :1])
    b = builder(T)
    b.input("x", (3,))
    b.node("y", O.Scale(factor=2.0), "x")
    with pytest.raises(SnnccError) as info:
        run(b.done("y"), {"x": np.zeros((T, B, 3))})
    assert info.value.code == "REF900" and info.value.exit_code == 70
