"""Granularity generators of the Elastic Spiking Transformer: the widths and head counts of each
elastic level, computed exactly (the same tables on every CPU).

The authors compute each table with ``np.logspace(log(lo), log(hi), n)``: the geometric grid
``g_i = lo^((d-i)/d) · hi^(i/d)``, ``d = n - 1``, then round or truncate it. In floats the
grid's last bit depends on the CPU (numpy's AVX-512 ``exp2``/``log2`` give
``47.99999999999999`` for the first level of ``H = 768``, so ``np.round(g / 32)`` rounds
1.4999… down and the table starts at 32 instead of 64). snncc decides every level on the
*exact* real ``g_i`` instead, with integers only: ``g_i^d = P_i = lo^(d-i) · hi^i`` is an
integer, so ``g_i >= m`` iff ``P_i >= m^d`` for any integer ``m >= 0``, and

* ``floor(g_i)`` is the integer ``d``-th root of ``P_i`` (:func:`_floor_root`);
* ``round(g_i / q)`` (half to even, as ``np.round``) compares ``2^d · P_i`` with
  ``((2k + 1)·q)^d`` where ``k = floor(g_i / q) = floor(g_i) // q`` (:func:`_round_level`).

No float is computed, so the tables are the same on every CPU, and they are what numpy
gives wherever its float grid is not within an ulp of a rounding boundary (the tables the
authors publish, and the test for every width up to 4096 in tests/models/test_elastic.py).
"""

from __future__ import annotations

from snncc.diagnostics import SnnccError


def _floor_root(x: int, d: int) -> int:
    """``floor(x^(1/d))`` for integers ``x >= 0``, ``d >= 1``, by integer Newton iteration.

    Why Newton from above: starting at ``2^ceil(bits/d) >= x^(1/d)``, the integer step
    ``((d-1)·r + x // r^(d-1)) // d`` never goes below the root and strictly decreases until it
    reaches ``floor(x^(1/d))``; nothing is rounded, so the result is exact for any size.
    """
    if x < 0 or d < 1:
        raise ValueError(f"_floor_root({x}, {d})")
    if x < 2 or d == 1:
        return x
    r = 1 << -(-x.bit_length() // d)
    while True:
        s = ((d - 1) * r + x // r ** (d - 1)) // d
        if s >= r:
            return r
        r = s


def _grid_powers(lo: int, hi: int, n: int) -> list[int]:
    """``P_i = lo^(d-i) · hi^i`` (``d = n - 1``): the ``d``-th powers of the logspace grid."""
    d = n - 1
    return [lo ** (d - i) * hi**i for i in range(n)]


def _round_level(p: int, d: int, q: int) -> int:
    """``q · round_half_even(p^(1/d) / q)``: ``np.round(g / q) * q`` on the exact ``g``.

    ``k = floor(g / q)``; ``g / q`` is above, at or below ``k + 1/2`` as ``(2g)^d = 2^d·p`` is
    above, equal to or below ``((2k + 1)·q)^d`` (both sides integers). A tie (``g / q`` exactly
    ``k + 1/2``, e.g. ``g = 48``, ``q = 32``) goes to the even neighbour, as ``np.round`` does.
    """
    k = _floor_root(p, d) // q
    twice, edge = (2**d) * p, ((2 * k + 1) * q) ** d
    if twice > edge or (twice == edge and k % 2 == 1):
        k += 1
    return k * q


def _lower_end(lo: int, what: str) -> int:
    """Refuse a grid that starts at 0: the authors' ``log(0)`` gives ``-inf`` and NaN levels."""
    if lo < 1:
        raise SnnccError(
            f"{what}: the smallest level would be {lo}",
            code="E014",
            hint="use a lower limit of at least 1",
        )
    return lo


def mlp_widths(hidden: int, n: int = 4) -> list[int]:
    """XiMLP hidden widths: logspace (base 2) from ``max(32, H // 2**n)`` to ``H``, rounded to
    multiples of 32, last forced to ``H``, deduplicated and sorted.

    Rounding rule (exact, CPU-independent): level ``i`` is ``32·round(g_i / 32)`` with
    ``g_i = lo^((n-1-i)/(n-1)) · H^(i/(n-1))`` the exact real grid value and ties to even, as
    ``np.round`` does; decided with integers (see the section comment), so ``H = 768`` starts at
    64 (``g_0 = 48``, ``round(1.5) = 2``) on every CPU."""
    if n == 1:
        return [hidden]
    lo = max(32, hidden // (2**n))
    widths = [_round_level(p, n - 1, 32) for p in _grid_powers(lo, hidden, n)]
    widths[-1] = hidden
    return sorted(set(widths))


def head_counts(heads: int, n: int = 4, lower_limit: int = 2, rule: str = "base2") -> list[int]:
    """XiSSA head counts. ``"base2"`` (EHW/DVS code): ``min = max(limit, h // 2**(n-1))``,
    ``np.logspace(log2 min, log2 h, n, dtype=int, base=2)`` (truncating), last forced to ``h``.
    ``"base10"`` (CIFAR code): base 10 and ``min = max(limit, h // 10**(n-1))``. Not
    deduplicated (the authors' code does not), so two levels may share a head count.

    Rounding rule (exact, CPU-independent): level ``i`` is ``floor(g_i)`` of the exact grid
    value ``g_i = min^((n-1-i)/(n-1)) · h^(i/(n-1))`` (the base only changes ``min``: a geometric
    grid between two ends is the same in any base), taken as an integer root, so a level that is
    mathematically an integer (``[2, 4, 8, 16]``) never truncates to one less."""
    if n == 1:
        return [heads]
    if rule == "base2":
        lo = max(lower_limit, heads // (2 ** (n - 1)))
    elif rule == "base10":
        lo = max(lower_limit, heads // (10 ** (n - 1)))
    else:
        raise SnnccError(f"unknown head rule {rule!r}", code="E014", hint="use base2 or base10")
    lo = _lower_end(lo, "head_counts")
    counts = [_floor_root(p, n - 1) for p in _grid_powers(lo, heads, n)]
    counts[-1] = heads
    return counts


def conv_channels(channels: int, n: int = 4, lower_limit: int = 4) -> list[int]:
    """XiConvMultiGran bottleneck widths: logspace (base 2) from ``max(limit, c // 2**(n-1))``
    to ``c``, rounded to multiples of 4, last forced to ``c``, deduplicated and sorted.

    Rounding rule: as :func:`mlp_widths` with 4 for 32 (``4·round(g_i / 4)`` on the exact grid
    value, ties to even, decided with integers)."""
    if n == 1:
        return [channels]
    lo = _lower_end(max(lower_limit, channels // (2 ** (n - 1))), "conv_channels")
    widths = [_round_level(p, n - 1, 4) for p in _grid_powers(lo, channels, n)]
    widths[-1] = channels
    return sorted(set(widths))


def check_levels(levels: list[int], n: int, what: str) -> list[int]:
    if len(levels) != n:
        raise SnnccError(
            f"{what}: granularity generator gave {len(levels)} distinct levels {levels}, "
            f"expected {n}",
            code="E014",
            hint="use a larger width or fewer num_granularities",
        )
    return levels
