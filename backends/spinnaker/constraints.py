"""SpiNNaker 1 / sPyNNaker 7.4.1 numbers, each with its source. The only place they are written.

Sources are the sections of ``docs/hardware-semantics.md`` (sPyNNaker 1!7.4.1 and SpiNNMachine
source files, and measurements on a virtual board).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpiNNakerConstraints:
    """Per-core limits, memory formulas and fixed-point formats of SpiNNaker 1 under sPyNNaker."""

    name: str = "spinnaker"
    #: Neurons per core for IF_curr_exp / IF_curr_delta: DEFAULT_MAX_ATOMS_PER_CORE = 256.
    #: Source: §4.1, spynnaker utilities/constants.py [src][meas].
    neurons_per_core: int = 256
    #: Application cores per chip: 18 ARM968 = 1 monitor + 16 application + 1 spare.
    #: Source: §1.3, SpiNNMachine version_spin1.py.
    cores_per_chip: int = 16
    #: Chips per SpiNN-5 board ("version 5"). Source: §1.3 [meas] virtual board.
    chips_per_board: int = 48
    #: Usable SDRAM per chip in the sPyNNaker planner.
    #: Source: §1.3 VersionSpin1(max_sdram_per_chip).
    sdram_per_chip: int = 123_469_792
    #: DTCM per core. Source: §1.3 (dtcm_bytes = 2**16).
    dtcm_bytes: int = 65_536
    #: Synaptic row header words (SYNAPTIC_ROW_HEADER_WORDS = 3) and bytes per word. Source: §4.1.
    row_header_words: int = 3
    word_bytes: int = 4
    #: Per incoming projection slice, sPyNNaker reports n_pre × (3 + max_row) × 4 B + 16 B. §4.1.
    synaptic_block_overhead: int = 16
    #: Weights are unsigned 16-bit magnitudes; sign from the receptor (exc/inh). Source: §4.1.
    weight_bits: int = 16
    #: Ring buffers: 16-bit, saturating; DTCM budget MAX_RING_BUFFER_BITS = 14. Source: §4.1.
    ring_buffer_bits: int = 16
    max_ring_buffer_bits: int = 14
    synapse_type_bits: int = 1  # excitatory + inhibitory
    #: Minimum synaptic delay (timesteps); hop latency = d >= 1. Source: §4.1.
    min_delay: int = 1
    #: Delay-extension slots multiplier (MAX_SLOTS = 8). Source: §4.1.
    delay_extension_slots: int = 8
    #: Neuron state and parameters are s16.15 (``accum``): 15 fractional bits. Source: §4.1.
    frac_bits: int = 15
    accum_int_bits: int = 16
    #: Threshold convention: V >= V_thresh (non-strict). Source: §4.2.
    strict_threshold: bool = False
    #: Multicast routing entries per chip. Source: §1.3 (n_router_entries = 1023).
    router_entries: int = 1023
    #: Neuron DTCM bytes per neuron in the memory model. ASSUMPTION: 9 s16.15 words
    #: (V, V_rest, c_m, tau_m, I_offset, V_reset, tau_refrac, refract_timer, timestep; §4.2).
    neuron_state_bytes: int = 36
    #: Ring-buffer entry width in bytes (16-bit entries, §4.1) and receptor types per neuron
    #: (excitatory + inhibitory = 2^synapse_type_bits). Source: §4.1.
    ring_buffer_entry_bytes: int = 2
    #: Average SDRAM share of an application core (123,469,792 // 16), used only to shade the
    #: core-map picture. The limit is the chip's total: sPyNNaker's planner bounds the SDRAM of
    #: all cores placed on a chip (§4.3), so one core may use more than its share when its chip
    #: mates use less; snncc's partitioner packs cores onto chips the same way.
    sdram_per_core: int = 123_469_792 // 16

    def max_delay_slots(self, atoms_per_core: int | None = None) -> int:
        """Delay slots a core's ring buffer holds: 2^(14 − atom_bits − synapse_type_bits) (§4.1)."""
        atoms = atoms_per_core or self.neurons_per_core
        atom_bits = max(1, (atoms - 1).bit_length())
        return 2 ** (self.max_ring_buffer_bits - atom_bits - self.synapse_type_bits)

    def synaptic_matrix_bytes(self, n_pre: int, max_row_length: int) -> int:
        """SDRAM of one incoming projection slice: rows padded to the longest row (§4.1, trap 9)."""
        words = self.row_header_words + max_row_length
        return n_pre * words * self.word_bytes + self.synaptic_block_overhead

    @property
    def core_memory_bytes(self) -> int:
        """A core's share of its chip's SDRAM (synaptic matrices live there, shared by the
        chip's application cores): ``sdram_per_chip // cores_per_chip``."""
        return self.sdram_per_chip // self.cores_per_chip


SPINNAKER = SpiNNakerConstraints()
