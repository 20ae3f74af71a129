"""SOP counts and energy estimates under several published energy models, each with provenance.

Per costed layer (Linear/Conv; see :mod:`snncc.analysis.sops`), per sample:

- ``flops``: FLOPs of the equivalent ANN layer per timestep; ``runs`` = T (1 after ``TimeMean``);
- MAC vs AC exactly as the Spikingformer energy code: a layer is **AC** only if its input is
  strictly 0/1. snncc decides by the IR kind (``SPIKE``) and checks it against the recorded
  values; then ``ACs = fr_in · runs · flops``. Any other input is **MAC**: ``MACs = runs · flops``
  (firing rate taken as 100 %, as the reference does);
- ``events``: synaptic events a neuromorphic chip would process: ``mean_in · runs · flops`` for
  spike and count inputs (a count of k is k events, "calculation 1)" of Spikformer's appendix);
  real-valued inputs run on the host and are listed as host MACs.

Attention adds ``T · h · N · d² · (min(fr_K, fr_V) + fr_Q)`` ACs (and events) per SSA block.
Energy models are data (:data:`MODELS`): constants, labels and sources from hardware-semantics.md
§6 and seed-models.md §1.3. Every estimate is a *model*, not a measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from snncc.analysis.feeds import batches
from snncc.analysis.sops import AttentionBlock, Layer, attention_blocks, costed_layers
from snncc.analysis.stats import FiringStats, Progress, collect
from snncc.diagnostics import SnnccError
from snncc.exact import ceil_div
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind

PJ = 1e-12
NJ = 1e-9


@dataclass
class LayerCost:
    """One row of the per-layer table (per sample)."""

    node: str
    op: str
    input_kind: str
    flops: int
    runs: int
    fr_in: float | None  # mean input value (firing rate for spikes); None for real inputs
    nonzero_in: float
    binary_in_data: bool
    klass: str  # "AC" | "MAC"
    sops: float  # ACs for AC layers, MACs for MAC layers
    events: float  # on-chip synaptic events (0 for host layers)
    host: bool  # real-valued input: runs on the host (encoding layer, readout head)
    note: str = ""


@dataclass
class AttentionCost:
    """One SSA block's analytic term (per sample)."""

    matmuls: tuple[str, str]
    order: str
    q: str
    k: str
    v: str
    fr_q: float
    fr_k: float
    fr_v: float
    heads: int
    tokens: int
    head_dim: int
    klass: str
    sops: float


@dataclass
class Totals:
    """Sums per sample over the whole model."""

    macs: float = 0.0
    acs: float = 0.0
    events: float = 0.0
    host_macs: float = 0.0
    neuron_updates: float = 0.0
    active_updates: float = 0.0
    spikes: float = 0.0
    neurons: int = 0


@dataclass(frozen=True)
class EnergyModel:
    """A named energy model: a function of the totals, a label and its source."""

    name: str
    label: str
    provenance: str
    fn: Callable[[Totals, int], float]  # (totals, timesteps) -> joules per sample
    terms: str


def _spinnaker_chip(t: Totals, timesteps: int) -> float:
    cores = ceil_div(t.neurons, SPINN_NEURONS_PER_CORE) if t.neurons else 0
    chips = ceil_div(cores, SPINN_APP_CORES_PER_CHIP) if cores else 0
    return (0.35 * chips + 0.034 * cores) * timesteps * 1e-3


SPINN_NEURONS_PER_CORE = 256
SPINN_APP_CORES_PER_CHIP = 16

