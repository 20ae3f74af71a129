"""``infer_types``: recompute every node's TensorType (shape, kind, bound, temporal) in order.

Kinds are what the spike-driven verifier and the lowering read, so they must be derived, not
trusted from the frontend: after ``fold_bn`` removed a BN or ``canonicalize`` removed a
``Scale(1.0)``, a consumer may now read spikes where it used to read currents.

Bounds matter for hardware: a ``COUNT(k)`` fed to a synaptic op lowers as k spike projections (or
a graded spike of ``ceil(log2(k+1))`` bits), so the bound must be tight and provably correct.
SPIKE counts as bound 1 in every rule. Examples: a SEW residual of two spike tensors is
``COUNT(2)``; Spikformer's stream of L blocks with two spike residuals each ends at
``COUNT(2L+1)``; spiking attention ``Q @ Kᵀ`` with head dim d is ``COUNT(d)`` and ``(Q Kᵀ) V``
over N tokens is ``COUNT(N d)``.
"""

from __future__ import annotations

from collections.abc import Callable

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.shapes import output_shape
from snncc.ir.types import Kind, TensorType
from snncc.passes.manager import PassContext

KindBound = tuple[Kind, int | None]
_SPIKY = (Kind.SPIKE, Kind.COUNT)
CURRENT: KindBound = (Kind.CURRENT, None)


def _bound(t: TensorType) -> int:
    """The largest value of a SPIKE (1) or COUNT (its bound) tensor."""
    if t.kind is Kind.SPIKE:
        return 1
    if t.bound is None:
        raise SnnccError(f"COUNT value without a bound ({t})", code="TY001", exit_code=70)
    return int(t.bound)


def _spiky(ins: list[TensorType]) -> bool:
    return all(t.kind in _SPIKY for t in ins)


def _keep(op: O.Op, ins: list[TensorType]) -> KindBound:
    return ins[0].kind, ins[0].bound


def _spike(op: O.Op, ins: list[TensorType]) -> KindBound:
    return Kind.SPIKE, None


def _graded(op: O.ExpGIF, ins: list[TensorType]) -> KindBound:
    return Kind.GRADED, int(op.bits)


def _programmable(op: O.LoihiExpGIF, ins: list[TensorType]) -> KindBound:
    return (Kind.SPIKE, None) if op.bits == 1 else (Kind.GRADED, int(op.bits))


def _current(op: O.Op, ins: list[TensorType]) -> KindBound:
    return CURRENT


def _input(op: O.Input, ins: list[TensorType]) -> KindBound:
    return op.kind_in, None


def _maxpool(op: O.MaxPool2d, ins: list[TensorType]) -> KindBound:
    return _keep(op, ins) if _spiky(ins) else CURRENT


def _add(op: O.Add, ins: list[TensorType]) -> KindBound:
    return (Kind.COUNT, sum(_bound(t) for t in ins)) if _spiky(ins) else CURRENT


def _mul(op: O.Mul, ins: list[TensorType]) -> KindBound:
    kinds = sorted(t.kind.value for t in ins)
    if kinds == ["spike", "spike"]:
        return Kind.SPIKE, None
    if kinds == ["count", "spike"]:
        return Kind.COUNT, max(_bound(t) for t in ins)
    return CURRENT


def _matmul(op: O.MatMul, ins: list[TensorType]) -> KindBound:
    if not _spiky(ins):
        return CURRENT
    a, b = ins
    return Kind.COUNT, _bound(a) * _bound(b) * a.shape[-1]  # K products of at most a·b each


def _sum(op: O.Sum, ins: list[TensorType]) -> KindBound:
    if not _spiky(ins):
        return CURRENT
    (x,) = ins
    n = 1
    for a in {a % len(x.shape) for a in op.axes}:
        n *= x.shape[a]
    return Kind.COUNT, _bound(x) * n


KindRule = Callable[..., KindBound]

KIND_RULES: dict[type[O.Op], KindRule] = {
    O.Input: _input,  # what the host feeds: pixels (current) or event frames (spike)
    O.LIF: _spike,  # neurons emit 0/1
    O.IF: _spike,
    O.ExpGIF: _graded,  # one event per step carrying bit k's weight: a K-bit graded spike
    O.MaxPool2d: _maxpool,  # max of spikes = OR (spike); max of counts <= bound; else current
    O.Reshape: _keep,  # structural re-indexing keeps values, so kind and bound
    O.Permute: _keep,
    O.Repeat: _keep,
    O.Slice: _keep,
    O.Pad: _keep,  # zero padding: 0 is a spike and a count
    O.Delay: _keep,  # a delayed value is the same value
    O.LoihiLIF: _spike,  # target neurons (quantize pass) emit 0/1
    O.LoihiExpGIF: _programmable,  # payload 1 (a spike) for one bit, else a graded event
    O.SpiNNakerLIF: _spike,
    O.Add: _add,  # spikes/counts: count, bound = sum of bounds; any current/graded: current
    O.Mul: _mul,  # spike*spike = AND (spike); spike*count(k) = count(k); else current
    O.MatMul: _matmul,  # spikes/counts: count, bound = bound_a * bound_b * K; else current
    O.Sum: _sum,  # spikes/counts: count, bound = bound * number of summed elements
    O.Scale: _current,  # arbitrary real factor
    O.Mean: _current,  # division makes fractions
    O.AvgPool2d: _current,
    O.TimeMean: _current,
    O.Linear: _current,  # weighted sums are currents
    O.Conv1d: _current,
    O.Conv2d: _current,
    O.BatchNorm: _current,  # affine per channel
}


def infer_node(g: Graph, name: str) -> TensorType:
    """The type of ``name`` computed from its op and its drivers' (already inferred) types."""
    op = g.op(name)
    ins = [g.type(d) for d in g.inputs_of(name)]
    rule = KIND_RULES.get(type(op))
    if rule is None:
        raise SnnccError(f"no kind rule for op {op.kind}", code="TY002", exit_code=70)
    shape = output_shape(op, [t.shape for t in ins])
    kind, bound = rule(op, ins)
    if isinstance(op, O.Input):
        temporal = True  # the host presents every input at every timestep
        old = g.type(name)
        if old is not None and old.kind is kind:
            bound = old.bound  # a COUNT/GRADED input's bound is declared, not derived
    else:
        temporal = all(t.temporal for t in ins) and not isinstance(op, O.TimeMean)
    return TensorType(shape, kind, bound, temporal)


def infer_types(g: Graph, ctx: PassContext) -> Graph:
    """Recompute the type of every node in topological order.

    Requires: every input port connected; acyclic graph; every op class has a rule in KIND_RULES.
    Ensures:  every node's type is its shape rule (``snncc.ir.shapes``), the kind/bound of
              ``KIND_RULES`` and the temporal flow (only TimeMean makes a static value); graph
              metadata is untouched.
    """
    for name in g.topo_order():
        try:
            t = infer_node(g, name)
        except SnnccError as e:
            e.message = f"{name} ({g.op(name).kind}): {e.message}"
            e.args = (e.message,)
            raise
        if t != g.type(name):
            ctx.count("retyped")
        g.set_type(name, t)
        ctx.count(f"kind_{t.kind.value}")
        if t.kind is Kind.COUNT:
            ctx.stats["max_count_bound"] = max(ctx.stats.get("max_count_bound", 0), t.bound)
    return g
