"""``quantize``: turn the deployed part of a verified graph into a target's integer program.

The graph keeps its structure: the deployed synaptic ops get integer weight arrays (int64) and
node meta ``quant`` (``weight_exp`` on Loihi, ring-buffer ``receptor``/shifts on SpiNNaker), the
neurons become target ops (:class:`~snncc.ir.ops.LoihiLIF`, :class:`~snncc.ir.ops.SpiNNakerLIF`)
whose docstrings give the exact integer update, the attention ``Scale`` becomes an integer
multiplier, and readout ops that read a residual stream get float host copies of it
(:func:`snncc.quant.common.clone_for_host`). Encoding and readout stay float. The design, units
and every rounding choice are in docs/quantization.md; the facts in hardware-semantics.md.

Threshold placement (why ``>``, ``>=`` and SpikingJelly agree): thresholds are chosen against the
set of *reachable* membrane values, not rounded. A placed threshold lies strictly between two
neighbouring reachable values, so no reachable value equals it and every comparison convention
gives the same spikes. What is achievable against the float threshold ``theta`` (in v-units):

- SpiNNaker: V is any s16.15 integer and the chip fires on ``V >= V_thresh``; ``V_thresh =
  ceil(theta)`` equals SpikingJelly's ``V >= theta`` on every integer: **exact**.
- Loihi: every reachable v is a multiple of a power of two ``G`` (meta ``membrane_granule``),
  analysed exactly from the stream's input lattice (integer weights and exponents, a dynamic
  product's multiplier), the bias, the decays and the sample length
  (:func:`snncc.quant.loihi_neurons.membrane_granule`). When ``G >= 64`` (no leak, or e.g. an
  attention neuron fed counts times 128 with a halving leak over T = 4: ``G = 1024``),
  ``vth = ceil(theta / 64) - 1`` makes Lava's ``v > vth << 6`` equal ``v >= theta``: **exact**.
  When ``G < 64``, ``vth << 6`` has 64-unit steps and ``>= theta`` is expressible only when the
  first reachable value at or above ``theta`` is ``G`` above a multiple of 64; otherwise the
  nearest ``vth`` is taken and the first firing value moves by at most 32 v-units (meta
  ``fire_shift_v``, and ``threshold_exact``).

Average pooling over spikes is first lowered to the equal depthwise ``Conv2d`` with weights
``1/k²`` (:mod:`snncc.quant.lower`), so both targets quantize it as an ordinary conv.

ExpG-IF neurons (Ge²mS-T) and soft-reset IF neurons become, on Loihi, the programmable neuron
:class:`~snncc.ir.ops.LoihiExpGIF` (a halving threshold schedule, soft reset, a graded payload;
neuron microcode on Loihi 2, a custom fixed-point process on Lava); the synapses reading it take
the payload unit ``theta·2^-K`` into their weights. On SpiNNaker they are refused (``QNT002``):
sPyNNaker's ``IF_curr_delta`` has one fixed threshold, resets to ``v_reset`` and sends 1-bit
spikes, so no parameter choice reproduces them.

Before the streams are found, the Loihi quantizer rewrites the deployed part into plain synaptic
sums (:mod:`snncc.quant.rewrite`): SEW residuals as one projection per spike source, sums of
spikes read by neurons as unit-weight synapses, pointwise channel maps folded into the next conv,
a mean of currents read by a neuron as a sum with the neuron's gain (the SpiNNaker quantizer
applies all but the SEW one, which its lowering does itself). A max-pool of currents runs on
Loihi only (an exact integer program); on SpiNNaker it is refused after its stream is quantized,
with the size of its exact threshold-level expansion (``QNT001``,
:func:`snncc.quant.spinnaker.refuse_max_pools`). The readout then gets host
copies of the currents and counts it reads (:func:`snncc.quant.common.clone_for_host`) and
deployed values nothing reads any more are removed.

Refusals about the model, not bugs (exit 2, naming the node, the value and a fix): weights or
biases that are NaN/infinite after BN folding (``QNT004``/``QNT007``, e.g. a negative
``running_var``), and streams whose currents, biases or thresholds need a scale below 2^-24
(``QNT004``/``QNT007``, :func:`snncc.quant.common.scale_exponent`; a corrupted or mis-scaled
layer). Every scale, exponent, shift and threshold is decided on exact values (frexp exponents,
fractions, integer arithmetic), so the same model compiles to the same program on every CPU.

Conv exponents: Lava's ``Conv`` ignores ``weight_exp``, so a conv's exponent is kept ``>= 0`` and
folded into its integer weights (meta ``exp_folded_into_weights``); Dense takes ``2·W_q`` with
``weight_exp - 1``, which represents negative exponents exactly.
"""

