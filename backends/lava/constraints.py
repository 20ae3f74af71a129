"""Loihi 2 / Lava numbers, each with its source. The only place they are written.

Sources are the sections of ``docs/hardware-semantics.md`` (kept from the project's reference
material, which cites lava-nc 0.10.0 source files and the Loihi papers). Values marked
``ASSUMPTION`` are not published by Intel; they are planning defaults the user can override
(``--core-memory``), and reports label them as such. Values marked ``FITTED`` come from the
saved output of Intel's Loihi 2 compiler in lava-dl's tutorials (the calibrated model,
``snncc.backends.lava.calibrated``); each says what it was fitted to.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LoihiConstraints:
    """Per-core limits and fixed-point widths of Loihi 2 as simulated by Lava ``fixed_pt``."""

    name: str = "loihi"
    # -- resources ---------------------------------------------------------------------------
    #: Neurons per core: "up to ~8k" (8,192 commonly quoted; 1 M / 128 ≈ 7.8 k).
    #: Source: hardware-semantics §1.2 [sec]; no primary quote. ASSUMPTION.
    neurons_per_core: int = 8192
    #: Synapse + state memory per core in bytes: "128 KB of local SRAM … flexibly partitioned"
    #: (some sources say 192 KB). Source: §1.2 [sec], conflicting. ASSUMPTION, configurable.
    core_memory_bytes: int = 128 * 1024
    #: Neuro cores per chip: 128 in Intel's brief; Lava's mapper counts 120 for N3 chips.
    #: Source: §1.2, lava-nc magma/compiler/mapper.py (``NUM_VIRTUAL_CORES_L3 = 120``).
    cores_per_chip: int = 120
    #: Fan-in axons per core: a Loihi 1 constraint (4,096, Davies 2018 p.89); Loihi 2's is not
    #: public. ASSUMPTION carried over from Loihi 1.
    fan_in_per_core: int = 4096
    # -- synapses ----------------------------------------------------------------------------
    #: Dense weights: 8-bit mantissa with a shared ``weight_exp``; MIXED sign mode clips to
    #: [-256, 255] and drops the LSB unless weights are passed doubled with weight_exp = -1.
    #: Source: §2.2, lava-nc proc/dense/models.py, utils/weightutils.py [src][meas].
    weight_bits: int = 8
    weight_min: int = -128  # exact signed range with the 2·W / weight_exp = -1 recipe (§2.2)
    weight_max: int = 127
    weight_exp_min: int = -8
    weight_exp_max: int = 7
    #: Keep |Σ W·2^exp| per neuron per step within 16 bits so simulator and chip agree (§2.2).
    input_sum_bits: int = 16
    #: Synaptic delay field: 6 bits, DelayDense accepts 0..63, netx clamps to 62 (§1.2, §2.4).
    max_delay: int = 62
    #: Bits per stored synapse in the memory model: 8-bit weight (+ 6-bit delay when used).
    #: Source: derived from §1.2 (weights 8-bit mantissa, delay 6-bit). ASSUMPTION for layout.
    synapse_bits: int = 8
    # -- neuron (PyLifModelBitAcc) ---------------------------------------------------------------
    #: u, v are 24-bit: u wraps, v saturates at ±(2^23 - 1). Source: §2.1 [src][meas].
    state_bits: int = 24
    #: Decays du, dv are 12-bit with unity 4096; du = 0 still decays 1/4096 per step (trap 1).
    decay_bits: int = 12
    decay_unity: int = 4096
    #: vth is 17-bit unsigned, compared as ``v > vth << 6`` (strict). Source: §2.1.
    vth_bits: int = 17
    vth_shift: int = 6
    #: One unit of synaptic input is worth 2^6 in v-units (``a_in << 6``). Source: §2.1.
    act_shift: int = 6
    #: Bias mantissa 13-bit signed (-4096..4095), bias_exp 3 bits. Source: §2.1.
    bias_mant_min: int = -4096
    bias_mant_max: int = 4095
    #: Neuron state bytes per compartment in the memory model (u, v 24-bit each, plus
    #: parameters). ASSUMPTION: 8 bytes per neuron.
    neuron_state_bytes: int = 8
    #: Bits added to every stored synapse of a projection that uses delays (DelayDense): the
    #: 6-bit delay field. Source: §1.2 / §2.4 (0..63). ASSUMPTION for the memory layout.
    delay_field_bits: int = 6
    #: Bytes per input-axon table entry (one per distinct presynaptic source a core receives).
    #: Loihi 1 keeps ~20 kB of routing tables per core (§1.1); the Loihi 2 entry size is not
    #: public. ASSUMPTION: 4 bytes per entry.
    axon_entry_bytes: int = 4
    #: State of a custom (non-neurocore) process such as a spike MatMul, per element: operand
    #: buffers 1 byte per binary spike and 4 bytes per count/graded value, accumulators 4 bytes.
    #: ASSUMPTION (no published layout; the process is not neurocore-native).
    custom_spike_bytes: int = 1
    custom_word_bytes: int = 4
    # -- calibrated model (Intel's Loihi 2 compiler output, docs/budget.md §3) --------------------
    # Evidence: lava-dl netx tutorials at commit d825ac50 (pilotnet_snn/benchmark.ipynb,
    # pilotnet_sdnn/benchmark.ipynb, oxford/run.ipynb), rows kept in
    # tests/data/loihi2_compiler_evidence.json; the fits are checked by
    # tests/backends/test_loihi_calibration.py.
    #: SynMem per core, in the compiler's units: every violation line reads
    #: ``cost_db.registers[reg_name]=12000`` for ``reg_name='SynMem'`` (all three notebooks).
    synmem_units_per_core: int = 12000
    #: Bits per SynMem unit. FITTED: 64-bit words (nengo-loihi ``bits_per_memunit = 64`` for
    #: Loihi 1) reproduce all 10 single-core Dense allocations exactly (61,440 and 66,560 for
    #: PilotNet's 2560->100, 16,128 and 16,200 for Oxford, ...). 12,000 units = 96,000 bytes.
    synmem_unit_bits: int = 64
    #: Bits a Dense synapse stores beyond its weight. FITTED: 12 (the only value that fits all 10
    #: allocations; Loihi 1's widest synapse index field is 12 bits, nengo-loihi
    #: ``SynapseConfig.INDEX_BITS_MAP``). Zeros of a Dense matrix are stored too.
    dense_index_bits: int = 12
    #: Header bits per input axon's synapse list. FITTED within 2..22 bits; 10 is Loihi 1's
    #: (nengo-loihi ``bits_per_axon``: ``synapse_idx_bits = 4`` + ``n_synapses_bits = 6``).
    axon_header_bits: int = 10
    #: Weight widths the synapse encoding offers (nengo-loihi ``WEIGHT_BITS_MAP`` for Loihi 1):
    #: a 7-bit layer is stored at 8 bits (Oxford layer 1 fits the allocations only so).
    weight_widths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8)
    #: Convolution: one shared kernel per core, per (input channel, tap) ``ceil(C·w/64) + 1``
    #: words for the core's ``C`` output channels. FITTED upper bound: equal to 3 and one word
    #: over 7 of PilotNet's 10 conv rows (w = the kernel's signed width).
    conv_extra_units: int = 1
    #: Input axons of a convolution core, per convolution: 2. FITTED: conv rows show 1 or 2.
    conv_axons_in: int = 2
    #: Neurons per core under Intel's compiler. FITTED: 4,095. The most seen is 3,168, and its
    #: convolution tiler refused 4,096-neuron tiles twice (PilotNet conv4 and conv5 took 8x4x64
    #: and 16x2x64 tiles, not 16x4x64 and 32x2x64); the chip's advertised 8,192 (§1.2, [sec])
    #: is not what the compiler gives a LIF layer.
    compiled_neurons_per_core: int = 4095
    #: Convolution tiles: output tiles with all channels and full height, tile widths a power of
    #: two (PilotNet: 4, 4, 8, 8, 16, 16). Channel groups and smaller heights are ASSUMED when a
    #: column of all channels does not fit a core (the notebooks never needed them).
    tile_width_pow2: bool = True
    #: A layer's cores hold that layer only: PilotNet's three small Dense layers (1, 10 and 50
    #: neurons, 1,460 SynMem units together) took a core each.
    layers_share_cores: bool = False
    # -- timing ------------------------------------------------------------------------------
    #: Every Dense/Sparse/Conv adds exactly one timestep; DelayDense(d) adds 1 + d. Source: §2.4.
    hop_latency: int = 1
    #: Threshold convention: spike iff v > vth (strict). Source: §2.1.
    strict_threshold: bool = True
    sources: dict[str, str] = field(
        default_factory=lambda: {
            "neurons_per_core": "hardware-semantics §1.2 [sec] — planning assumption",
            "core_memory_bytes": "hardware-semantics §1.2 [sec] — planning assumption",
            "cores_per_chip": "lava-nc mapper.py N3 = 120 virtual cores (§1.2)",
            "synmem_units_per_core": "lava-dl netx tutorials (d825ac50): cost_db SynMem = 12000",
            "synmem formulas": "fitted to tests/data/loihi2_compiler_evidence.json",
            "compiled_neurons_per_core": "fitted: PilotNet conv tiles (pilotnet_snn/benchmark)",
            "fixed-point widths": "lava-nc proc/lif/models.py PyLifModelBitAcc (§2.1)",
            "weights": "lava-nc proc/dense/models.py + utils/weightutils.py (§2.2)",
        }
    )


LOIHI = LoihiConstraints()
