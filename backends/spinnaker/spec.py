"""The SpiNNaker program: the shared program spec with sPyNNaker populations and synapse lists.

One mechanism for both targets (docs/lava-backend.md): a :class:`SpiNNakerProgram` is a
:class:`~snncc.backends.lower.spec.ProgramSpec`, so the compile pipeline's ``lower`` pass,
``balance_latency`` (:func:`snncc.backends.lower.balance.balance`) and the report read it as they
read a Lava program; only the population records and the connection kind are SpiNNaker's:

- :class:`SpiNNakerPopulation`: one PyNN ``Population``. ``role`` is ``"lif"`` (an
  ``IF_curr_delta`` with the quantizer's :class:`~snncc.ir.ops.SpiNNakerLIF` parameters, raw
  s16.15), ``"and"``/``"or"`` (memoryless ``IF_curr_delta`` threshold neurons, ``exp_tc = 0``:
  AND of spike products, OR of a max-pool over spikes) or ``"host"`` (a ``SpikeSourceArray``:
  the first, host-fed neurons, whose spikes the host computes with the reference's own
  arithmetic). ``bias`` (raw s16.15 per neuron) arrives through synapses from a clock source
  that fires during the population's window; ``checked`` says whether the population's spikes
  are the reference value of the node it is named after (an AND expansion of a ``MatMul`` is not).
- Connection kind ``"synapses"``: one PyNN ``Projection`` pair (excitatory and inhibitory
  receptor) with a ``FromListConnector``: ``params["pre"]``, ``["post"]`` (int32) and
  ``["weight"]`` (signed stored sPyNNaker weights: ``|w| <= 65535`` at the target's shift of
  that sign). The operand's ``index`` is the source's identity (the list holds every index map).

Timing: ``balance`` gives every connection ``hop = 1 + operand.delay`` steps, the spec's unit of
latency; the emitted program turns a hop into each simulator's delay (sPyNNaker ``d = hop``,
Brian2 ``d = hop - 1``, docs/spinnaker.md). Population ``p`` computes reference step ``t`` of a
sample at simulator step ``p.depth + t``. Samples run one per ``sim.run`` of
``T + depth`` steps, with ``sim.reset()`` between them (PyNN has no per-sample membrane reset).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from snncc.backends.lower.spec import Connection, HostInput, Operand, ProgramSpec, Tap
from snncc.diagnostics import SnnccError

FORMAT = "snncc-spinnaker-program"
VERSION = 1
KIND = "synapses"

#: Population roles and what runs them (reports read this table).
ROLES: dict[str, str] = {
    "lif": "IF_curr_delta (sPyNNaker LIF)",
    "and": "IF_curr_delta threshold neuron: AND of spikes (a spike product)",
    "or": "IF_curr_delta threshold neuron: OR of spikes (a max-pool)",
    "host": "SpikeSourceArray: host-fed neurons computed by the host",
}


@dataclass
class SpiNNakerPopulation:
    """One PyNN population (see the module docstring); every value raw s16.15 where a value."""

    name: str
    shape: tuple[int, ...]
    role: str
    v_thresh: int = 0
    exp_tc: int = 0
    exc_shift: int = 0
    inh_shift: int = 0
    bias: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    depth: int = 0
    checked: bool = True
    neurons_per_core: int = 256

    @property
    def size(self) -> int:
        """Number of neurons."""
        return int(math.prod(self.shape))

    @property
    def source(self) -> bool:
        """Whether the population is a spike source (no neuron model)."""
        return self.role == "host"


class SpiNNakerProgram(ProgramSpec):
    """A :class:`ProgramSpec` whose populations are :class:`SpiNNakerPopulation` records."""

    populations: list[SpiNNakerPopulation]  # type: ignore[assignment]

    @property
    def period(self) -> int:
        """Simulator steps per sample: one ``sim.run`` of ``T + depth`` (then ``sim.reset``)."""
        return self.timesteps + self.depth

    @property
    def schedule(self) -> str:
        """How a run of B samples is scheduled (the report's ``program.run_steps``)."""
        return (
            f"B*({self.timesteps} + {self.depth}) simulator steps: one sim.run of T + depth "
            "steps per sample, "
            "sim.reset() between samples"
        )

    def run_steps(self, batch: int) -> int:
        """Simulator steps of ``batch`` samples (each its own run)."""
        return batch * self.period

    def population(self, name: str) -> SpiNNakerPopulation:  # type: ignore[override]
        return next(p for p in self.populations if p.name == name)

    def apply_partition(self, plan: Any) -> None:
        """Neurons per core from the partition plan (sPyNNaker's ``neurons_per_core``).

        Why from the plan: the partitioner's cores are sized by every per-core limit (DTCM
        ring buffers, SDRAM of the padded synaptic rows), so the emitted program asks
        sPyNNaker for the same slicing the report costs. Layers the plan does not name keep
        sPyNNaker's default (256).
        """
        layers = plan["layers"] if isinstance(plan, dict) else plan.layers
        per_core = {str(r["name"]): int(r["atoms_per_core"]) for r in layers}
        for p in self.populations:
            if p.name in per_core and per_core[p.name] > 0:
                p.neurons_per_core = min(per_core[p.name], p.size)

    # -- plain-file form ---------------------------------------------------------------------
    def to_payload(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(document, arrays)``: every array once, under ``p<i>.bias`` / ``c<i>.<key>``.

        Operand maps are identities and not stored. Raises ``LOW023`` if latency balancing
        added a population that is not a SpiNNaker one (a Loihi relay chain for a wait beyond
        its 62-step delay field: no SpiNNaker zoo program waits that long).
        """
        foreign = [p.name for p in self.populations if not isinstance(p, SpiNNakerPopulation)]
        if foreign:
            raise SnnccError(
                f"lower (spinnaker): {foreign[0]}: latency balancing inserted a relay for a wait "
                "beyond 62 steps, which the SpiNNaker program does not express",
                code="LOW023",
                hint="sPyNNaker delays reach 144 steps with delay extensions; a shallower "
                "network (fewer blocks) avoids the wait",
                exit_code=2,
            )
        arrays: dict[str, np.ndarray] = {}
        pops = []
        for i, p in enumerate(self.populations):
            d = {f.name: getattr(p, f.name) for f in dataclasses.fields(p) if f.name != "bias"}
            d["shape"] = [int(s) for s in p.shape]
            arrays[f"p{i}.bias"] = np.asarray(p.bias, np.int64)
            pops.append(_plain(d))
        conns = []
        for i, c in enumerate(self.connections):
            for key in ("pre", "post", "weight"):
                arrays[f"c{i}.{key}"] = np.asarray(c.params[key], np.int32)
            conns.append(
                {
                    "name": c.name,
                    "target": c.target,
                    "entry": c.entry,
                    "kind": c.kind,
                    "operands": [{"source": o.source, "delay": int(o.delay)} for o in c.operands],
                }
            )
        taps = []
        for i, t in enumerate(self.taps):
            arrays[f"t{i}.index"] = np.asarray(t.index, np.int32)
            taps.append({"node": t.node, "population": t.population})
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "target": self.target,
            "timesteps": int(self.timesteps),
            "balanced": bool(self.balanced),
            "populations": pops,
            "connections": conns,
            "host_inputs": [dataclasses.asdict(h) for h in self.host_inputs],
            "taps": taps,
            "outputs": list(self.outputs),
            "notes": list(self.notes),
        }
        return doc, arrays

    @classmethod
    def from_payload(cls, doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> SpiNNakerProgram:
        """Inverse of :meth:`to_payload`."""
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} v{VERSION} document")
        pops = [
            SpiNNakerPopulation(
                **{**d, "shape": tuple(d["shape"]), "bias": np.asarray(arrays[f"p{i}.bias"])}
            )
            for i, d in enumerate(doc["populations"])
        ]
        sizes = {p.name: p.size for p in pops}
        conns = []
        for i, d in enumerate(doc["connections"]):
            ops = [
                Operand(o["source"], identity(sizes[o["source"]]), int(o["delay"]))
                for o in d["operands"]
            ]
            params = {k: arrays[f"c{i}.{k}"] for k in ("pre", "post", "weight")}
            conns.append(Connection(d["name"], d["target"], d["entry"], d["kind"], ops, params))
        taps = [
            Tap(t["node"], t["population"], arrays[f"t{i}.index"])
            for i, t in enumerate(doc["taps"])
        ]
        return cls(
            target=doc["target"],
            timesteps=int(doc["timesteps"]),
            populations=pops,  # type: ignore[arg-type]
            connections=conns,
            host_inputs=[HostInput(**h) for h in doc["host_inputs"]],
            taps=taps,
            outputs=list(doc["outputs"]),
            balanced=bool(doc["balanced"]),
            notes=list(doc["notes"]),
        )


_IDENTITY: dict[int, np.ndarray] = {}


def identity(n: int) -> np.ndarray:
    """``arange(n)`` (int32), one shared read-only array per size."""
    if n not in _IDENTITY:
        a = np.arange(n, dtype=np.int32)
        a.setflags(write=False)
        _IDENTITY[n] = a
    return _IDENTITY[n]


def hop(operand: Operand) -> int:
    """Steps from a source spike to the target's update that integrates it (``1 + delay``)."""
    return 1 + int(operand.delay)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in d.items()}
