"""Every discrete choice the compiler takes from a float is taken on exact values (issue 9,
"same model on every CPU").

A power-of-two scale, a weight exponent, a ring-buffer shift, a threshold, a decay or a core
count is a step function of a real number. Taken on a rounded float, the step moves whenever
the rounding lands on its edge: ``math.log2`` returns exactly ``k`` one ulp below ``2^k``,
numpy's SIMD ``log2`` / ``logspace`` differ in the last bit between AVX2 and AVX-512 CPUs, and a
BLAS sum's last bit depends on its summation order. Each test below puts values *on* and one
ulp either side of the edges (exact powers of two, half-integers, integers) and checks the
decision against an integer or :class:`~fractions.Fraction` statement of the rule; the
``*_ignores_the_last_bit_of_log2`` tests also force ``np.log2`` / ``math.log2`` one ulp off and
require the same answers, so they fail on any CPU if the code goes back to a float logarithm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from snncc.diagnostics import SnnccError
from snncc.exact import ceil_div, floor_log2
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.shapes import output_shape
from snncc.ir.types import Kind, TensorType
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.quant import loihi as QL
from snncc.quant import spinnaker as QS
from snncc.quant.common import exact_ratio, largest_pow2
from snncc.quant.streams import grid_up
from snncc.reference import run
from snncc.reference.spinnaker_kernels import ring_buffer_shift, to_accum
from snncc.resources.memory import _ratio


def _around(x: float) -> list[float]:
    """``x`` and its two float neighbours."""
    return [math.nextafter(x, 0.0), x, math.nextafter(x, math.inf)]


def _pow2_edges(lo: int = -40, hi: int = 60) -> list[float]:
    return [v for k in range(lo, hi) for v in _around(2.0**k)]


def _floor_log2_by_integers(x: float | Fraction) -> int:
    """The definition: the ``k`` with ``2^k <= x < 2^(k+1)``, searched with exact rationals."""
    f = Fraction(x)
    k = 0
    while Fraction(2) ** k > f:
        k -= 1
    while Fraction(2) ** (k + 1) <= f:
        k += 1
    return k


def _one_ulp_off(monkeypatch: pytest.MonkeyPatch, direction: float) -> None:
    """Make every float logarithm numpy and math offer one ulp off (towards ``direction``)."""

    def off(fn: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *a, **k: np.nextafter(fn(*a, **k), direction)

    for name in ("log2", "log10", "log", "logspace", "exp2"):
        monkeypatch.setattr(np, name, off(getattr(np, name)))
    for name in ("log2", "log10", "log"):
        fn = getattr(math, name)
        monkeypatch.setattr(math, name, lambda *a, _f=fn: math.nextafter(_f(*a), direction))


# -- exponents: floor(log2(x)) -------------------------------------------------------------------
def test_floor_log2_at_and_around_powers_of_two() -> None:
    for x in [*_pow2_edges(-1074 + 2, -1000), *_pow2_edges(), 3.0, 0.75, 1e300, 5e-324]:
        assert floor_log2(x) == _floor_log2_by_integers(x), x
    for k in range(-70, 70):
        p = Fraction(2) ** k
        assert floor_log2(p) == k
        assert floor_log2(p - Fraction(1, 10**30)) == k - 1
        assert floor_log2(p + Fraction(1, 10**30)) == k
    assert floor_log2(2**200 - 1) == 199 and floor_log2(2**200) == 200
    # What the code did before: math.floor(math.log2(x)) says k just below 2^k.
    x = math.nextafter(8.0, 0.0)
    assert math.floor(math.log2(x)) == 3 and floor_log2(x) == 2


def test_floor_log2_refuses_what_has_no_exponent() -> None:
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError):
            floor_log2(bad)
    with pytest.raises(ValueError):
        floor_log2(Fraction(0))


def test_largest_pow2_is_exact_at_the_edges() -> None:
    for k in range(-20, 24):
        below, at, above = _around(2.0**k)
        assert largest_pow2([at]) == k
        assert largest_pow2([below]) == k - 1  # the old floor(log2) gave k: 2^k > limit
        assert largest_pow2([above]) == k
        assert largest_pow2([Fraction(2) ** k - Fraction(1, 2**80)]) == k - 1
    # Nothing to bound (zero weights give an infinite limit): the largest exponent, no crash.
    assert largest_pow2([math.inf]) == 24 and largest_pow2([math.inf, 3.0]) == 1
    assert largest_pow2([0.0, -1.0]) == 24
    assert largest_pow2([2.0**-40]) == -24  # the floor: callers refuse below it first


def test_exact_ratio_decides_where_the_float_quotient_rounds_onto_a_power_of_two() -> None:
    """SpiNNaker's input limit ``32767 / (gain·worst)`` (gain = tau without decay_input): with
    tau 3 and a worst input just above ``32767 / (3·2^-8)`` the float product and quotient
    round to exactly ``2^-8``; the exact quotient is below it, so ``2^-8`` overflows."""
    gain, k = 3.0, -8
    worst = 32767 / (gain * 2.0**k)
    assert 32767 / (gain * worst) == 2.0**k  # the float says 2^k fits ...
    assert Fraction(2) ** k * Fraction(gain) * Fraction(worst) > 32767  # ... it does not
    assert largest_pow2([32767 / (gain * worst)]) == k
    assert largest_pow2([exact_ratio(32767, Fraction(gain) * Fraction(worst))]) == k - 1
    assert exact_ratio(1, 0) == math.inf


@pytest.mark.parametrize("direction", [-math.inf, math.inf])
def test_scale_exponents_ignore_the_last_bit_of_log2(
    monkeypatch: pytest.MonkeyPatch, direction: float
) -> None:
    values = _pow2_edges(-20, 24)
    want = [largest_pow2([v]) for v in values]
    shifts = [ring_buffer_shift(v) for v in values]
    _one_ulp_off(monkeypatch, direction)
    assert [largest_pow2([v]) for v in values] == want
    assert [ring_buffer_shift(v) for v in values] == shifts
    assert want == [_floor_log2_by_integers(v) for v in values]


# -- SpiNNaker ring-buffer shift -----------------------------------------------------------------
def _shift_by_integers(x: float | Fraction) -> int:
    """The rule: the smallest ``s >= 0`` with ``2^s > x``."""
    s = 0
    while Fraction(2) ** s <= Fraction(x):
        s += 1
    return s


def test_ring_buffer_shift_at_and_around_powers_of_two() -> None:
    for x in [*_pow2_edges(-10, 40), 6.0, 0.7, 0.3, 1e-300]:
        assert ring_buffer_shift(x) == _shift_by_integers(x), x
        assert ring_buffer_shift(Fraction(x)) == _shift_by_integers(x), x
    for k in range(0, 30):
        assert ring_buffer_shift(Fraction(2) ** k) == k + 1
        assert ring_buffer_shift(Fraction(2) ** k - Fraction(1, 3**40)) == max(k, 0)
    assert ring_buffer_shift(0.0) == ring_buffer_shift(-3.0) == ring_buffer_shift(Fraction(0)) == 0
    with pytest.raises(ValueError):
        ring_buffer_shift(math.inf)


def test_spinnaker_shift_uses_the_exact_product_of_input_and_scale() -> None:
    """``max_input·σ·gain`` rounds onto ``2^k`` in floats while the exact product is below it;
    the shift must be taken on the exact product (a smaller shift keeps more weight bits)."""
    gain = 3.0
    inp = 2.0**14 / 3.0  # the float is below 2^14 / 3: the exact product is below 2^14
    assert inp * gain == 2.0**14
    assert ring_buffer_shift(inp * gain) == 15  # what the float product gave
    assert ring_buffer_shift(Fraction(inp) * Fraction(gain)) == 14


# -- thresholds ----------------------------------------------------------------------------------
def _old_lava_vth(target: float, granule: int) -> int:
    theta_v = float(target) * 64
    wanted = granule * math.ceil(theta_v / granule)
    return min(max(math.floor((wanted - granule) / 64 + 0.5), 0), 2**17 - 1)


@pytest.mark.parametrize("granule", [1, 64])
def test_lava_threshold_integer_rule_equals_the_float_rule_on_floats(granule: int) -> None:
    """``(wanted - granule + 32) // 64`` is ``floor((wanted - granule) / 64 + 0.5)`` without the
    float: same answers on random targets and on every integer and half-integer edge."""
    rng = np.random.default_rng(granule)
    targets = [*rng.uniform(0, 3000, 300).tolist()]
    for n in range(0, 300):
        for t in (n, n + 0.5, n / 64, (n + 0.5) / 64):
            targets.extend(_around(float(t)) if t > 0 else [float(t)])
    for t in targets:
        assert QL.place_threshold(t, granule).vth == _old_lava_vth(t, granule), t
        assert QL.place_threshold(Fraction(t), granule) == QL.place_threshold(t, granule)


def test_lava_threshold_takes_the_exact_product_of_scale_tau_and_v_th() -> None:
    """tau 3, v_th 0.6666666666666667 (the float above 2/3): ``3.0 * v_th`` rounds to 2.0, the
    true threshold is above 2, so the first firing membrane value is one grid step higher."""
    tau, v_th, c = 3.0, math.nextafter(2.0 / 3.0, 1.0), 2.0**10
    assert c * tau * v_th == 2048.0 and Fraction(tau) * Fraction(v_th) > 2
    exact = Fraction(c) * Fraction(tau) * Fraction(v_th)
    on_float = QL.place_threshold(c * tau * v_th, 64)
    placed = QL.place_threshold(exact, 64)
    assert placed.wanted == on_float.wanted + 64 and placed.vth == on_float.vth + 1
    assert placed.exact and placed.fire_at > 64 * exact >= placed.fire_at - 64


def test_spinnaker_threshold_is_the_ceiling_of_the_exact_value() -> None:
    for k in range(-5, 12):
        for x in _around(2.0**k * 3):
            raw = QS.place_threshold(x)
            assert raw - 1 < Fraction(x) * 2**15 <= raw
    # sigma = 9·2^j (a lowered 3x3 pool) times a v_th whose float product rounds down.
    sigma, v_th = 9 * 2.0**-3, 1.0 / 9.0
    exact = Fraction(sigma) * Fraction(v_th)
    assert QS.place_threshold(exact) == math.ceil(exact * 2**15)
    assert QS.place_threshold(exact) >= math.ceil(Fraction(sigma * v_th) * 2**15)


# -- leaks ---------------------------------------------------------------------------------------
def test_loihi_decay_rounds_the_exact_quotient() -> None:
    """``dv = round(4096 / tau)``, ties to even, on the exact quotient."""
    assert QL.decay_v(2.0) == (2048, True) and QL.decay_v(None) == (0, True)
    assert QL.decay_v(3.0) == (1365, False) and QL.decay_v(4096.0) == (1, True)
    tau = math.nextafter(4096 / 2.5, 0.0)  # just below 1638.4: the quotient is above 2.5
    assert 4096 / tau == 2.5 and round(4096 / tau) == 2  # the old float decision
    assert Fraction(4096) / Fraction(tau) > Fraction(5, 2)
    assert QL.decay_v(tau) == (3, False)
    assert QL.decay_v(8192.0) == (0, False)  # 0.5 exactly: ties to even
    assert QL.decay_v(1.0 + 2.0**-20) == (4095, False)  # 4096 is not a Lava dv: clipped
    rng = np.random.default_rng(0)
    for t in rng.uniform(1.001, 200.0, 2000).tolist():
        dv, exact = QL.decay_v(t)
        q = Fraction(4096) / Fraction(t)
        assert abs(q - dv) <= Fraction(1, 2) and exact == (q == dv)


def test_spinnaker_exp_tc_is_the_rounded_exact_leak() -> None:
    for tau in [2.0, 4.0, 3.0, 20.0, 1.5, 65536.0, *np.linspace(1.01, 500, 3001).tolist()]:
        raw = QS.exp_tc_raw(tau)
        exact = (1 - 1 / Fraction(tau)) * 2**15
        assert abs(exact - raw) <= Fraction(1, 2)
        if abs(exact - raw) < Fraction(1, 2):
            assert raw == int(to_accum(1.0 - 1.0 / tau))  # same as before off the ties
    assert QS.exp_tc_raw(2.0) == 2**14
    assert QS.exp_tc_raw(65536.0) == 2**15  # 32767.5: ties to even


# -- core and neuron counts ----------------------------------------------------------------------
def test_ceil_div_is_integer_exact() -> None:
    for a in range(0, 200):
        for b in range(1, 20):
            assert ceil_div(a, b) == -(-a // b) == math.ceil(Fraction(a, b))
    big = 2**60 + 1
    assert ceil_div(big, 2**60) == 2 and math.ceil(big / 2**60) == 1  # the float quotient is 1.0


def test_stream_multiplicity_is_a_fraction() -> None:
    """A slice of 3 of 17 elements repeated back to 17: the float multiplicity ``(3/17)·(17/3)``
    is 1.0000000000000002 (``ceil(5·m)`` 6, and not the one-to-one case); the fraction is 1."""
    assert (3 / 17) * (17 / 3) != 1.0 and math.ceil(5 * ((3 / 17) * (17 / 3))) == 6
    m = _ratio(3, 17) * _ratio(17, 3)
    assert m == 1 and math.ceil(5 * m) == 5
    assert _ratio(5, 0) == 5  # a zero-sized input counts as 1, as before


# -- stream bounds: exact sums on a grid ----------------------------------------------------------
def test_grid_up_makes_every_summation_order_agree() -> None:
    rng = np.random.default_rng(3)
    for fan_in, bound in ((7, 1), (300, 1), (4096, 1), (64, 16)):
        w = np.abs(rng.normal(size=(5, fan_in))) * 10.0 ** rng.integers(-3, 4)
        x = rng.integers(0, bound + 1, size=fan_in).astype(np.float64)
        q = grid_up(w, fan_in * bound)
        assert np.all(q >= w)
        top = float(w.max())
        unit = math.ldexp(1.0, math.frexp(top)[1] - (53 - (fan_in * bound).bit_length()))
        assert np.all(q - w <= unit) and np.all(q / unit == np.round(q / unit))
        exact = [sum(Fraction(a) * Fraction(b) for a, b in zip(row, x, strict=True)) for row in q]
        orders = [
            q @ x,
            q[:, ::-1] @ x[::-1],
            np.array([math.fsum(row * x) for row in q]),
            np.array([sum((row * x).tolist()) for row in q]),
            (q * x).sum(axis=1),
        ]
        for got in orders:
            assert [Fraction(v) for v in got] == exact  # exact, so any order gives it
    assert np.array_equal(grid_up(np.zeros(3), 10), np.zeros(3))
    dyadic = np.array([0.5, 0.25, 1.0, 0.125])  # already on the grid: unchanged
    assert np.array_equal(grid_up(dyadic, 4), dyadic)


# -- the quantize pass on small graphs -------------------------------------------------------------
def _add(g: Graph, name: str, op: O.Op, *srcs: str) -> str:
    shape = output_shape(op, [g.type(s).shape for s in srcs])
    g.add(name, op, TensorType(shape, Kind.CURRENT, None, not isinstance(op, O.TimeMean)))
    for src, port in zip(srcs, op.in_ports, strict=True):
        g.connect(src, name, port)
    return name


def _one_weight_net(w: float, v_th: float = 1.0, tau: float = 2.0) -> Graph:
    """x -> enc (host) -> lif0 -> fc (one weight w) -> lif1 -> rate."""
    g = Graph("one")
    g.meta["timesteps"] = 4
    g.add("x", O.Input(shape=(1,)), TensorType((1,)))
    g.inputs.append("x")
    _add(g, "enc", O.Linear(weight=np.array([[2.0]])), "x")
    _add(g, "lif0", O.LIF(tau=2.0), "enc")
    _add(g, "fc", O.Linear(weight=np.array([[w]])), "lif0")
    _add(g, "lif1", O.LIF(tau=tau, v_threshold=v_th), "fc")
    _add(g, "rate", O.TimeMean(), "lif1")
    g.outputs.append("rate")
    front, _ = run_pipeline(g, FRONT_PIPELINE)
    return front


def _quantize(g: Graph, target: str) -> tuple[Graph, PassContext]:
    return run_pipeline(g, [quantize], PassContext(config={"target": target}))


@pytest.mark.parametrize("w", [0.9975, 255 / 256, math.nextafter(255 / 256, 1.0), -0.9975])
def test_one_large_weight_fits_the_8bit_mantissa(w: float) -> None:
    """A stream whose worst input is one weight: the 16-bit input limit allowed ``c = 2^15`` for
    0.9975, i.e. ``w·c = 32686``, mantissa ``rint(32686 / 256) = 128`` at the top exponent —
    exit 70 ("report this as a bug"). The mantissa is now a limit of its own; at ``255/256``
    the product is exactly 32640 = 127.5·256, which rounds to 128, so the limit is strict."""
    g, _ = _quantize(_one_weight_net(w), "loihi")
    q = g.node_meta("fc")["quant"]
    wq = int(g.op("fc").weight[0, 0])
    assert -128 <= wq <= 127 and q["weight_exp"] <= 8
    assert abs(wq * 2.0 ** q["weight_exp"] - w * q["scale"]) <= 2.0 ** (q["weight_exp"] - 1)
    if w > 0:
        assert q["scale"] == 2.0**14  # 2^15 no longer passes
    x = np.ones((4, 3, 1))
    res = run(g, {"x": x}, "loihi", record="all")
    assert np.all(np.isfinite(res.outputs["rate"]))


def test_scale_is_decided_on_the_exact_input_bound() -> None:
    """A weight with ``2^10·w`` exactly 32767: ``c = 2^10`` fits; one ulp more and it does
    not (the 16-bit input limit is the binding one: v_th is small)."""
    at = 32767 * 2.0**-10
    g, _ = _quantize(_one_weight_net(-at, v_th=2.0**-9), "loihi")
    assert g.node_meta("fc")["quant"]["scale"] == 2.0**10
    above = math.nextafter(at, math.inf)
    g, _ = _quantize(_one_weight_net(-above, v_th=2.0**-9), "loihi")
    assert g.node_meta("fc")["quant"]["scale"] == 2.0**9


@pytest.mark.parametrize("target", ["loihi", "spinnaker"])
def test_a_threshold_out_of_range_is_refused_with_the_neuron(target: str) -> None:
    with pytest.raises(SnnccError) as e:
        _quantize(_one_weight_net(0.5, v_th=1e30), target)
    err = e.value
    assert err.exit_code == 2 and err.code == "QNT004"
    assert "lif1" in err.message and "1e+30" in err.message and err.hint


def test_decisions_do_not_move_when_log2_is_one_ulp_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: the same small network quantizes to the same program for both targets with
    every float logarithm one ulp low, then high."""

    def program(target: str) -> list[Any]:
        g, _ = _quantize(_one_weight_net(0.75, v_th=0.5, tau=3.0), target)
        out = []
        for n in g.topo_order():
            op = g.op(n)
            fields = {f: getattr(op, f) for f in getattr(op, "__dataclass_fields__", {})}
            q = dict(g.node_meta(n).get("quant") or {})
            # PyNN's tau_m / cm are continuous parameters (-1 / ln(exp_TC)), not decisions.
            q.pop("tau_m_ms", None), q.pop("cm_nF", None)
            out.append((n, repr(fields), repr(q)))
        return out

    want = {t: program(t) for t in ("loihi", "spinnaker")}
    for direction in (-math.inf, math.inf):
        with monkeypatch.context() as mp:
            _one_ulp_off(mp, direction)
            assert {t: program(t) for t in ("loihi", "spinnaker")} == want
