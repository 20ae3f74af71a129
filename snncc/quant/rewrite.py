"""Rewrites ``quantize`` applies to the deployed part first, so that every stream is a plain sum.

The float graph says what the model computes; these rewrites say how the chip computes it. Each
one replaces a construct the integer neurons cannot read by an equal one made of ordinary
synaptic sums, in the *quantized* graph only (the float reference keeps running the front
graph, PyTorch-exact). The ``loihi`` reference then evaluates exactly what the lowering emits.

- :func:`fold_channel_maps` — a synaptic op reading the output of a pointwise channel map of
  spikes (a 1x1 convolution, then channel slices and zero pads: the Elastic tokenizer's
  compression conv) becomes one conv on the spikes with the composed weights ``W·A``. Why: a
  weighted sum of a weighted sum is one weighted sum; on chip the intermediate current has no
  neuron to live in.
- :func:`sums_as_synapses` — ``Sum``/``Mean`` over axes of spikes or counts that only neurons or
  currents read (SDT's talking-heads column sum of AND spikes) becomes a unit-weight (``1/N``)
  ``Linear`` over the reduced axes, moved last by a ``Permute``/``Reshape`` of the spikes.
- :func:`distribute_spike_sums` — a synaptic op reading a sum of spike tensors (a SEW residual:
  ``Add`` and re-indexing over spikes) becomes one copy of the op per spike source and an
  ``Add`` of their currents: one projection per source, ``k×`` synapse memory, no multiply.
  Each copy shifts its own sum by the weight exponent, which is what ``k`` Lava ``Dense``
  processes compute (each floors its own sum), so the deployed semantics is exact by
  construction whatever the exponent.
- :func:`mean_currents_as_gain` — a ``Mean`` of currents that reaches neurons through
  re-indexing only (SDT's head neuron reads the token mean of the residual stream) becomes a
  ``Sum``, and the neurons record ``input_gain = N``: a LIF with ``v_reset = 0`` fed ``N·x``
  with threshold ``N·v_th`` is the same neuron, and the sum is an integer on chip where the
  mean is not. The current ops before the mean are copied for it, so its larger range does
  not lower the scale of the stream the rest of the network reads.

:func:`prune_deployed` removes deployed values nothing reads any more. Every rewrite keeps node
names of synaptic ops (copies get ``<name>.sew<i>`` / ``<name>.for.<reader>``) and records what
it did in node meta ``rewritten``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind
from snncc.passes.infer_types import infer_node
from snncc.quant.streams import partition_nodes

SYNAPTIC = (O.Linear, O.Conv1d, O.Conv2d)
STRUCTURAL = (O.Reshape, O.Permute, O.Slice, O.Pad, O.Repeat)
_SPIKY = (Kind.SPIKE, Kind.COUNT)


def _add_like(g: Graph, name: str, op: O.Op, inputs: list[str], like: str, **meta: object) -> str:
    """Add node ``name`` computing ``op`` of ``inputs``, typed by inference, src/loc of ``like``."""
    name = g.unique_name(name)
    g.add(name, op, None, src=g.src(like), loc=g.loc(like), meta=dict(meta))
    for d, port in zip(inputs, op.in_ports, strict=True):
        g.connect(d, name, port)
    g.set_type(name, infer_node(g, name))
    return name


def _retype(g: Graph, nodes: list[str]) -> None:
    for n in nodes:
        g.set_type(n, infer_node(g, n))


# -- pointwise channel maps -----------------------------------------------------------------------
def _pointwise(op: O.Op) -> bool:
    """A 1x1 convolution without stride, padding, dilation or groups: a channel matrix."""
    if isinstance(op, O.Conv2d):
        return (
            op.weight.shape[2:] == (1, 1)
            and tuple(op.stride) == (1, 1)
            and tuple(op.padding) == (0, 0)
            and op.groups == 1
        )
    if isinstance(op, O.Conv1d):
        return op.weight.shape[2] == 1 and op.stride == 1 and op.padding == 0 and op.groups == 1
    return False


def fold_channel_maps(g: Graph, deployed: set[str]) -> list[str]:
    """Compose ``conv(channel_ops(conv1x1(x)))`` into one conv on ``x``; returns the folded convs.

    Requires: ``x`` spikes or counts; the 1x1 conv and every op between read by one node only;
              the channel ops are ``Slice``/``Pad`` on axis 0 (channels); the reading conv has
              ``groups = 1``; the 1x1 conv has no bias, or the reader has no padding (a bias map
              through zero padding differs at the border, so it is no per-channel bias).
    Ensures:  the reader computes the same linear map on ``x`` with weight
              ``W'[o, i, ...] = Σ_c W[o, c, ...] · A[c, i]`` (``A`` the composed channel matrix)
              and bias ``b + Σ W·b1``; the intermediate nodes are left without readers.
    """
    done = []
    for n in g.topo_order():
        op = g.op(n)
        if n not in deployed or not isinstance(op, (O.Conv1d, O.Conv2d)) or op.groups != 1:
            continue
        chain, d = [], g.inputs_of(n)[0]
        while isinstance(g.op(d), (O.Slice, O.Pad)) and len(g.users(d)) == 1:
            chain.append(d)
            d = g.inputs_of(d)[0]
        first = g.op(d)
        if not (_pointwise(first) and len(g.users(d)) == 1 and d in deployed):
            continue
        (x,) = g.inputs_of(d)
        if g.type(x).kind not in (*_SPIKY, Kind.GRADED):
            continue
        rank = len(g.type(d).shape)
        if any(g.op(c).axis % rank != 0 for c in chain):
            continue
        b1 = first.bias
        has_bias = b1 is not None and np.any(np.asarray(b1) != 0)
        pad = op.padding if isinstance(op, O.Conv2d) else (op.padding,)
        if has_bias and any(p > 0 for p in pad):
            continue
        a = np.asarray(first.weight, np.float64).reshape(first.weight.shape[:2])  # [C_mid, C_in]
        bias1 = np.zeros(a.shape[0]) if b1 is None else np.asarray(b1, np.float64)
        for c in reversed(chain):  # apply the channel ops in data-flow order
            a, bias1 = _channel_op(g.op(c), a), _channel_op(g.op(c), bias1[:, None])[:, 0]
        w = np.asarray(op.weight, np.float64)
        folded = np.einsum("oc...,ci->oi...", w, a)
        bias = None if op.bias is None else np.asarray(op.bias, np.float64)
        if has_bias:
            extra = np.einsum("oc...,c->o", w, bias1)
            bias = extra if bias is None else bias + extra
        g.set_op(n, op.replace(weight=folded, bias=bias))
        g.rewire(n, "in", x)
        g.node_meta(n)["rewritten"] = {"folded_channel_map": [d, *reversed(chain)]}
        done.append(n)
    return done


def _channel_op(op: O.Op, a: np.ndarray) -> np.ndarray:
    """A channel ``Slice``/``Pad`` applied to the rows of ``a``."""
    if isinstance(op, O.Slice):
        return a[op.start : op.stop : op.step]
    return np.pad(a, ((op.before, op.after), (0, 0)))


# -- sums of spikes read as currents ------------------------------------------------------------
def sums_as_synapses(g: Graph, deployed: set[str]) -> list[str]:
    """Rewrite ``Sum``/``Mean`` of spikes or counts read only as currents into a ``Linear``.

    Requires: the value feeds neurons or current ops only (no spike product reads it).
    Ensures:  ``Permute`` (reduced axes last) → ``Reshape [..., N]`` → ``Linear`` with weight
              ``1`` (Sum) or ``1/N`` (Mean) of shape ``[1, N]`` → ``Reshape`` to the original
              output shape; the node keeps its name on the ``Linear`` (a stream entry).
    """
    done = []
    for n in g.topo_order():
        op = g.op(n)
        if n not in deployed or not isinstance(op, (O.Sum, O.Mean)):
            continue
        (x,) = g.inputs_of(n)
        if g.type(x).kind not in _SPIKY:
            continue
        if not _read_as_current(g, n):
            continue
        shape = g.type(x).shape
        axes = sorted({a % len(shape) for a in op.axes})
        keep = [a for a in range(len(shape)) if a not in axes]
        size = math.prod(shape[a] for a in axes)
        out_shape = g.type(n).shape
        src = x
        perm = tuple(keep + axes)
        if perm != tuple(range(len(shape))):
            src = _add_like(g, f"{n}.reduce_last", O.Permute(perm), [src], n)
        rows = tuple(shape[a] for a in keep) + (size,)
        src = _add_like(g, f"{n}.rows", O.Reshape(rows), [src], n)
        w = np.full((1, size), 1.0 if isinstance(op, O.Sum) else 1.0 / size)
        out = g.unique_name(f"{n}.out")
        g.add(out, O.Reshape(tuple(out_shape)), g.type(n), src=g.src(n), loc=g.loc(n))
        g.replace_uses(n, out)
        g.set_op(n, O.Linear(weight=w))
        g.rewire(n, "in", src)
        g.connect(n, out)
        _retype(g, [n, out])
        g.node_meta(n)["rewritten"] = {"reduction_as_synapse": op.kind, "axes": axes}
        done.append(n)
    return done


def _read_as_current(g: Graph, n: str) -> bool:
    """Every reader of ``n`` is a neuron, re-indexing leading to neurons, or an ``Add`` of
    currents: so ``n`` may become a current without creating a current x spike product."""
    users = g.users(n)
    for u, _ in users:
        op = g.op(u)
        if op.NEURON:
            continue
        if isinstance(op, STRUCTURAL) and _neurons_through_reindexing(g, u):
            continue
        others = [d for d in g.inputs_of(u) if d != n]
        if isinstance(op, O.Add) and all(g.type(d).kind is Kind.CURRENT for d in others):
            continue
        return False
    return bool(users)


# -- SEW residuals ------------------------------------------------------------------------------
class _SpikeTerms:
    """Spike-valued nodes whose sum is a given count (memoised; re-indexing copied per leaf)."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.memo: dict[str, list[str] | None] = {}

    def __call__(self, n: str) -> list[str] | None:
        if n not in self.memo:
            self.memo[n] = self._terms(n)
        return self.memo[n]

    def _terms(self, n: str) -> list[str] | None:
        g, t = self.g, self.g.type(n)
        if t.kind is Kind.SPIKE:
            return [n]
        op, ins = g.op(n), g.inputs_of(n)
        if isinstance(op, O.Add) and all(g.type(d).shape == t.shape for d in ins):
            parts = [self(d) for d in ins]
            return None if any(p is None for p in parts) else [x for p in parts for x in p]
        if isinstance(op, STRUCTURAL):
            leaves = self(ins[0])
            if leaves is None:
                return None
            return [
                _add_like(g, f"{n}.sew{i}", op, [leaf], n, rewritten={"sew_copy_of": n})
                for i, leaf in enumerate(leaves)
            ]
        return None


