"""The ``models`` and ``inspect`` subcommands: what the zoo holds, and what a model traces to.

Wiring and display only: loading is :mod:`snncc.loading`, tracing :mod:`snncc.frontend`, the
front passes :mod:`snncc.passes`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from snncc.cli.args import add_model_args, model_kwargs
from snncc.cli.console import console as _console
from snncc.ir.graph import Graph


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
    from snncc.passes.manager import run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE

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
    from snncc.passes.verify_spike_driven import spike_status

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

    loaded = resolve_model(args.model, **model_kwargs(args))
    graph, diagnostics = front(to_graph(loaded))
    data = inspect_data(graph, loaded.arch, loaded.timesteps)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    shape = "x".join(str(s) for s in loaded.input_shape)
    title = f"{args.model}: {loaded.arch}, T={loaded.timesteps}, input {shape}"
    _print_inspect(data, title, loaded.metrics, len(diagnostics), status_column(graph))
    return 0


def register_models(sub: Any) -> None:
    """Add ``snncc models [--json]``."""
    m = sub.add_parser("models", help="list the seed-zoo models")
    m.add_argument("--json", action="store_true", help="print the list as JSON")
    m.set_defaults(func=cmd_models)


def register_inspect(sub: Any) -> None:
    """Add ``snncc inspect MODEL [--json] [--trust-pickle] [--input-shape S] [--timesteps T]``."""
    i = sub.add_parser(
        "inspect",
        help="trace a model and list its nodes with params, neurons and synapses",
        description="Trace MODEL (a checkpoint file or zoo name), run the front passes and print "
        "one row per IR node, then totals and the metrics the checkpoint records.",
    )
    add_model_args(i)
    i.add_argument("--json", action="store_true", help="print JSON (schema: docs/ir.md)")
    i.set_defaults(func=cmd_inspect)
