"""Compile side of the runtime bridge: run a module in the Python 3.10 runtime environment.

Why a subprocess: lava-nc 0.10.0 only runs on Python 3.10 and pins an old numpy, while the
compile environment runs Python 3.11+ with torch and numpy 2. They cannot share an interpreter,
so the compile side writes a job directory (``inputs.npz`` + ``params.json``), runs
``<runtime python> -m <module> <job dir>``, and reads ``outputs.npz`` + ``result.json`` back (the
runtime half is :mod:`snncc.runtime.jobs`). Only files cross the boundary: no pickles, so neither
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import snncc
from snncc.diagnostics import SnnccError
from snncc.runtime.jobs import (
    INPUTS,
    OUTPUTS,
    PARAMS,
    RESULT,
    load_arrays,
    read_progress,
    save_arrays,
    to_jsonable,
)

#: Environment variable naming the runtime interpreter (overrides ``.venv-runtime``).
ENV_VAR = "SNNCC_RUNTIME_PYTHON"
#: Lines of the runtime's stderr quoted in the error when a job fails.
STDERR_TAIL_LINES = 40
#: Seconds between looks at a running job's progress file.
POLL_SECONDS = 0.25


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


def _kill(proc: subprocess.Popen[str]) -> None:
    """End the job's whole process group (Lava forks one process per ProcessModel)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=2)
            return
        except subprocess.TimeoutExpired:
            continue


def _save_log(log_path: Path | None, module: str, stderr: str) -> str:
    """Write the job's stderr to ``log_path`` (if given); the sentence naming it, or ''."""
    if log_path is None:
        return ""
    try:
        Path(log_path).write_text(f"# runtime job {module}: stderr\n{stderr}")
    except OSError:
        return ""
    return f" (full log: {log_path})"


def _wait(
    proc: subprocess.Popen[str],
    job: Path,
    timeout: float,
    progress: Callable[[int], None] | None,
) -> tuple[str, bool]:
    """Wait for the job, reporting progress; returns ``(stderr, timed_out)``.

    stderr is drained by a reader thread inside ``communicate``; polling with a short timeout
    keeps that and lets us look at the progress file in between.
    """
    deadline = time.monotonic() + timeout
    last = -1
    while True:
        try:
            _out, err = proc.communicate(timeout=POLL_SECONDS if progress else timeout)
            if progress is not None:
                progress(read_progress(job))
            return err, False
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                _kill(proc)
                _out, err = proc.communicate()
                return err, True
            if progress is not None:
                done = read_progress(job)
                if done != last:
                    progress(done)
                    last = done


def run_in_runtime(
    module: str,
    inputs: dict[str, np.ndarray],
    params: dict[str, Any],
    timeout: float = 600,
    *,
    progress: Callable[[int], None] | None = None,
    log_path: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run ``python -m module JOBDIR`` in the runtime environment; return ``(outputs, result)``.

    ``inputs`` must be numeric arrays and ``params`` JSON-serialisable (numpy scalars and arrays
    are converted). The job runs in a fresh temporary directory that is also its ``HOME`` and
    working directory (sPyNNaker writes ``reports/`` there), deleted afterwards. ``progress`` is
    called with the number of items the job reports done
    (:func:`snncc.runtime.jobs.report_progress`) while it runs. When the job fails and
    ``log_path`` is given, its whole stderr is saved there.

    The job is its own session (so a timeout can kill the group Lava forks); for the same reason
    it does not receive the terminal's Ctrl-C, so any exception here (KeyboardInterrupt included)
    ends the whole group before it propagates: no runtime process outlives snncc.

    Raises :class:`SnnccError`: ``RT001`` runtime environment missing, ``RT002`` the module exited
    non-zero (the message quotes the end of its stderr), ``RT003`` timeout, ``RT004`` the module
    exited 0 without writing its results.
    """
    python = runtime_python()
    log = Path(log_path) if log_path is not None else None
    with tempfile.TemporaryDirectory(prefix="snncc-job-") as tmp:
        job = Path(tmp)
        save_arrays(job / INPUTS, inputs)
        (job / PARAMS).write_text(json.dumps(params, default=to_jsonable, indent=1))
        cmd = [python, "-m", module, str(job)]
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
            stderr, timed_out = _wait(proc, job, timeout, progress)
        except BaseException:
            _kill(proc)
            raise
        if timed_out:
            raise SnnccError(
                f"runtime job {module} did not finish within {timeout:g} s"
                f"{_save_log(log, module, stderr)}\n{_tail(stderr)}",
                code="RT003",
                exit_code=70,
                hint="raise the timeout or simulate fewer steps",
            ) from None
        if proc.returncode != 0:
            raise SnnccError(
                f"runtime job {module} failed (exit code {proc.returncode}) in {python}"
                f"{_save_log(log, module, stderr)}:\n{_tail(stderr)}",
                code="RT002",
                exit_code=70,
                hint="if a runtime package is missing or broken, rerun `make setup`",
            )
        if not (job / RESULT).exists():
            raise SnnccError(
                f"runtime job {module} exited 0 but wrote no {RESULT}"
                f"{_save_log(log, module, stderr)}\n{_tail(stderr)}",
                code="RT004",
                exit_code=70,
            )
        outputs = load_arrays(job / OUTPUTS) if (job / OUTPUTS).exists() else {}
        result = json.loads((job / RESULT).read_text())
    return outputs, result
