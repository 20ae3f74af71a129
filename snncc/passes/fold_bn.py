"""``fold_bn``: fold inference batch norms into the synaptic op that feeds them.

Neuromorphic cores have no per-channel affine stage between synapses and neurons, so a BN left
standing is a current op that cannot be deployed. A BN is affine per channel, and so is the output
channel of a Linear/Conv, so the two compose into one synaptic op (architecture.md, "Lowering
decisions")::

    s  = gamma / sqrt(var + eps)                  (per output channel)
    W' = W * s                                    (row / filter o scaled by s[o])
    b' = (b - mean) * s + beta                    (b = 0 when the op has no bias)

Spikformer's CIFAR code normalises token features with ``Linear → transpose → BatchNorm1d →
transpose``; the pass looks through such Permute chains and maps the BN axis back through each
permutation to the axis of the synaptic op's output. A BN it cannot fold stays, and the record
says why.
"""

from __future__ import annotations

import numpy as np

from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext
from snncc.passes.rewrite import bypass, sole_user

#: Synaptic ops with weights a BN can fold into.
FOLDABLE = (O.Linear, O.Conv1d, O.Conv2d)


def _channel_axis(op: O.Op, rank: int) -> int:
    """The output-channel axis of a synaptic op's per-sample output of rank ``rank``."""
    return rank - 1 if isinstance(op, O.Linear) else 0


def _find_producer(g: Graph, bn: str) -> tuple[str | None, int, list[str], str]:
    """Walk from ``bn`` up through single-use Permutes to the op that produces its input.

    Returns ``(producer, axis, permutes, reason)``: the producer, the BN axis expressed as an axis
    of the producer's output, the Permute nodes passed (nearest the producer first), and why the
    BN cannot be folded ("" when it can).
    """
    op = g.op(bn)
    node = g.inputs_of(bn)[0]
    axis = op.axis % len(g.type(node).shape)
    permutes: list[str] = []
    consumer = bn
    while True:
        if sole_user(g, node) != consumer:
            what = "is a graph output" if node in g.outputs else "has other users"
            return None, axis, permutes, f"{node} {what}"
        if not isinstance(g.op(node), O.Permute):
            break
        axis = g.op(node).dims[axis]  # output axis a of a Permute is its input axis dims[a]
        permutes.insert(0, node)
        consumer, node = node, g.inputs_of(node)[0]
    syn = g.op(node)
    if not isinstance(syn, FOLDABLE):
        return None, axis, permutes, f"input comes from {syn.kind} {node}, not Linear/Conv"
    want = _channel_axis(syn, len(g.type(node).shape))
    if axis != want:
        return (
            None,
            axis,
            permutes,
            (f"BN axis maps to axis {axis} of {syn.kind} {node}, not its channel axis {want}"),
        )
    return node, axis, permutes, ""


def fold_into(syn: O.Op, bn: O.BatchNorm) -> O.Op:
    """The synaptic op ``syn`` followed by ``bn`` as one op (channel axes already matched)."""
    scale = np.asarray(bn.weight) / np.sqrt(np.asarray(bn.running_var) + bn.eps)
    weight = np.asarray(syn.weight)
    dtype = np.result_type(weight, scale)
    bias = np.zeros(weight.shape[0], dtype) if syn.bias is None else np.asarray(syn.bias)
    new_bias = (bias - np.asarray(bn.running_mean)) * scale + np.asarray(bn.bias)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    return syn.replace(
        weight=(weight * scale.reshape(shape)).astype(dtype),
        bias=new_bias.astype(dtype),
    )


def fold_bn(g: Graph, ctx: PassContext) -> Graph:
    """Fold each BatchNorm into the Linear/Conv1d/Conv2d that feeds it, through Permutes.

    Requires: lint-clean graph with types on every node (ranks are read from types).
    Ensures:  a BN is removed when its input comes, through single-use Permutes only, from a
              single-use Linear/Conv whose output-channel axis is the BN axis; that op's weight and
              bias absorb the BN; the graph outputs compute the same values (up to rounding).
              Every BN left standing has a decision line with the reason.
    """
    for bn in g.topo_order():
        if not isinstance(g.op(bn), O.BatchNorm):
            continue
        producer, _, permutes, reason = _find_producer(g, bn)
        if producer is None:
            ctx.count("kept")
            ctx.decide(f"kept BatchNorm {bn}: {reason}")
            continue
        bn_op = g.op(bn)
        if not bypass(g, bn):  # not expected: the BN's driver is single-use and not an output
            ctx.count("kept")
            ctx.decide(f"kept BatchNorm {bn}: could not be removed")
            continue
        g.set_op(producer, fold_into(g.op(producer), bn_op))
        ctx.count("folded")
        via = f" through {', '.join(permutes)}" if permutes else ""
        ctx.decide(f"folded BatchNorm {bn} into {g.op(producer).kind} {producer}{via}")
    return g