from __future__ import annotations

import numpy as np

from snncc import targets
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext
from snncc.quant import pins, spinnaker
from snncc.quant.common import check_finite_weights, clone_for_host
from snncc.quant.lower import lower_avg_pools
from snncc.quant.rewrite import (
    distribute_spike_sums,
    fold_channel_maps,
    mean_currents_as_gain,
    prune_deployed,
    sums_as_synapses,
)
from snncc.quant.streams import PRODUCTS, Split, partition_nodes, split_graph


def _host_bounds(g: Graph, ctx: PassContext) -> dict[str, float]:
    """Max |encoding current| per host node over ``ctx.config["calibration"]`` inputs, if given."""
    calib = ctx.config.get("calibration")
    if not calib:
        return {}
    from snncc.reference import run

    res = run(g, calib, "float", record="all")
    return {n: float(np.max(np.abs(v))) for n, v in res.values.items()}


def quantize(g: Graph, ctx: PassContext) -> Graph:
    """Quantize every stream of the deployed part for ``ctx.config["target"]``.

    Requires: a typed, BN-folded graph (front pipeline); ``ctx.config["target"]`` in
              {"loihi", "spinnaker"}; optional ``ctx.config["calibration"]`` (reference inputs).
    Ensures:  deployed synaptic ops hold int64 weights with meta ``quant``; every neuron is a
              target neuron op; encoding and readout ops are float and unchanged; one record row
              per quantized op in ``ctx.stats["layers"]`` and one decision line per stream.
    """
    target = ctx.config.get("target")
    if target not in targets.NAMES:
        raise SnnccError(
            f"quantize: unknown target {target!r}",
            code="QNT000",
            hint=f"choose one of {sorted(targets.NAMES)}",
        )
    t = targets.get(target)
    quantize_stream = t.load("quantizer")
    _check_mappable_neurons(g, target)  # refusals first, before calibration runs the model
    check_finite_weights(g, g.topo_order())
    bounds = _host_bounds(g, ctx)
    split, copies = prepare_streams(g, ctx, target)
    layers: list[dict] = []
    record: dict = {"target": target, "streams": {}, "weights": {}}
    for stream in split.streams:
        plan = quantize_stream(g, stream, bounds.get(stream.host) if stream.host else None)
        if not t.custom_processes:  # a max of currents runs only as a fixed-point process
            spinnaker.refuse_max_pools(g, stream)
        layers.extend(plan.rows)
        record["streams"][stream.neurons[0]] = plan.pin
        for n in stream.entries:
            if "weight_exp" in g.node_meta(n)["quant"]:
                record["weights"][n] = {"weight_exp": int(g.node_meta(n)["quant"]["weight_exp"])}
        if g.meta.get(pins.KEY):
            ctx.decide(f"stream {stream.index}: scale and exponents pinned by the checkpoint")
        binding = min(plan.limits, key=plan.limits.get) if plan.limits else "none"
        mult = f"{plan.divisor}*" if plan.divisor != 1 else ""
        ctx.decide(
            f"stream {stream.index} ({len(stream.nodes)} current ops -> "
            f"{', '.join(stream.neurons)}): scale {mult}2^{plan.scale_exp}, limited by {binding}"
        )
    for n in sorted(split.deployed):
        if isinstance(g.op(n), PRODUCTS):
            g.node_meta(n)["quant"] = {"dynamic_product": True, "exact_integer": True}
            if t.custom_processes:
                ctx.decide(
                    f"{n}: {g.op(n).kind} of spikes computed exactly as integers by a custom "
                    "fixed-point process (not neurocore-native)"
                )
    g.meta["quant"] = {"target": target, "streams": len(split.streams), "pins": record}
    ctx.stats["layers"] = layers
    ctx.stats["deployed_nodes"] = len(split.deployed)
    ctx.stats["host_nodes"] = len(split.encoding) + len(split.readout) + len(copies)
    _check_no_float_neurons(g)
    return g


