"""The ``snncc compile`` and ``snncc slices`` subcommands (wiring and display, no compiler logic).

:mod:`snncc.cli.main` adds them with ``register_compile(subparsers)`` and
``register_slices(subparsers)``; each sets ``func`` to a ``run_*(args) -> int`` returning the exit
code: 0 success, 2 bad input (unknown model or target, bad budget, DIR not empty without
``--force``), 3 untraceable model, 4 does not fit the budget, 70 internal error.

Progress goes to stderr, and only when stderr is a terminal (a rich status line per stage, and
one line per finished stage), so ``--json`` output on stdout stays machine-readable and logs hold
results only. Errors are raised as :class:`SnnccError` and printed by :func:`snncc.cli.main.main`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from snncc import targets
from snncc.cli import args as A
from snncc.cli.console import console, err_console, progress_bar, progress_enabled
from snncc.diagnostics import SnnccError


def _common(p: argparse.ArgumentParser) -> None:
    A.add_model_args(p)
    p.add_argument("--target", required=True, choices=targets.NAMES, help="hardware target")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument(
        "--conv-synapses",
        choices=("shared", "per-connection"),
        default=None,
        help="Loihi cost model: shared (default: calibrated on Intel's Loihi 2 compiler output, "
        "convolution kernels stored once per core) or per-connection (the conservative bound); "
        "docs/budget.md",
    )


# -- compile -----------------------------------------------------------------------------------
def register_compile(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``snncc compile MODEL --target T --budget B -o DIR [...]``."""
    p = subparsers.add_parser(
        "compile",
        help="quantize and partition a model for a target under a budget; write artifacts",
        description="Trace, verify, quantize and partition MODEL for --target under --budget and "
        "write DIR atomically: manifest.json, ir/, report.{json,md,html} (docs/compile.md). "
        "Exit codes: 0 ok, 2 bad input, 3 untraceable, 4 does not fit.",
    )
    _common(p)
    p.add_argument("--budget", required=True, help="2MB | 2MiB | 512KiB | 512kB | 16cores | 8chips")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="artifact directory")
    p.add_argument("--force", action="store_true", help="replace DIR if it is not empty")
    p.add_argument("--slice", metavar="F,A,M", help="explicit elastic slice feature,attention,mlp")
    p.add_argument("--eval", metavar="DATA", help="digits | gestures | FILE.npz (arrays x, y)")
    p.add_argument(
        "--core-memory",
        type=A.byte_size,
        metavar="SIZE",
        default=None,
        help="memory per core, in --budget's units (128KiB, 1MB, 131072); Loihi 2's is not "
        "published, default 128 KiB",
    )
    p.add_argument(
        "--attention",
        choices=("auto", "and", "process"),
        default="auto",
        help="Loihi spike products (Q·Kᵀ·V): and = AND neurons (neurocore-native, larger), "
        "process = a custom fixed-point Lava process, auto = and when it fits --budget "
        "(default); docs/loihi.md",
    )
    p.set_defaults(func=run_compile)
    return p


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A ``progress(stage)`` callback: rich status on stderr, one ✓ line per finished stage."""
    if not enabled:
        yield lambda _s: None
        return
    out = err_console()
    state: dict[str, Any] = {"name": None, "t0": 0.0}

    def finish() -> None:
        if state["name"] is not None:
            dt = time.perf_counter() - state["t0"]
            out.print(f"[green]✓[/green] {state['name']} [dim]{dt:.2f}s[/dim]")

    with out.status("compiling") as status:

        def step(name: str) -> None:
            finish()
            state["name"], state["t0"] = name, time.perf_counter()
            status.update(f"{name} …")

        yield step
        finish()


def _summary(result: Any) -> None:
    from rich.table import Table

    r = result.report
    from snncc.reports.render import summary_rows

    table = Table(title=f"compiled → {result.out_dir}", show_header=False)
    for label, value in summary_rows(r):
        table.add_row(label, value)
    console().print(table)


def run_compile(args: argparse.Namespace) -> int:
    """Entry point of ``snncc compile``; returns the exit code."""
    from snncc.compiler import compile_model

    with _progress(progress_enabled(args.json)) as progress:
        result = compile_model(
            args.model, target=args.target, budget=args.budget, out_dir=args.output,
            force=args.force, slice=args.slice, eval=args.eval,
            core_memory=args.core_memory, conv_synapses=args.conv_synapses,
            attention=args.attention, **A.model_kwargs(args), progress=progress,
        )  # fmt: skip
    if args.json:
        print(json.dumps(result.report, indent=2, ensure_ascii=False))
    else:
        _summary(result)
    return 0


# -- slices ------------------------------------------------------------------------------------
def register_slices(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``snncc slices MODEL --target T [--budget B] [--json]``."""
    p = subparsers.add_parser(
        "slices",
        help="list an elastic model's slices with params, memory, cores, SOPs; mark those that fit",
        description="Every granularity combination (feature, attention, mlp) of an elastic "
        "model, partitioned for --target; with --budget, the slices that fit are marked.",
    )
    _common(p)
    p.add_argument("--budget", default=None, help="mark slices that fit this budget")
    p.set_defaults(func=run_slices)
    return p


