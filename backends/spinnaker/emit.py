"""Write a balanced SpiNNaker program as a PyNN program: ``network.py``, ``weights.npz``,
``spec.json``.

``network.py`` (:mod:`.network_template`) is a PyNN script a SpiNNaker user reads like any:
a table of populations (``IF_curr_delta`` with their raw parameters, or ``SpikeSourceArray``
for the host-fed neurons), a table of synapse lists, and the functions that turn the raw
integers into each simulator's parameters (docs/spinnaker.md), build the network and run one
sample per ``sim.run``. It takes ``--simulator brian2|spinnaker|virtual`` and needs numpy and
PyNN only (plus sPyNNaker or Brian2), not snncc, so it runs on any machine that can reach a
SpiNNaker board. ``weights.npz`` holds the program's arrays (synapse lists ``c<i>.pre``,
``.post``, ``.weight``; biases ``p<i>.bias``; tap maps) and ``spec.json`` its document
(:meth:`~snncc.backends.spinnaker.spec.SpiNNakerProgram.to_payload`), which ``snncc run`` reads.

The runtime job :mod:`snncc.backends.spinnaker.runtime.program` executes the very source this
module generates. Every file is byte-identical across runs (sorted keys, fixed zip timestamps,
no dates). Imports numpy and the snncc core only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import snncc
from snncc.backends.spinnaker.network_template import BODY, HEADER
from snncc.backends.spinnaker.spec import SpiNNakerProgram, hop
from snncc.ir.serialize import atomic_write_bytes, dumps_json, write_npz

NETWORK = "network.py"
WEIGHTS = "weights.npz"
SPEC = "spec.json"
FILES = (NETWORK, WEIGHTS, SPEC)


def _population_lines(spec: SpiNNakerProgram) -> list[str]:
    lines = []
    for p in spec.populations:
        what = {
            "host": "host-fed: SpikeSourceArray",
            "lif": "LIF",
            "and": "AND threshold neuron",
            "or": "OR threshold neuron (max-pool)",
        }[p.role]
        shape = "x".join(str(s) for s in p.shape)
        lines.append(f"    # {p.name}: {shape}, {what}")
        row = (
            p.name, p.size, p.role, int(p.v_thresh), int(p.exp_tc), int(p.exc_shift),
            int(p.inh_shift), int(p.depth), int(p.neurons_per_core),
        )  # fmt: skip
        lines.append(f"    {row!r},")
    return lines


def _projection_lines(spec: SpiNNakerProgram) -> list[str]:
    lines = []
    for i, c in enumerate(spec.connections):
        (o,) = c.operands
        lines.append(f"    # {len(c.params['pre']):,} synapses")
        lines.append(f"    {(f'c{i}', o.source, c.target, hop(o))!r},")
    return lines


def network_source(spec: SpiNNakerProgram, label: str = "") -> str:
    """The generated ``network.py`` for a balanced program."""
    if not spec.balanced:
        raise ValueError("emit needs a balanced program (run balance_latency first)")
    roles: dict[str, int] = {}
    for p in spec.populations:
        roles[p.role] = roles.get(p.role, 0) + 1
    header = HEADER.format(
        version=snncc.__version__,
        label=f" from {label}" if label else "",
        pops=len(spec.populations),
        roles=", ".join(f"{n} {r}" for r, n in roles.items()),
        conns=len(spec.connections),
        synapses=sum(len(c.params["pre"]) for c in spec.connections),
        timesteps=spec.timesteps,
        depth=spec.depth,
        populations="\n".join(_population_lines(spec)),
        host=repr([h.population for h in spec.host_inputs]),
        projections="\n".join(_projection_lines(spec)),
    )
    return header + BODY


def emit(spec: SpiNNakerProgram, out_dir: str | Path, label: str = "") -> list[Path]:
    """Write ``network.py``, ``weights.npz`` and ``spec.json`` into ``out_dir``.

    Requires: a balanced program. Ensures: the same program gives byte-identical files;
    returns their paths in a fixed order; ``spec.attachments`` (``{relative path: bytes}``, the
    virtual-board mapping's reports) are written too.
    """
    out = Path(out_dir)
    doc, arrays = spec.to_payload()
    files = [out / name for name in FILES]
    atomic_write_bytes(files[0], network_source(spec, label).encode())
    write_npz(files[1], {k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(files[2], dumps_json(doc).encode())
    for rel, data in sorted(getattr(spec, "attachments", {}).items()):
        files.append(out / rel)  # the virtual-board mapping's reports (compile, mapping.py)
        atomic_write_bytes(files[-1], data)
    return files
