"""``snncc run DIR``: simulate a compiled build and show what it did, against the references.

Wiring and display only: :mod:`snncc.runtime.build` opens and verifies the build,
:mod:`snncc.runtime.execute` runs it and compares. Exit codes: 0 ok (and, with ``--check``,
identical to the reference), 2 bad input (not a build, wrong target, bad inputs), 5 the
simulation differs from the reference (``--check``), 70 a failure inside the runtime (a bug;
its log is saved next to the build).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from snncc.cli import args as A
from snncc.cli.console import console, progress_bar
from snncc.diagnostics import SnnccError

#: Exit code when ``--check`` finds a spike the simulator and the reference disagree on.
PARITY_EXIT = 5
DATASETS = ("digits", "gestures")


def register_run(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``snncc run DIR [--input FILE.npz | --data NAME] [--samples N] [--check] [...]``."""
    p = subparsers.add_parser(
        "run",
        help="simulate a compiled build (Loihi: the generated Lava program, on CPU)",
        description="Run the program in DIR (written by `snncc compile`) in the runtime "
        "environment on inputs from --input, --data or seeded random samples; print spike "
        "counts per layer, predictions, accuracy and drift against the float model; with "
        "--check, compare every neuron's spikes with the bit-accurate reference (exit 5 on "
        "the first difference).",
    )
    p.add_argument("build", metavar="DIR", help="a build directory from `snncc compile`")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="FILE.npz", help="samples: array x [n, *input_shape]")
    src.add_argument("--data", choices=DATASETS, help="a bundled dataset's test split")
    p.add_argument("--samples", type=A.samples, help="samples to run (default 8; --input: all)")
    p.add_argument("--seed", type=A.seed, default=0, help="seed of the random inputs (default 0)")
    p.add_argument(
        "--batch-size", type=A.positive, default=64, help="samples per simulator job (default 64)"
    )
    p.add_argument("--check", action="store_true", help="compare with the reference (exit 5)")
    p.add_argument("--simulator", help="what to run on (default: the target's; Loihi: lava)")
    p.add_argument("--out", metavar="FILE.npz", help="also write the spikes per population")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_run)
    return p


def _inputs(args: argparse.Namespace, build: Any) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(x [n, *input_shape], labels or None, description)`` from the options."""
    from snncc.analysis.feeds import load_samples

    n = args.samples
    if args.input is not None:
        from snncc.data.files import read_npz
        from snncc.reports.measure import num_classes

        data = read_npz(
            args.input, want=build.input_shape, option="--input", code="RUN010",
            require_labels=False, num_classes=num_classes(_Loaded(build), build.graph),
        )  # fmt: skip
        x, y = data.x[:n], (data.y[:n] if data.y is not None else None)
        return x, y, f"{Path(args.input).name} ({len(x)} samples)"
    if args.data is not None:
        from snncc.reports.measure import eval_data

        x, y, _ = eval_data(args.data, _Loaded(build), build.graph)
        n = n or 8
        return x[:n], y[:n], f"{args.data} test split ({min(n, len(x))} samples)"
    x, desc = load_samples(None, build.graph, n or 8, random=True, seed=args.seed)
    return x, None, desc


class _Loaded:
    """The few LoadedModel fields the data readers use, taken from a build's manifest."""

    def __init__(self, build: Any) -> None:
        self.input_shape = build.input_shape
        self.timesteps = build.timesteps
        self.config = (build.manifest.get("inputs") or {}).get("config") or {}
        self.module = None


def _write_spikes(path: str, outcome: Any, force: bool, inputs: list[Path]) -> None:
    from snncc.reports.artifacts import atomic_write_file

    buf = io.BytesIO()
    np.savez(buf, **{k: v for k, v in sorted(outcome.spikes.items())})
    atomic_write_file(path, buf.getvalue(), force=force, inputs=inputs, flag="--out")


def _layers(outcome: Any, build: Any) -> list[dict[str, Any]]:
    rows = []
    for p in build.spec.populations:
        s = outcome.spikes[p.name]
        rows.append(
            {
                "name": p.name,
                "neurons": int(np.prod(p.shape)),
                "spikes": int(s.sum(dtype=np.int64)),
                "rate": float(s.mean()) if s.size else 0.0,
                "drift": None if outcome.drift is None else outcome.drift.get(p.name),
            }
        )
    return rows


