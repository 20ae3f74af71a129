"""The ``snncc verify`` and ``snncc energy`` subcommands.

``snncc/cli.py`` wires them in with ``register_verify(subparsers)`` and
``register_energy(subparsers)``; each sets ``func`` to a ``run_*(args) -> int`` that returns the
exit code. Exit codes: 0 success (verify: spike-driven, or violations reported as warnings);
1 violations with ``--strict``; 2 bad input (unknown model, unreadable data); others from the
``SnnccError`` raised underneath.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.passes.verify_spike_driven import STRICT_EXIT, VerifyResult, check_spike_driven


def load_graph(ref: str, *, trust_pickle: bool = False) -> Graph:
    """Resolve ``ref`` (checkpoint path or zoo name) and trace it to a graph.

    Uses ``snncc.loading`` (``resolve_model`` + ``to_graph``). Until that module lands, zoo
    names are traced directly with seeded random weights.
    """
    try:
        loading = importlib.import_module("snncc.loading")
    except ModuleNotFoundError as e:
        if e.name != "snncc.loading":
            raise
        return _trace_zoo(ref)
    return loading.to_graph(loading.resolve_model(ref, trust_pickle=trust_pickle))


def _trace_zoo(name: str) -> Graph:
    import torch

    import snncc
    from snncc import models

    s = models.spec(name)
    torch.manual_seed(0)
    module = models.create(name).eval()
    x = torch.zeros(1, *s.input_shape)
    return snncc.trace(module, x, timesteps=s.timesteps, time_axis=s.time_axis)


def _front(g: Graph) -> Graph:
    from snncc.passes.manager import run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE

    out, _ = run_pipeline(g, FRONT_PIPELINE)
    return out


def _console(stream: Any = None) -> Any:
    from rich.console import Console

    return Console(file=stream or sys.stdout, soft_wrap=False)


def _fail(e: SnnccError) -> int:
    print(e.format(), file=sys.stderr)
    return e.exit_code


# -- verify ------------------------------------------------------------------------------------
def register_verify(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``snncc verify MODEL [--strict] [--json]``."""
    p = subparsers.add_parser(
        "verify",
        help="check that every synaptic op is driven by binary spikes",
        description="Spike-driven verification: every Linear/Conv/pooling layer must read 0/1 "
        "spikes, except the encoding layer and the readout head (docs/verification.md).",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint path or zoo name")
    p.add_argument("--strict", action="store_true", help="exit 1 when violations are found")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--trust-pickle", action="store_true", help="allow pickled checkpoints")
    p.set_defaults(func=run_verify)
    return p


def verify_model(ref: str, *, trust_pickle: bool = False) -> VerifyResult:
    """Load, run the front pipeline and check ``ref``."""
    return check_spike_driven(_front(load_graph(ref, trust_pickle=trust_pickle)))


def run_verify(args: argparse.Namespace) -> int:
    """Entry point of ``snncc verify``; returns the exit code."""
    try:
        result = verify_model(args.model, trust_pickle=getattr(args, "trust_pickle", False))
    except SnnccError as e:
        return _fail(e)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        from snncc.analysis.render import render_verify

        render_verify(result, args.model, _console())
    if not result.spike_driven:
        for v in result.violations:
            print(v.diagnostic().format(), file=sys.stderr)
        if args.strict:
            return STRICT_EXIT
    return 0


# -- energy ------------------------------------------------------------------------------------
def register_energy(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``snncc energy MODEL [--data …] [--samples N] [--json] [--random]``."""
    p = subparsers.add_parser(
        "energy",
        help="SOPs per layer and energy under published models (45 nm, Loihi, SpiNNaker)",
        description="Firing rates from the reference interpreter over data, SOPs = fr·T·FLOPs "
        "per layer, MAC/AC as the Spikingformer energy code, energy models with sources.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint path or zoo name")
    p.add_argument("--data", help="digits | gestures | FILE.npz (array 'x', model layout)")
    p.add_argument("--samples", type=int, default=16, help="samples to simulate (default 16)")
    p.add_argument("--batch-size", type=int, default=8, help="samples per reference run")
    p.add_argument("--random", action="store_true", help="use random inputs (no --data)")
    p.add_argument("--seed", type=int, default=0, help="seed of --random inputs")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--trust-pickle", action="store_true", help="allow pickled checkpoints")
    p.set_defaults(func=run_energy)
    return p


def run_energy(args: argparse.Namespace) -> int:
    """Entry point of ``snncc energy``; returns the exit code."""
    from snncc.analysis.energy import analyze, prepare
    from snncc.analysis.feeds import load_samples

    if args.data is not None and args.random:
        return _fail(SnnccError("--data and --random exclude each other", code="EN001"))
    try:
        g = prepare(load_graph(args.model, trust_pickle=getattr(args, "trust_pickle", False)))
        x, desc = load_samples(args.data, g, args.samples, random=args.random, seed=args.seed)
        report = analyze(
            g, x, model=args.model, data=desc, batch_size=args.batch_size,
            progress=_progress(len(x), quiet=args.json),
        )  # fmt: skip
    except SnnccError as e:
        return _fail(e)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        from snncc.analysis.render import render_energy

        render_energy(report, _console())
    return 0


def _progress(total: int, *, quiet: bool) -> Any:
    """A tqdm bar on stderr (hidden when not a terminal) as a ``progress(n)`` callback."""
    from tqdm import tqdm

    disable = True if quiet else None  # None: tqdm hides itself when stderr is not a terminal
    bar = tqdm(total=total, unit="sample", desc="reference", disable=disable, file=sys.stderr)

    def step(n: int) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return step
