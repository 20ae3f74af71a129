"""The torch kernels one by one: Lava's measured rows, then random differential checks.

The Loihi rows are the measured tables of docs/hardware-semantics.md §2.1–2.2 (lava-nc 0.10.0),
as in tests/reference/test_loihi_kernels.py: expected numbers come from Lava, not from code.
The random checks drive the torch neuron loops and the numpy reference's over wide integer
ranges, so that wrap, saturation, truncation toward zero, ring-buffer saturation and s16.15
rounding are all exercised, and require equality of every state at every step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.types import Kind
from snncc.reference import loihi_kernels as LK
from snncc.reference import run
from snncc.reference import spinnaker_kernels as SK
from snncc.torch_exact import MODES, ExactProgram
from snncc.torch_exact.loihi_ops import expgif_steps, lif_steps
from snncc.torch_exact.spinnaker_ops import lif_steps as sp_lif_steps


def _lif(a: list[list[int]] | np.ndarray, du: int, dv: int, vth: int, bias: int = 0):
    s, u, v = lif_steps(torch.tensor(np.asarray(a), dtype=torch.int64), du, dv, vth,
                        torch.tensor(bias, dtype=torch.int64), states=True)  # fmt: skip
    assert u is not None and v is not None
    return u.numpy(), v.numpy(), s.numpy()


def _pulse(value: int, at: int, steps: int) -> np.ndarray:
    a = np.zeros((steps, 1), np.int64)
    a[at, 0] = value
    return a


# -- Lava's measured rows (§2.1) -------------------------------------------------------------
def test_measured_decay_rows() -> None:
    u, v, s = _lif(_pulse(100, 1, 5), du=0, dv=0, vth=100000)
    assert u[:, 0].tolist() == [0, 6400, 6398, 6396, 6394]
    assert v[:, 0].tolist() == [0, 6400, 12798, 19194, 25588]
    u, v, _ = _lif(_pulse(100, 1, 4), du=-1, dv=0, vth=100000)
    assert u[:, 0].tolist() == [0, 6400, 6400, 6400]
    assert v[:, 0].tolist() == [0, 6400, 12800, 19200]
    u, v, _ = _lif(_pulse(100, 1, 4), du=4095, dv=0, vth=100000)
    assert u[:, 0].tolist() == [0, 6400, 0, 0]
    u, v, _ = _lif(_pulse(100, 0, 4), du=2048, dv=2048, vth=100000)
    assert u[:, 0].tolist() == [6400, 3198, 1598, 798]
    assert v[:, 0].tolist() == [6400, 6398, 4797, 3196]
    u, _, _ = _lif(_pulse(-100, 0, 3), du=0, dv=0, vth=0)  # truncation toward zero
    assert u[:, 0].tolist() == [-6400, -6398, -6396]


def test_measured_strict_threshold_wrap_and_saturation() -> None:
    _, v, s = _lif(np.zeros((300, 1), np.int64), du=4095, dv=0, vth=2, bias=1)
    assert (np.flatnonzero(s[:, 0]) + 1).tolist() == [129, 258]
    assert v[127, 0] == 128
    u, _, _ = _lif([[153_000]], du=4095, dv=0, vth=0)
    assert u[0, 0] == -6_985_216  # 153,000 * 64 - 2^24
    u, _, _ = _lif([[131_072, -131_072]], du=4095, dv=0, vth=0)
    assert u[0].tolist() == [8_388_608, 8_388_608]
    _, v, _ = _lif(_pulse(-100_000, 0, 3), du=-1, dv=0, vth=0)
    assert v[:, 0].tolist() == [-6_400_000, -8_388_607, -8_388_607]


# -- random differential checks against the reference ---------------------------------------
@pytest.mark.parametrize(
    ("seed", "du", "dv"),
    [(0, None, None), (1, None, None), (2, 4095, None), (3, -1, 0), (4, 4095, 0), (5, None, 4095)],
)
def test_loihi_lif_equals_reference_over_wide_ranges(
    seed: int, du: int | None, dv: int | None
) -> None:
    """Random decays, and the special factors 0 and 4096 (the kernel's shortcuts)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-200_000, 200_000, (40, 3, 50)) * (rng.random((40, 3, 50)) < 0.3)
    du = int(rng.integers(-1, 4096)) if du is None else du
    dv = int(rng.integers(0, 4096)) if dv is None else dv
    vth, be = int(rng.integers(0, 2**17)), int(rng.integers(-8, 8))
    bm = rng.integers(-4096, 4096, 50)
    want = LK.lif_trace(a, du, dv, vth, bm, be)
    got = _lif(a, du, dv, vth, LK.effective_bias(bm, be))
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w)
    u, v, s = want
    assert 0 < s.mean() < 1
    assert np.abs(v).max() == 2**23 - 1 or dv == 4095  # v saturates (unless it keeps 1/4096)
    assert np.any(np.abs(np.diff(u, axis=0)) > 2**23)  # u wraps


@pytest.mark.parametrize("seed", range(3))
def test_loihi_expgif_equals_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bits = int(rng.integers(1, 6))
    th = tuple(int(t) for t in rng.integers(1, 2**22, bits))
    a = rng.integers(-(2**22), 2**22, (24, 2, 30))
    bias, phase = rng.integers(-1000, 1000, 30), int(rng.integers(0, bits))
    for start in (None, 5):  # periodic groups, and one group from step 5
        v, y = LK.expgif_trace(a, th, bias, phase, start)
        gv, gy = expgif_steps(torch.from_numpy(a), th, torch.from_numpy(bias), phase, start)
        np.testing.assert_array_equal(gv.numpy(), v)
        np.testing.assert_array_equal(gy.numpy(), y)


