"""Which part of a graph runs on chip, and the *streams* that feed its neurons.

snncc's split (docs/quantization.md): the *deployed* part is every neuron and every op on a path
between two neurons; ops before the first neurons (*encoding*) and after the last ones
(*readout*) run on the host in float. On chip a neuron's input current is the sum over its
*stream*: the connected set of deployed CURRENT-valued ops (synaptic ops, Add, structural
re-indexing, Scale, and dynamic products with one current operand) between upstream spikes or
counts and the neuron. One stream can feed several neurons (Spikingformer's membrane shortcut
feeds the LIFs of every later block), so quantization picks one scale per stream.

The float facts a quantizer needs per stream are computed here by evaluating the stream's ops
with the float kernels on one sample: the constant (bias) current at each neuron with every
source at zero, and the worst-case positive and negative per-step input with every source at
its maximum and only positive (or only negative) weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind
from snncc.reference.context import KernelCtx
from snncc.reference.float_kernels import KERNELS as FLOAT_KERNELS

SYNAPTIC = (O.Linear, O.Conv1d, O.Conv2d)
LINEAR_STRUCT = (O.Add, O.Reshape, O.Permute, O.Pad, O.Slice, O.Repeat, O.Delay, O.Sum)
PRODUCTS = (O.MatMul, O.Mul)
_SPIKY = (Kind.SPIKE, Kind.COUNT)
#: What a synaptic entry may read: spikes, counts, or graded events of a programmable neuron.
_EVENTS = (Kind.SPIKE, Kind.COUNT, Kind.GRADED)
STRUCTURAL = (O.Reshape, O.Permute, O.Pad, O.Slice, O.Repeat)


def _error(node: str, problem: str, hint: str) -> SnnccError:
    return SnnccError(f"{node}: {problem}", code="QNT001", hint=hint, exit_code=2)


@dataclass
class Stream:
    """One connected set of deployed current ops and the neurons it feeds."""

    index: int
    nodes: list[str]  # deployed CURRENT nodes, topological order (empty for a host stream)
    neurons: list[str]
    entries: list[str] = field(default_factory=list)  # synaptic ops / Scale reading spikes
    host: str | None = None  # the encoding node feeding a host stream


@dataclass
class Split:
    """Deployed / encoding / readout node sets and the streams of the deployed part."""

    deployed: set[str]
    encoding: set[str]
    readout: set[str]
    streams: list[Stream]


def _closure(g: Graph, starts: list[str], step: Callable[[str], list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [n for s in starts for n in step(s)]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(step(n))
    return seen


def partition_nodes(g: Graph) -> tuple[set[str], set[str], set[str]]:
    """``(deployed, encoding, readout)``: on chip, before the first neurons, after the last."""
    neurons = [n for n in g.topo_order() if g.op(n).NEURON]
    after = _closure(g, neurons, lambda n: [u for u, _ in g.users(n)])
    before = _closure(g, neurons, g.inputs_of)
    deployed = (after & before) | set(neurons)
    encoding = {n for n in g.nodes() if n not in after and n not in deployed}
    readout = {n for n in g.nodes() if n not in deployed and n not in encoding}
    return deployed, encoding, readout


def split_graph(g: Graph) -> Split:
    """Classify every node and group the deployed current ops into streams."""
    neurons = [n for n in g.topo_order() if g.op(n).NEURON]
    deployed, encoding, readout = partition_nodes(g)
    current = [n for n in g.topo_order() if n in deployed and g.type(n).kind is Kind.CURRENT]
    parent = {n: n for n in current}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n in current:
        for d in g.inputs_of(n):
            if d in parent:
                parent[find(d)] = find(n)
    groups: dict[str, list[str]] = {}
    for n in current:
        groups.setdefault(find(n), []).append(n)
    streams: list[Stream] = []
    by_root: dict[str, Stream] = {}
    for root, nodes in groups.items():
        by_root[root] = Stream(len(streams), nodes, [])
        streams.append(by_root[root])
    host_streams: dict[str, Stream] = {}
    for n in neurons:
        (d,) = g.inputs_of(n)
        if d in parent:
            by_root[find(d)].neurons.append(n)
        elif d in encoding:
            if d not in host_streams:
                host_streams[d] = Stream(len(streams), [], [], host=d)
                streams.append(host_streams[d])
            host_streams[d].neurons.append(n)
        else:
            raise _error(n, f"reads {g.type(d).kind_str()} {d} directly", "feed it via a synapse")
    for s in streams:
        s.entries = [n for n in s.nodes if _classify(g, n) == "entry"]
    return Split(deployed, encoding, readout, streams)


def _classify(g: Graph, n: str) -> str:
    """``entry`` (reads spikes/counts/graded events), ``linear``, ``product`` or ``max``.

    ``max``: a max-pool of currents (SDT's and Ge²mS-T's tokenizers pool BN outputs); it is not
    linear, so lowering computes it with the synaptic ops before it in one exact integer
    program, and quantization moves the stream's bias past it only where that is exact
    (:func:`check_max_pools`). Errors (``QNT001``) for everything else.
    """
    op, ins = g.op(n), [g.type(d) for d in g.inputs_of(n)]
    spiky = [t.kind in _SPIKY for t in ins]
    kinds = ", ".join(t.kind_str() for t in ins)
    if isinstance(op, SYNAPTIC) and all(t.kind in _EVENTS for t in ins):
        return "entry"
    if isinstance(op, O.MaxPool2d) and not any(spiky):
        return "max"
    if isinstance(op, (*SYNAPTIC, O.Scale)):
        if all(spiky):
            return "entry"
        if isinstance(op, O.Scale):
            raise _error(n, f"Scale of a {kinds} value on chip", "fold the factor into the weights")
        raise _error(
            n, f"{op.kind} reads a {kinds} value on chip (not spike-driven)", "add a neuron"
        )
    if isinstance(op, LINEAR_STRUCT):
        if any(spiky):
            raise _error(n, "adds spikes to a current on chip", "project the spikes by a synapse")
        return "linear"
    if isinstance(op, PRODUCTS) and sum(spiky) == 1:
        return "product"
    if isinstance(op, O.AvgPool2d):  # only one over currents is left after lower_avg_pools
        raise _error(
            n,
            f"AvgPool2d of a {kinds} value on chip (an average of currents is not driven by "
            "spikes)",
            "pool the spikes after the neuron instead (avg-pool of spikes lowers to a conv)",
        )
    raise _error(
        n,
        f"{op.kind} of {kinds} inputs cannot run on chip: it is neither a synaptic op on spikes, "
        "a linear re-indexing of a current, nor a spike product",
        "move it after a neuron, or out of the network between neurons",
    )


def evaluate_stream(
    g: Graph,
    stream: Stream,
    source: Callable[[str], np.ndarray],
    transform: Callable[[str, O.Op], O.Op],
) -> dict[str, np.ndarray]:
    """Evaluate the stream's ops on one sample (``T = B = 1``) with float kernels.

    ``source(node)`` gives the per-sample value of a driver outside the stream; ``transform``
    may replace an op (e.g. keep only positive weights). Returns every stream node's value.
    """
    values: dict[str, np.ndarray] = {}
    for n in stream.nodes:
        xs = [values[d] if d in values else source(d)[None, None] for d in g.inputs_of(n)]
        ctx = KernelCtx(node=n, lead=2, timesteps=1, batch=1, out_type=g.type(n))
        values[n] = FLOAT_KERNELS[type(g.op(n))](transform(n, g.op(n)), xs, ctx)
    return {n: v[0, 0] for n, v in values.items()}


def value_unit(g: Graph, d: str) -> tuple[float, int]:
    """``(unit, peak)`` of a spike-side value: one integer of it is worth ``unit`` in the float
    model, and it carries integers up to ``peak`` per step.

    Spikes: ``(1, 1)``; counts: ``(1, bound)``; the graded events of an ExpG-IF neuron (found
    through re-indexing) carry the payload ``2^(K-1-k)`` in units of ``theta·2^-K`` (its float
    output is ``s·theta·2^-(k+1)``), so ``(theta·2^-K, 2^(K-1))``; once quantized, the
    :class:`~snncc.ir.ops.LoihiExpGIF` keeps that unit in meta ``quant.payload_unit``.
    """
    t = g.type(d)
    if t.kind is Kind.SPIKE:
        return 1.0, 1
    if t.kind is Kind.COUNT:
        return 1.0, int(t.bound or 0)
    origin = d
    while isinstance(g.op(origin), STRUCTURAL):
        origin = g.inputs_of(origin)[0]
    op = g.op(origin)
    if isinstance(op, O.ExpGIF):
        return math.ldexp(float(op.theta), -int(op.bits)), 1 << (int(op.bits) - 1)
    if isinstance(op, O.LoihiExpGIF):
        return float(g.node_meta(origin)["quant"]["payload_unit"]), 1 << (int(op.bits) - 1)
    raise SnnccError(
        f"{d}: {t.kind_str()} value not produced by an ExpG-IF neuron has no integer unit",
        code="QNT001",
        hint="graded values on chip come from ExpG-IF neurons",
        exit_code=2,
    )


def entry_unit(g: Graph, e: str) -> float:
    """The float value of one integer of what synaptic entry ``e`` reads (1 but for graded)."""
    return value_unit(g, g.inputs_of(e)[0])[0]


def _source_max(g: Graph) -> Callable[[str], np.ndarray]:
    """Largest integer per element of a stream's driver (the entries' weights carry units)."""

    def value(d: str) -> np.ndarray:
        return np.full(g.type(d).shape, float(value_unit(g, d)[1]))

    return value


def stream_bias(g: Graph, stream: Stream) -> dict[str, np.ndarray]:
    """Constant current at every stream node with all spike sources silent (BN-folded biases)."""

    def no_weights(n: str, op: O.Op) -> O.Op:
        return op

    vals = evaluate_stream(g, stream, lambda d: np.zeros(g.type(d).shape), no_weights)
    for n in stream.nodes:
        if isinstance(g.op(n), PRODUCTS):
            for d in g.inputs_of(n):
                if d in vals and np.any(vals[d] != 0):
                    raise _error(n, "dynamic product of a biased current", "remove the bias")
        if isinstance(g.op(n), O.MaxPool2d):
            _check_bias_commutes(g, n, vals[g.inputs_of(n)[0]])
    return vals


def _check_bias_commutes(g: Graph, n: str, bias: np.ndarray) -> None:
    """A max-pool of currents with the bias moved into the neuron: exact iff the bias is the
    same at every input of each window (``max(x + b) = max(x) + b``), e.g. a per-channel
    BN shift. Refuses (``QNT001``) a bias that varies inside a window."""
    ctx = KernelCtx(node=n, lead=1, timesteps=1, batch=1, out_type=g.type(n))
    pool = FLOAT_KERNELS[O.MaxPool2d]
    hi = pool(g.op(n), [bias[None]], ctx)
    lo = -pool(g.op(n), [-bias[None]], ctx)
    if not np.array_equal(hi, lo):
        raise _error(
            n,
            "max-pool of currents whose constant (bias) part varies inside a pooling window: "
            "the neuron's bias cannot be moved past the max exactly",
            "pool after the neuron, or use a per-channel bias",
        )


def _fan_in(op: O.Op) -> int:
    """Weights summed into one output of a synaptic op (``in`` of a Linear, ``in/g·k·k`` of a
    conv)."""
    w = np.asarray(op.weight)
    return int(np.prod(w.shape[1:])) if w.ndim > 1 else 1


def grid_up(w: np.ndarray, terms: int) -> np.ndarray:
    """Non-negative ``w`` rounded *up* to a power-of-two grid on which a sum of ``terms``
    products ``w_i·x_i`` (``x_i`` integers, ``terms`` counting their size too) is exact.

    Why: the worst-case input of a stream decides its power-of-two scale, and a float matrix
    product's last bit depends on the summation order, which BLAS chooses per CPU (AVX2 and
    AVX-512 kernels differ). With every weight a multiple of ``u = 2^(E - g)`` (``2^E`` above the
    largest weight) and ``g = 53 - bit_length(terms)``, every partial sum is an integer multiple
    of ``u`` below ``2^53·u``, hence exactly representable: the product is the same on every CPU.
    Rounding up keeps the bound an upper bound; it grows by at most ``terms·u``, about
    ``terms²·2^-52`` of the largest weight, the size of the float sum's own error.
    """
    top = float(np.max(w, initial=0.0))
    if top <= 0.0:
        return w
    e = math.frexp(top)[1]
    unit_exp = e - (53 - max(1, int(terms)).bit_length())
    if unit_exp < -1070:  # weights near the subnormal range: no grid, keep the float values
        return w
    unit = math.ldexp(1.0, unit_exp)
    return np.ceil(w / unit) * unit


def stream_bounds(g: Graph, stream: Stream) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Worst-case positive and negative per-step input (biases excluded) at every stream node.

    The entries' signed weights are first put on an exact grid (:func:`grid_up`), so that the
    bound, and the scale decided from it, does not depend on the CPU's summation order.
    Downstream adds and re-indexing are elementwise (IEEE, the same everywhere).
    """
    source = _source_max(g)

    def signed(sign: float) -> Callable[[str, O.Op], O.Op]:
        def transform(n: str, op: O.Op) -> O.Op:
            if isinstance(op, SYNAPTIC):
                unit = entry_unit(g, n) if n in stream.entries else 1.0
                w = np.maximum(sign * np.asarray(op.weight, np.float64) * unit, 0.0)
                if n in stream.entries:
                    peak = max(int(np.max(source(d), initial=0.0)) for d in g.inputs_of(n))
                    w = grid_up(w, _fan_in(op) * max(1, peak))
                return op.replace(weight=w, bias=None)
            if isinstance(op, O.Scale) and n in stream.entries:
                return op.replace(factor=max(sign * float(op.factor), 0.0))
            if isinstance(op, O.Scale):
                return op.replace(factor=abs(float(op.factor)))
            return op

        return transform

    pos = evaluate_stream(g, stream, source, signed(1.0))
    neg = evaluate_stream(g, stream, source, signed(-1.0))
    return pos, neg


def stream_divisor(g: Graph, stream: Stream) -> int:
    """``D`` when every entry is an average pool lowered with weights ``1/D``, else 1.

    Why: a stream scale ``c = D·2^k`` makes those weights exact integers (``c/D = 2^k``) and
    keeps thresholds in the same exact units; any other entry keeps the power-of-two scale.
    """
    divs = {(g.node_meta(n).get("lowered_from") or {}).get("divisor") for n in stream.entries}
    if len(divs) != 1 or None in divs:
        return 1
    return int(divs.pop())


def neuron_inputs(g: Graph, stream: Stream, vals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The value at each neuron's input, broadcast to the neuron's shape."""
    return {n: np.broadcast_to(vals[g.inputs_of(n)[0]], g.type(n).shape) for n in stream.neurons}
