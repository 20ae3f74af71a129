"""The ``snncc`` command line: argparse subcommands, one small function each (wiring only).

Every user mistake is an :class:`~snncc.diagnostics.SnnccError`; :func:`main` prints it as one
line per diagnostic and returns its exit code, so nobody sees a traceback for a typo. Anything
else is a bug in snncc and gets the traceback plus exit code 70. Exit codes (docs/cli.md):

    0 success · 1 violations with --strict · 2 bad input · 3 untraceable model
    4 does not fit the budget · 70 internal error · 130 interrupted

torch, rich and the zoo are imported inside the subcommands, so ``snncc --version`` and
``snncc --help`` answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from snncc import __version__
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph

#: Subcommands defined next to their logic: (module, registrar functions taking the subparsers).
EXTERNAL_COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("snncc.compile_cli", ("register_compile", "register_slices")),
    ("snncc.analysis.cli_cmds", ("register_verify", "register_energy")),
)
INTERNAL_EXIT = 70
INTERRUPTED_EXIT = 130
#: 128 + SIGPIPE, what shell tools return when their output pipe is closed early.
BROKEN_PIPE_EXIT = 141

EPILOG = """\
examples:
  snncc models                                      list the seed-zoo models
  snncc inspect spikingformer-tiny                  per-node table of a zoo model (seeded weights)
  snncc inspect examples/checkpoints/spikingformer-tiny-digits.pt --json
  snncc inspect model.pt --trust-pickle --input-shape 3,32,32 --timesteps 4
  snncc verify sdt-tiny --strict                    exit 1 unless every synapse reads spikes
  snncc energy examples/checkpoints/spikingformer-tiny-digits.pt --data digits
  snncc compile spikingformer-tiny --target loihi --budget 2MiB -o out/tiny
  snncc slices elastic-spikingformer-tiny --target loihi --budget 1200KiB

MODEL is an snncc checkpoint file (snncc.save_checkpoint) or a name from `snncc models`; whole
pickled modules and .pt2 programs (snncc.export_program) need --trust-pickle. Docs: docs/cli.md.
exit codes: 0 ok, 1 violations with --strict, 2 bad input, 3 untraceable model,
            4 does not fit the budget, 70 internal error, 130 interrupted
"""


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` → ``(3, 32, 32)`` (argparse ``type``; a bad value is a usage error, exit 2)."""
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 3,32,32, got {text!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"expected positive integers like 3,32,32, got {text!r}")
    return shape


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


# -- snncc models -------------------------------------------------------------------------------
def models_data() -> list[dict[str, Any]]:
    """One record per registered model; params counted on the meta device (no memory, fast)."""
    import torch

    from snncc import models

    rows = []
    for name in models.names():
        spec = models.spec(name)
        with torch.device("meta"):
            module = models.create(name)
        rows.append(
            {
                "name": name,
                "family": spec.family,
                "params": int(sum(p.numel() for p in module.parameters())),
                "timesteps": spec.timesteps,
                "input_shape": list(spec.input_shape),
                "time_axis": spec.time_axis,
                "elastic": spec.elastic,
            }
        )
    return rows


def _human(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    return f"{n / 1e3:.1f} k" if n >= 1_000 else str(n)


def cmd_models(args: argparse.Namespace) -> int:
    """``snncc models [--json]``."""
    rows = models_data()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="seed zoo (`snncc inspect NAME` traces one with seeded random weights)")
    for col in ("name", "family", "params", "T", "input shape", "elastic"):
        table.add_column(col, justify="right" if col in ("params", "T") else "left")
    for r in rows:
        shape = "x".join(str(s) for s in r["input_shape"])
        if r["time_axis"] is not None:
            shape += " (T first)"
        elastic = "yes" if r["elastic"] else "no"
        table.add_row(
            r["name"], r["family"], _human(r["params"]), str(r["timesteps"]), shape, elastic
        )
    _console().print(table)
    return 0


# -- snncc inspect ------------------------------------------------------------------------------
def front(graph: Graph) -> tuple[Graph, list[Any]]:
    """Run the front passes (fold BN, infer kinds, verify); returns the graph and diagnostics."""
    try:
        from snncc.passes.manager import run_pipeline
        from snncc.passes.pipeline import FRONT_PIPELINE
    except ModuleNotFoundError as e:  # pragma: no cover - only while the passes are being written
        if e.name not in ("snncc.passes.manager", "snncc.passes.pipeline"):
            raise
        return graph, []
    out, ctx = run_pipeline(graph, FRONT_PIPELINE)
    return out, list(ctx.diagnostics)


def inspect_data(graph: Graph, model: str, timesteps: int) -> dict[str, Any]:
    """The ``inspect --json`` document (schema in docs/ir.md): one record per node, totals."""
    from snncc.ir.printer import input_kinds, node_stats

    nodes = []
    for n in graph.topo_order():
        st = node_stats(graph, n)
        t = graph.type(n)
        nodes.append(
            {
                "name": n,
                "op": graph.op(n).kind,
                "input_kinds": input_kinds(graph, n),
                "shape": list(t.shape) if t is not None else [],
                "params": int(st.params),
                "neurons": int(st.neurons),
                "synapses": int(st.synapses),
            }
        )
    totals = {k: sum(r[k] for r in nodes) for k in ("params", "neurons", "synapses")}
    return {"model": model, "timesteps": int(timesteps), "nodes": nodes, "totals": totals}