MODELS: tuple[EnergyModel, ...] = (
    EnergyModel(
        "45nm",
        "45 nm proxy (E_MAC 4.6 pJ, E_AC 0.9 pJ)",
        "Horowitz, ISSCC 2014 (45 nm, 0.9 V; fp32 mult 3.7 + add 0.9 pJ), as tabulated in "
        "PMC8934428 Table 3; the Spikingformer energy convention (seed-models.md §1.3)",
        lambda t, T: 4.6 * PJ * t.macs + 0.9 * PJ * t.acs,
        "4.6 pJ × MACs + 0.9 pJ × ACs",
    ),
    EnergyModel(
        "loihi",
        "Loihi 1, pre-silicon, 0.75 V, minimum",
        "Davies et al., IEEE Micro 2018, Table 2 (pre-silicon SDF and SPICE simulations, "
        "consistent with early post-silicon characterization); host layers excluded",
        lambda t, T: (
            23.6 * PJ * t.events
            + 81 * PJ * t.active_updates
            + 52 * PJ * (t.neuron_updates - t.active_updates)
        ),
        "23.6 pJ × synaptic events + 81 pJ × active + 52 pJ × inactive neuron updates "
        "(active = the neuron fires in that step, snncc's proxy)",
    ),
    EnergyModel(
        "spinnaker-event",
        "SpiNNaker 1, per event (component model + router)",
        "13.3 nJ/synaptic event and 26 nJ/neuron update: arXiv:1903.08941 as cited in a code "
        "comment [unverified]; 1 nJ per 40-bit spike packet: SpiNNMachine "
        "spinn_machine/version/version_spin1.py citing Painkras et al. 2013",
        lambda t, T: 13.3 * NJ * t.events + 26 * NJ * t.neuron_updates + 1 * NJ * t.spikes,
        "13.3 nJ × synaptic events + 26 nJ × neuron updates + 1 nJ × spike packets",
    ),
    EnergyModel(
        "spinnaker-chip",
        "SpiNNaker 1, per chip (real time, 1 ms per step)",
        "0.35 W per idle chip, +0.034 W per active core: SpiNNMachine "
        "spinn_machine/version/version_spin1.py; cores = ceil(neurons/256), 16 application "
        "cores per chip [derived estimate, not a placement]",
        _spinnaker_chip,
        "(0.35 W × chips + 0.034 W × cores) × T × 1 ms",
    ),
    EnergyModel(
        "spinnaker-system",
        "SpiNNaker 1, system level per synaptic event",
        "van Albada et al., Front. Neurosci. 2018 (doi:10.3389/fnins.2018.00291): ≈5.9 µJ per "
        "synaptic event, full cortical microcircuit at 20× slow-down [exact number unverified]",
        lambda t, T: 5.9e-6 * t.events,
        "5.9 µJ × synaptic events",
    ),
)