def distribute_spike_sums(g: Graph, deployed: set[str]) -> list[str]:
    """One copy of each synaptic op per spike source of the count it reads (SEW residuals).

    Requires: the count is ``Add``/re-indexing over spike tensors of equal shape.
    Ensures:  op ``e`` reads the first source; copies ``e.sew1 …`` read the others; ``e.sew_sum``
              (an ``Add`` of currents) takes over ``e``'s readers; the float value is unchanged.
    """
    terms = _SpikeTerms(g)
    done = []
    for e in g.topo_order():
        if e not in deployed or not isinstance(g.op(e), SYNAPTIC):
            continue
        (d,) = g.inputs_of(e)
        if g.type(d).kind is not Kind.COUNT:
            continue
        leaves = terms(d)
        if not leaves or len(leaves) < 2:
            continue
        op = g.op(e)
        joined = g.unique_name(f"{e}.sew_sum")
        g.add(joined, O.Add(n=len(leaves)), g.type(e), src=g.src(e), loc=g.loc(e))
        g.replace_uses(e, joined)
        g.rewire(e, "in", leaves[0])
        copies = [e] + [
            _add_like(g, f"{e}.sew{i}", op, [leaf], e, rewritten={"sew_copy_of": e})
            for i, leaf in enumerate(leaves[1:], start=1)
        ]
        for i, c in enumerate(copies):
            g.connect(c, joined, f"in{i}")
        g.node_meta(e)["rewritten"] = {"sew_sources": leaves}
        done.append(e)
    return done