def prepare_streams(g: Graph, ctx: PassContext, target: str) -> tuple[Split, list[str]]:
    """The deployed part rewritten into the streams ``quantize`` decides, in place.

    Requires: as :func:`quantize`. Ensures: average pools lowered, the target's rewrites done,
    host copies made and dead deployed nodes pruned; returns ``(split, host copies)``. The float
    weights the stream quantizers read are the ops' weights at this point (``snncc finetune``
    maps trained integers back through them).
    """
    _check_mappable_neurons(g, target)
    check_finite_weights(g, g.topo_order())
    lowered = lower_avg_pools(g, partition_nodes(g)[0])
    ctx.count("avg_pools_lowered", len(lowered))
    for n in lowered:
        k = g.op(n).weight.shape[2:]
        ctx.decide(
            f"{n}: AvgPool2d of spikes lowered to a depthwise Conv2d with weights "
            f"1/{k[0] * k[1]} ({k[0]}x{k[1]} window, padding counted)"
        )
    rewritten = _rewrite_for_loihi(g, ctx, REWRITES[target])
    split = split_graph(g)
    copies = clone_for_host(g, split)
    ctx.count("host_copies", len(copies))
    if target == "loihi" or rewritten:
        ctx.count("pruned", len(prune_deployed(g)))
        split = split_graph(g)
    return split, copies


#: Loihi rewrites, in order: each sees what the previous ones left (see the module docstring).
LOIHI_REWRITES = (
    (fold_channel_maps, "pointwise channel map folded into the next conv"),
    (sums_as_synapses, "sum of spikes read by neurons as a unit-weight synapse"),
    (distribute_spike_sums, "SEW sum of spike tensors as one projection per source"),
    (mean_currents_as_gain, "mean of currents as a sum with the neuron's input gain"),
)


#: SpiNNaker rewrites: all but the SEW distribution, which the SpiNNaker lowering does itself
#: (one projection per spike source). SDT's talking-heads column sum becomes a unit-weight
#: synapse from its AND neurons, and its head's token mean of currents a sum read with the
#: head neuron's input gain (the SpiNNaker quantizer multiplies that neuron's threshold by N).
SPINNAKER_REWRITES = (LOIHI_REWRITES[0], LOIHI_REWRITES[1], LOIHI_REWRITES[3])
REWRITES = {"loihi": LOIHI_REWRITES, "spinnaker": SPINNAKER_REWRITES}


def _rewrite_for_loihi(g: Graph, ctx: PassContext, rewrites: tuple = LOIHI_REWRITES) -> int:
    """Apply ``rewrites`` to the deployed part; one decision line per rewritten node; returns
    how many nodes were rewritten."""
    total = 0
    for fn, what in rewrites:
        done = fn(g, partition_nodes(g)[0])
        total += len(done)
        ctx.count(f"rewrite_{fn.__name__}", len(done))
        for n in done:
            detail = g.node_meta(n).get("rewritten", {})
            if "sew_sources" in detail:
                what_n = f"{what} ({len(detail['sew_sources'])} projections)"
            else:
                what_n = what
            ctx.decide(f"{n}: {what_n}")
    return total


def _check_mappable_neurons(g: Graph, target: str) -> None:
    """Refuse neuron models that no parameter choice of the target's integer neuron reproduces.

    On Loihi every ExpG-IF runs as the programmable neuron; elsewhere it is refused.
    """
    expgif = [n for n in g.topo_order() if isinstance(g.op(n), O.ExpGIF)]
    if not expgif or targets.get(target).programmable_neurons:
        return
    more = f" (and {len(expgif) - 1} more ExpGIF neurons)" if len(expgif) > 1 else ""
    chip = (
        "sPyNNaker's IF_curr_delta has one fixed V_thresh, resets V to v_reset and sends 1-bit "
        "spikes"
    )
    raise SnnccError(
        f"{expgif[0]}{more}: ExpGIF (grouped exponential coding) cannot run exactly on "
        f"{target}: it fires against theta*2^-(k+1), a threshold that halves at every step of a "
        f"group, resets by subtracting it, and emits a graded event carrying that bit weight; "
        f"{chip}, so no {target} neuron parameters reproduce its spikes",
        code="QNT002",
        hint="compile for loihi (ExpG-IF runs there as a programmable neuron), or replace "
        "snncc.nn.ExpGIF by a hard-reset snncc.nn.LIF/IF (v_reset=0.0) and retrain",
        exit_code=2,
    )


def _check_no_float_neurons(g: Graph) -> None:
    left = [n for n in g.nodes() if isinstance(g.op(n), (O.LIF, O.IF, O.ExpGIF))]
    if left:
        raise SnnccError(f"quantize left float neurons {left}", code="QNT011", exit_code=70)
