"""``snncc finetune MODEL --target T --data D -o OUT.pt``: train through the target program.

Wiring and display only; the work is :func:`snncc.torch_exact.finetune.finetune_model`: quantize
as ``snncc compile --eval D`` does, train the integers on the target's grid through the exact
program (straight-through rounding, surrogate spikes), map them back into the checkpoint's float
weights, pin the grid, and prove the file compiles back to exactly the trained integers before
it is written (atomically; never over an existing file without ``--force``).

Exit codes: 0 ok, 2 bad input (model, data, output path; a model that is not a zoo checkpoint,
``FT001``; an unknown dataset, ``FT002``; a weight that cannot be mapped back, ``FT003``),
70 an internal error (``FT900``: the file would not compile back to the trained integers).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from snncc import targets
from snncc.cli import args as A
from snncc.cli.console import console, err_console, progress_enabled

#: Default learning rate in mantissa units per Adam step (docs/fidelity.md §4).
DEFAULT_LR = 0.05


def _lr(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value <= 1000 or value != value:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1000], got {text!r}")
    return value


def register_finetune(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``snncc finetune MODEL --target T --data D --epochs N -o OUT.pt [...]``."""
    p = subparsers.add_parser(
        "finetune",
        help="train a checkpoint through the target's exact integer program",
        description="Quantize MODEL for --target (calibrated on --data's train split, as "
        "`snncc compile --eval` does), train its integer weights through the exact program "
        "on the train split, and write a checkpoint that `snncc compile` turns into exactly "
        "those integers (its quantization grid is pinned in the file). Prints the float "
        "accuracy and the target's accuracy before and after on the test split. Exit codes: "
        "0 ok, 2 bad input, 70 internal error.",
    )
    A.add_model_args(p)
    p.add_argument("--target", required=True, choices=targets.NAMES, help="hardware target")
    p.add_argument("--data", required=True, choices=("digits", "gestures"), help="dataset")
    p.add_argument("--epochs", type=A.int_in(1, 1000, "epochs"), default=1, help="(default 1)")
    p.add_argument("--lr", type=_lr, default=DEFAULT_LR, help=f"Adam step in mantissa units "
                   f"(default {DEFAULT_LR})")  # fmt: skip
    p.add_argument("--batch-size", type=A.positive, default=64, help="(default 64)")
    p.add_argument("--train-samples", type=A.samples, help="use the first N train samples")
    p.add_argument("--seed", type=A.seed, default=0, help="shuffling seed (default 0)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.pt", help="checkpoint to write")
    p.add_argument("--force", action="store_true", help="replace an existing OUT.pt")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run_finetune)
    return p


def run_finetune(args: argparse.Namespace) -> int:
    """Entry point of ``snncc finetune``; returns the exit code."""
    from snncc.reports.artifacts import atomic_write_file, check_output_file
    from snncc.torch_exact.finetune import finetune_model

    inputs = [Path(args.model)] if Path(args.model).exists() else []
    check_output_file(args.output, force=args.force, inputs=inputs)

    def progress(epoch: int, loss: float) -> None:
        if progress_enabled():
            err_console().print(f"epoch {epoch + 1}/{args.epochs}: mean loss {loss:.4f}")

    out = finetune_model(
        args.model, args.target, args.data, epochs=args.epochs, lr=args.lr,
        batch=args.batch_size, train_samples=args.train_samples, seed=args.seed,
        progress=progress, **A.model_kwargs(args),
    )  # fmt: skip
    atomic_write_file(args.output, out.data, force=args.force, inputs=inputs)
    result = {
        "output": str(args.output),
        "target": args.target,
        "float_accuracy": out.before.float_acc,
        "accuracy_before": out.before.quant_acc,
        "accuracy_after": out.after.quant_acc,
        "test_samples": out.before.n_samples,
        "losses": out.losses,
        "changed_integers": out.changed,
        "deployed_integers": out.total,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    pct = 100.0
    out_console = console()
    out_console.print(
        f"fine-tuned {args.model} for {args.target} on {args.data} ({args.epochs} epoch(s)): "
        f"{out.changed} of {out.total} deployed integers changed"
    )
    out_console.print(
        f"test accuracy ({out.before.n_samples} samples): float {pct * out.before.float_acc:.2f} "
        f"%, {args.target} before {pct * out.before.quant_acc:.2f} %, after "
        f"{pct * out.after.quant_acc:.2f} %"
    )
    out_console.print(
        f"wrote {args.output}: `snncc compile {args.output} --target {args.target}` deploys "
        "exactly these integers (verified)"
    )
    return 0
