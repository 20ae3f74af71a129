"""``lower_program`` for SpiNNaker: a graph quantized for ``spinnaker`` becomes a
:class:`~snncc.backends.spinnaker.spec.SpiNNakerProgram` (PyNN populations and synapse lists).

The shared mechanism (:mod:`snncc.backends.lower`) gives the split into deployed/host parts, the
index maps of structural ops (:func:`~snncc.backends.lower.structure.reindex`, computed by the
reference's own kernels), the convolution normal form (:func:`conv_form`, :func:`conv_pairs`),
the spec records and latency balancing. The target rules, one per op (:data:`RULES`), work on
:class:`~snncc.backends.lower.linmap.LinMap` values (every deployed value as a sparse linear
function of population spikes) because a static synapse list is all PyNN has:

==================================  =============================================================
``SpiNNakerLIF`` (host-fed)          ``role="host"``: a ``SpikeSourceArray``; the host computes
                                     the neurons with the reference kernel (sPyNNaker has no
                                     per-neuron per-step current input)
``SpiNNakerLIF``                     ``IF_curr_delta`` population; its input value becomes one
                                     projection per source population (``FromListConnector``,
                                     split into excitatory/inhibitory at emission); its bias
                                     arrives from the clock source (:mod:`.emit`)
re-indexing ops                      rows of the value moved (no synapses)
``Add`` / ``Sum``                    entries concatenated / rows merged (fan-in expansion: a
                                     residual neuron gets one projection per source population)
``Linear``/``Conv1d``/``Conv2d``     the op's synapses composed with its input's entries (a SEW
``Scale`` (quantized)                count: one set of synapses per spike source)
``Mul``, ``MatMul`` of spikes        AND expansion: one AND neuron per product of two source
                                     spikes (:mod:`snncc.backends.lower.expand`), threshold 2
                                     units; the product's sum is the AND neurons' weights
``MaxPool2d`` of spikes              an OR population (threshold 1/2 unit over the window)
``Delay``, anything else             refused (``LOW004`` / ``LOW001``)
==================================  =============================================================

Exactness (why Brian2's float64 gives the reference's s16.15 spikes) is checked per population
by :func:`snncc.backends.spinnaker.exact.check_population`; a program that cannot be exact is
refused (``LOW020``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from snncc.backends.lower import linmap as L
from snncc.backends.lower.expand import broadcast_rows, product_neurons, triples
from snncc.backends.lower.linmap import LinMap
from snncc.backends.lower.spec import Connection, HostInput, Operand, Tap
from snncc.backends.lower.structure import (
    STRUCTURAL,
    ConvForm,
    conv_form,
    conv_pairs,
    identity_index,
    reindex,
)
from snncc.backends.spinnaker.exact import check_population, unit_neuron
from snncc.backends.spinnaker.sizes import SizeGuard, synapse_bound
from snncc.backends.spinnaker.spec import KIND, SpiNNakerPopulation, SpiNNakerProgram, identity
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.quant.streams import SYNAPTIC, split_graph


def lowering_error(node: str, problem: str, hint: str, code: str = "LOW001") -> SnnccError:
    """A ``LOW0xx`` refusal naming the node (exit 2: a construct without a SpiNNaker lowering)."""
    return SnnccError(f"lower (spinnaker): {node}: {problem}", code=code, hint=hint, exit_code=2)


class SpiNNakerLowering:
    """State of one lowering run: the graph, values built so far, populations, connections."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.split = split_graph(g)
        self.values: dict[str, LinMap] = {}
        self.pops: list[SpiNNakerPopulation] = []
        self.index: dict[str, int] = {}
        self.conns: list[Connection] = []
        self.host: list[HostInput] = []
        self.guard = SizeGuard()

    # -- helpers -----------------------------------------------------------------------------
    def shape(self, n: str) -> tuple[int, ...]:
        return tuple(int(s) for s in self.g.type(n).shape)

    def add_population(self, p: SpiNNakerPopulation) -> int:
        self.index[p.name] = len(self.pops)
        self.pops.append(p)
        return self.index[p.name]

    def value(self, n: str, reader: str) -> LinMap:
        if n not in self.values:
            raise lowering_error(
                reader,
                f"reads {n}, which is not on the machine (a host value inside the deployed part)",
                "only the first neurons may read the encoding part",
            )
        return self.values[n]

    def connect(self, target: str, value: LinMap, unit: int = 1) -> None:
        """Projections into population ``target`` realising ``value`` (one per source).

        ``unit`` multiplies every weight (an AND/OR neuron's stored weight per spike).
        """
        self.guard.check(target, "its input", value.entries)
        m = L.merged(value)
        self.guard.add(target, "its input", m.entries)
        names = [p.name for p in self.pops]
        for src in np.unique(m.pop):
            sel = m.pop == src
            source = names[int(src)]
            w = m.w[sel] * unit
            if np.any(np.abs(w) > 0xFFFF):
                raise lowering_error(
                    target,
                    f"a synapse from {source} needs stored weight {int(np.abs(w).max())} > 65535 "
                    "(16 bits)",
                    "the quantizer's ring-buffer bound should prevent this: please report it",
                    code="LOW021",
                )
            params = {"pre": m.col[sel], "post": m.row[sel], "weight": w}
            op = Operand(source, identity(self.pops[int(src)].size))
            self.conns.append(Connection(f"{source}->{target}", target, target, KIND, [op], params))

    # -- rules -------------------------------------------------------------------------------
    def neuron(self, n: str) -> None:
        op = self.g.op(n)
        shape = self.shape(n)
        size = math.prod(shape)
        if op.host_scale > 0:
            i = self.add_population(SpiNNakerPopulation(n, shape, "host"))
            self.host.append(HostInput(n, n, float(op.host_scale)))
            self.values[n] = L.identity(i, shape)
            return
        bias = np.broadcast_to(np.asarray(op.i_offset, np.int64), shape).reshape(-1).copy()
        p = SpiNNakerPopulation(
            n, shape, "lif", int(op.v_thresh), int(op.exp_tc), int(op.exc_shift),
            int(op.inh_shift), bias,
        )  # fmt: skip
        if op.v_reset != 0 or op.v_rest != 0 or op.r != 1 << 15:
            raise lowering_error(
                n, "v_reset, v_rest must be 0 and R = 1 (what the quantizer emits)", "re-quantize"
            )
        (d,) = self.g.inputs_of(n)
        value = self.value(d, n)
        if value.size != size:
            value = L.gather_rows(value, broadcast_rows(self.shape(d), shape), shape)
        i = self.add_population(p)
        self.connect(n, value)
        check_population(p, [c for c in self.conns if c.target == n], int(self.g.meta["timesteps"]))
        self.values[n] = L.identity(i, shape)

    def structural(self, n: str) -> None:
        (d,) = self.g.inputs_of(n)
        rows = reindex(self.g.op(n), n, self.g.type(n), identity_index(self.shape(d)))
        self.values[n] = L.gather_rows(self.value(d, n), rows, self.shape(n))

    def add(self, n: str) -> None:
        shape = self.shape(n)
        parts = [
            L.gather_rows(self.value(d, n), broadcast_rows(self.shape(d), shape), shape)
            for d in self.g.inputs_of(n)
        ]
        self.values[n] = L.concat(parts, shape)

    def sum(self, n: str) -> None:
        op, (d,) = self.g.op(n), self.g.inputs_of(n)
        in_shape = self.shape(d)
        rank = len(in_shape)
        axes = {a % rank for a in op.axes}
        idx = np.indices(in_shape).reshape(rank, -1)
        keep = [a for a in range(rank) if a not in axes]
        coords = [np.zeros_like(idx[a]) if a in axes else idx[a] for a in range(rank)]
        if not op.keepdim:
            coords = [idx[a] for a in keep]
        out_shape = self.shape(n)
        new = np.ravel_multi_index(coords, out_shape) if coords else np.zeros(idx.shape[1], int)
        self.values[n] = L.relabel(self.value(d, n), new, out_shape)

    def synaptic(self, n: str) -> None:
        op, (d,) = self.g.op(n), self.g.inputs_of(n)
        if "receptor" not in (self.g.node_meta(n).get("quant") or {}):
            raise lowering_error(n, f"{op.kind} on the machine is not quantized", "re-quantize")
        if isinstance(op, O.Scale):
            self.values[n] = L.scaled(self.value(d, n), int(op.factor))
            return
        if getattr(op, "bias", None) is not None and np.any(np.asarray(op.bias) != 0):
            raise lowering_error(n, "a synaptic bias on the machine", "the quantizer moves it")
        value = self.value(d, n)
        self.guard.check(n, op.kind, synapse_bound(op, self.shape(d), self.shape(n), value))
        f = conv_form(op, self.shape(d), np.asarray(op.weight, np.int64))
        out_c, in_c, widx = conv_pairs(f)
        w = np.asarray(f.weight, np.int64).reshape(-1)[widx]
        self.values[n] = L.synapses(value, f.out_order[out_c], f.in_order[in_c], w, self.shape(n))

    def product(self, n: str) -> None:
        """``Mul``/``MatMul``: AND neurons (:func:`~snncc.backends.lower.linmap.product_pairs`)."""
        a_name, b_name = self.g.inputs_of(n)
        a, b = self.value(a_name, n), self.value(b_name, n)
        op, shapes = self.g.op(n), (self.shape(a_name), self.shape(b_name), self.shape(n))
        count = product_neurons(op, a, b, *shapes)
        self.guard.check(n, f"{op.kind} of spikes (AND expansion)", 3 * count, count)
        terms = triples(op, *shapes)
        out, pa, ca, pb, cb, w = L.product_pairs(a, b, terms)
        k = len(out)
        shape = self.shape(n)
        elementwise = isinstance(self.g.op(n), O.Mul) and np.array_equal(out, np.arange(k))
        p = unit_neuron(n, shape if elementwise else (k,), "and", operands=2)
        p.checked = elementwise and k == math.prod(shape)
        i = self.add_population(p)
        neurons = np.arange(k, dtype=np.int64)
        ones = np.ones(k, np.int64)
        inputs = LinMap(
            (k,), np.concatenate([neurons, neurons]), np.concatenate([pa, pb]),
            np.concatenate([ca, cb]), np.concatenate([ones, ones]),
        )  # fmt: skip
        self.connect(n, inputs, unit=_unit_weight(p))
        self.values[n] = LinMap(shape, out, np.full(k, i, np.int64), neurons, w)

    def max_pool(self, n: str) -> None:
        op, (d,) = self.g.op(n), self.g.inputs_of(n)
        value = self.value(d, n)
        if not value.is_spikes():
            raise lowering_error(
                n, "MaxPool2d of a count or current is not an OR of spikes", "pool spikes"
            )
        c, h, w = self.shape(d)
        shape = self.shape(n)
        size = math.prod(shape)
        form = ConvForm(
            np.ones((c, 1, *op.kernel), np.int64), (c, h, w), shape, tuple(op.stride),
            tuple(op.padding), tuple(op.dilation), c, np.arange(c * h * w), np.arange(size),
        )  # fmt: skip
        window = int(op.kernel[0] * op.kernel[1])
        self.guard.check(n, "MaxPool2d (OR neurons)", size * window)
        out_c, in_c, _ = conv_pairs(form)
        p = unit_neuron(n, shape, "or", operands=window)
        i = self.add_population(p)
        inputs = L.synapses(value, out_c, in_c, np.ones(len(out_c)), (size,))
        self.connect(n, inputs, _unit_weight(p))
        self.values[n] = L.identity(i, shape)

    def delay(self, n: str) -> None:
        raise lowering_error(
            n,
            "an IR Delay on the machine (no zoo model has one; delays are the compiler's, set "
            "by latency balancing)",
            "remove the Delay",
            code="LOW004",
        )

    # -- host part -------------------------------------------------------------------------
    def taps(self) -> list[Tap]:
        """Deployed values the host readout (or a graph output) reads: counts of spikes."""
        wanted = [
            d
            for r in self.g.topo_order()
            if r in self.split.readout
            for d in self.g.inputs_of(r)
            if d in self.split.deployed
        ] + [n for n in self.g.outputs if n in self.split.deployed]
        out: list[Tap] = []
        for d in dict.fromkeys(wanted):
            m = L.merged(self.value(d, d))
            if np.any(m.w <= 0):
                raise lowering_error(
                    d,
                    f"the host readout reads {self.g.type(d).kind_str()} {d}, which is not a "
                    "count of population spikes",
                    "read neuron spikes (quantize gives readouts float host copies of currents)",
                    code="LOW003",
                )
            out.extend(_taps(d, m, [p.name for p in self.pops]))
        return out


