"""Loihi 2 bytes per core for a slice of a deployed layer (formulas in docs/budget.md).

Per core holding ``k`` atoms of a layer with ``n`` atoms:

- synapses: every stored connection costs ``synapse_bits`` (8) bits, plus the 6-bit delay field
  when the projection is delayed (DelayDense), rounded up to whole bytes per synapse. Weights are
  stored *per connection* (the Dense/Sparse lowering), convolutions included: Lava's Conv process
  shares kernels in simulation, but the chip's layout of convolutional synapses is not public,
  and the fan-in limit forces position-major placement, under which one core would need every
  output channel's kernel anyway. Per connection is therefore the safe upper bound;
- neuron state: ``neuron_state_bytes`` per neuron (relays, AND and OR neurons included);
  a custom MatMul process holds operand buffers and accumulators instead;
- input axons: one table entry of ``axon_entry_bytes`` per distinct presynaptic source, bounded
  by ``min(n_pre, k·rf, (ceil(k/group)+1)·rf)`` per projection. The same count is checked
  against ``fan_in_per_core``.

Several layers may share a core (Lava's compiler packs processes), so the partitioner packs.
"""

from __future__ import annotations

from snncc.backends.lava.constraints import LOIHI, LoihiConstraints
from snncc.exact import ceil_div
from snncc.memory import Projection, Unit, conv_sources

#: How convolution weights are costed: ``per-connection`` (the default and the safe bound: the
#: chip's layout of convolutional synapses is not public, §1.2) or ``shared`` (an ASSUMPTION:
#: one copy of each output channel's kernel per core, as weight-shared convolution would need).
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
    packs = True
    #: Loihi 2 neurons can send graded spikes (an integer payload, §1.2), so a neuron whose
    #: fan-in exceeds a core can sum its inputs in partial-sum relays (snncc.core_fit.split_fan_in).
    graded_relays = True

    def __init__(
        self,
        core_memory: int | None = None,
        c: LoihiConstraints = LOIHI,
        conv_synapses: str = "per-connection",
    ) -> None:
        if conv_synapses not in CONV_SYNAPSES:
            raise ValueError(f"conv_synapses must be one of {CONV_SYNAPSES}")
        self.c = c
        self.conv_synapses = conv_synapses
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
        """Synaptic memory of ``k`` of ``n`` consecutive post atoms for projection ``p``.

        Per connection: the atoms' share of the stored synapses. With ``conv_synapses="shared"``
        a convolution may instead store, once per core, the kernels of the output channels its
        atoms belong to (at most ``ceil(k / atoms per channel) + 1`` channels, as atoms are
        channel-major); the smaller of the two is used.
        """
        each = self.synapse_bytes_each(p)
        per_connection = ceil_div(p.synapses * k, n) * each
        if self.conv_synapses != "shared" or not p.kernel or not p.channel_atoms:
            return per_connection
        channels = min(ceil_div(n, p.channel_atoms), ceil_div(k, p.channel_atoms) + 1)
        return min(per_connection, channels * p.kernel * each)

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
