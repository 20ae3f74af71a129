"""The conservative Loihi 2 byte model (``--conv-synapses per-connection``), per core.

Per core holding ``k`` atoms of a layer with ``n`` atoms:

- synapses: every stored connection costs ``synapse_bits`` (8) bits, plus the 6-bit delay field
  when the projection is delayed (DelayDense), rounded up to whole bytes per synapse. Weights are
  stored *per connection*, convolutions included: an upper bound that needs no knowledge of the
  chip's convolution layout. The calibrated model (``--conv-synapses shared``,
  :mod:`snncc.backends.lava.calibrated`) costs what Intel's compiler does instead;
- neuron state: ``neuron_state_bytes`` per neuron (relays, AND and OR neurons included);
  a custom MatMul process holds operand buffers and accumulators instead;
- input axons: one table entry of ``axon_entry_bytes`` per distinct presynaptic source, bounded
  by ``min(n_pre, k·rf, (ceil(k/group)+1)·rf)`` per projection. The same count is checked
  against ``fan_in_per_core`` (4,096, Loihi 1's figure).

Several layers may share a core (first-fit decreasing packing in the partitioner).
"""

from __future__ import annotations

import dataclasses

from snncc.backends.lava.constraints import LOIHI, LoihiConstraints
from snncc.exact import ceil_div
from snncc.resources.memory import Projection, Unit, conv_sources

#: The Loihi cost models, by ``--conv-synapses`` value: ``per-connection`` (this module: every
#: synapse a byte, convolutions included, the conservative bound) and ``shared`` (the model
#: calibrated on Intel's compiler output: shared convolution kernels, SynMem units;
#: :mod:`snncc.backends.lava.calibrated`).
CONV_SYNAPSES = ("per-connection", "shared")


def axons(p: Projection, k: int) -> int:
    """Upper bound on the distinct presynaptic sources of ``k`` consecutive atoms."""
    if p.rf <= 0:
        return 0
    bound = min(p.n_pre, k * p.rf)
    if p.group > 1:
        bound = min(bound, (ceil_div(k, p.group) + 1) * p.rf)
    if p.conv:  # sliding windows overlap: count the input rows the atoms' windows cover
        inputs = p.conv[1] * p.conv[2] * p.conv[3] * p.conv[0]
        per_input = max(1, p.n_pre // max(1, inputs))  # spike sources per input element
        bound = min(bound, conv_sources(p.conv, k) * per_input)
    return bound


class LoihiMemoryModel:
    """Per-core usage and limits of Loihi 2 (all limits are planning assumptions, §1.2)."""

    name = "loihi"
    cost_model = "per-connection"
    packs = True
    #: Loihi 2 neurons can send graded spikes (an integer payload, §1.2), so a neuron whose
    #: fan-in exceeds a core can sum its inputs in partial-sum relays
    #: (snncc.resources.core_fit.split_fan_in).
    graded_relays = True

    def __init__(self, core_memory: int | None = None, c: LoihiConstraints = LOIHI) -> None:
        self.c = c
        self.limits = {
            "neurons": c.neurons_per_core,
            "memory": int(core_memory) if core_memory else c.core_memory_bytes,
            "fan_in": c.fan_in_per_core,
        }

    def synapse_bytes_each(self, p: Projection) -> int:
        """Bytes per stored synapse of a projection: 8-bit weight (+ 6-bit delay field)."""
        bits = self.c.synapse_bits + (self.c.delay_field_bits if p.delay > 0 else 0)
        return ceil_div(bits, 8)

    def synapse_bytes(self, p: Projection, k: int, n: int) -> int:
        """Synaptic memory of ``k`` of ``n`` consecutive post atoms: their share of the stored
        synapses, per connection."""
        return ceil_div(p.synapses * k, n) * self.synapse_bytes_each(p)

    def state_bytes(self, unit: Unit, k: int) -> int:
        """Neuron state, or the custom process's buffers for ``k`` of its output elements."""
        if unit.neurons:
            return k * self.c.neuron_state_bytes
        spikes, words = unit.buffers
        total = (
            spikes * self.c.custom_spike_bytes
            + words * self.c.custom_word_bytes
            + unit.size * self.c.custom_word_bytes
        )
        return ceil_div(total * k, unit.size)

    def usage(self, unit: Unit, k: int) -> dict[str, int]:
        """Resources used by ``k`` atoms of ``unit`` on one core."""
        n = max(1, unit.size)
        syn = sum(self.synapse_bytes(p, k, n) for p in unit.projections)
        fan_in = sum(axons(p, k) for p in unit.projections) if unit.native else 0
        state = self.state_bytes(unit, k)
        routing = fan_in * self.c.axon_entry_bytes
        return {
            "neurons": k if unit.neurons else 0,
            "memory": syn + state + routing,
            "fan_in": fan_in,
            "synapse_bytes": syn,
            "state_bytes": state,
            "routing_bytes": routing,
        }

    def relay_link(self, unit: Unit, relay: str) -> Projection:
        """The one-to-one graded input from partial-sum relay ``relay`` into ``unit``."""
        return Projection(relay, None, "direct", unit.size, unit.size, 1, 1)

    def relay_capacity(self) -> int:
        """Sources one partial-sum relay may read: half a core's fan-in."""
        return max(1, self.limits["fan_in"] // 2)

    def relay_load(self, unit: Unit, p: Projection) -> int:
        """Sources one neuron reads through ``p``."""
        return min(p.n_pre, p.rf)

    def relay_pieces(self, unit: Unit, p: Projection) -> list[Projection]:
        """``p`` cut into ``ceil(sources / capacity)`` input groups (e.g. channel groups of a
        conv), each with that share of the sources, synapses and receptive field."""
        n = max(1, ceil_div(self.relay_load(unit, p), self.relay_capacity()))
        if n == 1:
            return [p]
        piece = dataclasses.replace(p, synapses=ceil_div(p.synapses, n),
                                    n_pre=ceil_div(p.n_pre, n), rf=ceil_div(p.rf, n))  # fmt: skip
        return [piece] * n

    def extra_cores(self, unit: Unit, n_chunks: int) -> int:
        """Loihi needs no helper cores (delays up to 62 live in the synapse)."""
        return 0

    def distinct_sources(self, unit: Unit) -> int:
        """Presynaptic sources of a layer, each counted once (for the fan-in lower bound)."""
        per_source: dict[str, int] = {}
        for p in unit.projections:
            if p.rf > 0:
                per_source[p.source] = max(per_source.get(p.source, 0), p.n_pre)
        return sum(per_source.values())
