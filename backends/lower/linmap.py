"""A deployed value as a sparse linear function of population spikes (the working form of the
AND expansion: SpiNNaker's whole lowering, and Loihi's spike products under ``--attention and``).

Why one representation for everything between two neuron populations: sPyNNaker (and PyNN on
Brian2) has exactly one way for a value to reach a neuron, a static synapse from one
presynaptic neuron, and exactly one arithmetic, the sum of the weights of the synapses whose
source spiked this step. A spike tensor, a re-indexed spike tensor, a SEW sum of spike tensors
(a count), a synaptic op's output (a current) and the residual sum of several synaptic ops are
all of that form::

    value[k] = Σ_e  w[e] · spike(pop[e], col[e])      over the entries e with row[e] == k

so each is a :class:`LinMap`: one COO entry per (element, source neuron) pair with a signed
integer weight (1 for a spike; a stored sPyNNaker weight for a current). Re-indexing moves
rows, ``Add`` concatenates entries, a synaptic op composes its synapse list with its input's
entries, and a neuron population finally receives one projection per source population with
the entries of its input (``pre = col``, ``post = row``). Products of spikes are not linear; the
lowering expands them into AND neurons first (:func:`product_pairs`), whose spikes enter a
``LinMap`` like any population's.

numpy only (no scipy: the snncc core imports with numpy and networkx).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinMap:
    """``value[k] = Σ w[e]·spike(pop[e], col[e])`` over entries with ``row[e] == k``.

    ``shape`` is the value's per-sample, per-step shape; ``row`` indexes it in C order; ``pop``
    indexes the lowering's population table; all arrays have one element per entry (int64).
    """

    shape: tuple[int, ...]
    row: np.ndarray
    pop: np.ndarray
    col: np.ndarray
    w: np.ndarray

    @property
    def size(self) -> int:
        """Elements of the value."""
        return int(math.prod(self.shape))

    @property
    def entries(self) -> int:
        return int(len(self.row))

    def is_spikes(self) -> bool:
        """Each element is one neuron's spike (weight 1), or 0: a 0/1 value."""
        if np.any(self.w != 1):
            return False
        return bool(np.all(np.bincount(self.row, minlength=self.size) <= 1))

    def is_count(self) -> bool:
        """Every weight is 1: each element is a count of spikes."""
        return bool(np.all(self.w == 1))


def identity(pop: int, shape: tuple[int, ...]) -> LinMap:
    """A population's own spikes: element ``k`` is neuron ``k``."""
    n = int(math.prod(shape))
    k = np.arange(n, dtype=np.int64)
    return LinMap(tuple(shape), k, np.full(n, pop, np.int64), k.copy(), np.ones(n, np.int64))


def _csr(m: LinMap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, start, count)``: entries sorted by row, and each row's slice of that order."""
    order = np.argsort(m.row, kind="stable")
    count = np.bincount(m.row, minlength=m.size).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    return order, start, count


def gather_rows(m: LinMap, rows: np.ndarray, shape: tuple[int, ...]) -> LinMap:
    """The value whose element ``k`` is ``m``'s element ``rows[k]`` (``-1``: zero).

    ``rows`` is ``[prod(shape)]``; an element read twice has its entries twice.
    """
    rows = np.asarray(rows, np.int64).reshape(-1)
    order, start, count = _csr(m)
    valid = np.flatnonzero(rows >= 0)
    src = rows[valid]
    n = count[src]
    new_row = np.repeat(valid, n)
    offsets = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    picked = order[np.repeat(start[src], n) + offsets]
    return LinMap(tuple(shape), new_row, m.pop[picked], m.col[picked], m.w[picked])


def scaled(m: LinMap, factor: int) -> LinMap:
    """``factor · m`` (an integer stored weight times each entry's weight)."""
    return LinMap(m.shape, m.row, m.pop, m.col, m.w * int(factor))


def concat(maps: list[LinMap], shape: tuple[int, ...]) -> LinMap:
    """The sum of values of one ``shape``."""
    if not maps:
        e = np.zeros(0, np.int64)
        return LinMap(tuple(shape), e, e, e, e)
    return LinMap(
        tuple(shape),
        *(np.concatenate([getattr(m, f) for m in maps]) for f in ("row", "pop", "col", "w")),
    )


