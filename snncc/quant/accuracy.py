"""Accuracy cost of quantization: float vs quantized accuracy and per-layer spike-count drift.

Why spike-count drift per layer: accuracy alone hides where the integer network departs from the
float one. For each neuron layer the drift is ``mean |count_quant - count_float| / mean
count_float`` over samples and neurons (0 = identical counts; a silent float layer reports the
absolute mean difference instead, so a layer that starts firing is not hidden).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.reference import run

TARGET_MODES = {"loihi": "loihi", "spinnaker": "spinnaker", "float": "float"}


@dataclass
class AccuracyReport:
    """Float and quantized top-1 accuracy (fractions in [0, 1]) and drift per neuron layer."""

    float_acc: float
    quant_acc: float
    per_layer_drift: dict[str, float] = field(default_factory=dict)
    n_samples: int = 0

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "float": self.float_acc,
            "quantized": self.quant_acc,
            "per_layer_drift": dict(self.per_layer_drift),
            "n_samples": self.n_samples,
        }


def _feed(g: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """``x`` as the graph's one input: static ``[B, ...]`` or per-step ``[T, B, ...]``."""
    if len(g.inputs) != 1:
        raise SnnccError(f"accuracy needs a one-input graph, got {g.inputs}", code="QNT020")
    name = g.inputs[0]
    return {name: x}


def _forward(g: Graph, x: np.ndarray, mode: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    res = run(g, _feed(g, x), mode)
    (out,) = (res.outputs[o] for o in g.outputs)
    return np.asarray(out), res.spike_counts()


def spike_count_drift(
    float_counts: dict[str, np.ndarray], quant_counts: dict[str, np.ndarray]
) -> dict[str, float]:
    """Per neuron layer: ``mean |Δcount| / mean float count`` (see module docstring)."""
    drift = {}
    for name, fc in float_counts.items():
        if name not in quant_counts:
            continue
        diff = float(np.mean(np.abs(quant_counts[name].astype(np.float64) - fc)))
        base = float(np.mean(fc))
        drift[name] = diff / base if base > 0 else diff
    return drift


def evaluate_accuracy(
    g_float: Graph,
    g_quant: Graph,
    data: np.ndarray,
    labels: np.ndarray,
    target: str,
    *,
    batch: int = 512,
) -> AccuracyReport:
    """Run both graphs on ``data`` (reference layout: ``[N, ...]`` static or ``[T, N, ...]``).

    The float graph runs in ``float`` mode, the quantized one in the target's integer mode; the
    prediction is the argmax of the (single) graph output.
    """
    if target not in TARGET_MODES:
        raise SnnccError(f"unknown target {target!r}", code="QNT021", hint="loihi or spinnaker")
    static = not g_float.op(g_float.inputs[0]).temporal
    n = data.shape[0] if static else data.shape[1]
    labels = np.asarray(labels)
    hits = [0, 0]
    sums: dict[str, list[float]] = {}
    for lo in range(0, n, batch):
        x = data[lo : lo + batch] if static else data[:, lo : lo + batch]
        y = labels[lo : lo + batch]
        out_f, cf = _forward(g_float, x, "float")
        out_q, cq = _forward(g_quant, x, TARGET_MODES[target])
        hits[0] += int(np.sum(np.argmax(out_f, -1) == y))
        hits[1] += int(np.sum(np.argmax(out_q, -1) == y))
        for name, fc in cf.items():
            if name in cq:
                acc = sums.setdefault(name, [0.0, 0.0])
                acc[0] += float(np.abs(cq[name].astype(np.float64) - fc).sum())
                acc[1] += float(fc.sum())
    drift = {k: (d / b if b > 0 else d) for k, (d, b) in sums.items()}
    return AccuracyReport(hits[0] / n, hits[1] / n, drift, n)
