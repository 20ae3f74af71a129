"""The ``snncc`` command line, grouped by concern.

- :mod:`snncc.cli.main`: the parser, :func:`main` and the exit-code contract (every user mistake
  one ``error[CODE]`` line, exit 2; a closed pipe 141; a bug 70 with its traceback);
- :mod:`snncc.cli.args`: option types and the arguments every model-loading command shares;
- :mod:`snncc.cli.console`: rich consoles and progress displays that behave in a pipe;
- :mod:`snncc.cli.zoo_cmds` (``models``, ``inspect``), :mod:`snncc.cli.analysis_cmds`
  (``verify``, ``energy``) and :mod:`snncc.cli.compile_cmds` (``compile``, ``slices``): one small
  function per subcommand, wiring only; the work is done by the compiler packages.
"""

from snncc.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
