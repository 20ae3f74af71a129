"""Spike products on Loihi: the exact AND expansion onto neurocore neurons (``--attention and``).

By default a spike ``MatMul`` (attention's ``Q·Kᵀ`` and ``(Q·Kᵀ)·V``) becomes a program step of
a ``product`` connection: a custom fixed-point Lava process, exact but not neurocore-native.
Under ``attention="and"`` the lowering expands it instead, with the mechanism SpiNNaker uses
(:mod:`snncc.backends.lower.expand`): every term ``a[ia]·b[ib]`` of the product, for every pair
of the operands' spike entries, is an AND neuron, and the product's value is the count of its
AND neurons that fired (a :class:`~snncc.backends.lower.linmap.LinMap` over them). The Loihi
rules:

- the AND neuron is the same threshold neuron as a Hadamard mask's (``Lowering.spike_and``):
  ``du = dv = 4095`` (no memory), two unit inputs (``2·1`` with ``weight_exp -1``), ``vth = 1``
  (fires iff ``v = 64·2 > 64·1``: both spiked); one population per product node, named after
  the node, one neuron per AND term (``role "and"``);
- each operand reaches the AND neurons through unit synapses, one connection per source
  population, written as a depthwise 1x1 ``conv`` over the gathered source neurons (a synapse
  list: one stored weight per AND neuron, what the memory model costs);
- the consumer (a ``Scale`` or a synaptic op reading the product) sums the AND spikes with
  static synapses: its weights composed with the count (``W·2^e`` per AND neuron), again one
  depthwise 1x1 ``conv`` per source population whose 2-D ``out_index`` sums, into each target
  neuron, the AND neurons of its terms. A synaptic op with a negative weight exponent floors
  its sum once per output, which a list of separately shifted terms cannot reproduce:
  :data:`NOT_EXPRESSIBLE` (the choice falls back to the custom process).

Latency: every expansion level is a population, one Lava step per hop (``Q·Kᵀ`` one level,
``(Q·Kᵀ)·V`` a second), so ``balance_latency`` gives the consumer its depth and delays the
operands that arrive early (``V``) with no special case; the readout windows follow the
depths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from snncc.backends.lava.constraints import LOIHI
from snncc.backends.lower import linmap as L
from snncc.backends.lower.expand import product_neurons, triples
from snncc.backends.lower.linmap import LinMap
from snncc.backends.lower.program import Ref
from snncc.backends.lower.spec import Connection, Operand, Population
from snncc.backends.lower.structure import conv_form, conv_pairs, identity_index, narrow
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.types import Kind

if TYPE_CHECKING:
    from snncc.backends.lower.lower import Lowering

#: ``lower_program(attention=...)`` values: how a spike ``MatMul`` runs on Loihi.
CHOICES = ("process", "and")
#: Code of a product the AND expansion cannot express exactly (the choice then falls back).
NOT_EXPRESSIBLE = "LOW030"
#: Code of an AND expansion too large to build (``--attention and`` on a large model).
TOO_LARGE = "LOW031"
#: Most AND neurons one program may hold: the arrays the lowering builds are a few words per
#: neuron and synapse (about 0.5 GB at this size); a model past it is costed but not built.
MAX_AND_NEURONS = 2**22


def refuse(node: str, problem: str, hint: str, code: str = NOT_EXPRESSIBLE) -> SnnccError:
    """An AND-expansion refusal naming the node (exit 2)."""
    return SnnccError(f"lower (attention and): {node}: {problem}", code=code, hint=hint,
                      exit_code=2)  # fmt: skip


def as_linmap(low: Lowering, v: object, shape: tuple[int, ...], node: str) -> LinMap:
    """A value of the lowering as a sum of population spikes (a ``Ref``: one spike each)."""
    if isinstance(v, LinMap):
        return v
    if not isinstance(v, Ref):
        raise refuse(
            node,
            "an operand of the product is computed by a program (not population spikes)",
            "use --attention process",
        )
    if low.pop(v.pop).graded:
        raise refuse(node, f"operand {v.pop} sends graded payloads, not 0/1 spikes",
                     "use --attention process")  # fmt: skip
    idx = np.asarray(v.index, np.int64).reshape(-1)
    rows = np.flatnonzero(idx >= 0)
    pop = low.pop_index(v.pop)
    return LinMap(shape, rows, np.full(len(rows), pop, np.int64), idx[rows],
                  np.ones(len(rows), np.int64))  # fmt: skip


def product(low: Lowering, n: str) -> None:
    """``Mul``/``MatMul`` of spike values: one AND population, its value a count of its spikes."""
    g = low.g
    a_name, b_name = g.inputs_of(n)
    shapes = (low.shape(a_name), low.shape(b_name), low.shape(n))
    for d in (a_name, b_name):
        if g.type(d).kind is Kind.CURRENT:
            raise refuse(n, f"operand {d} is a current, not spikes", "use --attention process")
    a = as_linmap(low, low.values[a_name], shapes[0], n)
    b = as_linmap(low, low.values[b_name], shapes[1], n)
    op = g.op(n)
    count = product_neurons(op, a, b, *shapes)
    low.and_neurons += count
    if low.and_neurons > MAX_AND_NEURONS:
        raise refuse(
            n,
            f"the AND expansion needs {low.and_neurons:,} neurons so far, more than the "
            f"{MAX_AND_NEURONS:,} one program is built with",
            "use --attention process (or auto), or a smaller model",
            code=TOO_LARGE,
        )
    out, pa, ca, pb, cb, w = L.product_pairs(a, b, triples(op, *shapes))
    k = len(out)
    du_dv = LOIHI.decay_unity - 1
    bias = np.zeros(k, np.int16)
    low.pops.append(Population(n, (k,), du_dv, du_dv, 1, bias, 0, role="and", checked=False))
    for side, (pops, cols) in enumerate(((pa, ca), (pb, cb))):
        neurons = np.arange(k, dtype=np.int64)
        _unit_lists(low, n, n, f"o{side}", pops, cols, np.ones(k, np.int64), neurons, k)
    i = low.pop_index(n)
    low.values[n] = LinMap(shapes[2], out, np.full(k, i, np.int64), np.arange(k), w)


def entry(low: Lowering, e: str, target: str, out_map: np.ndarray) -> None:
    """Synaptic entry (or ``Scale``) ``e`` reading a product: static synapses from AND spikes.

    ``out_map`` is the fan-in map (``[n]`` or ``[n, J]`` entry outputs per target neuron).
    """
    g = low.g
    op, (d,) = g.op(e), g.inputs_of(e)
    value: LinMap = low.values[d]
    if isinstance(op, O.Scale):
        factor = float(op.factor)
        if not factor.is_integer():
            raise refuse(e, f"Scale({factor}) of a product is not an integer multiplier",
                         "re-quantize (the quantizer makes it one)")  # fmt: skip
        terms = L.scaled(value, int(factor))
    else:
        exp = int((g.node_meta(e).get("quant") or {})["weight_exp"])
        if exp < 0:
            raise refuse(
                e,
                f"weight_exp {exp} < 0: the reference floors each output's whole sum, a list "
                "of AND-neuron synapses would floor term by term",
                "use --attention process (the choice 'auto' does so by itself)",
            )
        f = conv_form(op, low.shape(d), np.asarray(op.weight, np.int64))
        out_c, in_c, widx = conv_pairs(f)
        w = np.asarray(f.weight, np.int64).reshape(-1)[widx]
        terms = L.synapses(value, f.out_order[out_c], f.in_order[in_c], w, low.shape(e))
        terms = L.scaled(terms, 1 << exp)
    maps = out_map if out_map.ndim == 2 else out_map[:, None]
    n_t = len(maps)
    into = L.merged(
        L.concat([L.gather_rows(terms, maps[:, j], (n_t,)) for j in range(maps.shape[1])], (n_t,))
    )
    _unit_lists(low, e, target, "sum", into.pop, into.col, into.w, into.row, n_t)


def _unit_lists(
    low: Lowering, e: str, target: str, tag: str, pops: np.ndarray, cols: np.ndarray,
    w: np.ndarray, rows: np.ndarray, n_target: int,
) -> None:  # fmt: skip
    """Synapses ``spike(pops[i], cols[i]) · w[i] -> target[rows[i]]``: per source population one
    ``conv`` connection, a depthwise 1x1 convolution over its gathered neurons (one stored
    weight per synapse) whose 2-D ``out_index`` sums each target neuron's synapses."""
    for src in np.unique(pops):
        sel = np.flatnonzero(pops == src)
        n = len(sel)
        r = rows[sel]
        order = np.argsort(r, kind="stable")
        sel, r = sel[order], r[order]
        slot = np.arange(n) - np.searchsorted(r, r)  # position among the target's synapses
        width = int(slot.max()) + 1 if n else 1
        out_index = np.full((n_target, width), -1, np.int64)
        out_index[r, slot] = np.arange(n)
        source = low.pops[int(src)]
        operand = narrow(cols[sel].reshape(n, 1, 1))
        params = {
            "kernel": narrow(np.asarray(w, np.int64)[sel].reshape(n, 1, 1, 1)),
            "input_shape": (1, 1, n),
            "stride": (1, 1),
            "padding": (0, 0),
            "dilation": (1, 1),
            "groups": n,
            "weight_exp": 0,
        }
        out = narrow(out_index[:, 0]) if width == 1 else narrow(out_index)
        name = low.name(f"{source.name}->{target}" + (f".{tag}" if tag != "sum" else ""))
        low.conns.append(
            Connection(name, target, e, "conv", [Operand(source.name, operand)], params, out)
        )


def structural(low: Lowering, n: str, value: LinMap) -> None:
    """A re-indexing op on a product's value: its rows moved (no synapses)."""
    from snncc.backends.lower.structure import reindex

    (d,) = low.g.inputs_of(n)
    rows = reindex(low.g.op(n), n, low.g.type(n), identity_index(low.shape(d)))
    low.values[n] = L.gather_rows(value, rows, low.shape(n))


def notes(low: Lowering) -> list[str]:
    """The program note on expanded products (none when nothing was expanded)."""
    expanded = [p.name for p in low.pops if p.role == "and" and not p.checked]
    if not expanded:
        return []
    return [
        f"{len(expanded)} spike products expanded into AND neurons ({low.and_neurons:,} "
        "neurons, neurocore-native): --attention and"
    ]
