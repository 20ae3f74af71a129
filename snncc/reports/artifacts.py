"""Atomic, deterministic artifact directories: canonical JSON, hashes and the rename dance.

Why a whole-directory transaction: a compile that dies half-way (a bad model, an impossible
budget, Ctrl-C while rendering) must never leave a directory that looks like a result. Everything
is written into a temporary *sibling* of the target (same filesystem, so ``os.rename`` is atomic),
then renamed into place. Replacing an existing directory (``--force``) renames the old one aside
first, renames the new one in and only then deletes the old one, so at every instant the target
path holds either the complete old result or the complete new one.

Why canonical JSON: the same inputs must give a byte-identical directory, so every JSON file is
written with sorted keys and fixed indentation, and values are normalised (numpy scalars become
Python numbers, tuples become lists, non-finite floats become ``null``).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.serialize import dumps_json

#: Exit code for "DIR exists and is not empty" (bad input).
EXISTS_EXIT = 2


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples, sets, enums and NaN made JSON-safe."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "value") and isinstance(value.value, (str, int)):  # enums
        return value.value
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return str(value)


def canonical_json(obj: Any) -> bytes:
    """The bytes of ``obj`` as canonical JSON (sorted keys, indent 1, trailing newline)."""
    return dumps_json(jsonable(obj)).encode()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (checkpoints can be hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_files(root: Path) -> list[str]:
    """Every regular file under ``root`` as a POSIX relative path, sorted."""
    out = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    return sorted(out)


def tree_hashes(root: Path, *, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` except ``exclude``."""
    return {rel: sha256_file(root / rel) for rel in tree_files(root) if rel not in exclude}


def check_target(out_dir: Path, *, force: bool) -> None:
    """Refuse early when ``out_dir`` is a file, or a non-empty directory without ``force``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SnnccError(
            f"output path {out_dir} exists and is not a directory",
            code="CO001",
            hint="choose another -o DIR",
            exit_code=EXISTS_EXIT,
        )
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise SnnccError(
            f"output directory {out_dir} exists and is not empty",
            code="CO002",
            hint="pass --force to replace it, or choose another -o DIR",
            exit_code=EXISTS_EXIT,
        )


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Rename ``tmp`` to ``out_dir``, moving an existing ``out_dir`` aside and deleting it after."""
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old.rmdir()  # only the unique name is wanted; rename needs the path to be free
    os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        os.rename(old, out_dir)  # put the previous result back
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_directory(out_dir: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary sibling of ``out_dir``; on success it replaces ``out_dir``.

    On any exception the temporary directory is removed and ``out_dir`` is left exactly as it
    was. The non-empty check runs again just before the swap, so a directory created by someone
    else while we worked is not clobbered without ``force``.
    """
    out_dir = Path(out_dir)
    check_target(out_dir, force=force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a result should look like mkdir's
        yield tmp
        check_target(out_dir, force=force)
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


Writer = Callable[[Path], None]


def write_bytes(root: Path, rel: str, data: bytes) -> None:
    """Write ``data`` to ``root/rel``, creating parent folders."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
