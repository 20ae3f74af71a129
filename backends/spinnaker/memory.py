"""SpiNNaker 1 (sPyNNaker 7.4.1) bytes per core for a slice of a deployed layer.

Per post-slice of ``k`` neurons (one core; sPyNNaker never shares a core between populations):

- SDRAM, synaptic matrices (§4.1, trap 9): per incoming projection, one block per connected
  pre-slice of up to 256 neurons (all pre-slices a weighted projection can reach; for
  one-to-one and AND-operand projections, whose order the compiler chooses, the contiguous
  pre-slices plus one), each ``rows × (3 + max_row) × 4 B + 16 B`` where every row of
  the pre-slice is stored and padded to the longest row. ``max_row = min(k, fan_out)``; the
  connected pre-slices are bounded by the sources the slice can reach. A graph input is a host
  spike source stored as a single pre-slice (as in the §4.1 measurement: 1000 → 10 = 52,016 B);
- DTCM: neuron state (``neuron_state_bytes`` per neuron) and the ring buffers:
  ``slots × 2 receptors × 2^atom_bits × 2 B`` with ``slots`` the power of two above the longest
  delay (d = 1 + Delay steps). Delays beyond the core's slots need a delay-extension core.

Host currents (the encoding layer's output) enter as the neurons' ``I_offset``: no synapses.
"""

from __future__ import annotations

from snncc.backends.lava.memory import axons
from snncc.backends.spinnaker.constraints import SPINNAKER, SpiNNakerConstraints
from snncc.exact import ceil_div
from snncc.resources.memory import Projection, Unit


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


class SpiNNakerMemoryModel:
    """Per-core usage and limits of SpiNNaker 1 under sPyNNaker."""

    name = "spinnaker"
    packs = False
    #: sPyNNaker spikes carry no payload: partial sums cannot be relayed exactly.
    graded_relays = False

    def __init__(self, core_memory: int | None = None, c: SpiNNakerConstraints = SPINNAKER):
        self.c = c
        self.limits = {
            "neurons": c.neurons_per_core,
            # a core may use up to its chip's SDRAM; chips are packed in snncc.passes.partition
            "sdram": int(core_memory) if core_memory else c.sdram_per_chip,
            "dtcm": c.dtcm_bytes,
        }

    def matrix_bytes(self, p: Projection, k: int) -> int:
        """SDRAM of one projection into a post-slice of ``k`` neurons (rows padded, §4.1)."""
        if p.synapses <= 0:
            return 0
        atoms_pre = p.n_pre if p.single_slice_source else self.c.neurons_per_core
        connected = max(1, axons(p, k))
        slices = ceil_div(p.n_pre, atoms_pre)
        if p.kind == "synaptic":  # channel-major layouts scatter a slice's inputs
            blocks = min(slices, connected)
        else:  # one-to-one and AND operands: the compiler orders them contiguously
            blocks = min(slices, ceil_div(connected, atoms_pre) + 1)
        rows = min(p.n_pre, blocks * atoms_pre)
        max_row = min(k, p.fan_out)
        words = self.c.row_header_words + max_row
        return rows * words * self.c.word_bytes + blocks * self.c.synaptic_block_overhead

    def delay_slots(self, unit: Unit) -> int:
        """Ring-buffer slots for the unit's longest delay (minimum delay is 1 step)."""
        ticks = self.c.min_delay + unit.max_delay
        return max(2, _pow2(ticks + 1))

    def ring_bytes(self, unit: Unit, k: int) -> int:
        """DTCM of the ring buffers of ``k`` neurons."""
        slots = min(self.delay_slots(unit), self.c.max_delay_slots(k))
        receptors = 1 << self.c.synapse_type_bits
        return slots * receptors * _pow2(k) * self.c.ring_buffer_entry_bytes

    def usage(self, unit: Unit, k: int) -> dict[str, int]:
        """Resources used by ``k`` neurons of ``unit`` on one core."""
        sdram = sum(self.matrix_bytes(p, k) for p in unit.projections)
        state = k * self.c.neuron_state_bytes + self.ring_bytes(unit, k)
        return {
            "neurons": k,
            "sdram": sdram,
            "dtcm": state,
            "memory": sdram + state,
            "synapse_bytes": sdram,
            "state_bytes": state,
            "routing_bytes": 0,
        }

    def extra_cores(self, unit: Unit, n_chunks: int) -> int:
        """One delay-extension core per slice when the delay exceeds the ring buffer (§4.1)."""
        k = min(unit.size, self.c.neurons_per_core)
        return n_chunks if self.delay_slots(unit) > self.c.max_delay_slots(k) else 0

    def distinct_sources(self, unit: Unit) -> int:
        """Not a SpiNNaker limit (synaptic rows live in SDRAM): no fan-in bound."""
        return 0
