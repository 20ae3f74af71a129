"""Per-target quantization support: streams, scale choice, accuracy cost.

The pass itself is :func:`snncc.passes.quantize.quantize`; quantized graphs run in
``snncc.reference.run(g, inputs, mode="loihi" | "spinnaker")``. Design: docs/quantization.md.
"""

from __future__ import annotations

from snncc.quant.accuracy import AccuracyReport, evaluate_accuracy, spike_count_drift

__all__ = ["AccuracyReport", "evaluate_accuracy", "spike_count_drift"]