def _unit_weight(p: SpiNNakerPopulation) -> int:
    """Stored weight of one spike into a threshold neuron: 1 mV = 2^15 raw at its shift."""
    return 1 << (15 - p.exc_shift)


def _taps(node: str, m: LinMap, names: list[str]) -> list[Tap]:
    """``m`` (positive integer weights) as taps: one index map per (population, slot)."""
    reps = m.w.astype(np.int64)
    row, pop, col = (np.repeat(a, reps) for a in (m.row, m.pop, m.col))
    taps = []
    for src in np.unique(pop):
        sel = pop == src
        r, c = row[sel], col[sel]
        order = np.argsort(r, kind="stable")
        r, c = r[order], c[order]
        first = np.searchsorted(r, r)  # slot = position within the row
        slot = np.arange(len(r)) - first
        for j in range(int(slot.max()) + 1 if len(slot) else 0):
            idx = np.full(m.size, -1, np.int64)
            idx[r[slot == j]] = c[slot == j]
            taps.append(Tap(node, names[int(src)], idx.reshape(m.shape)))
    return taps


#: Deployed op type -> its rule (a method of :class:`SpiNNakerLowering`).
RULES: dict[type[O.Op], Callable[[SpiNNakerLowering, str], None]] = {
    **{cls: SpiNNakerLowering.structural for cls in STRUCTURAL},
    **{cls: SpiNNakerLowering.synaptic for cls in (*SYNAPTIC, O.Scale)},
    O.SpiNNakerLIF: SpiNNakerLowering.neuron,
    O.Add: SpiNNakerLowering.add,
    O.Sum: SpiNNakerLowering.sum,
    O.Mul: SpiNNakerLowering.product,
    O.MatMul: SpiNNakerLowering.product,
    O.MaxPool2d: SpiNNakerLowering.max_pool,
    O.Delay: SpiNNakerLowering.delay,
}


