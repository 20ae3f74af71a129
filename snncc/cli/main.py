"""The ``snncc`` command line: the parser, :func:`main` and the exit-code contract.

Every user mistake ends as one ``error[CODE]: …`` line on stderr with a fix, and an exit code
(docs/cli.md):

    0 success · 1 violations with --strict · 2 bad input · 3 untraceable model
    4 does not fit the budget · 70 internal error · 130 interrupted · 141 closed pipe

How each kind of mistake gets there, in one place rather than in every command:

- :class:`~snncc.diagnostics.SnnccError` (raised by loaders, passes and checks) is printed as is;
- option parsing errors go through :class:`Parser`, which prints the subcommand's usage and an
  ``error[CLI001]`` line (argparse's default is a bare ``prog: error:`` line without a code);
- every :class:`OSError` (permission denied, name too long, disk full, a read-only or pseudo
  filesystem, a path that is a directory) is a property of the user's files or machine, not a
  bug: :func:`os_error` names the path, the reason and a fix, exit 2;
- with ``--json``, a failure also prints a JSON error object on stdout, so a script that parses
  stdout sees why instead of an empty document.

Anything else is a bug in snncc and gets the traceback plus exit code 70. torch, rich and the
zoo are imported inside the subcommands, so ``snncc --version`` and ``--help`` answer at once.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from snncc import __version__
from snncc.diagnostics import SnnccError

#: Subcommands, in ``--help`` order: (module, registrar functions taking the subparsers).
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("snncc.cli.zoo_cmds", ("register_models", "register_inspect")),
    ("snncc.cli.analysis_cmds", ("register_verify", "register_energy")),
    ("snncc.cli.compile_cmds", ("register_compile", "register_slices")),
    ("snncc.cli.interop_cmds", ("register_export", "register_convert")),
    ("snncc.cli.run_cmds", ("register_run",)),
    ("snncc.cli.finetune_cmds", ("register_finetune",)),
)
USAGE_EXIT = 2
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
  snncc run out/tiny --data digits --check          simulate the build in Lava, compare

MODEL is an snncc checkpoint file (snncc.save_checkpoint) or a name from `snncc models`; whole
pickled modules and .pt2 programs (snncc.export_program) need --trust-pickle. Docs: docs/cli.md.
exit codes: 0 ok, 1 violations with --strict, 2 bad input, 3 untraceable model,
            4 does not fit the budget, 5 run --check found a difference,
            70 internal error, 130 interrupted, 141 closed pipe
"""


class UsageError(SnnccError):
    """A command-line mistake found by argparse; carries the usage of the (sub)command."""

    def __init__(self, message: str, usage: str, prog: str) -> None:
        super().__init__(
            f"{prog}: {message}", code="CLI001", hint=f"see `{prog} --help`", exit_code=USAGE_EXIT
        )
        self.usage = usage


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake raises :class:`UsageError` instead of printing and exiting.

    Subparsers inherit the class (``add_subparsers`` uses ``type(self)``), so the usage shown is
    the subcommand's own.
    """

    def error(self, message: str) -> NoReturn:
        """Called by argparse for every usage mistake."""
        raise UsageError(message, self.format_usage(), self.prog)


_OS_FIXES: dict[int, str] = {
    errno.EACCES: "check the permissions of the path, or choose another one",
    errno.EPERM: "check the permissions of the path, or choose another one",
    errno.ENAMETOOLONG: "use a shorter name (at most 255 bytes per path component)",
    errno.ENOSPC: "free disk space, or write to another filesystem",
    errno.EDQUOT: "free space within your disk quota, or write elsewhere",
    errno.EROFS: "choose a path on a writable filesystem",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a component of the path is a file, not a directory: check the path",
    errno.EISDIR: "the path is a directory: give a file",
    errno.ELOOP: "the path has a symbolic-link loop: check the path",
    errno.EIO: "the path cannot be read or written (a device or pseudo file?): use a regular file",
    errno.EMFILE: "too many open files: raise `ulimit -n` and retry",
}


def os_error(e: OSError) -> SnnccError:
    """An :class:`OSError` as one line: the path(s), the system's reason, a fix (exit 2)."""
    paths = [str(p) for p in (e.filename, e.filename2) if p is not None]
    where = " -> ".join(paths) if paths else "a file operation"
    reason = e.strerror or str(e) or type(e).__name__
    hint = _OS_FIXES.get(e.errno or -1, "check the path and the filesystem, then retry")
    return SnnccError(f"{where}: {reason}", code="OS001", hint=hint, exit_code=USAGE_EXIT)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    p = Parser(
        prog="snncc",
        description="snncc: compile PyTorch spiking transformers for neuromorphic chips.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"snncc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module, registrars in COMMANDS:
        mod = importlib.import_module(module)
        for fn in registrars:
            getattr(mod, fn)(sub)
    return p


def _print_error(e: SnnccError, args: argparse.Namespace | None) -> int:
    """The error line(s) on stderr; with ``--json``, also a JSON error object on stdout."""
    if isinstance(e, UsageError):
        sys.stderr.write(e.usage)
    print(e.format(), file=sys.stderr)
    if args is not None and getattr(args, "json", False):
        doc = {
            "error": {
                "code": e.code,
                "message": e.message,
                "hint": e.hint,
                "exit_code": e.exit_code,
                "diagnostics": [d.to_dict() for d in e.diagnostics],
            }
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    return e.exit_code


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    args: argparse.Namespace | None = None
    try:
        try:
            parser = build_parser()
            try:
                args = parser.parse_args(argv)
            except SystemExit as e:  # --help and --version (usage errors raise UsageError)
                return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
            if getattr(args, "func", None) is None:
                parser.print_usage(sys.stderr)
                raise SnnccError(
                    "no command given", code="CLI002", hint="see `snncc --help` for the commands"
                )
            return int(args.func(args) or 0)
        except SnnccError as e:
            return _print_error(e, args)
        except BrokenPipeError:
            raise
        except OSError as e:
            return _print_error(os_error(e), args)
        except MemoryError:
            err = SnnccError(
                "out of memory",
                code="OS002",
                hint="use fewer samples, a smaller --batch-size or a smaller input shape",
            )
            return _print_error(err, args)
    except KeyboardInterrupt:
        print("snncc: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except BrokenPipeError:
        # The reader went away (`snncc verify --json | head`): not a bug, so no traceback.
        _quiet_stdout()
        return BROKEN_PIPE_EXIT
    except Exception:  # noqa: BLE001 - last resort: a bug, shown with its traceback
        print(
            "snncc: internal error (a bug in snncc; please report it with this output):",
            file=sys.stderr,
        )
        traceback.print_exc()
        return INTERNAL_EXIT
