"""Option types and the arguments every model-loading command shares.

Why one module: a checkpoint, a zoo name or a pickled module is accepted by ``inspect``,
``verify``, ``energy``, ``compile`` and ``slices`` (and by the commands the backends add), so the
MODEL argument, ``--trust-pickle``, ``--input-shape`` and ``--timesteps`` are declared once here
and every command gets the same names, ranges and messages.

Every option type range-checks its value: argparse reports a failed type conversion as a usage
error, which :class:`snncc.cli.main.Parser` prints as one ``error[CLI001]`` line after the
subcommand's usage. Ranges are there so that nothing downstream overflows or allocates absurd
memory from a typo (``--input-shape 3,1000000,1000000``) and ends as a bug report.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

#: Upper bounds that keep a typo from becoming an overflow or an out-of-memory crash.
MAX_TIMESTEPS = 100_000
MAX_SAMPLES = 10_000_000
MAX_SEED = 2**32 - 1  # numpy's SeedSequence accepts any int; torch and the datasets take 32 bits
#: Elements of one sample (batch of 1, one timestep): 2^28 float32 values = 1 GiB.
MAX_SAMPLE_ELEMENTS = 2**28


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` (or ``3x32x32``) → ``(3, 32, 32)``; positive, at most 5 dims, sane size."""
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 3,32,32, got {text!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"expected positive integers like 3,32,32, got {text!r}")
    if len(shape) > 5:
        raise argparse.ArgumentTypeError(f"at most 5 dimensions, got {len(shape)} in {text!r}")
    if math.prod(shape) > MAX_SAMPLE_ELEMENTS:
        raise argparse.ArgumentTypeError(
            f"{text!r} has {math.prod(shape):,} elements per sample; "
            f"at most {MAX_SAMPLE_ELEMENTS:,}"
        )
    return shape


def int_in(lo: int, hi: int, what: str = "an integer") -> Any:
    """An argparse ``type`` accepting integers in ``[lo, hi]`` (decimal digits only)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected {what} in [{lo}, {hi:,}], got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive = int_in(1, 2**31 - 1, "a positive integer")
timesteps = int_in(1, MAX_TIMESTEPS, "a positive number of timesteps")
samples = int_in(1, MAX_SAMPLES, "a positive number of samples")
seed = int_in(0, MAX_SEED, "a seed")


def byte_size(text: str) -> int:
    """``--core-memory``: a positive size in the units of ``--budget`` (``128KiB``, ``1MB``)."""
    from snncc.diagnostics import SnnccError
    from snncc.resources.budget import parse_budget

    try:
        b = parse_budget(text)
    except SnnccError as e:
        raise argparse.ArgumentTypeError(e.message.replace("bad --budget", "bad size")) from None
    if b.bytes is None:
        raise argparse.ArgumentTypeError(f"expected a size in bytes like 128KiB, got {text!r}")
    if b.bytes > 2**40:
        raise argparse.ArgumentTypeError(f"{text!r} is more than 1 TiB per core")
    return b.bytes


def add_model_args(p: argparse.ArgumentParser) -> None:
    """MODEL plus the options that describe how to load it (shared by every such command)."""
    p.add_argument("model", metavar="MODEL", help="checkpoint path or zoo name (`snncc models`)")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow pickled modules and .pt2 programs (runs code from the file)",
    )
    p.add_argument(
        "--input-shape",
        type=parse_shape,
        metavar="C,H,W",
        help="per-sample input shape without the batch axis (required for pickled modules "
        "that do not record it; overrides the checkpoint's)",
    )
    p.add_argument("--timesteps", type=timesteps, metavar="T", help="number of timesteps")


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`snncc.loading.resolve_model` that ``add_model_args`` set."""
    return {
        "trust_pickle": bool(getattr(args, "trust_pickle", False)),
        "input_shape": getattr(args, "input_shape", None),
        "timesteps": getattr(args, "timesteps", None),
    }
