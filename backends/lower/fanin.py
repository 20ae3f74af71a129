"""Lowering of a stream: one connection per (entry, neuron) pair it reaches (fan-in expansion).

A stream (:mod:`snncc.quant.streams`) is the current ops between upstream spikes and its neurons.
Each neuron's input is a sum of *terms*: an entry's outputs carried to the neuron by the linear
ops between them. A term is ``(entry, maps)`` with ``maps`` of shape ``[J, *value shape]``: the
value's element ``k`` receives the sum over ``j`` of entry output ``maps[j, k]`` (``-1``: none).

- an entry (a synaptic op or ``Scale`` reading spikes, counts or graded events): one term, the
  identity;
- ``Add``: the terms of all inputs (broadcast to the output);
- re-indexing: the same entries, maps re-indexed (:func:`~snncc.backends.lower.structure.reindex`);
- ``Sum`` over axes: ``N`` summed elements become ``N·J`` maps
  (:func:`~snncc.backends.lower.structure.sum_terms`);
- anything else (a max-pool of currents, a product of a current with spikes): not linear, so it
  is an *opaque entry*: its value is computed by a program (:mod:`~snncc.backends.lower.program`)
  holding every stream op before it, from the spikes the stream reads, and its outputs enter
  the terms like an entry's.

At each neuron the terms of one entry are merged into one connection whose output map is
``[n, J]``; so a membrane-shortcut neuron gets one connection per contributing branch, each of
which ``balance_latency`` can delay on its own.
"""

from __future__ import annotations

import numpy as np

from snncc.backends.lower import attention as A
from snncc.backends.lower import program as P
from snncc.backends.lower.linmap import LinMap
from snncc.backends.lower.lower import Lowering, lowering_error
from snncc.backends.lower.program import Prog, Ref
from snncc.backends.lower.structure import (
    STRUCTURAL,
    conv_form,
    identity_index,
    reindex_terms,
    sum_terms,
)
from snncc.ir import ops as O
from snncc.quant.streams import SYNAPTIC, Stream

Terms = list[tuple[str, np.ndarray]]


def _broadcast(maps: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``[J, *s]`` maps broadcast to ``[J, *shape]`` (per-sample axes padded on the left)."""
    per = maps.shape[1:]
    padded = maps.reshape((len(maps),) + (1,) * (len(shape) - len(per)) + per)
    return np.broadcast_to(padded, (len(maps), *shape))


class _StreamLowering:
    """Terms and opaque programs of one stream (see the module docstring)."""

    def __init__(self, low: Lowering, s: Stream) -> None:
        self.low, self.g, self.s = low, low.g, s
        self.nodes = set(s.nodes)
        self.progs: dict[str, Prog] = {}  # stream node -> program computing its value
        self.opaque: set[str] = set()

    def value_prog(self, n: str) -> Prog | Ref:
        """The program computing stream node ``n`` (or the value of a spike-side node)."""
        if n not in self.nodes:
            return self.low.values[n]
        if n not in self.progs:
            ins = [self.value_prog(d) for d in self.g.inputs_of(n)]
            self.progs[n] = P.extend(self.g, n, ins)
        return self.progs[n]

    def terms(self) -> dict[str, Terms]:
        g, out = self.g, {}
        for n in self.s.nodes:
            op, shape = g.op(n), tuple(g.type(n).shape)
            ins = g.inputs_of(n)
            if n in self.s.entries:
                out[n] = [(n, identity_index(shape)[None])]
            elif isinstance(op, O.Add):
                out[n] = [(e, _broadcast(m, shape)) for d in ins for e, m in out[d]]
            elif isinstance(op, STRUCTURAL):
                out[n] = [(e, reindex_terms(op, n, g.type(n), m)) for e, m in out[ins[0]]]
            elif isinstance(op, O.Sum):
                in_shape = tuple(g.type(ins[0]).shape)
                out[n] = [(e, sum_terms(op, in_shape, m)) for e, m in out[ins[0]]]
            elif isinstance(op, O.Delay):
                self.low.delay(n)
            else:
                self.opaque.add(n)
                self.value_prog(n)
                out[n] = [(n, identity_index(shape)[None])]
        return out

    def connect(self, e: str, target: str, out_map: np.ndarray) -> None:
        """The connection realising entry (or opaque node) ``e``'s terms into ``target``."""
        if e in self.opaque:
            self.low.program(e, target, self.progs[e], out_map)
            return
        entry(self.low, e, target, out_map)


def lower_stream(low: Lowering, s: Stream) -> None:
    """One connection per (entry reaching a neuron, neuron) pair of stream ``s``."""
    sl = _StreamLowering(low, s)
    terms = sl.terms()
    for target in s.neurons:
        (d,) = low.g.inputs_of(target)
        t_shape = tuple(low.g.type(target).shape)
        size = low.g.type(target).size
        by_entry: dict[str, list[np.ndarray]] = {}
        for e, maps in terms[d]:
            flat = _broadcast(maps, t_shape).reshape(len(maps), size)
            by_entry.setdefault(e, []).append(flat)
        for e, parts in by_entry.items():
            maps = np.concatenate(parts, axis=0)
            out_map = maps[0] if len(maps) == 1 else np.ascontiguousarray(maps.T)
            sl.connect(e, target, out_map)


def entry(low: Lowering, e: str, target: str, out_map: np.ndarray) -> None:
    """The connection realising synaptic entry ``e``'s contribution to ``target``."""
    g = low.g
    op, (d,) = g.op(e), g.inputs_of(e)
    src = low.values[d]
    if isinstance(src, LinMap):  # a product expanded into AND neurons
        A.entry(low, e, target, out_map)
        return
    if isinstance(op, O.Scale) or not isinstance(src, Ref):
        # A Scale of a product, or a synaptic op reading one: one exact integer program.
        low.program(e, target, P.extend(g, e, [src]), out_map)
        return
    if not isinstance(op, SYNAPTIC):
        raise lowering_error(e, f"{op.kind} reading {low.kinds(e)} has no lowering yet", "")
    quant = g.node_meta(e).get("quant") or {}
    form = conv_form(op, tuple(g.type(d).shape), np.asarray(op.weight, np.int64))
    low.synapse(low.name(f"{e}->{target}"), e, target, form, int(quant["weight_exp"]), src, out_map)
