"""``lower``: a graph quantized for Loihi becomes a :class:`~snncc.backends.lower.spec.ProgramSpec`.

What each part of the deployed graph becomes (tables, so that new families add entries):

- a ``LoihiLIF`` node: a population with its own parameters (:func:`_population`); a
  ``LoihiExpGIF`` node: a programmable-neuron population (role ``expgif``) whose graded
  payload the connections reading it multiply their weights by;
- a value that only *moves* spikes (:data:`~snncc.backends.lower.structure.STRUCTURAL`): an
  index map composed into every reader (no process at all);
- ``MaxPool2d`` over spikes (:data:`SPIKE_OPS`): an OR population, a threshold neuron fed by a
  unit-weight sum pool (``du = dv = 4095, vth = 0`` fires iff a window input spiked);
- ``Mul`` of two spike tensors (an SDSA Hadamard mask): an AND population, a threshold neuron
  fed one unit-weight connection per operand (``vth = 1``: fires iff both spiked);
- ``MatMul`` (and ``Mul`` of counts): steps of a *program* (:mod:`~snncc.backends.lower.program`)
  that the consuming synaptic op or ``Scale`` turns into a ``product`` connection (a custom
  fixed-point process, not neurocore-native);
- a stream (the current ops that feed a neuron, :mod:`snncc.quant.streams`): lowered by
  :mod:`~snncc.backends.lower.fanin` into one connection per (entry, neuron) pair.

A synaptic entry becomes ``dense`` (Lava ``Dense``: the unrolled matrix with every index map
folded in, ``2·W_q`` with ``weight_exp - 1``) when that matrix has at most
:data:`DENSE_MAX_ENTRIES` entries, stays in the 8-bit range, and folding loses nothing (one
entry output per target neuron, or a non-negative exponent, so that one floored sum equals the
sum of separately floored ones), else ``conv`` (Lava ``Conv`` semantics, ``W_q << weight_exp``
in Lava's flipped layout, each output shifted on its own).

The host part: a population whose input is an encoding node gets ``a_in = rint(x · host_scale)``
from the host (:class:`HostInput`); the readout reads populations through :class:`Tap` index
maps. Errors are ``SnnccError`` with codes ``LOW0xx`` naming the node and what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from snncc.backends.lava.constraints import LOIHI
from snncc.backends.lower import attention as A
from snncc.backends.lower import program as P
from snncc.backends.lower.linmap import LinMap
from snncc.backends.lower.program import Prog, Ref
from snncc.backends.lower.spec import Connection, HostInput, Operand, Population, ProgramSpec, Tap
from snncc.backends.lower.structure import (
    STRUCTURAL,
    ConvForm,
    compose,
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
from snncc.quant.streams import Split, split_graph

#: Largest unrolled matrix (target x source neurons) emitted as a Lava Dense.
DENSE_MAX_ENTRIES = 2**20
#: The OR neuron: delta current, v kept 1/4096 (0 after any reset), fires on v > 0.
OR_NEURON = {"du": LOIHI.decay_unity - 1, "dv": LOIHI.decay_unity - 1, "vth": 0}


def lowering_error(node: str, problem: str, hint: str, code: str = "LOW001") -> SnnccError:
    """A ``LOW0xx`` refusal naming the node (exit 2: a construct without a lowering)."""
    return SnnccError(f"lower: {node}: {problem}", code=code, hint=hint, exit_code=2)


def unit_form(n: int, ident: Callable[[tuple[int, ...]], np.ndarray]) -> ConvForm:
    """``n`` one-to-one unit synapses as a depthwise 1x1 convolution."""
    return ConvForm(
        np.ones((n, 1, 1, 1), np.int64), (n, 1, 1), (n, 1, 1), (1, 1), (0, 0), (1, 1), n,
        ident((n,)), ident((n,)),
    )  # fmt: skip


class Lowering:
    """State of one lowering run: the graph, its split, values built so far, the spec."""

    def __init__(self, g: Graph, attention: str = "process") -> None:
        self.g = g
        self.split: Split = split_graph(g)
        self.attention = attention  # how spike MatMuls run: "process" or "and" (attention.py)
        self.and_neurons = 0  # AND-expansion neurons so far
        self.values: dict[str, Ref | Prog | LinMap] = {}
        self.pops: list[Population] = []
        self.conns: list[Connection] = []
        # Arrays shared between connections (fan-in expansion repeats an entry per target):
        self.kernels: dict[str, np.ndarray] = {}  # one Lava kernel per entry
        self.operands: dict[object, np.ndarray] = {}  # one operand index map per entry
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

    def kinds(self, n: str) -> str:
        return ", ".join(self.g.type(d).kind_str() for d in self.g.inputs_of(n))

    def pop(self, name: str) -> Population:
        return next(p for p in self.pops if p.name == name)

    def pop_index(self, name: str) -> int:
        """Position of population ``name`` (a ``LinMap``'s population number)."""
        return next(i for i, p in enumerate(self.pops) if p.name == name)

    def shape(self, n: str) -> tuple[int, ...]:
        return tuple(int(s) for s in self.g.type(n).shape)

    def name(self, base: str) -> str:
        taken = {c.name for c in self.conns}
        if base not in taken:
            return base
        k = 2
        while f"{base}#{k}" in taken:
            k += 1
        return f"{base}#{k}"

    # -- spike-valued nodes ------------------------------------------------------------------
    def spike_node(self, n: str) -> None:
        """Lower a deployed node whose value is spikes/counts/graded (not a stream current)."""
        op = self.g.op(n)
        if isinstance(op, (O.LoihiLIF, O.LoihiExpGIF)):
            self.pops.append(_population(self.g, n))
            self.values[n] = Ref(n, self.ident(tuple(self.g.type(n).shape)))
            return
        handler = SPIKE_OPS.get(type(op))
        if handler is None:
            raise lowering_error(
                n,
                f"{op.kind} of {self.kinds(n)} on chip has no lowering yet",
                "supported on spikes: LoihiLIF, LoihiExpGIF, MaxPool2d, MatMul, Mul and "
                f"re-indexing ops {sorted(c.__name__ for c in STRUCTURAL)}",
            )
        handler(self, n)

    def structural(self, n: str) -> None:
        (d,) = self.g.inputs_of(n)
        x = self.values[d]
        if isinstance(x, LinMap):
            A.structural(self, n, x)
        elif isinstance(x, Ref):
            self.values[n] = Ref(x.pop, reindex(self.g.op(n), n, self.g.type(n), x.index))
        else:
            self.values[n] = P.extend(self.g, n, [x])

    def product(self, n: str) -> None:
        """A product the neurons cannot compute: a program step (a custom process), or under
        ``attention="and"`` AND neurons (:mod:`~snncc.backends.lower.attention`)."""
        ins = [self.values[d] for d in self.g.inputs_of(n)]
        if self.attention == "and" or any(isinstance(x, LinMap) for x in ins):
            A.product(self, n)
            return
        self.values[n] = P.extend(self.g, n, ins)

    def spike_and(self, n: str) -> None:
        """``Mul`` of spike tensors = AND: a threshold population, one unit input per operand.

        Falls back to a program step when an operand is not one population's spikes (a count).
        """
        ins = self.g.inputs_of(n)
        if not all(
            self.g.type(d).kind is Kind.SPIKE and isinstance(self.values[d], Ref) for d in ins
        ):
            self.product(n)
            return
        shape = tuple(self.g.type(n).shape)
        size = math.prod(shape)
        bias = np.zeros(size, np.int16)
        du_dv = LOIHI.decay_unity - 1
        self.pops.append(
            Population(n, shape, du_dv, du_dv, len(ins) - 1, bias, 0, role="and")
        )  # fires iff v = 64·(inputs) > 64·(k - 1): every operand spiked
        for k, d in enumerate(ins):
            ref = self.values[d]
            idx = np.broadcast_to(_left_pad(ref.index, len(shape)), shape).reshape(-1)
            src = Ref(ref.pop, idx)
            out = self.ident((size,))
            self.synapse(self.name(f"{d}->{n}"), n, n, unit_form(size, self.ident), 0, src, out, k)
        self.values[n] = Ref(n, self.ident(shape))

    def max_pool(self, n: str) -> None:
        """MaxPool over spikes = OR: a threshold population fed by a unit-weight sum pool."""
        op, (d,) = self.g.op(n), self.g.inputs_of(n)
        src = self.values[d]
        if self.g.type(d).kind is not Kind.SPIKE or not isinstance(src, Ref):
            raise lowering_error(
                n, f"MaxPool2d of {self.kinds(n)} is not an OR of spikes", "pool spikes"
            )
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

    def delay(self, n: str) -> None:
        raise lowering_error(
            n,
            "an IR Delay on chip: samples run back to back on Lava, so a delayed value would "
            "carry the previous sample's last steps into the next sample's first ones, where the "
            "reference reads zeros (no zoo model has one)",
            "remove the Delay, or run the model with one sample per Lava run",
            code="LOW004",
        )

    # -- connections -------------------------------------------------------------------------
    def synapse(
        self,
        name: str,
        e: str,
        target: str,
        f: ConvForm,
        exp: int,
        src: Ref,
        out_map: np.ndarray,
        key: object = None,
    ) -> None:
        """A dense or conv connection for conv form ``f`` (mantissas, exponent ``exp``).

        ``out_map`` is ``[n_target]`` or ``[n_target, J]`` (J entry outputs per neuron);
        ``key`` tells apart the operand maps of one entry read from several sources.
        """
        key = e if key is None else (e, key)
        if key not in self.operands:
            self.operands[key] = narrow(compose(f.in_order, src.index).reshape(f.in_shape))
        operand = self.operands[key]
        inv = np.empty(len(f.out_order), np.int64)
        inv[f.out_order] = np.arange(len(f.out_order))
        out_index = self.shared(compose(out_map, inv))
        source = self.pop(src.pop)
        n_src = source.size
        n_conv_out = math.prod(f.out_shape)
        folds = out_index.ndim == 1 or exp >= 0  # one floor per neuron equals the reference's
        if folds and max(len(out_index), n_conv_out) * n_src <= DENSE_MAX_ENTRIES:
            w = _unrolled(f, operand, out_index, n_src)
            if w is not None:
                params = {
                    "weights": narrow(2 * w),
                    "weight_exp": exp - 1,
                    "sign_mode": "mixed",
                    "num_message_bits": source.bits if source.graded else 0,
                }
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

    def program(self, e: str, target: str, prog: Prog, out_map: np.ndarray) -> None:
        """A ``product`` connection computing ``prog`` into ``target``."""
        self.conns.append(P.connection(self.name(f"{e}->{target}"), e, target, prog, out_map))

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
                raise lowering_error(
                    d,
                    f"the host readout reads {self.g.type(d).kind_str()} {d}, which the chip "
                    "does not hold as spikes of one population",
                    "read neuron spikes (quantize gives readouts float host copies of currents "
                    "and counts)",
                    code="LOW003",
                )
            taps.setdefault(d, Tap(d, v.pop, v.index))
        return list(taps.values())


def _left_pad(idx: np.ndarray, rank: int) -> np.ndarray:
    return idx.reshape((1,) * (rank - idx.ndim) + idx.shape)


def _population(g: Graph, n: str) -> Population:
    op = g.op(n)
    shape = tuple(g.type(n).shape)
    if isinstance(op, O.LoihiExpGIF):
        if op.start is None and int(g.meta["timesteps"]) % op.bits:
            raise lowering_error(
                n,
                f"T = {g.meta['timesteps']} is not a multiple of the neuron's {op.bits} bits: "
                "back-to-back samples would start mid-group",
                "use T = groups x bits",
            )
        bias = np.broadcast_to(np.asarray(op.bias, np.int64), shape).reshape(-1)
        return Population(
            n, shape, 0, 0, 0, narrow(bias), 0, role="expgif", thresholds=tuple(op.thresholds),
            start=op.start,
        )  # fmt: skip
    bias = np.broadcast_to(np.asarray(op.bias_mant, np.int64), shape).reshape(-1)
    return Population(n, shape, int(op.du), int(op.dv), int(op.vth), narrow(bias), int(op.bias_exp))


def _unrolled(
    f: ConvForm, operand: np.ndarray, out_index: np.ndarray, n_src: int
) -> np.ndarray | None:
    """The folded matrix ``[len(out_index), n_src]`` of mantissas, or None outside 8 bits.

    Row ``t`` is conv output ``out_index[t]`` (zero for -1; the sum of the rows listed for a
    2-D map); column ``s`` sums the weights of every conv input that reads source neuron ``s``
    (several when an index map repeats one).
    """
    out_c, in_c, widx = conv_pairs(f)
    col = operand.reshape(-1)[in_c]
    keep = col >= 0
    m = np.zeros((math.prod(f.out_shape), n_src), np.int64)
    np.add.at(m, (out_c[keep], col[keep]), np.asarray(f.weight, np.int64).reshape(-1)[widx[keep]])
    rows = out_index if out_index.ndim == 2 else out_index[:, None]
    w = np.zeros((len(rows), n_src), np.int64)
    for j in range(rows.shape[1]):
        r = rows[:, j]
        w += np.where((r >= 0)[:, None], m[np.maximum(r, 0)], 0)
    if w.size and (w.min() < LOIHI.weight_min or w.max() > LOIHI.weight_max):
        return None
    return w


#: Spike-valued op -> its lowering (a method of :class:`Lowering`).
SPIKE_OPS: dict[type[O.Op], Callable[[Lowering, str], None]] = {
    **{cls: Lowering.structural for cls in STRUCTURAL},
    O.MaxPool2d: Lowering.max_pool,
    O.MatMul: Lowering.product,
    O.Mul: Lowering.spike_and,
    O.Delay: Lowering.delay,
}


def lower_program(g: Graph, attention: str = "process") -> ProgramSpec:
    """The program spec of a graph quantized for Loihi (depths and delays not yet balanced).

    ``attention``: how spike ``MatMul``s run, ``"process"`` (a custom fixed-point process) or
    ``"and"`` (the exact AND expansion onto neurons, :mod:`~snncc.backends.lower.attention`;
    ``LOW030``/``LOW031`` where it cannot express or build one).

    Requires: ``g`` went through ``quantize`` with target ``loihi``.
    Ensures:  populations and connections in topological order (every connection's sources
              precede its target); raises ``SnnccError`` ``LOW0xx`` naming the first node whose
              op or structure has no lowering yet.
    """
    from snncc.backends.lower.fanin import lower_stream

    if (g.meta.get("quant") or {}).get("target") != "loihi":
        raise lowering_error(g.name, "the graph is not quantized for loihi", "run quantize first")
    if attention not in A.CHOICES:
        raise lowering_error(g.name, f"attention {attention!r}", f"one of {A.CHOICES}")
    low = Lowering(g, attention)
    for n in g.topo_order():
        if n in low.split.deployed and g.type(n).kind is not Kind.CURRENT:
            low.spike_node(n)
    host: list[HostInput] = []
    for s in low.split.streams:
        if s.host:
            host.extend(HostInput(n, s.host, float(g.op(n).host_scale)) for n in s.neurons)
        else:
            lower_stream(low, s)
    order = {p.name: i for i, p in enumerate(low.pops)}
    conns = sorted(low.conns, key=lambda c: order[c.target])
    notes = []
    if any(c.kind == "product" for c in conns):
        notes.append(
            "product connections (spike products such as Q·Kᵀ·V, max-pools of currents) run as "
            "a custom fixed-point Lava process: exact, but not neurocore-native"
        )
    notes += A.notes(low)
    graded = [p.name for p in low.pops if p.role == "expgif"]
    if graded:
        notes.append(
            f"{len(graded)} populations run as a programmable neuron (microcode on Loihi 2; a "
            "custom fixed-point Lava process): ExpG-IF / soft-reset IF with graded payloads"
        )
    return ProgramSpec(
        "loihi", int(g.meta["timesteps"]), low.pops, conns, host, low.taps(), list(g.outputs),
        notes=notes,
    )  # fmt: skip