def slice_rows(infos: list[Any]) -> list[dict[str, Any]]:
    """SliceInfo objects as JSON-ready dictionaries (the ``--json`` output)."""
    from snncc.reports.artifacts import jsonable

    rows = []
    for s in infos:
        d = s.to_dict() if hasattr(s, "to_dict") else dict(vars(s))
        rows.append(jsonable(d))
    return rows


def _render_slices(rows: list[dict[str, Any]], title: str, budget: str | None) -> None:
    from rich.table import Table

    from snncc.reports.render import fmt_bytes

    table = Table(title=title)
    for col in ("feature, attention, mlp", "params", "memory", "cores", "SOPs", "accuracy"):
        table.add_column(col, justify="left" if col.startswith("feature") else "right")
    if budget is not None:
        table.add_column(f"fits {budget}", justify="center")
    for r in rows:
        acc = r.get("accuracy")
        cells = [
            str(tuple(r["granularity"])), f"{r['params']:,}", fmt_bytes(r["memory_bytes"]),
            str(r["cores"]), f"{float(r['sops']):.3g}" if r.get("sops") is not None else "-",
            f"{100 * acc:.1f}%" if acc is not None else "-",
        ]  # fmt: skip
        if budget is not None:
            cells.append("[green]✓[/green]" if r.get("fits") else "[red]✗[/red]")
        table.add_row(*cells, style="bold" if r.get("fits") and budget else None)
    console().print(table)


@contextmanager
def _slice_progress(quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over the slices (tracing each takes about a second); terminals only."""
    bar: Any = None

    def update(i: int, n: int) -> None:
        nonlocal bar
        if bar is None:
            bar = progress_bar(n, "tracing slices", "slice", quiet=quiet)
        bar.n = i
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def run_slices(args: argparse.Namespace) -> int:
    """Entry point of ``snncc slices``; returns the exit code."""
    from snncc.loading import resolve_model
    from snncc.resources.budget import parse_budget
    from snncc.resources.core_fit import target_model
    from snncc.resources.slices import enumerate_slices

    target_model(args.target, None, args.conv_synapses)  # bad options fail before tracing
    budget = parse_budget(args.budget) if args.budget is not None else None
    loaded = resolve_model(args.model, **A.model_kwargs(args))
    if not hasattr(loaded.module, "granularities"):
        raise SnnccError(
            f"{args.model} is not an elastic model: it has one slice",
            code="CO040",
            hint="use an elastic-* model, or `snncc compile` directly",
        )
    with _slice_progress(args.json) as progress:
        infos = enumerate_slices(loaded, args.target, budget, progress=progress,
                                 conv_synapses=args.conv_synapses)  # fmt: skip
    rows = slice_rows(infos)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        _render_slices(rows, f"{args.model} on {args.target}", args.budget)
    return 0