@dataclass
class EnergyReport:
    """Per-layer costs, attention terms, totals and energies (all per sample)."""

    model: str
    timesteps: int
    samples: int
    data: str
    layers: list[LayerCost]
    attention: list[AttentionCost]
    totals: Totals
    energy: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dictionary (schema in docs/verification.md)."""
        return {
            "model": self.model,
            "timesteps": self.timesteps,
            "samples": self.samples,
            "data": self.data,
            "layers": [asdict(r) for r in self.layers],
            "attention": [asdict(a) for a in self.attention],
            "totals": asdict(self.totals),
            "energy": list(self.energy),
            "notes": list(self.notes),
        }


def _layer_cost(g: Graph, layer: Layer, stats: FiringStats, T: int) -> LayerCost:
    src = layer.input_node
    kind = g.type(src).kind
    runs = T if layer.temporal else 1
    fr, binary = stats.mean(src), stats.binary.get(src, False)
    fr_in = None if kind is Kind.CURRENT else fr
    if kind is Kind.SPIKE and not binary:
        raise SnnccError(
            f"{layer.node}: input {src} is typed spike but the reference produced values other "
            "than 0/1",
            code="EN900",
            exit_code=70,
        )
    note = ""
    if kind is Kind.SPIKE:
        klass, sops, events = "AC", fr * runs * layer.flops, fr * runs * layer.flops
    else:
        klass, sops = "MAC", float(runs * layer.flops)
        events = fr * runs * layer.flops if kind is Kind.COUNT else 0.0
        if binary and kind is Kind.COUNT:
            note = "input was 0/1 on this data but is not typed spike: costed as MAC"
    return LayerCost(
        layer.node, layer.op, layer.input_kind, layer.flops, runs, fr_in, stats.nonzero(src),
        binary, klass, sops, events, kind is Kind.CURRENT, note,
    )  # fmt: skip


def _attention_cost(g: Graph, b: AttentionBlock, stats: FiringStats, T: int) -> AttentionCost:
    frs = [stats.mean(n) for n in (b.q, b.k, b.v)]
    spiking = all(g.type(n).kind is Kind.SPIKE for n in (b.q, b.k, b.v))
    sops = b.ops(T, *frs) if spiking else float(b.dense_ops(T))
    return AttentionCost(
        b.matmuls, b.order, b.q, b.k, b.v, *frs, b.heads, b.tokens, b.head_dim,
        "AC" if spiking else "MAC", sops,
    )  # fmt: skip


def tracked_nodes(g: Graph) -> list[str]:
    """The nodes whose values the analysis needs: layer inputs and attention Q/K/V."""
    blocks, _ = attention_blocks(g)
    nodes = [layer.input_node for layer in costed_layers(g)]
    return nodes + [n for b in blocks for n in (b.q, b.k, b.v)]


def _totals(g: Graph, layers: list[LayerCost], attn: list[AttentionCost], s: FiringStats) -> Totals:
    t = Totals()
    for r in layers:
        if r.klass == "AC":
            t.acs += r.sops
        else:
            t.macs += r.sops
            t.host_macs += r.sops if r.host else 0.0
        t.events += r.events
    for a in attn:
        if a.klass == "AC":
            t.acs += a.sops
            t.events += a.sops
        else:
            t.macs += a.sops
    T = s.timesteps
    for n, size in s.neurons.items():
        t.neurons += size
        t.neuron_updates += size * T
        spk = s.spikes_per_sample(n)
        t.spikes += spk
        t.active_updates += spk
    return t


def estimate(g: Graph, stats: FiringStats, *, model: str = "", data: str = "") -> EnergyReport:
    """Build the :class:`EnergyReport` of a typed graph from collected firing statistics."""
    T = stats.timesteps
    layers = [_layer_cost(g, layer, stats, T) for layer in costed_layers(g)]
    blocks, unpaired = attention_blocks(g)
    attn = [_attention_cost(g, b, stats, T) for b in blocks]
    totals = _totals(g, layers, attn, stats)
    notes = [f"MatMul {m} is not part of a Q/K/V chain: not costed" for m in unpaired]
    n_mul = sum(isinstance(g.op(n), O.Mul) for n in g.nodes())
    if n_mul:
        notes.append(f"{n_mul} Hadamard product(s) (Mul) not costed, as in the reference counter")
    if any(a.order != "Q(KᵀV)" for a in attn):
        notes.append("attention is costed in the order Q(KᵀV), as the Spikingformer counter does")
    report = EnergyReport(model, T, stats.samples, data, layers, attn, totals, notes=notes)
    for m in MODELS:
        report.energy.append(
            {
                "name": m.name,
                "label": m.label,
                "joules": m.fn(totals, T),
                "terms": m.terms,
                "provenance": m.provenance,
            }
        )
    return report


def prepare(g: Graph) -> Graph:
    """Canonicalize and type a graph for costing, *without* folding BN.

    Why no ``fold_bn``: the reference counter costs each conv as the PyTorch module is, and a
    bias-free conv followed by BN gains a bias when folded, which would add ``C_out·H·W`` FLOPs
    the published counts do not have.
    """
    from snncc.passes.canonicalize import canonicalize
    from snncc.passes.infer_types import infer_types
    from snncc.passes.manager import run_pipeline

    out, _ = run_pipeline(g, [canonicalize, infer_types])
    return out


def analyze(
    g: Graph,
    x: np.ndarray,
    *,
    model: str = "",
    data: str = "",
    batch_size: int = 8,
    progress: Progress | None = None,
) -> EnergyReport:
    """Firing statistics of ``x`` (model-layout samples) on typed ``g``, then :func:`estimate`."""
    stats = collect(g, batches(g, x, batch_size), tracked_nodes(g), progress=progress)
    return estimate(g, stats, model=model, data=data)
