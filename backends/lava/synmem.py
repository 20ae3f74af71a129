"""Loihi 2 synaptic memory (``SynMem``) in the units of Intel's compiler, fitted to its output.

Intel's Loihi 2 compiler checks every core against ``SynMem <= 12000`` units and prints its cost
per core (lava-dl's netx tutorials, rows in ``tests/data/loihi2_compiler_evidence.json``). The
formulas below reproduce what it printed (``tests/backends/test_loihi_calibration.py``):

- **Dense** (Lava ``Dense``): each input axon owns a list of one synapse per neuron of the core,
  zeros included, ``w + 12`` bits each, plus a 10-bit header, rounded up to whole 64-bit units:
  ``axons · ceil((neurons·(w + 12) + 10) / 64)``. Exact on all ten single-core allocations of
  the three notebooks (e.g. PilotNet's 2560->100 layer on one core: 2560 · 24 = 61,440 at
  3-bit weights). The layout matches nengo-loihi's Loihi 1 ``bits_per_axon`` (64-bit memory
  units, 4 + 6 header bits per axon) with one 12-bit index per synapse and a single header.
- **Convolution** (Lava ``Conv``): the kernel is stored once per core, not per connection: per
  input channel and kernel tap, the weights of the core's output channels, ``ceil(C·w / 64) + 1``
  units. An upper bound on PilotNet's ten conv rows: equal on 3, one unit over on 7.
- **Per-connection lists** (a one-to-one graded relay, an OR neuron without shared weights):
  the Dense layout with only the synapses that exist.

``w`` is the stored weight width: the layer's bits rounded up to the widths the encoding offers
(1-6 or 8; nengo-loihi ``WEIGHT_BITS_MAP``). snncc's weights are signed 8-bit mantissas, so
``w = 8`` unless a caller passes the bits of a calibration network. Units are 64-bit words:
12,000 units are 96,000 bytes (:func:`units_to_bytes`).
"""

from __future__ import annotations

from snncc.backends.lava.constraints import LOIHI, LoihiConstraints
from snncc.exact import ceil_div


def stored_width(bits: int, c: LoihiConstraints = LOIHI) -> int:
    """The narrowest weight width the synapse encoding offers that holds ``bits`` (7 -> 8)."""
    for w in c.weight_widths:
        if w >= bits:
            return w
    raise ValueError(f"no Loihi weight width holds {bits} bits (widest {c.weight_widths[-1]})")


def units_to_bytes(units: int, c: LoihiConstraints = LOIHI) -> int:
    """Bytes of ``units`` SynMem units (64-bit words: 12,000 units = 96,000 bytes)."""
    return units * c.synmem_unit_bits // 8


def axon_list_units(synapses: int, weight_bits: int = 8, c: LoihiConstraints = LOIHI) -> int:
    """Units of one input axon's list of ``synapses`` Dense synapses (header included)."""
    bits = synapses * (stored_width(weight_bits, c) + c.dense_index_bits) + c.axon_header_bits
    return ceil_div(bits, c.synmem_unit_bits)


def dense_units(axons: int, neurons: int, weight_bits: int = 8, c: LoihiConstraints = LOIHI) -> int:
    """SynMem of a Lava ``Dense`` block: ``axons`` inputs into ``neurons`` neurons of one core.

    Every input axon holds a synapse for every neuron of the core, zero weights included (the
    evidence: PilotNet's 2560->100 layer is 73 % zeros and costs as if full).
    """
    if axons <= 0 or neurons <= 0:
        return 0
    return axons * axon_list_units(neurons, weight_bits, c)


def conv_units(
    taps: int, in_channels: int, out_channels: int, weight_bits: int = 8,
    c: LoihiConstraints = LOIHI,
) -> int:  # fmt: skip
    """SynMem of one shared convolution kernel on a core holding ``out_channels`` channels.

    ``in_channels`` are the input channels those output channels read (``C_in/groups`` per
    group touched), ``taps`` the kernel positions (kh·kw). Per (input channel, tap):
    ``ceil(out_channels · w / 64) + 1`` units, however many positions the core holds.
    """
    if taps <= 0 or in_channels <= 0 or out_channels <= 0:
        return 0
    per = ceil_div(out_channels * stored_width(weight_bits, c), c.synmem_unit_bits)
    return taps * in_channels * (per + c.conv_extra_units)


def sparse_units(
    axons: int, synapses: int, per_axon: int, weight_bits: int = 8, c: LoihiConstraints = LOIHI
) -> int:
    """SynMem of per-connection lists: ``synapses`` in all over ``axons`` axons, at most
    ``per_axon`` on one axon. The smaller of two upper bounds: every axon with a full list, or
    every synapse packed with one header and at most one unit of rounding per axon."""
    if axons <= 0 or synapses <= 0:
        return 0
    each = stored_width(weight_bits, c) + c.dense_index_bits
    full = axons * axon_list_units(min(per_axon, synapses), weight_bits, c)
    packed = ceil_div(synapses * each + axons * c.axon_header_bits, c.synmem_unit_bits) + axons
    return min(full, packed)
