"""``lower``: a graph quantized for Loihi becomes a :class:`~snncc.backends.lower.spec.ProgramSpec`.

What each part of the deployed graph becomes (tables, so that new families add entries):

- a ``LoihiLIF`` node: a population with its own parameters (:func:`_population`);
- a value that only *moves* spikes (:data:`~snncc.backends.lower.structure.STRUCTURAL`): an
  index map composed into every reader (no process at all);
- ``MaxPool2d`` over spikes (:data:`SPIKE_OPS`): an OR population, a threshold neuron fed by a
  unit-weight sum pool (``du = dv = 4095, vth = 0`` fires iff a window input spiked);
- ``MatMul``/``Mul`` of spikes: steps of a *product program* that the consuming ``Scale`` turns
  into a ``product`` connection (a custom fixed-point process, not neurocore-native);
- a stream (the current ops that feed a neuron, :mod:`snncc.quant.streams`): for every neuron it
  feeds and every synaptic entry reaching that neuron, one connection whose output index map is
  the chain of re-indexing and ``Add`` between the entry and the neuron. So a membrane-shortcut
  neuron receives one connection per contributing branch (fan-in expansion), each of which
  ``balance_latency`` can delay on its own.

A synaptic entry becomes ``dense`` (Lava ``Dense``: the unrolled matrix with every index map
folded in, ``2·W_q`` with ``weight_exp - 1``) when that matrix has at most
:data:`DENSE_MAX_ENTRIES` entries and stays in the 8-bit range, else ``conv`` (Lava ``Conv``
semantics, ``W_q << weight_exp`` in Lava's flipped layout).

The host part: a population whose input is an encoding node gets ``a_in = rint(x · host_scale)``
from the host (:class:`HostInput`); the readout reads populations through :class:`Tap` index
maps. Errors are ``SnnccError`` with codes ``LOW0xx`` naming the node and what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from snncc.backends.lava.constraints import LOIHI
from snncc.backends.lower.spec import Connection, HostInput, Operand, Population, ProgramSpec, Tap
from snncc.backends.lower.structure import (
    STRUCTURAL,
    ConvForm,
    compose,
    conv_form,
    conv_pairs,
    identity_index,
    lava_kernel,
    narrow,
    reindex,
)
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind
from snncc.quant.streams import SYNAPTIC, Split, Stream, split_graph

#: Largest unrolled matrix (target x source neurons) emitted as a Lava Dense.
DENSE_MAX_ENTRIES = 2**20
#: The OR neuron: delta current, v kept 1/4096 (0 after any reset), fires on v > 0.
OR_NEURON = {"du": LOIHI.decay_unity - 1, "dv": LOIHI.decay_unity - 1, "vth": 0}


def _error(node: str, problem: str, hint: str, code: str = "LOW001") -> SnnccError:
    return SnnccError(f"lower: {node}: {problem}", code=code, hint=hint, exit_code=2)


@dataclass
class Ref:
    """Spikes of population ``pop`` read through ``index`` (the value's shape)."""

    pop: str
    index: np.ndarray


@dataclass
class Prog:
    """A product program: operands, then steps ``(op, refs)``; a ref is ``("o"|"s", k)``."""

    operands: list[Ref]
    steps: list[tuple[O.Op, list[tuple[str, int]]]] = field(default_factory=list)

    @property
    def result(self) -> tuple[str, int]:
        return ("s", len(self.steps) - 1) if self.steps else ("o", 0)


def _as_prog(x: Ref | Prog) -> Prog:
    return x if isinstance(x, Prog) else Prog([x])


def _merge(progs: list[Prog]) -> tuple[Prog, list[tuple[str, int]]]:
    """One program holding all of ``progs``; returns it and each input's result ref in it."""
    out, results = Prog([]), []
    for p in progs:
        no, ns = len(out.operands), len(out.steps)

        def shift(r: tuple[str, int], no: int = no, ns: int = ns) -> tuple[str, int]:
            return (r[0], r[1] + (no if r[0] == "o" else ns))

        out.operands.extend(p.operands)
        out.steps.extend((op, [shift(r) for r in refs]) for op, refs in p.steps)
        results.append(shift(p.result))
    return out, results


class _Lowering:
    """State of one lowering run: the graph, its split, values built so far, the spec."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.split: Split = split_graph(g)
        self.values: dict[str, Ref | Prog] = {}
        self.pops: list[Population] = []
        self.conns: list[Connection] = []
        # Arrays shared between connections (fan-in expansion repeats an entry per target):
        self.kernels: dict[str, np.ndarray] = {}  # one Lava kernel per entry
        self.operands: dict[str, np.ndarray] = {}  # one operand index map per entry
        self.identities: dict[tuple[int, ...], np.ndarray] = {}

    def ident(self, shape: tuple[int, ...]) -> np.ndarray:
        """The identity index map of ``shape``, one shared int32 array per shape."""
        if shape not in self.identities:
            self.identities[shape] = narrow(identity_index(shape))
        return self.identities[shape]

    def shared(self, index: np.ndarray) -> np.ndarray:
        """``index`` as a narrow array, or the shared identity when it is one."""
        if index.ndim == 1 and np.array_equal(index, np.arange(len(index))):
            return self.ident(index.shape)
        return narrow(index)

    # -- spike-valued nodes ------------------------------------------------------------------
    def spike_node(self, n: str) -> None:
        """Lower a deployed node whose value is spikes/counts (not a stream current)."""
        op = self.g.op(n)
        if isinstance(op, O.LoihiLIF):
            self.pops.append(_population(self.g, n))
            self.values[n] = Ref(n, self.ident(tuple(self.g.type(n).shape)))
            return
        handler = SPIKE_OPS.get(type(op))
        if handler is None:
            raise _error(
                n,
                f"{op.kind} of {self.kinds(n)} on chip has no lowering yet",
                "supported on spikes: LoihiLIF, MaxPool2d, MatMul, Mul and re-indexing ops "
                f"{sorted(c.__name__ for c in STRUCTURAL)}",
            )
        handler(self, n)

    def kinds(self, n: str) -> str:
        return ", ".join(self.g.type(d).kind_str() for d in self.g.inputs_of(n))

    def structural(self, n: str) -> None:
        (d,) = self.g.inputs_of(n)
        x, op, t = self.values[d], self.g.op(n), self.g.type(n)
        if isinstance(x, Ref):
            self.values[n] = Ref(x.pop, reindex(op, n, t, x.index))
        else:
            self.values[n] = Prog(x.operands, [*x.steps, (op, [x.result])])

    def product(self, n: str) -> None:
        prog, refs = _merge([_as_prog(self.values[d]) for d in self.g.inputs_of(n)])
        prog.steps.append((self.g.op(n), refs))
        self.values[n] = prog

    def max_pool(self, n: str) -> None:
        """MaxPool over spikes = OR: a threshold population fed by a unit-weight sum pool."""
        op, (d,) = self.g.op(n), self.g.inputs_of(n)
        src = self.values[d]
        if self.g.type(d).kind is not Kind.SPIKE or not isinstance(src, Ref):
            raise _error(n, f"MaxPool2d of {self.kinds(n)} is not an OR of spikes", "pool spikes")
        c, h, w = self.g.type(d).shape
        shape = tuple(self.g.type(n).shape)
        bias = np.zeros(math.prod(shape), np.int16)
        self.pops.append(Population(n, shape, bias_mant=bias, bias_exp=0, role="or", **OR_NEURON))
        form = ConvForm(
            np.ones((c, 1, *op.kernel), np.int64), (c, h, w), shape, tuple(op.stride),
            tuple(op.padding), tuple(op.dilation), c, self.ident((c * h * w,)),
            self.ident((math.prod(shape),)),
        )  # fmt: skip
        self.synapse(n, n, n, form, 0, src, self.ident((math.prod(shape),)))
        self.values[n] = Ref(n, self.ident(shape))

    # -- streams ---------------------------------------------------------------------------
    def stream(self, s: Stream) -> None:
        """One connection per (entry reaching a neuron, neuron) pair of the stream."""
        terms: dict[str, list[tuple[str, np.ndarray]]] = {}
        for n in s.nodes:
            op, shape = self.g.op(n), tuple(self.g.type(n).shape)
            ins = self.g.inputs_of(n)
            if n in s.entries:
                terms[n] = [(n, identity_index(shape))]
            elif isinstance(op, O.Add):
                terms[n] = [
                    (e, np.broadcast_to(_left_pad(idx, len(shape)), shape))
                    for d in ins
                    for e, idx in terms[d]
                ]
            elif isinstance(op, STRUCTURAL):
                terms[n] = [(e, reindex(op, n, self.g.type(n), i)) for e, i in terms[ins[0]]]
            else:
                raise _error(
                    n,
                    f"{op.kind} inside the current stream of {s.neurons} has no lowering yet "
                    "(a stream may hold synaptic entries, Add and re-indexing ops)",
                    "Delay and current x spike products are not lowered yet",
                    code="LOW002",
                )
        for target in s.neurons:
            (d,) = self.g.inputs_of(target)
            size = self.g.type(target).size
            for entry, idx in terms[d]:
                out_map = np.broadcast_to(idx, self.g.type(target).shape).reshape(size)
                self.entry(entry, target, out_map)

    def entry(self, e: str, target: str, out_map: np.ndarray) -> None:
        """The connection realising synaptic entry ``e``'s contribution to ``target``."""
        op, (d,) = self.g.op(e), self.g.inputs_of(e)
        src, quant = self.values[d], self.g.node_meta(e).get("quant") or {}
        name = self.name(f"{e}->{target}")
        if isinstance(op, O.Scale):
            prog, (ref,) = _merge([_as_prog(src)])
            prog.steps.append((op, [ref]))
            self.conns.append(_product(name, e, target, prog, out_map))
            return
        if not isinstance(op, SYNAPTIC) or not isinstance(src, Ref):
            raise _error(e, f"{op.kind} reading {self.kinds(e)} has no lowering yet", "")
        form = conv_form(op, tuple(self.g.type(d).shape), np.asarray(op.weight, np.int64))
        self.synapse(name, e, target, form, int(quant["weight_exp"]), src, out_map)

    def synapse(
        self, name: str, e: str, target: str, f: ConvForm, exp: int, src: Ref, out_map: np.ndarray
    ) -> None:
        """A dense or conv connection for conv form ``f`` (mantissas, exponent ``exp``)."""
        if e not in self.operands:
            self.operands[e] = narrow(compose(f.in_order, src.index).reshape(f.in_shape))
        operand = self.operands[e]
        inv = np.empty(len(f.out_order), np.int64)
        inv[f.out_order] = np.arange(len(f.out_order))
        out_index = self.shared(compose(out_map, inv))
        n_src = self.pop(src.pop).size
        n_conv_out = math.prod(f.out_shape)
        if max(len(out_index), n_conv_out) * n_src <= DENSE_MAX_ENTRIES:
            w = _unrolled(f, operand, out_index, n_src)
            if w is not None:
                params = {"weights": narrow(2 * w), "weight_exp": exp - 1, "sign_mode": "mixed"}
                whole = Operand(src.pop, self.ident((n_src,)))  # folded into the matrix
                self.conns.append(Connection(name, target, e, "dense", [whole], params))
                return
        if e not in self.kernels:
            self.kernels[e] = narrow(lava_kernel(np.asarray(f.weight, np.int64) << max(exp, 0)))
        params = {
            "kernel": self.kernels[e],
            "input_shape": (f.in_shape[2], f.in_shape[1], f.in_shape[0]),
            "stride": tuple(f.stride[::-1]),
            "padding": tuple(f.padding[::-1]),
            "dilation": tuple(f.dilation[::-1]),
            "groups": int(f.groups),
            "weight_exp": min(exp, 0),
        }
        self.conns.append(
            Connection(name, target, e, "conv", [Operand(src.pop, operand)], params, out_index)
        )

    def pop(self, name: str) -> Population:
        return next(p for p in self.pops if p.name == name)

    def name(self, base: str) -> str:
        taken = {c.name for c in self.conns}
        if base not in taken:
            return base
        k = 2
        while f"{base}#{k}" in taken:
            k += 1
        return f"{base}#{k}"

    # -- host part -------------------------------------------------------------------------
    def taps(self) -> list[Tap]:
        """Deployed values the host readout (or a graph output) reads."""
        wanted = [
            d
            for r in self.g.topo_order()
            if r in self.split.readout
            for d in self.g.inputs_of(r)
            if d in self.split.deployed
        ] + [n for n in self.g.outputs if n in self.split.deployed]
        taps: dict[str, Tap] = {}
        for d in wanted:
            v = self.values.get(d)
            if not isinstance(v, Ref):
                raise _error(
                    d,
                    f"the host readout reads {self.g.type(d).kind_str()} {d}, which the chip "
                    "does not hold as spikes of one population",
                    "read neuron spikes (quantize gives readouts float host copies of currents)",
                    code="LOW003",
                )
            taps.setdefault(d, Tap(d, v.pop, v.index))
        return list(taps.values())


def _left_pad(idx: np.ndarray, rank: int) -> np.ndarray:
    return idx.reshape((1,) * (rank - idx.ndim) + idx.shape)


def _population(g: Graph, n: str) -> Population:
    op = g.op(n)
    shape = tuple(g.type(n).shape)
    bias = np.broadcast_to(np.asarray(op.bias_mant, np.int64), shape).reshape(-1)
    return Population(n, shape, int(op.du), int(op.dv), int(op.vth), narrow(bias), int(op.bias_exp))


def _unrolled(f: ConvForm, operand: np.ndarray, out_index: np.ndarray, n_src: int):
    """The folded matrix ``[len(out_index), n_src]`` of mantissas, or None outside 8 bits.

    Row ``t`` is conv output ``out_index[t]`` (zero for -1); column ``s`` sums the weights of
    every conv input that reads source neuron ``s`` (several when an index map repeats one).
    """
    out_c, in_c, widx = conv_pairs(f)
    col = operand.reshape(-1)[in_c]
    keep = col >= 0
    m = np.zeros((math.prod(f.out_shape), n_src), np.int64)
    np.add.at(m, (out_c[keep], col[keep]), np.asarray(f.weight, np.int64).reshape(-1)[widx[keep]])
    w = np.where((out_index >= 0)[:, None], m[np.maximum(out_index, 0)], 0)
    if w.size and (w.min() < LOIHI.weight_min or w.max() > LOIHI.weight_max):
        return None
    return w


def _product(name: str, e: str, target: str, prog: Prog, out_map: np.ndarray) -> Connection:
    n_ops = len(prog.operands)

    def ref(r: tuple[str, int]) -> int:
        return r[1] if r[0] == "o" else n_ops + r[1]

    params = {
        "steps": [op for op, _ in prog.steps],
        "step_inputs": [[ref(r) for r in refs] for _, refs in prog.steps],
    }
    operands = [Operand(r.pop, r.index) for r in prog.operands]
    return Connection(name, target, e, "product", operands, params, np.asarray(out_map, np.int64))


#: Spike-valued op -> its lowering (a method of :class:`_Lowering`).
SPIKE_OPS: dict[type[O.Op], Callable[[_Lowering, str], None]] = {
    **{cls: _Lowering.structural for cls in STRUCTURAL},
    O.MaxPool2d: _Lowering.max_pool,
    O.MatMul: _Lowering.product,
    O.Mul: _Lowering.product,
}


def lower_program(g: Graph) -> ProgramSpec:
    """The program spec of a graph quantized for Loihi (depths and delays not yet balanced).

    Requires: ``g`` went through ``quantize`` with target ``loihi``.
    Ensures:  populations and connections in topological order (every connection's sources
              precede its target); raises ``SnnccError`` ``LOW0xx`` naming the first node whose
              op or structure has no lowering yet.
    """
    if (g.meta.get("quant") or {}).get("target") != "loihi":
        raise _error(g.name, "the graph is not quantized for loihi", "run quantize first")
    low = _Lowering(g)
    for n in g.topo_order():
        if n in low.split.deployed and g.type(n).kind is not Kind.CURRENT:
            low.spike_node(n)
    host: list[HostInput] = []
    for s in low.split.streams:
        if s.host:
            host.extend(HostInput(n, s.host, float(g.op(n).host_scale)) for n in s.neurons)
        else:
            low.stream(s)
    order = {p.name: i for i, p in enumerate(low.pops)}
    conns = sorted(low.conns, key=lambda c: order[c.target])
    notes = []
    if any(c.kind == "product" for c in conns):
        notes.append(
            "product connections (spike products such as Q·Kᵀ·V) run as a custom fixed-point "
            "Lava process: exact, but not neurocore-native"
        )
    return ProgramSpec(
        "loihi", int(g.meta["timesteps"]), low.pops, conns, host, low.taps(), list(g.outputs),
        notes=notes,
    )  # fmt: skip