def result_json(build: Any, outcome: Any, desc: str) -> dict[str, Any]:
    """The ``--json`` document."""
    return {
        "build": str(build.path),
        "target": build.target,
        "data": desc,
        "samples": int(len(outcome.predictions)),
        "layers": _layers(outcome, build),
        "predictions": [int(v) for v in outcome.predictions],
        "labels": None if outcome.labels is None else [int(v) for v in outcome.labels],
        "accuracy": outcome.accuracy,
        "reference_accuracy": build.report.get("accuracy"),
        "parity": outcome.parity,
        "drift_note": outcome.drift_note,
        "runtime": outcome.info,
    }


def show_result(doc: dict[str, Any]) -> None:
    """Print a run's ``--json`` document as the table and lines ``snncc run`` shows."""
    from rich.table import Table

    out = console()
    drift = any(r["drift"] is not None for r in doc["layers"])
    table = Table(title=f"{doc['build']} on {doc['target']}: {doc['data']}")
    for col in ("layer", "neurons", "spikes", "rate"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    if drift:
        table.add_column("drift vs float", justify="right")
    for r in doc["layers"]:
        row = [r["name"], f"{r['neurons']:,}", f"{r['spikes']:,}", f"{100 * r['rate']:.1f} %"]
        if drift:
            row.append("-" if r["drift"] is None else f"{r['drift']:.3f}")
        table.add_row(*row)
    out.print(table)
    shown = doc["predictions"][:20]
    more = " …" if len(doc["predictions"]) > 20 else ""
    out.print(f"predictions: {' '.join(map(str, shown))}{more}", highlight=False)
    if doc["accuracy"] is not None:
        out.print(f"accuracy ({doc['target']} simulation): {100 * doc['accuracy']:.1f} %")
    ref = doc.get("reference_accuracy") or {}
    if ref.get("float") is not None:
        out.print(
            f"accuracy recorded at compile (--eval): float {100 * ref['float']:.1f} %, "
            f"quantized {100 * ref['quantized']:.1f} %",
            highlight=False,
        )
    if doc["drift_note"]:
        out.print(doc["drift_note"], highlight=False)
    par = doc["parity"]
    if par is not None:
        if par["equal"]:
            out.print(
                f"[green]parity: identical[/green] — {par['populations']} populations, "
                f"{par['neurons']:,} neurons, {par['samples']} samples: every spike equals "
                "the bit-accurate reference, and so does every prediction"
            )
        else:
            out.print(f"[red]parity: DIFFERENT[/red] — {par['mismatch_text'] or 'predictions'}")


def run_run(args: argparse.Namespace) -> int:
    """Entry point of ``snncc run``; returns the exit code."""
    from snncc.runtime.build import open_build
    from snncc.runtime.execute import check_parity, float_drift, simulate

    build = open_build(args.build, simulator=args.simulator)
    x, labels, desc = _inputs(args, build)
    inputs = [build.path] + ([Path(args.input)] if args.input else [])
    if args.out is not None:
        from snncc.reports.artifacts import check_output_file

        check_output_file(args.out, force=args.force, inputs=inputs, flag="--out")
    bar = progress_bar(len(x), "simulating", "sample", quiet=args.json)
    log = build.path.parent / f"{build.path.name}.runtime.log"
    try:
        outcome = simulate(
            build, x, labels, batch_size=args.batch_size, log_path=log,
            progress=lambda k: bar.update(k - bar.n),
        )  # fmt: skip
    finally:
        bar.close()
    float_drift(build, x, outcome)
    if args.check:
        outcome.parity = check_parity(build, x, outcome)
    if args.out is not None:
        _write_spikes(args.out, outcome, args.force, inputs)
    doc = result_json(build, outcome, desc)
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        show_result(doc)
    if outcome.parity is not None and not outcome.parity["equal"]:
        if not args.json:
            raise SnnccError(
                f"{build.path}: the {build.target} simulation differs from the reference: "
                f"{outcome.parity['mismatch_text'] or 'the predictions differ'}",
                code="RUN020",
                exit_code=PARITY_EXIT,
                hint="a bug in snncc's lowering or emitter: please report it with this build",
            )
        return PARITY_EXIT
    return 0