def _metric_text(key: str, value: Any) -> str:
    """Accuracies as percentages (also lists of them, e.g. per elastic granularity)."""
    if "accuracy" in key and isinstance(value, float):
        return f"{100 * value:.1f} %"
    if "accuracy" in key and isinstance(value, (list, tuple)):
        return " / ".join(_metric_text(key, v) for v in value)
    return str(value)


#: How ``spike_status`` values read in the table's ``spike-driven`` column.
_STATUS_TEXT = {
    "spike-driven": "yes",
    "dynamic": "yes (dynamic operands)",
    "encoding": "encoding layer",
    "readout": "readout head",
}


def status_column(graph: Graph) -> dict[str, str]:
    """``{node: text}`` for the ``spike-driven`` column (synaptic and dynamic ops only).

    Why a table-only column: the ``inspect --json`` schema is fixed by the foundation issue (its
    keys are exact), and ``snncc verify --json`` already carries the machine-readable verdicts.
    """
    try:
        from snncc.passes.verify_spike_driven import spike_status
    except ModuleNotFoundError as e:  # pragma: no cover - only while the pass is being written
        if e.name != "snncc.passes.verify_spike_driven":
            raise
        return {}
    return {n: _STATUS_TEXT.get(v, f"no: {v}") for n, v in spike_status(graph).items()}


def _print_inspect(
    data: dict[str, Any], title: str, metrics: Any, warnings: int, status: dict[str, str]
) -> None:
    from rich.table import Table

    table = Table(title=title)
    cols = ("name", "op", "input kinds", "shape", "params", "neurons", "synapses", "spike-driven")
    for col in cols:
        table.add_column(
            col, justify="right" if col in ("params", "neurons", "synapses") else "left"
        )
    for r in data["nodes"]:
        nums = [f"{r[k]:,}" for k in ("params", "neurons", "synapses")]
        shape = "x".join(str(s) for s in r["shape"])
        sd = status.get(r["name"], "")
        sd = f"[red]{sd}[/red]" if sd.startswith("no") else sd
        table.add_row(r["name"], r["op"], ", ".join(r["input_kinds"]), shape, *nums, sd)
    table.add_section()
    tot = data["totals"]
    bad = sum(1 for v in status.values() if v.startswith("no"))
    table.add_row(
        f"total ({len(data['nodes'])} nodes)",
        "",
        "",
        "",
        *(f"{tot[k]:,}" for k in ("params", "neurons", "synapses")),
        (f"[red]{bad} not spike-driven[/red]" if bad else "all spike-driven") if status else "",
    )
    console = _console()
    console.print(table)
    for key, value in (metrics or {}).items():
        console.print(f"{key}: {_metric_text(key, value)}", highlight=False)
    if warnings:
        console.print(f"{warnings} warning(s) from the front passes; `snncc verify` lists them")


def cmd_inspect(args: argparse.Namespace) -> int:
    """``snncc inspect MODEL [--json] [--trust-pickle] [--input-shape S] [--timesteps T]``."""
    from snncc.loading import resolve_model, to_graph

    loaded = resolve_model(
        args.model,
        trust_pickle=args.trust_pickle,
        input_shape=args.input_shape,
        timesteps=args.timesteps,
    )
    graph, diagnostics = front(to_graph(loaded))
    data = inspect_data(graph, loaded.arch, loaded.timesteps)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    shape = "x".join(str(s) for s in loaded.input_shape)
    title = f"{args.model}: {loaded.arch}, T={loaded.timesteps}, input {shape}"
    _print_inspect(data, title, loaded.metrics, len(diagnostics), status_column(graph))
    return 0


# -- wiring -------------------------------------------------------------------------------------
def _console() -> Any:
    from rich.console import Console

    console = Console(soft_wrap=False)
    # Piped or captured output gets rich's default 80 columns, which would truncate node names.
    return console if console.is_terminal else Console(width=200, soft_wrap=False)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    p = argparse.ArgumentParser(
        prog="snncc",
        description="snncc: compile PyTorch spiking transformers for neuromorphic chips.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"snncc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    m = sub.add_parser("models", help="list the seed-zoo models")
    m.add_argument("--json", action="store_true", help="print the list as JSON")
    m.set_defaults(func=cmd_models)

    i = sub.add_parser(
        "inspect",
        help="trace a model and list its nodes with params, neurons and synapses",
        description="Trace MODEL (a checkpoint file or zoo name), run the front passes and print "
        "one row per IR node, then totals and the metrics the checkpoint records.",
    )
    i.add_argument("model", metavar="MODEL", help="checkpoint path or zoo name")
    i.add_argument("--json", action="store_true", help="print JSON (schema: docs/ir.md)")
    i.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow pickled modules and .pt2 programs (runs code from the file)",
    )
    i.add_argument(
        "--input-shape", type=parse_shape, metavar="C,H,W", help="per-sample input shape"
    )
    i.add_argument("--timesteps", type=_positive, metavar="T", help="number of timesteps")
    i.set_defaults(func=cmd_inspect)

    for module, registrars in EXTERNAL_COMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:  # pragma: no cover - only while that module is written
            if e.name != module:
                raise
            continue
        for fn in registrars:
            getattr(mod, fn)(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version and usage errors (argparse exits 2)
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        if getattr(args, "func", None) is None:
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except SnnccError as e:
        print(e.format(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("snncc: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except BrokenPipeError:
        # The reader went away (`snncc verify --json | head`): not a bug, so no traceback. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return BROKEN_PIPE_EXIT
    except Exception:  # noqa: BLE001 - last resort: a bug, shown with its traceback
        print(
            "snncc: internal error (a bug in snncc; please report it with this output):",
            file=sys.stderr,
        )
        traceback.print_exc()
        return INTERNAL_EXIT
