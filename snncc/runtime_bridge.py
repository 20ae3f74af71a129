"""Compile side of the runtime bridge: run a module in the Python 3.10 runtime environment.

Why a subprocess: lava-nc 0.10.0 only runs on Python 3.10 and pins an old numpy, while the
compile environment runs Python 3.11+ with torch and numpy 2. They cannot share an interpreter,
so the compile side writes a job directory (``inputs.npz`` + ``params.json``), runs
``<runtime python> -m <module> <job dir>``, and reads ``outputs.npz`` + ``result.json`` back (the
runtime half is :mod:`snncc.runtime_io`). Only files cross the boundary: no pickles, so neither
side needs the other's packages.

The runtime interpreter is ``$SNNCC_RUNTIME_PYTHON`` if set, else ``.venv-runtime/bin/python`` in
the checkout that ``make setup`` filled. This module needs numpy only and imports on Python 3.10.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import snncc
from snncc.diagnostics import SnnccError
from snncc.runtime_io import INPUTS, OUTPUTS, PARAMS, RESULT, load_arrays, save_arrays, to_jsonable

#: Environment variable naming the runtime interpreter (overrides ``.venv-runtime``).
ENV_VAR = "SNNCC_RUNTIME_PYTHON"
#: Lines of the runtime's stderr quoted in the error when a job fails.
STDERR_TAIL_LINES = 40


def repo_root() -> Path:
    """The checkout snncc is installed from (``pip install -e .``): the parent of ``snncc/``."""
    return Path(snncc.__file__).resolve().parents[1]


def runtime_python() -> str:
    """Path of the Python 3.10 interpreter that runs runtime jobs.

    ``$SNNCC_RUNTIME_PYTHON`` wins (an interpreter with lava-nc, PyNN, sPyNNaker, Brian2 and snncc
    installed); otherwise ``<repo>/.venv-runtime/bin/python``, created by ``make setup``. Raises
    :class:`SnnccError` (code ``RT001``) naming both ways out when the interpreter is missing.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        if Path(override).exists():
            return override
        raise SnnccError(
            f"runtime Python not found: {ENV_VAR}={override} does not exist. Point {ENV_VAR} at a "
            "Python 3.10 interpreter with lava-nc, PyNN, sPyNNaker and snncc installed, or unset "
            "it and run `make setup` to create .venv-runtime",
            code="RT001",
        )
    path = repo_root() / ".venv-runtime" / "bin" / "python"
    if not path.exists():
        raise SnnccError(
            f"runtime environment not found: {path} does not exist. Run `make setup` to create "
            f"it, or set {ENV_VAR} to a Python 3.10 interpreter with lava-nc, PyNN, sPyNNaker "
            "and snncc installed",
            code="RT001",
        )
    return str(path)


def _runtime_env(job_dir: Path) -> dict[str, str]:
    """Environment for the runtime process.

    ``HOME`` is the job directory: sPyNNaker reads ``~/.spynnaker.cfg`` (a job writes its own
    virtual-board config there) and Brian2/matplotlib write caches under ``~``; this keeps jobs
    independent of the user's home. ``PYTHONPATH``/``PYTHONHOME`` are dropped because they belong
    to the compile interpreter (another Python version) and would shadow the runtime's packages.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["HOME"] = str(job_dir)
    return env


def _tail(text: str, n: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def run_in_runtime(
    module: str,
    inputs: dict[str, np.ndarray],
    params: dict[str, Any],
    timeout: float = 600,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run ``python -m module JOBDIR`` in the runtime environment; return ``(outputs, result)``.

    ``inputs`` must be numeric arrays and ``params`` JSON-serialisable (numpy scalars and arrays
    are converted). The job runs in a fresh temporary directory that is also its ``HOME`` and
    working directory (sPyNNaker writes ``reports/`` there), deleted afterwards.

    Raises :class:`SnnccError`: ``RT001`` runtime environment missing, ``RT002`` the module exited
    non-zero (the message quotes the end of its stderr), ``RT003`` timeout, ``RT004`` the module
    exited 0 without writing its results.
    """
    python = runtime_python()
    with tempfile.TemporaryDirectory(prefix="snncc-job-") as tmp:
        job = Path(tmp)
        save_arrays(job / INPUTS, inputs)
        (job / PARAMS).write_text(json.dumps(params, default=to_jsonable, indent=1))
        cmd = [python, "-m", module, str(job)]
        # A new session, so that on timeout the whole group (Lava forks workers) can be killed.
        proc = subprocess.Popen(
            cmd,
            cwd=job,
            env=_runtime_env(job),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            _stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _stdout, stderr = proc.communicate()
            raise SnnccError(
                f"runtime job {module} did not finish within {timeout:g} s\n{_tail(stderr)}",
                code="RT003",
                exit_code=70,
                hint="raise the timeout or simulate fewer steps",
            ) from None
        if proc.returncode != 0:
            raise SnnccError(
                f"runtime job {module} failed (exit code {proc.returncode}) in {python}:\n"
                f"{_tail(stderr)}",
                code="RT002",
                exit_code=70,
                hint="if a runtime package is missing or broken, rerun `make setup`",
            )
        if not (job / RESULT).exists():
            raise SnnccError(
                f"runtime job {module} exited 0 but wrote no {RESULT}\n{_tail(stderr)}",
                code="RT004",
                exit_code=70,
            )
        outputs = load_arrays(job / OUTPUTS) if (job / OUTPUTS).exists() else {}
        result = json.loads((job / RESULT).read_text())
    return outputs, result
