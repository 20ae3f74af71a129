"""Operation counts read off the graph: ANN-equivalent FLOPs per layer and the SSA attention term.

The rules are those of the Spikingformer energy code (``energy_consumption_calculation/ops.py``,
based on syops-counter; seed-models.md §1.3), expressed per sample and per timestep because IR
shapes have no T or B axis:

- Conv: ``k_h·k_w · C_in/groups · C_out · H_out·W_out`` (+ ``C_out·H_out·W_out`` with a bias);
  Conv1d the same with one spatial axis.
- Linear: ``rows · C_in · C_out`` (+ ``rows · C_out`` with a bias), ``rows`` = the product of the
  leading axes (tokens). The reference hook adds the bias once per leading-axis row of its
  ``[T·B, …]`` tensor instead of once per token; the difference is ``C_out·(N−1)`` per layer,
  below ``1/C_in`` of the layer's count.
- SSA attention, per block, assuming the order ``Q·(KᵀV)`` whatever order the model computes:
  ``T · h · N · d² · (min(fr_K, fr_V) + fr_Q)`` accumulates.

Pooling, BN and neurons are counted by the reference but excluded from its energy sum; so here.
Imports numpy and networkx only.
"""

from __future__ import annotations

from dataclasses import dataclass

from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.passes.verify_spike_driven import origin

#: Ops that enter the energy sum (the reference sums modules named "conv" or "head").
COSTED = (O.Linear, O.Conv1d, O.Conv2d)


def _prod(xs: tuple[int, ...] | list[int]) -> int:
    n = 1
    for x in xs:
        n *= int(x)
    return n


def layer_flops(g: Graph, name: str) -> int:
    """ANN-equivalent FLOPs of one Linear/Conv node, per sample and per timestep."""
    op, out = g.op(name), g.type(name).shape
    bias = op.bias is not None
    if isinstance(op, (O.Conv1d, O.Conv2d)):
        c_out, positions = out[0], _prod(out[1:])
        per_position = _prod(op.weight.shape[1:]) * c_out  # k·(C_in/groups)·C_out
        return per_position * positions + (c_out * positions if bias else 0)
    if isinstance(op, O.Linear):
        c_out, c_in = op.weight.shape
        rows = _prod(out[:-1])
        return rows * c_in * c_out + (rows * c_out if bias else 0)
    raise ValueError(f"layer_flops: {op.kind} is not a costed layer")  # internal misuse


@dataclass(frozen=True)
class Layer:
    """A costed synaptic layer: its FLOPs and the node whose values it reads."""

    node: str
    op: str
    flops: int  # per sample and timestep
    temporal: bool  # False: runs once per sample (a readout after TimeMean)
    input_node: str
    input_kind: str


def costed_layers(g: Graph) -> list[Layer]:
    """Every Linear/Conv1d/Conv2d node in topological order."""
    layers = []
    for n in g.topo_order():
        if isinstance(g.op(n), COSTED):
            src = g.inputs_of(n)[0]
            layers.append(
                Layer(
                    node=n,
                    op=g.op(n).kind,
                    flops=layer_flops(g, n),
                    temporal=g.type(n).temporal,
                    input_node=src,
                    input_kind=g.type(src).kind_str(),
                )
            )
    return layers


@dataclass(frozen=True)
class AttentionBlock:
    """One spiking self-attention: two chained MatMuls over Q, Kᵀ and V.

    ``q``, ``k``, ``v`` are the nodes producing the operands (looking through re-indexing and
    constant scales): their firing rates enter the attention term.
    """

    matmuls: tuple[str, str]
    q: str
    k: str
    v: str
    heads: int
    tokens: int
    head_dim: int
    order: str  # "Q(KᵀV)" or "(QKᵀ)V": what the model computes

    def ops(self, timesteps: int, fr_q: float, fr_k: float, fr_v: float) -> float:
        """``T · h · N · d² · (min(fr_K, fr_V) + fr_Q)`` (per sample)."""
        base = timesteps * self.heads * self.tokens * self.head_dim**2
        return base * (min(fr_k, fr_v) + fr_q)

    def dense_ops(self, timesteps: int) -> int:
        """The same term at firing rate 1 (each product a MAC): ``2 · T · h · N · d²``."""
        return 2 * timesteps * self.heads * self.tokens * self.head_dim**2


def _operands(g: Graph, mm: str) -> tuple[str, str]:
    a, b = g.inputs_of(mm)
    return origin(g, a, through_scale=True)[0], origin(g, b, through_scale=True)[0]


def attention_blocks(g: Graph) -> tuple[list[AttentionBlock], list[str]]:
    """Pair chained MatMuls into attention blocks; also return MatMuls left unpaired.

    The outer MatMul is the one with another MatMul as an operand. The three remaining leaves in
    expression order are Q, Kᵀ, V for both ``(Q Kᵀ) V`` and ``Q (Kᵀ V)``.
    """
    mms = [n for n in g.topo_order() if isinstance(g.op(n), O.MatMul)]
    blocks: list[AttentionBlock] = []
    used: set[str] = set()
    for outer in mms:
        a, b = _operands(g, outer)
        if isinstance(g.op(a), O.MatMul) and a not in used:
            inner = a
            qa, kb = _operands(g, inner)
            leaves, order = (qa, kb, b), "(QKᵀ)V"
        elif isinstance(g.op(b), O.MatMul) and b not in used:
            inner = b
            ka, vb = _operands(g, inner)
            leaves, order = (a, ka, vb), "Q(KᵀV)"
        else:
            continue
        q_operand = g.inputs_of(inner if order == "(QKᵀ)V" else outer)[0]
        shape = g.type(q_operand).shape
        used.update((inner, outer))
        blocks.append(
            AttentionBlock(
                matmuls=(inner, outer),
                q=leaves[0],
                k=leaves[1],
                v=leaves[2],
                heads=_prod(shape[:-2]),
                tokens=int(shape[-2]),
                head_dim=int(shape[-1]),
                order=order,
            )
        )
    return blocks, [m for m in mms if m not in used]
