"""Runtime side of the job protocol: read a job directory, write its results.

The compile environment (Python 3.11, torch) and the runtime environment (Python 3.10, lava-nc,
PyNN, sPyNNaker) cannot share a process, so :mod:`snncc.runtime.bridge` hands work over through a
directory of plain files. A runtime module (``python -m snncc.backends.<b>.runtime.<m> JOBDIR``)
does::

    inputs, params = read_job(job_dir)
    ...simulate...
    write_result(job_dir, outputs, result)

Files in ``JOBDIR``:

- ``inputs.npz``  arrays from the compile side (``np.savez``; no pickles)
- ``params.json`` JSON parameters
- ``outputs.npz`` arrays produced by the runtime module
- ``result.json`` JSON metadata produced by the runtime module (versions, timings, counts)
- ``progress``    optional: how many work items (samples) are done, rewritten as they finish,
  so the compile side can show progress while the job runs (:func:`report_progress`)

This module imports numpy only and uses Python 3.10 syntax, because it runs inside the runtime
environment; it must not import anything from the compile side (torch).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

INPUTS = "inputs.npz"
PARAMS = "params.json"
OUTPUTS = "outputs.npz"
RESULT = "result.json"
PROGRESS = "progress"


def to_jsonable(obj: Any) -> Any:
    """``json.dumps`` default hook: numpy scalars become Python scalars, arrays become lists."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def save_arrays(path: str | os.PathLike[str], arrays: dict[str, Any]) -> None:
    """Write ``arrays`` to an ``.npz`` file (every value goes through ``np.asarray``)."""
    bad = [k for k, v in arrays.items() if np.asarray(v).dtype == object]
    if bad:
        raise TypeError(f"arrays {bad} have dtype object; only numeric/bool arrays can be sent")
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})


def load_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file into memory (pickles refused)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_job(job_dir: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``(inputs, params)`` of the job in ``job_dir``; a missing file reads as empty."""
    d = Path(job_dir)
    inputs = load_arrays(d / INPUTS) if (d / INPUTS).exists() else {}
    params = json.loads((d / PARAMS).read_text()) if (d / PARAMS).exists() else {}
    return inputs, params


def write_result(
    job_dir: str | os.PathLike[str], outputs: dict[str, Any], result: dict[str, Any]
) -> None:
    """Write ``outputs.npz`` and ``result.json`` into ``job_dir``.

    ``result.json`` is written last and atomically (temp file + rename), so the compile side can
    treat its presence as "the job finished".
    """
    d = Path(job_dir)
    save_arrays(d / OUTPUTS, outputs)
    tmp = d / (RESULT + ".tmp")
    tmp.write_text(json.dumps(result, default=to_jsonable, indent=1))
    tmp.replace(d / RESULT)


def report_progress(job_dir: str | os.PathLike[str], done: int) -> None:
    """Record that ``done`` work items are finished (atomically: the reader never sees half)."""
    d = Path(job_dir)
    tmp = d / (PROGRESS + ".tmp")
    tmp.write_text(str(int(done)))
    tmp.replace(d / PROGRESS)


def read_progress(job_dir: str | os.PathLike[str]) -> int:
    """The last :func:`report_progress` value, 0 before the first."""
    try:
        return int((Path(job_dir) / PROGRESS).read_text() or 0)
    except (OSError, ValueError):
        return 0


def job_dir_from_argv(argv: list[str] | None = None) -> Path:
    """The job directory given as the single command-line argument of a runtime module."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m <runtime module> JOB_DIR")
    return Path(args[0])