# -- means of currents read by neurons -----------------------------------------------------------
def _neurons_through_reindexing(g: Graph, n: str) -> list[str] | None:
    """Neurons reached from ``n`` through re-indexing only; None if another op is on the way."""
    found: list[str] = []
    for u, _ in g.users(n):
        op = g.op(u)
        if op.NEURON:
            found.append(u)
        elif isinstance(op, STRUCTURAL):
            more = _neurons_through_reindexing(g, u)
            if more is None:
                return None
            found.extend(more)
        else:
            return None
    return found


def mean_currents_as_gain(g: Graph, deployed: set[str]) -> list[str]:
    """``Mean`` of currents read only by neurons (through re-indexing) becomes a private ``Sum``.

    Ensures: the current ops before the mean are copied (``<name>.for.<mean>``, reading the
             same spikes), the mean reads the copy and becomes a ``Sum`` over the same axes, and
             each neuron it reaches has node meta ``input_gain`` multiplied by ``N``.
    """
    done = []
    for m in g.topo_order():
        op = g.op(m)
        if m not in deployed or not isinstance(op, O.Mean):
            continue
        (x,) = g.inputs_of(m)
        if g.type(x).kind is not Kind.CURRENT:
            continue
        neurons = _neurons_through_reindexing(g, m)
        if not neurons:
            continue
        copy = _copy_current_cone(g, x, m, deployed)
        g.rewire(m, "in", copy)
        rank = len(g.type(x).shape)
        size = math.prod(g.type(x).shape[a % rank] for a in set(op.axes))
        g.set_op(m, O.Sum(axes=op.axes, keepdim=op.keepdim))
        for n in neurons:
            meta = g.node_meta(n)
            meta["input_gain"] = int(meta.get("input_gain", 1)) * size
        g.node_meta(m)["rewritten"] = {"mean_as_sum": size, "gain_on": neurons}
        done.append(m)
    return done


