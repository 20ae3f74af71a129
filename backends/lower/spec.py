"""The program spec: a lowered spiking network as plain data (numpy arrays, ints, strings).

``lower`` turns a graph quantized for Loihi into a :class:`ProgramSpec`; ``balance_latency``
fills in each population's pipeline depth and each operand's delay; the numpy executor
(:mod:`snncc.backends.lower.simulate`), the Lava emitter and the Lava runtime all read the same
spec. Nothing here imports Lava or torch, so the module works on Python 3.10 and 3.11.

Data model (every index is a C-order flat index into an IR value of one sample, one step):

- :class:`Population`: one neuron process. ``role`` (:data:`POPULATION_ROLES`) is ``"lif"`` for
  a quantized ``LoihiLIF`` node, ``"or"`` for a max-pool over spikes lowered to a threshold
  neuron (``du = dv = 4095, vth = 0``: fires iff any input spiked), ``"and"`` for a product of
  spike tensors (``vth = k - 1`` over ``k`` unit inputs: fires iff all spiked), ``"relay"`` for
  a delay-line relay (an OR neuron with one input), all Lava ``LIFReset``; and ``"expgif"`` for
  the programmable neuron (:class:`~snncc.ir.ops.LoihiExpGIF`, ``thresholds`` per step of a
  group, graded payload ``2^(K-1-k)``), a custom process. ``depth``: the population computes
  reference step ``t`` of a sample at Lava step ``t + depth + 1`` (1-based) after that sample's
  first host step.
- :class:`Operand`: where a connection's input comes from: population ``source`` read through
  ``index`` (shape of the operand; ``-1`` reads 0, e.g. padding) and held back ``delay`` steps.
- :class:`Connection`: one synapse process from its operand(s) to one ``target`` population; it
  realises one term of the target's input: the synaptic op ``entry`` seen through the
  structural ops between it and the target (folded into ``out_index`` or the dense matrix).
  Kinds (``params`` keys in :data:`KIND_PARAMS`): ``dense`` (Lava ``Dense``/``DelayDense``),
  ``conv`` (Lava ``Conv`` semantics, a vectorised custom model), ``product`` (a custom
  fixed-point process evaluating a program of IR ops: spike products such as attention's
  ``Q·Kᵀ·V``, a max-pool of currents). Every kind sends, at Lava step ``τ``, what its operands
  carried at ``τ - 1 - delay``. ``out_index`` is ``[n_target]`` (one entry output per target
  neuron, ``-1``: none) or ``[n_target, J]``: the target neuron receives the sum of ``J``
  entry outputs, each computed (and shifted by the weight exponent) on its own, as ``J``
  projections into one neuron do.
- :class:`HostInput`: a population fed by the host: ``a_in = rint(x · host_scale)`` of the
  float encoding node ``node``.
- :class:`Tap`: a deployed value the host readout reads (``node``), rebuilt from a population's
  spikes through ``index``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snncc.ir.ops import Op
from snncc.ir.serialize import op_from_dict, op_to_dict

SPEC_FORMAT = "snncc-program-spec"
SPEC_VERSION = 1

#: ``Connection.params`` per kind: what each key holds.
KIND_PARAMS: dict[str, dict[str, str]] = {
    "dense": {
        "weights": "int [n_target, n_source]: the array given to Lava Dense (2·W_q, trap 2)",
        "weight_exp": "int: Lava Dense weight_exp (the IR exponent - 1)",
        "sign_mode": "str: always 'mixed' (passed explicitly so Dense never guesses it)",
        "num_message_bits": "int: 0 for 1-bit spikes, K for a programmable neuron's graded "
        "payload (Dense then multiplies each weight by the payload)",
    },
    "conv": {
        "kernel": "int [C_out, kW, kH, C_in/groups]: Lava Conv layout, flipped, W_q << exp",
        "input_shape": "(X, Y, C): Lava layout of the gathered operand",
        "stride": "(X, Y)",
        "padding": "(X, Y)",
        "dilation": "(X, Y)",
        "groups": "int",
    },
    "product": {
        "steps": "list of IR ops (MatMul, Mul, Scale, synaptic, MaxPool2d, Add, Sum, "
        "structural) evaluated in order with the loihi reference kernels",
        "step_inputs": "list of lists: value references (operands first, then steps)",
        "step_meta": "list of dicts: the quantizer's meta a step needs (weight_exp)",
    },
}

#: Population roles: what runs the neuron on Loihi 2 (reports read this table).
POPULATION_ROLES: dict[str, str] = {
    "lif": "Lava LIF (neurocore)",
    "or": "threshold neuron: OR of spikes, a max-pool (neurocore)",
    "and": "threshold neuron: AND of spikes, a spike product (neurocore)",
    "relay": "relay neuron carrying spikes beyond one connection's delay (neurocore)",
    "expgif": "programmable neuron (microcode on Loihi 2)",
}


@dataclass
class Population:
    """One layer of neurons (one Lava LIF process); see the module docstring."""

    name: str
    shape: tuple[int, ...]
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray  # int64, [size]
    bias_exp: int
    role: str = "lif"
    depth: int = 0
    thresholds: tuple[int, ...] = ()  # role "expgif": threshold per step of a group
    #: Whether the spikes are the reference value of the node the population is named after
    #: (False for an AND expansion of a product: one neuron per term, not per element).
    checked: bool = True
    start: int | None = None  # role "expgif": the one group's first step (LoihiExpGIF.start)

    @property
    def size(self) -> int:
        """Number of neurons."""
        return int(math.prod(self.shape))

    @property
    def bits(self) -> int:
        """Steps per group of a programmable neuron (0 for the others)."""
        return len(self.thresholds)

    @property
    def graded(self) -> bool:
        """Whether the outputs are graded payloads (a programmable neuron with two or more bits)."""
        return self.bits > 1

    def payloads(self) -> np.ndarray:
        """Payload of a spike at each step of a group: ``2^(K-1-k)`` (``[1]`` for 1-bit)."""
        k = max(self.bits, 1)
        return np.array([1 << (k - 1 - i) for i in range(k)], np.int64)


@dataclass
class Operand:
    """A connection input: ``source`` spikes read through ``index``, ``delay`` steps late."""

    source: str
    index: np.ndarray  # int64, operand shape; -1 reads 0
    delay: int = 0


@dataclass
class Connection:
    """One synapse process into ``target`` (see the module docstring and :data:`KIND_PARAMS`)."""

    name: str
    target: str
    entry: str
    kind: str
    operands: list[Operand]
    params: dict[str, Any]
    out_index: np.ndarray | None = None  # int64 [target size]: entry-output index or -1

    def sources(self) -> list[str]:
        """The populations this connection reads, in operand order."""
        return [o.source for o in self.operands]


@dataclass
class HostInput:
    """A population whose input current the host computes (``rint(x · host_scale)``)."""

    population: str
    node: str
    host_scale: float


@dataclass
class Tap:
    """A deployed value read by the host readout: ``population`` spikes through ``index``."""

    node: str
    population: str
    index: np.ndarray  # int64, the node's shape


@dataclass
class ProgramSpec:
    """A lowered program; ``balanced`` once ``balance_latency`` set depths and delays."""

    target: str
    timesteps: int
    populations: list[Population]
    connections: list[Connection]
    host_inputs: list[HostInput]
    taps: list[Tap]
    outputs: list[str]
    balanced: bool = False
    notes: list[str] = field(default_factory=list)
    #: How spike products run and why (``backends.lower.choice``; the report's program
    #: section); None when there is none or no choice was made. Not part of the file form.
    attention: dict[str, Any] | None = None

    def population(self, name: str) -> Population:
        """The population called ``name`` (KeyError if there is none)."""
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def into(self, target: str) -> list[Connection]:
        """Connections whose target is ``target``."""
        return [c for c in self.connections if c.target == target]

    @property
    def depth(self) -> int:
        """Largest population depth: the pipeline latency of the whole program."""
        return max((p.depth for p in self.populations), default=0)

    @property
    def period(self) -> int:
        """Lava steps between the starts of consecutive samples (one sample per ``T`` steps)."""
        return self.timesteps

    def run_steps(self, batch: int) -> int:
        """Lava steps that run ``batch`` samples back to back and drain the pipeline."""
        return batch * self.period + self.depth

    def stats(self) -> dict[str, Any]:
        """Counts for the pass record: populations, neurons, connections per kind, depth."""
        kinds: dict[str, int] = {}
        for c in self.connections:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        return {
            "populations": len(self.populations),
            "neurons": sum(p.size for p in self.populations),
            "connections": dict(sorted(kinds.items())),
            "depth": self.depth,
            "max_delay": max((o.delay for c in self.connections for o in c.operands), default=0),
        }

    # -- plain-file form ---------------------------------------------------------------------
    def to_payload(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(json-able document, arrays)``: the spec as files (``run_in_runtime``, emit).

        Every array is stored once under a key such as ``p3.bias_mant`` or ``c7.o0.index`` and
        the document names it (``{"__array__": key}``); an array that several connections share
        (an entry's kernel under fan-in expansion, an identity map) is stored once, under the
        first key. ``from_payload(*to_payload())`` is the spec, sharing included.
        """
        store = _Store()
        pops = []
        for i, p in enumerate(self.populations):
            d = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
            d["shape"] = list(p.shape)
            d["thresholds"] = [int(t) for t in p.thresholds]
            d["bias_mant"] = store.put(f"p{i}.bias_mant", p.bias_mant)
            pops.append(d)
        conns = [_conn_doc(i, c, store) for i, c in enumerate(self.connections)]
        taps = [
            {"node": t.node, "population": t.population, "index": store.put(f"t{i}.index", t.index)}
            for i, t in enumerate(self.taps)
        ]
        doc = {
            "format": SPEC_FORMAT,
            "version": SPEC_VERSION,
            "target": self.target,
            "timesteps": self.timesteps,
            "balanced": self.balanced,
            "populations": pops,
            "connections": conns,
            "host_inputs": [dataclasses.asdict(h) for h in self.host_inputs],
            "taps": taps,
            "outputs": list(self.outputs),
            "notes": list(self.notes),
        }
        return doc, store.arrays

    @classmethod
    def from_payload(cls, doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> ProgramSpec:
        """Inverse of :meth:`to_payload`."""
        if doc.get("format") != SPEC_FORMAT or doc.get("version") != SPEC_VERSION:
            raise ValueError(f"not a {SPEC_FORMAT} v{SPEC_VERSION} document")
        loader = _Loader(arrays)
        got = loader.get
        pops = [
            Population(
                **{
                    **d,
                    "shape": tuple(d["shape"]),
                    "bias_mant": got(d["bias_mant"]),
                    "thresholds": tuple(d.get("thresholds", ())),
                }
            )
            for d in doc["populations"]
        ]
        conns = [_conn_from_doc(d, loader) for d in doc["connections"]]
        taps = [Tap(d["node"], d["population"], got(d["index"])) for d in doc["taps"]]
        return cls(
            target=doc["target"],
            timesteps=int(doc["timesteps"]),
            populations=pops,
            connections=conns,
            host_inputs=[HostInput(**h) for h in doc["host_inputs"]],
            taps=taps,
            outputs=list(doc["outputs"]),
            balanced=bool(doc["balanced"]),
            notes=list(doc["notes"]),
        )


class _Store:
    """Arrays by key, each array object stored once (shared arrays keep their first key)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._keys: dict[int, str] = {}

    def put(self, key: str, a: np.ndarray) -> dict[str, str]:
        if id(a) not in self._keys:
            self._keys[id(a)] = key
            self.arrays[key] = a
        return {"__array__": self._keys[id(a)]}


class _Loader:
    """Arrays by key, the same object for every reference to one key (sharing restored)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def get(self, ref: dict[str, str]) -> np.ndarray:
        return self.arrays[ref["__array__"]]


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    return v


def _conn_doc(i: int, c: Connection, store: _Store) -> dict[str, Any]:
    """One connection as a JSON document; its arrays go to ``store`` under ``c<i>.…``."""
    ops = [
        {"source": o.source, "delay": o.delay, "index": store.put(f"c{i}.o{j}.index", o.index)}
        for j, o in enumerate(c.operands)
    ]
    params: dict[str, Any] = {}
    for k, v in c.params.items():
        if k == "steps":
            steps = []
            for j, op in enumerate(v):
                arrays: dict[str, np.ndarray] = {}
                d = op_to_dict(op, f"c{i}.s{j}", arrays)
                for key, a in arrays.items():
                    store.put(key, a)
                steps.append(d)
            params[k] = steps
        elif isinstance(v, np.ndarray):
            params[k] = store.put(f"c{i}.{k}", v)
        else:
            params[k] = _jsonable(v)
    out = None if c.out_index is None else store.put(f"c{i}.out_index", c.out_index)
    return {
        "name": c.name,
        "target": c.target,
        "entry": c.entry,
        "kind": c.kind,
        "operands": ops,
        "params": params,
        "out_index": out,
    }


def _conn_from_doc(d: dict[str, Any], loader: _Loader) -> Connection:
    got = loader.get
    operands = [Operand(o["source"], got(o["index"]), int(o["delay"])) for o in d["operands"]]
    params: dict[str, Any] = {}
    for k, v in d["params"].items():
        if k == "steps":
            params[k] = [op_from_dict(s, loader.arrays) for s in v]
        elif isinstance(v, dict) and "__array__" in v:
            params[k] = got(v)
        elif isinstance(v, list) and k not in ("step_inputs", "step_meta"):
            params[k] = tuple(v)
        else:
            params[k] = v
    out = None if d["out_index"] is None else got(d["out_index"])
    return Connection(d["name"], d["target"], d["entry"], d["kind"], operands, params, out)


def product_steps(c: Connection) -> list[tuple[Op, list[int], dict[str, Any]]]:
    """A product connection's program: ``(op, input references, meta)`` per step, in order."""
    metas = c.params.get("step_meta") or [{} for _ in c.params["steps"]]
    return list(zip(c.params["steps"], c.params["step_inputs"], metas, strict=True))


#: What a ``product`` connection's program computes, by the op kinds it holds (first match).
PROGRAM_WHAT: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"MaxPool2d"}), "a max-pool of currents (with the synapses before it)"),
    (frozenset({"MatMul", "Mul"}), "a product of spike trains (attention's Q·Kᵀ·V)"),
)


def not_native(spec: ProgramSpec) -> list[dict[str, str]]:
    """What of ``spec`` is not a neurocore's own operation, and why (for reports).

    One row per ``product`` connection (a custom fixed-point process: Loihi 2 has no neurocore
    operation for it) and per programmable-neuron population (neuron microcode on Loihi 2).
    """
    rows = []
    for p in spec.populations:
        if p.role == "expgif":
            rows.append({"name": p.name, "kind": "population", "why": POPULATION_ROLES[p.role]})
    for c in spec.connections:
        if c.kind != "product":
            continue
        ops = {type(op).__name__ for op in c.params["steps"]}
        what = next((w for keys, w in PROGRAM_WHAT if keys & ops), "an integer program")
        rows.append(
            {
                "name": c.name,
                "kind": "product",
                "why": f"{what}: a custom fixed-point Lava process (no neurocore operation)",
            }
        )
    return rows
