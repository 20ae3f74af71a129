"""Where the CLI's text goes: one place that makes rich consoles and progress displays.

Why one module: three command modules used to make their own consoles, and each inherited two
rich defaults that are wrong for a command-line tool whose output is piped:

- rich lays a table out for 80 columns when stdout is not a terminal, which truncates layer
  names (``blocks.0.attn.q_lif`` becomes ``blocks.0.att…``) in exactly the output a user saves or
  greps. Off a terminal we lay tables out on a width no table reaches, so every cell is whole.
- on a closed pipe (``snncc verify | head -1``) rich calls ``sys.exit(1)``, and 1 means
  "violations found" for ``verify --strict``. :class:`PipeSafeConsole` raises
  :class:`BrokenPipeError` instead, which :func:`snncc.cli.main` turns into the shell's 141.

Progress (status lines, bars) is for a person watching: it goes to stderr, and only when stderr is
a terminal, so logs and captured output hold results only.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from rich.console import Console

#: Table width off a terminal: wide enough that no column is ever truncated or folded.
PIPE_WIDTH = 100_000


class PipeSafeConsole(Console):
    """A rich console that reports a closed pipe as :class:`BrokenPipeError` (not ``exit 1``)."""

    def on_broken_pipe(self) -> None:
        """Raise instead of rich's ``SystemExit(1)``; the CLI maps it to exit code 141."""
        self.quiet = True
        raise BrokenPipeError


def console(stream: IO[str] | None = None) -> Console:
    """A console on ``stream`` (default stdout): terminal width on a TTY, unbounded elsewhere."""
    stream = stream if stream is not None else sys.stdout
    c = PipeSafeConsole(file=stream, soft_wrap=False)
    if c.is_terminal:
        return c
    return PipeSafeConsole(file=stream, soft_wrap=False, width=PIPE_WIDTH, no_color=True)


def err_console() -> Console:
    """A console on stderr (progress and notes)."""
    return console(sys.stderr)


def progress_enabled(quiet: bool = False) -> bool:
    """Show progress only to a person: not with ``--json``/quiet, and only on a terminal."""
    return not quiet and sys.stderr.isatty()


def progress_bar(
    total: int, desc: str, unit: str, *, quiet: bool = False, leave: bool = False
) -> Any:
    """A tqdm bar on stderr, disabled off a terminal (tqdm is the library for this)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=leave,
        disable=not progress_enabled(quiet),
    )
