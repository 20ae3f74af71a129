"""The ``snncc verify`` and ``snncc energy`` subcommands.

:mod:`snncc.cli.main` wires them in with ``register_verify(subparsers)`` and
``register_energy(subparsers)``; each sets ``func`` to a ``run_*(args) -> int`` that returns the
exit code. Exit codes: 0 success (verify: spike-driven, or violations reported as warnings);
1 violations with ``--strict``; 2 bad input (unknown model, unreadable data); others from the
``SnnccError`` raised underneath, which :func:`snncc.cli.main.main` prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from snncc.cli import args as A
from snncc.cli.console import console, progress_bar
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.passes.verify_spike_driven import STRICT_EXIT, VerifyResult, check_spike_driven


def load_graph(ref: str, **load: Any) -> Graph:
    """Resolve ``ref`` (a checkpoint path or zoo name; ``load`` as resolve_model's) and trace."""
    from snncc.loading import resolve_model, to_graph

    return to_graph(resolve_model(ref, **load))


def _front(g: Graph) -> Graph:
    from snncc.passes.manager import run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE

    out, _ = run_pipeline(g, FRONT_PIPELINE)
    return out


# -- verify ------------------------------------------------------------------------------------
def register_verify(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``snncc verify MODEL [--strict] [--json] [model options]``."""
    p = subparsers.add_parser(
        "verify",
        help="check that every synaptic op is driven by binary spikes",
        description="Spike-driven verification: every Linear/Conv/pooling layer must read 0/1 "
        "spikes, except the encoding layer and the readout head (docs/verification.md).",
    )
    A.add_model_args(p)
    p.add_argument("--strict", action="store_true", help="exit 1 when violations are found")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_verify)
    return p


def verify_model(ref: str, **load: Any) -> VerifyResult:
    """Load, run the front pipeline and check ``ref``."""
    return check_spike_driven(_front(load_graph(ref, **load)))


def run_verify(args: argparse.Namespace) -> int:
    """Entry point of ``snncc verify``; returns the exit code."""
    result = verify_model(args.model, **A.model_kwargs(args))
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        from snncc.cli.analysis_render import render_verify

        render_verify(result, args.model, console())
    if not result.spike_driven:
        for v in result.violations:
            print(v.diagnostic().format(), file=sys.stderr)
        if args.strict:
            return STRICT_EXIT
    return 0


# -- energy ------------------------------------------------------------------------------------
def register_energy(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``snncc energy MODEL [--data …] [--samples N] [--json] [--random] [model options]``."""
    p = subparsers.add_parser(
        "energy",
        help="SOPs per layer and energy under published models (45 nm, Loihi, SpiNNaker)",
        description="Firing rates from the reference interpreter over data, SOPs = fr·T·FLOPs "
        "per layer, MAC/AC as the Spikingformer energy code, energy models with sources.",
    )
    A.add_model_args(p)
    p.add_argument("--data", help="digits | gestures | FILE.npz (array 'x', model layout)")
    p.add_argument("--samples", type=A.samples, default=16, help="samples to simulate (default 16)")
    p.add_argument("--batch-size", type=A.positive, default=8, help="samples per reference run")
    p.add_argument("--random", action="store_true", help="use random inputs (no --data)")
    p.add_argument("--seed", type=A.seed, default=0, help="seed of --random inputs")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_energy)
    return p


def run_energy(args: argparse.Namespace) -> int:
    """Entry point of ``snncc energy``; returns the exit code."""
    from snncc.analysis.energy import analyze, prepare
    from snncc.analysis.feeds import load_samples

    if args.data is not None and args.random:
        raise SnnccError(
            "--data and --random exclude each other", code="EN001", hint="give one of them"
        )
    g = prepare(load_graph(args.model, **A.model_kwargs(args)))
    x, desc = load_samples(args.data, g, args.samples, random=args.random, seed=args.seed)
    report = analyze(
        g, x, model=args.model, data=desc, batch_size=args.batch_size,
        progress=_progress(len(x), quiet=args.json),
    )  # fmt: skip
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        from snncc.cli.analysis_render import render_energy

        render_energy(report, console())
    return 0


def _progress(total: int, *, quiet: bool) -> Any:
    """A progress bar over samples (stderr, terminals only) as a ``progress(n)`` callback."""
    bar = progress_bar(total, "reference", "sample", quiet=quiet)

    def step(n: int) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return step
