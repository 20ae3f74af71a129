"""The artifact directory's layout and its manifest.

::

    DIR/
      manifest.json     inputs (model sha256), target, budget, slice, timesteps, versions,
                        sha256 of every other file; lists the non-deterministic files
      ir/graph.json     the quantized IR (snncc.ir.serialize)
      ir/tensors.npz
      report.json       the report (schema: docs/compile.md)
      report.md         Markdown rendering; pictures from figures/
      report.html       self-contained rendering (CSS and SVG inline)
      figures/*.svg     memory per layer, core map, SOPs per layer
      timings.json      wall time per pass and stage (NOT deterministic, not hashed)

Backends (Lava, SpiNNaker) add their generated programs to this layout in later issues.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snncc.ir.graph import Graph
from snncc.ir.serialize import save
from snncc.reports import figures as F
from snncc.reports.artifacts import (
    MANIFEST_FORMAT,
    atomic_directory,
    canonical_json,
    tree_hashes,
    write_bytes,
)
from snncc.reports.render import render_html, render_markdown

#: ``MANIFEST_FORMAT`` ("snncc-artifacts") lives in :mod:`snncc.reports.artifacts`, whose
#: ``--force`` rule recognises a previous output by it; it is re-exported here.
MANIFEST_VERSION = 1
#: Files whose bytes legitimately differ between two runs of the same inputs.
NON_DETERMINISTIC = ("timings.json",)


def versions() -> dict[str, str]:
    """Versions of everything that can change the output bytes."""
    import matplotlib
    import networkx
    import numpy

    import snncc

    out = {
        "snncc": snncc.__version__,
        "numpy": numpy.__version__,
        "networkx": networkx.__version__,
        "matplotlib": matplotlib.__version__,
        "python": platform.python_version(),
    }
    try:
        import torch

        out["torch"] = torch.__version__
    except ModuleNotFoundError:  # pragma: no cover - the compile environment has torch
        out["torch"] = "absent"
    return out


def render_figures(report: dict[str, Any]) -> dict[str, str]:
    """``{stem: svg}`` for the report's pictures."""
    names = [str(x["name"]) for x in report["layers"]]
    out = {
        "memory": F.memory_per_layer(report["layers"]),
        "core_map": F.core_map(report["core_map"], names, int(report["core_memory_bytes"])),
    }
    sops = report.get("sops")
    if sops and sops.get("layers"):
        out["sops"] = F.sops_per_layer(sops["layers"], sops["source"])
    return out


def manifest(report: dict[str, Any], inputs: dict[str, Any], hashes: dict[str, str]) -> dict:
    """The manifest document: what went in, what came out, and how to check it."""
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "inputs": {k: v for k, v in inputs.items() if k != "versions"},
        "target": report["target"],
        "budget": report["budget"],
        "slice": report["slice"],
        "timesteps": report["timesteps"],
        "input_shape": report["input_shape"],
        "core_memory_bytes": report["core_memory_bytes"],
        "versions": inputs.get("versions", versions()),
        "artifacts": hashes,
        "non_deterministic": list(NON_DETERMINISTIC),
    }


def _label(report: dict[str, Any]) -> str:
    """What the generated program says it was compiled from (deterministic: no paths, no time)."""
    model = report.get("model") or {}
    arch = model.get("arch") or "model"
    return f"{arch}, T={report['timesteps']}, target {report['target']}"


def write_artifacts(
    out_dir: Path,
    force: bool,
    graph: Graph,
    report: dict[str, Any],
    timings: dict[str, Any],
    inputs: dict[str, Any],
    *,
    input_paths: Sequence[str | Path] = (),
    program: Any = None,
) -> dict[str, Any]:
    """Write the whole directory atomically; returns the manifest.

    ``program`` is the lowered program spec; the target's emitter writes it into the directory
    (for Loihi: ``network.py``, ``run.py``, ``weights.npz``, ``spec.json``), hashed with the rest.

    ``input_paths`` are the files the command read (checkpoint, ``--eval`` file): the output
    rules of :func:`~snncc.reports.artifacts.atomic_directory` refuse an ``out_dir`` holding one,
    so ``--force`` can never delete the model it compiled. Refusals and OS errors while writing
    are :class:`~snncc.diagnostics.SnnccError` with exit 2; ``out_dir`` is then untouched.
    """
    figs = render_figures(report)
    with atomic_directory(out_dir, force=force, inputs=input_paths) as tmp:
        save(graph, tmp / "ir")
        for stem, svg in figs.items():
            write_bytes(tmp, f"figures/{stem}.svg", svg.encode())
        write_bytes(tmp, "report.json", canonical_json(report))
        write_bytes(tmp, "report.md", render_markdown(report).encode())
        write_bytes(tmp, "report.html", render_html(report, figs).encode())
        write_bytes(tmp, "timings.json", canonical_json(timings))
        if program is not None:
            from snncc import targets

            targets.get(report["target"]).load("emitter")(program, tmp, label=_label(report))
        doc = manifest(report, inputs, tree_hashes(tmp, exclude=NON_DETERMINISTIC))
        write_bytes(tmp, "manifest.json", canonical_json(doc))
    return doc