def lower_program(g: Graph) -> SpiNNakerProgram:
    """The SpiNNaker program of a graph quantized for ``spinnaker`` (depths not yet balanced).

    Requires: ``g`` went through ``quantize`` with target ``spinnaker``.
    Ensures:  populations in topological order, every connection after its sources; every
              population passes :func:`~snncc.backends.spinnaker.exact.check_population`;
              raises ``SnnccError`` ``LOW0xx`` naming the first node without a lowering.
    """
    if (g.meta.get("quant") or {}).get("target") != "spinnaker":
        raise lowering_error(g.name, "the graph is not quantized for spinnaker", "run quantize")
    low = SpiNNakerLowering(g)
    for n in g.topo_order():
        if n not in low.split.deployed:
            continue
        rule = RULES.get(type(g.op(n)))
        if rule is None:
            raise lowering_error(
                n,
                f"{g.op(n).kind} of {', '.join(g.type(d).kind_str() for d in g.inputs_of(n))} "
                "has no SpiNNaker lowering",
                "supported on the machine: SpiNNakerLIF, synaptic ops, Scale, Add, Sum, Mul, "
                "MatMul, MaxPool2d of spikes and re-indexing",
            )
        rule(low, n)
    notes = [
        "host-fed neurons run on the host (reference arithmetic) and enter as SpikeSourceArray "
        "spikes: sPyNNaker has no per-neuron, per-step current input"
    ]
    products = [p.name for p in low.pops if p.role == "and"]
    if products:
        notes.append(
            f"{len(products)} spike products expanded into AND neurons "
            f"({sum(p.size for p in low.pops if p.role == 'and'):,} neurons): PyNN has no "
            "dynamic synapses"
        )
    return SpiNNakerProgram(
        "spinnaker", int(g.meta["timesteps"]), low.pops, low.conns, low.host, low.taps(),  # type: ignore[arg-type]
        list(g.outputs), notes=notes,
    )  # fmt: skip
