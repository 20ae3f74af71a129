"""Safe, atomic, deterministic outputs: canonical JSON, hashes, output checks and the rename dance.

Why a whole-directory transaction: a compile that dies half-way (a bad model, an impossible
budget, Ctrl-C while rendering, a full disk) must never leave a directory that looks like a
result. Everything is written into a temporary *sibling* of the target (same filesystem, so
``os.rename`` is atomic), then renamed into place. Replacing an existing directory (``--force``)
renames the old one aside first, renames the new one in and only then deletes the old one, so at
every instant the target path holds either the complete old result or the complete new one.

Why ``--force`` is narrow: ``-o ~/projects --force`` or ``-o . --force`` must never delete user
files. ``--force`` therefore replaces only an empty directory or a previous snncc output (a
``manifest.json`` whose ``"format"`` starts with ``snncc-``, holding no file its manifest does not
list), and nothing ever replaces a directory that holds one of the command's inputs, the current
working directory or one of its ancestors. Every command that writes outputs goes through
:func:`check_output_dir` / :func:`atomic_directory` or :func:`check_output_file` /
:func:`atomic_write_file`, so the rules are the same everywhere.

Why the target is checked for writability before the work: a compile takes up to a minute, and
learning only then that the parent is read-only, on ``/proc`` or has a name that is too long
wastes it. Any ``OSError`` that still happens while writing (disk full, quota, a race) becomes one
``error[CO008]`` line with the path, the OS's reason and a fix, never a traceback.

Why canonical JSON: the same inputs must give a byte-identical directory, so every JSON file is
written with sorted keys and fixed indentation, and values are normalised (numpy scalars become
Python numbers, tuples become lists, non-finite floats become ``null``).

The rules themselves (which paths may be written or replaced) are in
:mod:`snncc.reports.output_rules`; this module writes. Diagnostic codes (all exit 2, bad input):

- ``CO001`` the output path exists with the wrong type (a file where a directory goes, or the
  reverse);
- ``CO002`` the output exists and is not empty, and ``--force`` was not given;
- ``CO003`` ``--force`` refused: the directory is not a previous snncc output (names a few of its
  entries and their count), or is one that also holds files snncc did not write;
- ``CO005`` the output is, or contains, an input of the command;
- ``CO006`` the output directory is the current working directory or one of its ancestors;
- ``CO007`` the output cannot be written, found before the work (parent not a directory, no write
  permission, read-only or pseudo filesystem, name too long);
- ``CO008`` an OS error while writing the outputs (disk full, permission, name too long, ...).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.serialize import dumps_json
from snncc.reports.output_rules import (
    MANIFEST_FORMAT,
    OUTPUT_EXIT,
    _absolute,
    _check_dir,
    _check_file,
    _hint_for,
    _tmp_prefix,
    check_output_dir,
    check_output_file,
    read_output_manifest,
)

__all__ = [
    "MANIFEST_FORMAT",
    "atomic_directory",
    "atomic_write_file",
    "canonical_json",
    "check_output_dir",
    "check_output_file",
    "jsonable",
    "read_output_manifest",
    "sha256_file",
    "tree_files",
    "tree_hashes",
    "write_bytes",
    "write_error",
]


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


# -- writing ----------------------------------------------------------------------------------
def write_error(e: OSError, shown: str, *, tmp: Path | None = None, flag: str = "-o") -> SnnccError:
    """CO008: one line with the output, the OS's reason, the file it hit and a fix.

    A path inside the temporary sibling is reported as the path it would have had in the
    output, since the temporary name means nothing to the user.
    """
    where = e.filename
    if where is not None:
        where = os.fsdecode(where)
        if tmp is not None and (where == str(tmp) or where.startswith(str(tmp) + os.sep)):
            where = shown + where[len(str(tmp)) :]
    reason = e.strerror or str(e) or type(e).__name__
    at = f" (at {where})" if where and where != shown else ""
    return SnnccError(
        f"cannot write {shown}: {reason}{at}",
        code="CO008",
        hint=_hint_for(e.errno, flag),
        exit_code=OUTPUT_EXIT,
    )


def _make_parents(directory: Path) -> list[Path]:
    """``mkdir -p directory``; returns the folders it created, outermost first (to undo)."""
    missing: list[Path] = []
    d = directory
    while not os.path.lexists(d) and d != d.parent:
        missing.append(d)
        d = d.parent
    created: list[Path] = []
    try:
        for m in reversed(missing):
            m.mkdir()
            created.append(m)
    except BaseException:
        _remove_parents(created)
        raise
    return created


def _remove_parents(created: list[Path]) -> None:
    """Undo :func:`_make_parents`: remove the folders it made, innermost first, if still empty."""
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:  # something else was put there meanwhile: keep it
            break


def _real_target(out: str | Path) -> Path:
    """Where the output really goes: absolute, and through a symlink named as the target.

    A symlinked ``-o link`` keeps pointing at the new result because the swap happens at the
    link's target, not by replacing the link itself.
    """
    path = _absolute(out)
    return path.resolve() if os.path.islink(path) else path


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Rename ``tmp`` to ``out_dir``, moving an existing ``out_dir`` aside and deleting it after."""
    if not os.path.lexists(out_dir):
        os.rename(tmp, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=_tmp_prefix(out_dir.name, "old"), dir=out_dir.parent))
    old.rmdir()  # only the unique name is wanted; rename needs the path to be free
    os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        os.rename(old, out_dir)  # put the previous result back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _default_mode(mode: int) -> int:
    """``mode`` less the process umask: what ``mkdir``/``open`` would have given."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextmanager
def atomic_directory(
    out_dir: str | Path,
    *,
    force: bool = False,
    inputs: Sequence[str | Path] = (),
    flag: str = "-o",
) -> Iterator[Path]:
    """Yield a fresh temporary sibling of ``out_dir``; on success it replaces ``out_dir``.

    :func:`check_output_dir` runs first and again just before the swap, so a directory created
    by someone else while we worked is not clobbered. On any exception the temporary directory
    and any parent folders this call created are removed and ``out_dir`` is left exactly as it
    was; an ``OSError`` (disk full, permission, name too long, ...) comes out as one
    :class:`SnnccError` ``CO008`` (exit 2).
    """
    shown = str(out_dir)
    check_output_dir(out_dir, force=force, inputs=inputs, flag=flag)
    real = _real_target(out_dir)
    created: list[Path] = []
    tmp: Path | None = None
    try:
        created = _make_parents(real.parent)
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(real.name, "tmp"), dir=real.parent))
        os.chmod(tmp, _default_mode(0o777))  # mkdtemp makes 0700; a result should look like mkdir's
        yield tmp
        _check_dir(out_dir, force=force, inputs=inputs, flag=flag, probe=False)
        _swap_in(tmp, real)
    except OSError as e:
        _cleanup(tmp, created)
        raise write_error(e, shown, tmp=tmp, flag=flag) from e
    except BaseException:
        _cleanup(tmp, created)
        raise


def _cleanup(tmp: Path | None, created: list[Path]) -> None:
    """Remove a failed write's temporary sibling and the parent folders made for it."""
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    _remove_parents(created)


