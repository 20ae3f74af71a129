"""Open a compiled build directory for running: check it is one, and load what a run needs.

``snncc run DIR`` is the first command that *reads* a build, so a wrong DIR (a model, a data
folder, a build for another target, a build with a damaged file) must be told apart from a bug:
every problem here is one ``RUN0xx`` line with exit 2 and a fix, and nothing is written.
Integrity is checked against the manifest's own SHA-256 of every artifact, so a truncated
``weights.npz`` is refused by name before the runtime ever sees it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph

#: Files a build must hold for ``snncc run`` (besides the IR directory).
PROGRAM_FILES = ("spec.json", "weights.npz")


def _bad(path: Path | str, problem: str, code: str, hint: str) -> SnnccError:
    return SnnccError(f"{path}: {problem}", code=code, hint=hint, exit_code=2)


@dataclass
class Build:
    """A verified build: its manifest and report, the quantized IR and the program spec."""

    path: Path
    manifest: dict[str, Any]
    report: dict[str, Any]
    graph: Graph
    spec: Any  # the target's program class (snncc.targets: ``program``), imported lazily
    simulator: str = ""  # what ``snncc run`` runs it on (the target's first by default)

    @property
    def target(self) -> str:
        return str(self.manifest["target"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.manifest["input_shape"])

    @property
    def timesteps(self) -> int:
        return int(self.manifest["timesteps"])


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the build at ``path``, or RUN001 saying why it is not a build."""
    from snncc.reports.output import MANIFEST_FORMAT

    fix = "give a directory written by `snncc compile ... -o DIR`"
    if not path.exists():
        raise _bad(path, "no such build directory", "RUN001", fix)
    if not path.is_dir():
        raise _bad(path, "is a file, not a build directory", "RUN001", fix)
    mf = path / "manifest.json"
    if not mf.is_file():
        raise _bad(path, "not an snncc build (no manifest.json)", "RUN001", fix)
    try:
        doc = json.loads(mf.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(mf, f"not valid JSON ({e})", "RUN001", "compile the model again") from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise _bad(path, "manifest.json is not an snncc build manifest", "RUN001", fix)
    return doc


def _check_integrity(path: Path, manifest: dict[str, Any], names: list[str]) -> None:
    """Every listed artifact exists and has the SHA-256 the manifest records (RUN003)."""
    from snncc.reports.artifacts import sha256_file

    hashes = manifest.get("artifacts", {})
    for rel in names:
        f = path / rel
        if not f.is_file():
            raise _bad(f, "missing from the build", "RUN003", "compile the model again")
        want = hashes.get(rel)
        if want is not None and sha256_file(f) != want:
            raise _bad(
                f,
                "does not match the manifest (truncated or edited after compile)",
                "RUN003",
                "compile the model again (with --force to replace the build)",
            )


def open_build(path: str | Path, *, simulator: str | None = None) -> Build:
    """Verify and load the build at ``path`` for running on ``simulator`` (target default).

    Raises: RUN001 not a build; RUN002 a build whose target has no runner, or no program (a
    construct without a lowering), or a simulator the target does not offer; RUN003 a missing
    or damaged artifact.
    """
    from snncc import targets
    from snncc.ir.serialize import load

    path = Path(path)
    manifest = read_manifest(path)
    target = targets.get(str(manifest.get("target")))
    if target.runner is None:
        runnable = ", ".join(t.name for t in targets.TARGETS.values() if t.runner)
        raise _bad(
            path,
            f"a build for {target.name}; `snncc run` runs {runnable} builds so far",
            "RUN002",
            "compile with --target loihi to simulate it in Lava",
        )
    if simulator is not None and simulator not in target.simulators:
        raise _bad(
            path,
            f"a {target.name} build runs on {', '.join(target.simulators)}, not {simulator}",
            "RUN002",
            f"use --simulator {target.simulators[0]}",
        )
    artifacts = manifest.get("artifacts", {})
    if not all(name in artifacts for name in PROGRAM_FILES):
        raise _bad(
            path,
            "the build has no runnable program (the compile could not lower every op; its "
            "report.json lists the LOW warnings)",
            "RUN002",
            "see the build's report notes; `snncc run` needs a model whose ops all lower",
        )
    ir_files = sorted(k for k in artifacts if k.startswith("ir/"))
    _check_integrity(path, manifest, [*PROGRAM_FILES, "report.json", *ir_files])
    from snncc.runtime.jobs import load_arrays

    spec = target.load("program").from_payload(
        json.loads((path / "spec.json").read_text()), load_arrays(path / "weights.npz")
    )
    report = json.loads((path / "report.json").read_text())
    sim = simulator or target.simulators[0]
    return Build(path, manifest, report, load(path / "ir"), spec, sim)