def relabel(m: LinMap, new_rows: np.ndarray, shape: tuple[int, ...]) -> LinMap:
    """Move every element ``k`` of ``m`` to element ``new_rows[k]`` of a value of ``shape``
    (several elements moved to one are summed: a ``Sum`` over axes)."""
    return LinMap(tuple(shape), np.asarray(new_rows, np.int64)[m.row], m.pop, m.col, m.w)


def synapses(m: LinMap, out: np.ndarray, inp: np.ndarray, w: np.ndarray, shape: tuple) -> LinMap:
    """A synaptic op applied to ``m``: output element ``out[i]`` gets ``w[i]·m[inp[i]]``.

    ``(out, inp, w)`` lists the op's synapses (one per weight use; zero weights dropped); the
    result has one entry per (synapse, entry of its input element).
    """
    keep = np.asarray(w) != 0
    out, inp, w = (np.asarray(a, np.int64)[keep] for a in (out, inp, w))
    g = gather_rows(m, inp, (len(inp),))  # row i of g: the entries of m[inp[i]]
    return LinMap(tuple(shape), out[g.row], g.pop, g.col, g.w * w[g.row])


def merged(m: LinMap) -> LinMap:
    """Entries with the same (row, pop, col) and the same weight sign summed (exact integers).

    Why by sign: a positive and a negative weight go to different receptors (excitatory,
    inhibitory) whose ring buffers have their own shifts; summing them would need one weight
    representable in both.
    """
    if not m.entries:
        return m
    sign = (m.w < 0).astype(np.int64)
    keys = np.stack([m.row, m.pop, m.col, sign])
    order = np.lexsort(keys[::-1])
    k = keys[:, order]
    first = np.ones(k.shape[1], bool)
    first[1:] = np.any(k[:, 1:] != k[:, :-1], axis=0)
    starts = np.flatnonzero(first)
    w = np.add.reduceat(m.w[order], starts)
    row, pop, col, _ = k[:, starts]
    nz = w != 0
    return LinMap(m.shape, row[nz], pop[nz], col[nz], w[nz])


def product_pairs(a: LinMap, b: LinMap, triples: np.ndarray) -> tuple[np.ndarray, ...]:
    """The AND neurons of ``out[o] = Σ a[ia]·b[ib]`` over ``triples`` rows ``(o, ia, ib)``.

    ``a[ia] = Σ wa·spike(pa, ca)`` and ``b[ib] = Σ wb·spike(pb, cb)`` with 0/1 spikes, so
    ``a[ia]·b[ib] = Σ Σ wa·wb·(spike(pa, ca) AND spike(pb, cb))``: one AND neuron per triple and
    pair of entries. Returns ``(o, pa, ca, pb, cb, weight)`` per AND neuron, in triple order.
    """
    t = np.asarray(triples, np.int64).reshape(-1, 3)
    ga = gather_rows(a, t[:, 1], (len(t),))  # entries of a[ia] per triple
    gb = gather_rows(b, t[:, 2], (len(t),))
    ia, ib = _pairs_by_row(ga.row, gb.row, len(t))
    return (t[ga.row[ia], 0], ga.pop[ia], ga.col[ia], gb.pop[ib], gb.col[ib], ga.w[ia] * gb.w[ib])


def _pairs_by_row(ra: np.ndarray, rb: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``(i, j)`` of positions with ``ra[i] == rb[j]``, grouped by row in order.

    Requires ``ra`` and ``rb`` sorted (``gather_rows`` emits rows in order).
    """
    ca = np.bincount(ra, minlength=n)
    cb = np.bincount(rb, minlength=n)
    sa = np.concatenate([[0], np.cumsum(ca)[:-1]])
    sb = np.concatenate([[0], np.cumsum(cb)[:-1]])
    per = ca * cb  # pairs per row
    rows = np.repeat(np.arange(n), per)
    k = np.arange(int(per.sum()), dtype=np.int64) - np.repeat(np.cumsum(per) - per, per)
    nb = cb[rows]
    return sa[rows] + k // np.maximum(nb, 1), sb[rows] + k % np.maximum(nb, 1)