def _copy_current_cone(g: Graph, x: str, reader: str, deployed: set[str]) -> str:
    """Copy the deployed current ops feeding ``x`` (down to spike-side values); returns x's copy."""
    made: dict[str, str] = {}

    def copy(n: str) -> str:
        if n not in deployed or g.type(n).kind is not Kind.CURRENT or g.op(n).NEURON:
            return n
        if n not in made:
            ins = [copy(d) for d in g.inputs_of(n)]
            made[n] = _add_like(
                g, f"{n}.for.{reader}", g.op(n), ins, n, rewritten={"copy_of": n, "for": reader}
            )
        return made[n]

    return copy(x)


# -- clean-up ---------------------------------------------------------------------------------
def prune_deployed(g: Graph, keep: Callable[[str], bool] | None = None) -> list[str]:
    """Remove nodes of the deployed part that nothing reads (and are not outputs)."""
    removed = []
    changed = True
    while changed:
        changed = False
        deployed = partition_nodes(g)[0] | _dead_candidates(g)
        for n in reversed(g.topo_order()):
            if n in deployed and not g.users(n) and n not in g.outputs and not g.op(n).NEURON:
                if keep is None or not keep(n):
                    g.remove(n)
                    removed.append(n)
                    changed = True
    return removed


def _dead_candidates(g: Graph) -> set[str]:
    """Non-input nodes without readers (a rewrite may leave them outside every path)."""
    return {n for n in g.nodes() if not g.users(n) and not isinstance(g.op(n), O.Input)}
