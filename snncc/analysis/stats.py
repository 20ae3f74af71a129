"""Firing statistics from the reference interpreter, accumulated over batches of samples.

Why the reference and not the PyTorch model: the energy numbers must describe the graph snncc
deploys, and the reference is the oracle every backend is checked against. The statistics kept
are exactly what the SOP and energy models read:

- per tracked node (inputs of costed layers, Q/K/V of attention): the mean value (the firing
  rate for spikes), the fraction of non-zero elements, and whether every value seen is 0 or 1
  (the Spikingformer counter's binary test, checked on data rather than assumed);
- per neuron node: spikes per sample and neuron updates per sample (``T × neurons``).

Means are over every sample, timestep and element (sum / count), so batches of unequal size
combine exactly. Imports numpy and networkx only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from snncc.ir.graph import Graph
from snncc.reference import run

Progress = Callable[[int], None]


@dataclass
class FiringStats:
    """Accumulated statistics (see module docstring); ``samples`` counts every sample seen."""

    timesteps: int
    samples: int = 0
    _sum: dict[str, float] = field(default_factory=dict)
    _nonzero: dict[str, float] = field(default_factory=dict)
    _count: dict[str, float] = field(default_factory=dict)
    binary: dict[str, bool] = field(default_factory=dict)
    spikes: dict[str, float] = field(default_factory=dict)
    neurons: dict[str, int] = field(default_factory=dict)

    def mean(self, node: str) -> float:
        """Mean value of ``node`` over samples, timesteps and elements (the firing rate)."""
        return self._sum[node] / self._count[node] if self._count.get(node) else 0.0

    def nonzero(self, node: str) -> float:
        """Fraction of non-zero elements of ``node``."""
        return self._nonzero[node] / self._count[node] if self._count.get(node) else 0.0

    def spikes_per_sample(self, node: str) -> float:
        """Spikes of neuron node ``node`` per sample (summed over T and neurons)."""
        return self.spikes.get(node, 0.0) / self.samples if self.samples else 0.0

    def add(self, node: str, values: np.ndarray) -> None:
        """Fold one batch of ``node``'s values into the running sums."""
        self._sum[node] = self._sum.get(node, 0.0) + float(values.sum())
        self._nonzero[node] = self._nonzero.get(node, 0.0) + float(np.count_nonzero(values))
        self._count[node] = self._count.get(node, 0.0) + float(values.size)
        is_binary = bool(np.all((values == 0) | (values == 1)))
        self.binary[node] = self.binary.get(node, True) and is_binary


def collect(
    g: Graph,
    batches: Iterable[Mapping[str, np.ndarray]],
    tracked: Iterable[str],
    *,
    progress: Progress | None = None,
) -> FiringStats:
    """Run the float reference on each batch of feeds and accumulate :class:`FiringStats`.

    ``batches`` yields interpreter feeds (``{input: [T, B, …] or [B, …]}``); ``tracked`` names
    the nodes whose value statistics are kept; ``progress(n)`` is called with each batch size.
    """
    tracked = list(dict.fromkeys(tracked))
    neurons = [n for n in g.nodes() if g.op(n).NEURON]
    stats = FiringStats(timesteps=int(g.meta.get("timesteps", 1)))
    for feeds in batches:
        res = run(g, feeds, record="all")
        stats.timesteps = res.timesteps
        stats.samples += res.batch
        for n in tracked:
            stats.add(n, res.values[n])
        for n in neurons:
            s = res.spikes[n]
            stats.spikes[n] = stats.spikes.get(n, 0.0) + float(s.sum())
            stats.neurons[n] = g.type(n).size
        if progress is not None:
            progress(res.batch)
    return stats
