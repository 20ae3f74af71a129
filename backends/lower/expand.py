"""The exact AND expansion of a spike product, shared by every target that has no dynamic
synapse (SpiNNaker always, Loihi under ``--attention and``).

``out[o] = Σ a[ia]·b[ib]`` over the terms ``(o, ia, ib)`` of a ``Mul`` or ``MatMul``
(:func:`triples`), where ``a`` and ``b`` are :class:`~snncc.backends.lower.linmap.LinMap` values
(sums of 0/1 population spikes), is a sum of ANDs of two spikes
(:func:`~snncc.backends.lower.linmap.product_pairs`): one threshold neuron per term and pair of
entries, which fires iff both of its inputs spiked, and whose spikes the consumer sums with
static synapses. What differs per target (the neuron that computes an AND, how a unit input is
stored, the size limits) stays with the target's lowering; the terms, the pairs and their count
(:func:`product_neurons`, known before anything is built) are here.
"""

from __future__ import annotations

import math

import numpy as np

from snncc.backends.lower.linmap import LinMap
from snncc.backends.lower.structure import identity_index
from snncc.ir import ops as O


def broadcast_rows(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> np.ndarray:
    """Element of ``in_shape`` read by each element of ``out_shape`` under numpy broadcasting."""
    idx = identity_index(in_shape)
    idx = idx.reshape((1,) * (len(out_shape) - len(in_shape)) + tuple(in_shape))
    return np.broadcast_to(idx, out_shape).reshape(-1)


def triples(op: O.Op, a: tuple, b: tuple, out: tuple) -> np.ndarray:
    """``(o, ia, ib)`` rows: output element ``o`` sums ``a[ia]·b[ib]`` (numpy broadcasting)."""
    if isinstance(op, O.Mul):
        o = np.arange(math.prod(out))
        return np.stack([o, broadcast_rows(a, out), broadcast_rows(b, out)], axis=1)
    ia_full, ib_full = identity_index(a), identity_index(b)
    lead = tuple(out[:-2])
    ia_full = np.broadcast_to(ia_full.reshape((1,) * (len(lead) + 2 - len(a)) + a), lead + a[-2:])
    ib_full = np.broadcast_to(ib_full.reshape((1,) * (len(lead) + 2 - len(b)) + b), lead + b[-2:])
    i_n, c_n, j_n = a[-2], a[-1], b[-1]
    o = identity_index(out)  # [..., I, J]
    ia = np.broadcast_to(ia_full[..., :, None, :], lead + (i_n, j_n, c_n))  # a[..., i, c]
    ib = np.broadcast_to(
        np.swapaxes(ib_full, -1, -2)[..., None, :, :], lead + (i_n, j_n, c_n)
    )  # b[..., c, j]
    oo = np.broadcast_to(o[..., None], lead + (i_n, j_n, c_n))
    return np.stack([oo.reshape(-1), ia.reshape(-1), ib.reshape(-1)], axis=1)


def _counts(m: LinMap, shape: tuple[int, ...]) -> np.ndarray:
    return np.bincount(m.row, minlength=m.size).reshape(shape).astype(np.int64)


def product_neurons(
    op: O.Op, a: LinMap, b: LinMap, a_shape: tuple, b_shape: tuple, out_shape: tuple
) -> int:
    """AND neurons of ``Mul``/``MatMul`` of ``a`` and ``b``: the sum over the products' terms
    of (entries of the ``a`` element) x (entries of the ``b`` element), without building them."""
    ca, cb = _counts(a, a_shape), _counts(b, b_shape)
    if isinstance(op, O.Mul):
        return int(np.sum(np.broadcast_to(ca, out_shape) * np.broadcast_to(cb, out_shape)))
    lead = tuple(out_shape[:-2])
    sa = np.broadcast_to(ca.sum(axis=-2), lead + (a_shape[-1],))  # [..., C]: over i
    sb = np.broadcast_to(cb.sum(axis=-1), lead + (b_shape[-2],))  # [..., C]: over j
    return int(np.sum(sa * sb))
