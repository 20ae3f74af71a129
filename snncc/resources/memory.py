"""Memory model: what each deployed layer of a graph costs on a target, before partitioning.

A *layer* here is an on-chip unit of the deployed part of the graph (docs/budget.md):

- ``population``: a neuron op (LIF, IF);
- ``or``: a max-pool over spikes (a threshold neuron that fires on any input);
- ``and``: a spike product (``Mul``, and on SpiNNaker ``MatMul`` expanded into AND neurons);
- ``relay``: on Loihi 2, a graded relay population at a residual join read by two or more layers
  (the current is computed once and sent as graded spikes instead of duplicating the weights);
- ``dynamic``: on Loihi, a spike ``MatMul`` run as a custom process (not neurocore-native);
  one whose node meta ``attention`` is ``"and"`` is an ``and`` layer, as on SpiNNaker.

Each layer receives *projections*, found by walking its input *stream* (the CURRENT-valued ops
between upstream spikes and the layer: synaptic ops, Add, Scale and re-indexing) up to source
layers, graph inputs or host-computed values (the encoding part). Counts come from shapes and op
parameters only, so the float graph after ``FRONT_PIPELINE`` and the quantized graph give the
same numbers. Byte formulas per target live with the target (``snncc.backends.<t>.memory``);
this module owns the graph walk; fitting layers to cores is :mod:`snncc.resources.core_fit`. numpy +
networkx only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from snncc.diagnostics import SnnccError
from snncc.exact import ceil_div
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind
from snncc.resources.memory_geometry import (
    LavaForm,
    conv_geometry,
    conv_kernel,
    conv_sources,
    identity_form,
    lava_form,
    synaptic_counts,
    taps,
)

#: Ops that store (or imply unit) weights between spikes and a layer.
SYNAPTIC = (O.Linear, O.Conv1d, O.Conv2d, O.AvgPool2d, O.Sum, O.Mean)
#: Value-preserving ops on the spike side of a synaptic op (re-indexing, joins, scales).
SPIKE_SIDE = (O.Reshape, O.Permute, O.Repeat, O.Slice, O.Pad, O.Delay, O.Scale, O.Add)
#: Ops that keep consecutive elements consecutive (the ``group`` bound stays valid).
ORDER_KEEPING = (O.Reshape, O.Scale, O.Add, O.Delay, O.BatchNorm)
TARGETS = ("loihi", "spinnaker")  # the names; each one's description is snncc.targets
#: Re-exported: the geometry helpers lived here before :mod:`snncc.resources.memory_geometry`.
__all__ = [
    "SYNAPTIC", "TARGETS", "LavaForm", "LayerMemory", "Projection", "Unit", "conv_sources",
    "deployed_units", "find_units", "synaptic_counts",
]  # fmt: skip


def _ratio(num: int, den: int) -> Fraction:
    """``num / max(1, den)`` as an exact fraction (a multiplicity along a stream)."""
    return Fraction(int(num), max(1, int(den)))


@dataclass(frozen=True)
class Projection:
    """One incoming connection bundle of a layer.

    ``kind``: ``synaptic`` (weights stored by ``via``), ``direct`` (one-to-one from a layer or a
    spike input: graded relays, attention products into a neuron), ``operand`` (an AND neuron's
    or custom process's operand) or ``host`` (current injected by the host: the encoding part).
    ``rf``: most presynaptic sources of one post atom; ``fan_out``: most post atoms one source
    reaches; ``group``: consecutive post atoms sharing the same inputs (1 when unknown).
    """

    source: str
    via: str | None
    kind: str
    synapses: int
    n_pre: int
    rf: int
    fan_out: int
    group: int = 1
    delay: int = 0
    single_slice_source: bool = False  # a graph input: one pre-slice (host spike source)
    #: A convolution read directly (channel-major atoms): stored weights per output channel
    #: (``C_in/groups · kh · kw``) and post atoms per output channel; 0 when not a convolution.
    kernel: int = 0
    channel_atoms: int = 0
    #: The convolution's geometry for the window bound on distinct sources (:func:`conv_sources`):
    #: ``(groups, C_in/groups, H_in, W_in, C_out, H_out, W_out, stride_h, extent_h, stride_w,
    #: extent_w)``; () if none.
    conv: tuple[int, ...] = ()
    #: The synaptic op as the Lava ``Conv`` that shares its weights (what the calibrated Loihi 2
    #: model costs, ``snncc.backends.lava.calibrated``); None for sums, means and non-synaptic
    #: projections. The per-connection models ignore it.
    lava: LavaForm | None = None


@dataclass(frozen=True)
class Unit:
    """A deployed layer as found in the graph (target-independent counts)."""

    name: str
    op: str
    kind: str
    size: int  # atoms: neurons, or elements of a custom process
    neurons: int
    constituents: int  # spikes per output element that downstream layers receive
    native: bool
    projections: tuple[Projection, ...]
    #: Custom processes: (binary spike, count/graded) operand elements buffered per step.
    buffers: tuple[int, int] = (0, 0)
    notes: tuple[str, ...] = ()

    @property
    def synapses(self) -> int:
        """Stored synapses of all incoming projections."""
        return sum(p.synapses for p in self.projections)

    @property
    def max_delay(self) -> int:
        """Largest ``Delay`` (steps) on any incoming projection."""
        return max((p.delay for p in self.projections), default=0)


@dataclass
class LayerMemory:
    """Bytes of one layer on a target at the target's default slicing (no packing)."""

    name: str
    op: str
    kind: str
    native: bool
    neurons: int
    size: int
    synapses: int
    synapse_bytes: int
    state_bytes: int
    routing_bytes: int
    memory_bytes: int
    atoms_per_core: int
    cores: int
    extra: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


# -- graph walks ---------------------------------------------------------------------------------
def _reaches_neuron(g: Graph, name: str, memo: dict[str, bool]) -> bool:
    if name not in memo:
        memo[name] = False  # cycle guard (graphs are DAGs; cheap safety)
        memo[name] = any(g.op(u).NEURON or _reaches_neuron(g, u, memo) for u, _ in g.users(name))
    return memo[name]


def find_units(g: Graph, target: str, join_relays: bool = True) -> dict[str, str]:
    """Deployed layers: node -> kind (see module docstring); relays only on Loihi, and only
    with ``join_relays`` (without, every consumer of a join reads each branch itself: the
    fan-in expansion ``backends/lower`` emits). Spike products are AND neurons where the target
    has no custom processes (or the lowering expanded them), and relays need graded spikes."""
    from snncc import targets

    t = targets.get(target)
    memo: dict[str, bool] = {}
    units: dict[str, str] = {}
    for n in g.topo_order():
        op = g.op(n)
        if op.NEURON:
            units[n] = "population"
        elif isinstance(op, (O.MaxPool2d, O.Mul, O.MatMul)) and _reaches_neuron(g, n, memo):
            if isinstance(op, O.MaxPool2d):
                if g.type(g.inputs_of(n)[0]).kind is Kind.SPIKE:
                    units[n] = "or"
            elif isinstance(op, O.Mul) or not t.custom_processes or expanded(g, n):
                units[n] = "and"
            else:
                units[n] = "dynamic"
    if t.programmable_neurons and join_relays:  # graded partial-sum relays
        _add_relays(g, units)
    return {n: units[n] for n in g.topo_order() if n in units}


#: Node meta key of a spike ``MatMul`` on Loihi: ``"and"`` when the lowering expands it into AND
#: neurons (``snncc compile --attention``, :mod:`snncc.backends.lower.choice`), else absent or
#: ``"process"`` (a custom fixed-point process).
ATTENTION_META = "attention"


def expanded(g: Graph, n: str) -> bool:
    """Whether spike ``MatMul`` ``n`` runs as AND neurons on Loihi (node meta ``attention``)."""
    return g.node_meta(n).get(ATTENTION_META) == "and"


def _add_relays(g: Graph, units: dict[str, str]) -> None:
    """Mark Add joins whose current reaches two or more layers as graded relays (Loihi 2)."""
    memo: dict[str, frozenset[str]] = {}

    def stops(n: str) -> frozenset[str]:
        if n not in memo:
            found: set[str] = set()
            for u, _ in g.users(n):
                found |= {u} if u in units else stops(u)
            memo[n] = frozenset(found)
        return memo[n]

    for n in reversed(g.topo_order()):
        if isinstance(g.op(n), O.Add) and n not in units and len(stops(n)) >= 2:
            units[n] = "relay"


def _origin(g: Graph, name: str) -> str:
    while isinstance(g.op(name), SPIKE_SIDE[:-1]):  # structural ops and Scale, not Add
        name = g.inputs_of(name)[0]
    return name


def _size(g: Graph, name: str) -> int:
    return g.type(name).size


def _spike_sources(g: Graph, name: str, units: dict[str, str], delay: int = 0) -> list:
    """(source, delay) pairs feeding a synaptic op's input; ``(None, 0)`` for host values."""
    if name in units:
        return [(name, delay)]
    op = g.op(name)
    if isinstance(op, O.Input):
        return [(name, delay)] if g.type(name).kind is Kind.SPIKE else [(None, 0)]
    if isinstance(op, SPIKE_SIDE):
        step = op.steps if isinstance(op, O.Delay) else 0
        return [s for d in g.inputs_of(name) for s in _spike_sources(g, d, units, delay + step)]
    return [(None, 0)]


@dataclass
class _Walk:
    """Accumulates the projections of one layer's stream."""

    g: Graph
    units: dict[str, str]
    constituents: dict[str, int]
    out: list[Projection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def source_size(self, src: str) -> int:
        return _size(self.g, src) * self.constituents.get(src, 1)

    def direct(self, src: str, m: Fraction, r: int, delay: int) -> None:
        c = self.constituents.get(src, 1)
        n_post = math.ceil(_size(self.g, src) * m)
        self.out.append(
            Projection(src, None, "direct", n_post * c, self.source_size(src), c * r,
                       max(1, math.ceil(m)), 1, delay, self.g.op(src).kind == "Input",
                       lava=identity_form(self.g.type(src).shape) if (m, r, c) == (1, 1, 1)
                       else None)
        )  # fmt: skip

    def synaptic(self, s: str, m: Fraction, r: int, order_kept: bool, delay: int) -> None:
        g = self.g
        syn, rf, fo, group = synaptic_counts(g, s)
        sources = _spike_sources(g, g.inputs_of(s)[0], self.units)
        if all(src is None for src, _ in sources):
            n = math.ceil(_size(g, s) * m)
            self.out.append(Projection("host", s, "host", 0, n, 1, 1, 1, delay))
            return
        direct = m == 1 and r == 1 and order_kept
        kernel, per_channel = conv_kernel(g, s) if direct else (0, 0)
        geometry = conv_geometry(g, s) if direct else ()
        form = lava_form(g, s, mapped=m == 1 and r == 1)
        for src, d in sources:
            if src is None:
                self.notes.append(f"{s} mixes host values with spikes; host part ignored")
                continue
            self.out.append(
                Projection(src, s, "synaptic", math.ceil(syn * m), self.source_size(src),
                           rf * r, fo * max(1, math.ceil(m)), group if order_kept else 1,
                           delay + d, g.op(src).kind == "Input", kernel, per_channel,
                           geometry, form)
            )  # fmt: skip

    def stream(
        self, n: str, m: Fraction = Fraction(1), r: int = 1, kept: bool = True, delay: int = 0
    ) -> None:
        """Walk upstream from value ``n`` (feeding the layer with multiplicity ``m``).

        ``m`` is an exact :class:`~fractions.Fraction` (a product of size ratios): the counts
        take ``ceil(size·m)`` and test ``m == 1``, and a float product of ratios such as
        ``(1/3)·3`` or ``(7/10)·(10/7)`` can land an ulp off an integer and add a whole
        neuron, or miss the one-to-one case.
        """
        g, op = self.g, self.g.op(n)
        if n in self.units or (isinstance(op, O.Input) and g.type(n).kind is Kind.SPIKE):
            self.direct(n, m, r, delay)
        elif isinstance(op, O.Input):
            self.out.append(Projection("host", n, "host", 0, math.ceil(_size(g, n) * m), 1, 1))
        elif isinstance(op, SYNAPTIC):
            self.synaptic(n, m, r, kept, delay)
        else:
            self._through(n, op, m, r, kept, delay)

    def _through(self, n: str, op: O.Op, m: Fraction, r: int, kept: bool, delay: int) -> None:
        g = self.g
        kept = kept and isinstance(op, ORDER_KEEPING)
        if isinstance(op, O.MaxPool2d):  # max over currents: each output reads k² inputs
            self.notes.append(f"{n}: max-pool over currents is not spike-native")
            r *= op.kernel[0] * op.kernel[1]
        elif not isinstance(op, (O.Reshape, O.Permute, O.Repeat, O.Slice, O.Pad, O.Delay,
                                 O.Scale, O.Add, O.BatchNorm)):  # fmt: skip
            self.notes.append(f"{n}: {op.kind} in a current stream is not modelled exactly")
        step = op.steps if isinstance(op, O.Delay) else 0
        for d in g.inputs_of(n):
            ratio = Fraction(1) if isinstance(op, O.Pad) else _ratio(_size(g, n), _size(g, d))
            if isinstance(op, O.MaxPool2d):
                ratio *= op.kernel[0] * op.kernel[1]
            self.stream(d, m * ratio, r, kept, delay + step)


# -- units ---------------------------------------------------------------------------------------
def _operand(g: Graph, value: str, constituents: dict[str, int], notes: list[str]) -> tuple:
    """(source, constituents, spike-typed?) of a product operand, through re-indexing/scales."""
    src = _origin(g, value)
    if src not in constituents and not isinstance(g.op(src), O.Input):
        notes.append(f"operand {src} is not a spike layer; counted as its elements")
    t = g.type(value)
    c = constituents.get(src, 1)
    return src, c, t.kind is Kind.SPIKE


def _product_unit(g: Graph, n: str, kind: str, constituents: dict[str, int]) -> Unit:
    """An AND layer (Mul; MatMul expanded to AND neurons) or a custom MatMul process."""
    op, out = g.op(n), _size(g, n)
    notes: list[str] = []
    values = g.inputs_of(n)
    operands = [_operand(g, v, constituents, notes) for v in values]
    k = g.type(values[0]).shape[-1] if isinstance(op, O.MatMul) else 1
    if kind == "dynamic":
        spike_elems = sum(_size(g, v) for v, (_, _, sp) in zip(values, operands, strict=True) if sp)
        word_elems = sum(
            _size(g, v) for v, (_, _, sp) in zip(values, operands, strict=True) if not sp
        )
        projs = tuple(Projection(s, n, "operand", 0, _size(g, s) * c, 0, 0) for s, c, _ in operands)
        notes.append("custom fixed-point process: not neurocore-native")
        return Unit(n, op.kind, kind, out, 0, 1, False, projs, (spike_elems, word_elems),
                    tuple(notes))  # fmt: skip
    c_out = k * math.prod(c for _, c, _ in operands)
    neurons = out * c_out
    projs = tuple(
        Projection(s, n, "operand", neurons, _size(g, s) * c, 1,
                   max(1, ceil_div(neurons, max(1, _size(g, s) * c))))
        for s, c, _ in operands
    )  # fmt: skip
    if isinstance(op, O.MatMul):
        notes.append(f"exact AND-expansion: {c_out} AND neurons per output element")
    return Unit(n, op.kind, kind, neurons, neurons, c_out, True, projs, notes=tuple(notes))


def _or_unit(g: Graph, n: str, units: dict[str, str], constituents: dict[str, int]) -> Unit:
    """Max-pool over spikes: a threshold neuron per output with unit-weight synapses."""
    op, out = g.op(n), _size(g, n)
    k = op.kernel[0] * op.kernel[1]
    projs = []
    for src, d in _spike_sources(g, g.inputs_of(n)[0], units):
        if src is None:
            continue
        size = _size(g, src) * constituents.get(src, 1)
        fo = taps(op.kernel, op.stride, op.dilation)
        projs.append(Projection(src, n, "synaptic", out * k, size, k, fo, 1, d,
                                g.op(src).kind == "Input", lava=lava_form(g, n, True)))  # fmt: skip
    return Unit(n, op.kind, "or", out, out, 1, True, tuple(projs))


def deployed_units(g: Graph, target: str, join_relays: bool = True) -> list[Unit]:
    """Every deployed layer of ``g`` on ``target`` with its incoming projections (topo order);
    ``join_relays``: see :func:`find_units`."""
    if target not in TARGETS:
        raise SnnccError(f"unknown target {target!r}", code="MM001", hint="loihi or spinnaker")
    kinds = find_units(g, target, join_relays)
    constituents: dict[str, int] = {}
    out: list[Unit] = []
    for n, kind in kinds.items():
        if kind in ("and", "dynamic"):
            unit = _product_unit(g, n, kind, constituents)
        elif kind == "or":
            unit = _or_unit(g, n, kinds, constituents)
        else:
            walk = _Walk(g, kinds, constituents)
            for d in g.inputs_of(n):
                walk.stream(d, _ratio(_size(g, n), _size(g, d)))
            size = _size(g, n)
            unit = Unit(n, g.op(n).kind, kind, size, size, 1, True, tuple(walk.out),
                        notes=tuple(dict.fromkeys(walk.notes)))  # fmt: skip
        constituents[n] = unit.constituents
        out.append(unit)
    return out
