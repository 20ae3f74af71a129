"""Exact arithmetic for discrete decisions: integer ceilings, exponents, powers of two.

Why a module of its own: a width, a shift, an exponent or a core count must not depend on the
CPU. ``math.ceil(a / b)``, ``math.floor(math.log2(x))`` and ``log2(x).is_integer()`` all go
through a rounded float, and differ in the last bit between machines (``np.log2`` and
``np.logspace`` are vectorised differently with AVX-512) or once integers pass 2^53. Every such
decision in snncc is taken with these functions instead, on integers, exact fractions or the
float's own bits (``math.frexp``).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers, ``b > 0``, exactly (``math.ceil(a / b)`` goes through a
    float quotient, which is wrong once ``a`` passes 2^53 and hides where floats enter)."""
    return -(-int(a) // int(b))


def floor_log2(x: float | int | Fraction) -> int:
    """``floor(log2(x))`` for a finite ``x > 0``, exactly.

    Why not ``math.floor(math.log2(x))``: ``log2`` rounds its result, so for ``x`` one ulp below
    ``2^k`` it returns exactly ``k`` (and a vectorised ``np.log2`` may differ in the last bit
    between CPUs); the exponent must come from the value itself. A float is ``m·2^e`` with
    ``m`` in [1/2, 1) (``math.frexp``, exact), so the answer is ``e - 1``; an integer or
    :class:`~fractions.Fraction` ``p/q`` is decided by integer comparison with ``2^e``.
    """
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if not (math.isfinite(x) and x > 0):
            raise ValueError(f"floor_log2 needs a finite positive value, got {x}")
        return math.frexp(x)[1] - 1
    f = Fraction(x)
    if f <= 0:
        raise ValueError(f"floor_log2 needs a positive value, got {x}")
    p, q = f.numerator, f.denominator
    e = p.bit_length() - q.bit_length()  # p/q lies in (2^(e-1), 2^(e+1))
    return e if (p << max(-e, 0)) >= (q << max(e, 0)) else e - 1


def pow2_exponent(x: float) -> int | None:
    """``k`` with ``x == 2^k`` exactly, else None."""
    if x <= 0 or not math.isfinite(x):
        return None
    m, e = math.frexp(x)
    return e - 1 if m == 0.5 else None