@pytest.mark.parametrize(("seed", "refract"), [(0, 0), (1, 0), (2, 2)])
def test_spinnaker_lif_equals_reference(seed: int, refract: int) -> None:
    rng = np.random.default_rng(seed)
    op = O.SpiNNakerLIF(
        v_thresh=int(rng.integers(2**14, 2**20)), v_reset=int(rng.integers(-(2**16), 2**10)),
        v_rest=int(rng.integers(-(2**16), 2**10)), exp_tc=int(rng.integers(0, 2**15 + 1)),
        r=int(rng.integers(2**10, 2**20)), i_offset=rng.integers(-(2**12), 2**12, 20),
        exc_shift=int(rng.integers(0, 6)), inh_shift=int(rng.integers(0, 6)),
    )  # fmt: skip
    exc = rng.integers(0, 90_000, (30, 2, 20))  # above 65535: the ring buffer saturates
    inh = rng.integers(0, 90_000, (30, 2, 20))
    host = rng.integers(-(2**18), 2**18, (30, 2, 20))
    v, s = SK.lif_trace(exc, inh, op, host, refract)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(a))

    gv, gs = sp_lif_steps(t(exc), t(inh), op, t(np.asarray(op.i_offset)), t(host), refract)
    np.testing.assert_array_equal(gv.numpy(), v)
    np.testing.assert_array_equal(gs.numpy(), s.astype(bool))


# -- deployed synaptic ops -------------------------------------------------------------------
def _run_both(g, feeds: dict[str, np.ndarray], mode: str) -> tuple[np.ndarray, np.ndarray]:
    out = g.outputs[0]
    got = ExactProgram(g, mode)({k: torch.from_numpy(v) for k, v in feeds.items()})
    return run(g, feeds, mode).outputs[out], got.outputs[out].numpy()


def test_linear_exponent_floors_the_sum(builder) -> None:
    # §2.2 rows: weights [1, 3, 7, 100, 255] (as 8-bit mantissas: 255 -> two rows below 127)
    # with weight_exp = -1 give [0, 1, 3, 50, 127]; -3 >> 1 = -2 (floor, not truncation).
    w = np.array([[1], [3], [7], [100], [127], [-3]], np.int64)
    b = builder(1)
    b.input("x", (1,), kind=Kind.SPIKE)
    b.node("fc", O.Linear(weight=w), "x", quant={"weight_exp": -1})
    want, got = _run_both(b.done("fc"), {"x": np.ones((1, 1, 1))}, "loihi")
    assert got[0, 0].tolist() == [0, 1, 3, 50, 63, -2]
    np.testing.assert_array_equal(got, want)


def test_conv_folds_exponent_and_refuses_a_negative_one(builder, rng) -> None:
    def graph(e: int):
        b = builder(3)
        b.input("x", (2, 5, 5), kind=Kind.SPIKE)
        w = rng.integers(-128, 128, (3, 2, 3, 3))
        b.node("c", O.Conv2d(weight=w, padding=(1, 1)), "x",
               quant={"weight_exp": e, "exp_folded_into_weights": True})  # fmt: skip
        return b.done("c")

    x = (rng.random((3, 2, 2, 5, 5)) < 0.5).astype(np.float64)
    want, got = _run_both(graph(3), {"x": x}, "loihi")
    np.testing.assert_array_equal(got, want)
    with pytest.raises(SnnccError, match="weight_exp -1 < 0 on a conv") as e:
        ExactProgram(graph(-1), "loihi")
    assert e.value.code == "TEX003"


def test_spinnaker_synapse_splits_receptors(builder, rng) -> None:
    b = builder(2)
    b.input("x", (6,), kind=Kind.SPIKE)
    b.node("fc", O.Linear(weight=rng.integers(-65535, 65536, (4, 6))), "x",
           quant={"receptor": "split"})  # fmt: skip
    x = (rng.random((2, 3, 6)) < 0.5).astype(np.float64)
    want, got = _run_both(b.done("fc"), {"x": x}, "spinnaker")
    assert np.iscomplexobj(got) and np.array_equal(got, want)


def test_sums_beyond_2_to_53_are_refused(builder) -> None:
    b = builder(1)
    b.input("x", (2,), kind=Kind.SPIKE)
    b.node("fc", O.Linear(weight=np.array([[127, 127]], np.int64)), "x", quant={"weight_exp": 0})
    prog = ExactProgram(b.done("fc"), "loihi")
    with pytest.raises(SnnccError, match="2\\^53"):
        prog({"x": torch.full((1, 1, 2), 2.0**46, dtype=torch.float64)})


def test_the_tables_mirror_the_reference() -> None:
    """Same modes, and in each the same op types as the reference's kernel table."""
    from snncc.reference.interpreter import MODES as REFERENCE

    assert set(MODES) == set(REFERENCE)
    for mode, table in MODES.items():
        assert set(table) == set(REFERENCE[mode]), mode
    assert set(O.OPS.values()) <= set(MODES["float"])
