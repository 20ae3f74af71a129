"""The host's part of a SpiNNaker program: host-fed neurons' spikes in, float readout out.

The deployed network starts after the first (host-fed) neurons: the host computes the encoding
(the first conv on pixels) and those neurons with the ``spinnaker`` reference kernels, so their
spikes *are* the reference's, and sends them as ``SpikeSourceArray`` spikes (sPyNNaker has no
per-neuron per-step current input). The readout (token/time means, the head) runs on the host
from the tapped populations' spikes with the same kernels, so a machine run whose spikes equal
the reference's gives identical outputs and predictions. Same interface as the Lava backend's
:mod:`snncc.backends.lower.host`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from snncc.backends.lower.host import ancestors, evaluate
from snncc.backends.lower.structure import gather
from snncc.ir.graph import Graph
from snncc.reference.feeds import timesteps_of, validate_feeds
from snncc.reference.spinnaker_kernels import KERNELS


def encode(g: Graph, spec: object, inputs: Mapping[str, np.ndarray]) -> tuple[dict, int]:
    """Host-fed populations' spikes ``{population: [T, B, size] uint8}`` for ``inputs``; and B.

    Requires: ``inputs`` as :func:`snncc.reference.run` takes them; ``spec`` a SpiNNaker program.
    Ensures:  exactly the reference's spikes of those neurons (same kernels, same order).
    """
    timesteps = timesteps_of(g, inputs)
    feeds, batch = validate_feeds(g, inputs, timesteps)
    hosts = [h.population for h in spec.host_inputs]  # type: ignore[attr-defined]
    values = evaluate(g, ancestors(g, hosts, {}), {}, feeds, timesteps, batch, KERNELS)
    out = {}
    for name in hosts:
        s = np.broadcast_to(values[name], (timesteps, batch) + tuple(g.type(name).shape))
        out[name] = (s != 0).astype(np.uint8).reshape(timesteps, batch, -1)
    return out, batch


def readout(
    g: Graph,
    spec: object,
    spikes: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """The graph outputs computed on the host from per-step population ``spikes``.

    Requires: ``spikes[pop]`` ``[T, B, *shape]`` (reference-aligned) for every tapped population.
    Ensures:  equal to ``snncc.reference.run(g, inputs, "spinnaker").outputs`` whenever the
              spikes equal the reference's (a tapped value is the sum of its taps).
    """
    timesteps = timesteps_of(g, inputs)
    feeds, batch = validate_feeds(g, inputs, timesteps)
    values: dict[str, np.ndarray] = {}
    for t in spec.taps:  # type: ignore[attr-defined]
        s = np.asarray(spikes[t.population], np.float64)
        part = gather(s.reshape(s.shape[:2] + (-1,)), t.index)
        values[t.node] = values[t.node] + part if t.node in values else part
    need = ancestors(g, list(g.outputs), values)
    evaluate(g, need, values, feeds, timesteps, batch, KERNELS)
    return {n: values[n] for n in g.outputs}