def atomic_write_file(
    path: str | Path,
    data: bytes | str,
    *,
    force: bool = False,
    inputs: Sequence[str | Path] = (),
    flag: str = "-o",
) -> None:
    """Write one output file atomically under the rules of :func:`check_output_file`.

    The bytes go to a temporary sibling that is flushed and renamed over ``path``, so readers
    never see half a file and a failure leaves the previous file as it was. ``str`` data is
    written as UTF-8. The file gets ``open()``'s usual mode (0666 less the umask), not
    ``mkstemp``'s 0600. An ``OSError`` becomes one :class:`SnnccError` ``CO008`` (exit 2).

    (``snncc.ir.serialize.atomic_write_bytes`` is the checkpoint/IR writer without these rules.)
    """
    shown = str(path)
    check_output_file(path, force=force, inputs=inputs, flag=flag)
    payload = data.encode() if isinstance(data, str) else bytes(data)
    real = _real_target(path)
    created: list[Path] = []
    tmp: Path | None = None
    try:
        created = _make_parents(real.parent)
        fd, name = tempfile.mkstemp(prefix=_tmp_prefix(real.name, "tmp"), dir=real.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode(0o666))
        _check_file(path, force=force, inputs=inputs, flag=flag, probe=False)
        os.replace(tmp, real)
    except OSError as e:
        _discard_file(tmp, created)
        raise write_error(e, shown, tmp=tmp, flag=flag) from e
    except BaseException:
        _discard_file(tmp, created)
        raise


def _discard_file(tmp: Path | None, created: list[Path]) -> None:
    """Remove a failed file write's temporary sibling and the parent folders made for it."""
    if tmp is not None:
        with suppress(OSError):  # the original error is the one to report
            tmp.unlink(missing_ok=True)
    _remove_parents(created)


Writer = Callable[[Path], None]


def write_bytes(root: Path, rel: str, data: bytes) -> None:
    """Write ``data`` to ``root/rel``, creating parent folders."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
