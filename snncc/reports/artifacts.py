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

Diagnostic codes (all exit 2, bad input):

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

import errno
import hashlib
import heapq
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.serialize import dumps_json

#: Exit code of every refused or failed output (bad input: the user chose the path).
EXISTS_EXIT = 2
OUTPUT_EXIT = EXISTS_EXIT

#: The file that marks a directory as an snncc output, and its ``"format"`` for ``compile``.
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "snncc-artifacts"
#: Any manifest whose ``"format"`` starts with this is an snncc output (``compile``, later
#: ``run --out`` / ``export``), so ``--force`` may replace it.
OUTPUT_FORMAT_PREFIX = "snncc-"
#: A manifest larger than this is not one snncc wrote (it is a few kB); it is not read whole.
_MANIFEST_MAX_BYTES = 64 << 20
#: Filesystems that hold no user data and must never receive outputs (``/proc``, ``/sys``, ...).
PSEUDO_FILESYSTEMS = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
        "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "pstore",
        "rpc_pipefs", "securityfs", "sysfs", "tracefs",
    }
)  # fmt: skip
#: How many entries of a refused directory the message names.
_SHOWN_ENTRIES = 5
#: Bytes of the target's name kept in its temporary siblings' names, so that ``.NAME.tmp-XXXX``
#: stays under NAME_MAX (255) even for a target name of 255 bytes.
_TMP_NAME_BYTES = 200
#: The ``--force`` rule, quoted in every fix that mentions it.
_FORCE_RULE = "--force replaces only a previous snncc output or an empty directory"


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


# -- the rules --------------------------------------------------------------------------------
def _absolute(path: str | Path) -> Path:
    """``path`` made absolute and normalised lexically (``a/../b`` -> ``b``), symlinks kept."""
    return Path(os.path.abspath(os.fspath(path)))


def _forms(path: str | Path) -> set[Path]:
    """The lexical absolute form of ``path`` and, where it resolves, its symlink-free form.

    Both are compared because either can be what the user sees: ``-o out`` where ``out`` is a
    symlink to the directory holding the checkpoint must be refused, and so must ``-o link/..``.
    """
    out = {_absolute(path)}
    try:
        out.add(Path(path).resolve())
    except (OSError, RuntimeError):  # symlink loop: the lexical form is all there is
        pass
    return out


def _is_within(inner: set[Path], outer: set[Path]) -> bool:
    """True when some form of ``inner`` equals or lies below some form of ``outer``."""
    return any(i == o or o in i.parents for i in inner for o in outer)


def _tmp_prefix(name: str, kind: str) -> str:
    """``.NAME.KIND-`` with NAME cut to ``_TMP_NAME_BYTES`` bytes (``tempfile`` adds 8 chars)."""
    short = os.fsencode(name)[:_TMP_NAME_BYTES].decode(errors="ignore") or "out"
    return f".{short}.{kind}-"


def _entries(directory: Path) -> tuple[list[str], int]:
    """The first few entry names of ``directory`` (sorted, folders with ``/``) and the count."""
    count = 0
    names: list[str] = []
    with os.scandir(directory) as it:
        for entry in it:
            count += 1
            names.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
    return heapq.nsmallest(_SHOWN_ENTRIES, names), count


def _describe(names: list[str], count: int) -> str:
    """``7 entries (a, b/, c, d, e, ...)``: a count and the first few names."""
    more = ", ..." if count > len(names) else ""
    return f"{count} {'entry' if count == 1 else 'entries'} ({', '.join(names)}{more})"


def read_output_manifest(directory: str | Path) -> dict[str, Any] | None:
    """The manifest of a previous snncc output in ``directory``, or None if it is not one.

    A previous output has a regular ``manifest.json`` that parses as a JSON object whose
    ``"format"`` is a string starting with ``snncc-``. Anything else (no file, a symlink, bad
    JSON, another tool's manifest) is not, so ``--force`` must not replace it.
    """
    path = Path(directory) / MANIFEST_NAME
    try:
        if path.is_symlink() or not path.is_file():
            return None
        if path.stat().st_size > _MANIFEST_MAX_BYTES:
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON: not ours
        return None
    if not isinstance(doc, dict):
        return None
    fmt = doc.get("format")
    return doc if isinstance(fmt, str) and fmt.startswith(OUTPUT_FORMAT_PREFIX) else None


def _non_directories(root: Path) -> list[str]:
    """Every entry under ``root`` that is not a folder (files, symlinks, ...), relative, sorted.

    ``os.walk`` does not follow symlinked folders, so a link out of the directory is one entry
    (the link), exactly what deleting the directory would remove.
    """
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        links = [d for d in dirnames if (base / d).is_symlink()]
        for name in [*filenames, *links]:
            out.append((base / name).relative_to(root).as_posix())
    return sorted(out)


def _unlisted_files(directory: Path, doc: dict[str, Any]) -> list[str]:
    """Files in a previous output that its manifest does not account for (user files).

    A manifest with an ``"artifacts"`` table (``{relative path: sha256}``, as ``compile`` writes)
    names every file snncc wrote, plus ``non_deterministic`` ones and the manifest itself; a
    file outside that set was put there by someone else and ``--force`` would delete it. A
    manifest without the table is taken at its word.
    """
    artifacts = doc.get("artifacts")
    if not isinstance(artifacts, dict):
        return []
    extra = doc.get("non_deterministic")
    allowed = {str(k) for k in artifacts} | {MANIFEST_NAME}
    if isinstance(extra, list):
        allowed |= {str(x) for x in extra}
    return [rel for rel in _non_directories(directory) if rel not in allowed]


def _refuse(message: str, code: str, hint: str) -> SnnccError:
    return SnnccError(message, code=code, hint=hint, exit_code=OUTPUT_EXIT)


def _check_not_cwd(shown: str, forms: set[Path], flag: str) -> None:
    """CO006: replacing the working directory (or an ancestor) would delete where we stand."""
    try:
        cwd = Path(os.getcwd())
    except OSError:  # the working directory was deleted: nothing of it left to protect
        return
    cwd_forms = {cwd, cwd.resolve()}
    if not _is_within(cwd_forms, forms):
        return
    if forms & cwd_forms:
        what = "the current working directory"
    else:
        what = f"an ancestor of the current working directory {cwd}"
    raise _refuse(
        f"output {shown} is {what}; replacing it would delete the files you are working in",
        "CO006",
        f"choose a new subdirectory, e.g. {flag} out/NAME",
    )


def _check_inputs(shown: str, forms: set[Path], inputs: Sequence[str | Path], flag: str) -> None:
    """CO005: an output that is or contains an input would delete or overwrite that input."""
    for item in inputs:
        if not os.path.lexists(item):
            continue
        item_forms = _forms(item)
        if _is_within(item_forms, forms):
            relation = "is" if item_forms & forms else "contains"
            raise _refuse(
                f"output {shown} {relation} the input {item}; writing it would destroy that input",
                "CO005",
                f"choose another {flag} path, outside the command's inputs",
            )


def _hint_for(code: int | None, flag: str) -> str:
    """The fix for an OS error (``errno`` ``code``) on an output path."""
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"free space on that filesystem, or choose another {flag} path on another one"
    if code in (errno.EACCES, errno.EPERM):
        return f"choose another {flag} path you can write to, or fix its parent's permissions"
    if code == errno.ENAMETOOLONG:
        return f"choose another {flag} path with shorter names"
    if code == errno.EROFS:
        return f"choose another {flag} path on a writable filesystem"
    if code in (errno.ENOTDIR, errno.EEXIST):
        return f"choose another {flag} path: a file is in the way"
    return f"choose another {flag} path"


def _os_reason(e: OSError) -> str:
    """``strerror (at FILE)``: the OS's words and the file they are about."""
    reason = e.strerror or str(e) or type(e).__name__
    return f"{reason} (at {os.fsdecode(e.filename)})" if e.filename is not None else reason


def _unwritable(shown: str, reason: str, hint: str) -> SnnccError:
    return _refuse(f"cannot write {shown}: {reason}", "CO007", hint)


#: ``/proc/self/mounts`` writes a space in a mount point as ``\\040`` (octal escapes).
_MOUNT_ESCAPE = re.compile(r"\\([0-7]{3})")


def _mount_type(path: Path) -> str | None:
    """The filesystem type of the mount holding ``path`` (Linux ``/proc/self/mounts``), or None.

    Why not only ``statvfs``: ``/proc`` and ``/sys`` are mounted read-write, and as root ``mkdir``
    in ``/dev`` (devtmpfs) even succeeds, yet none of them is a place for outputs.
    """
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:  # not Linux, or no /proc: the other checks still apply
        return None
    best: tuple[int, str] | None = None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = Path(_MOUNT_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), parts[1]))
        if (mount == path or mount in path.parents) and (
            best is None or len(mount.parts) >= best[0]
        ):
            best = (len(mount.parts), parts[2])
    return best[1] if best else None


def _check_writable(target: Path, shown: str, flag: str) -> None:
    """CO007 unless ``target`` could be created: done before any work, nothing is left behind.

    The nearest existing ancestor of ``target``'s parent must be a folder, on a real writable
    filesystem, writable by us, and every name still to be created must fit NAME_MAX. The last
    word is a probe: a temporary sibling is created there and removed at once, which catches what
    the permission bits cannot tell (ACLs, root on a read-only bind mount, ``/proc``).
    """
    absolute = _absolute(target)
    missing = [absolute.name]
    anc = absolute.parent
    while not os.path.lexists(anc) and anc != anc.parent:
        missing.append(anc.name)
        anc = anc.parent
    if not os.path.isdir(anc):
        raise _unwritable(
            shown,
            f"{anc} is not a directory ({os.strerror(errno.ENOTDIR)})",
            _hint_for(errno.ENOTDIR, flag),
        )
    try:
        name_max = os.pathconf(anc, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for name in missing:
        if len(os.fsencode(name)) > name_max:
            short = name if len(name) <= 40 else name[:37] + "..."
            raise _unwritable(
                shown,
                f"the name {short!r} has {len(os.fsencode(name))} bytes, more than the "
                f"filesystem's {name_max} ({os.strerror(errno.ENAMETOOLONG)})",
                _hint_for(errno.ENAMETOOLONG, flag),
            )
    real = _absolute(os.path.realpath(anc))
    fstype = _mount_type(real)
    if fstype in PSEUDO_FILESYSTEMS or real.parts[:2] in (("/", "proc"), ("/", "sys")):
        raise _unwritable(
            shown,
            f"{anc} is on the {fstype or 'kernel'} pseudo filesystem, which holds no files",
            f"choose another {flag} path on a real disk",
        )
    try:
        readonly = bool(os.statvfs(anc).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows): the probe decides
        readonly = False
    if readonly:
        raise _unwritable(
            shown, f"{anc} is on a read-only filesystem ({os.strerror(errno.EROFS)})",
            _hint_for(errno.EROFS, flag),
        )  # fmt: skip
    if not os.access(anc, os.W_OK | os.X_OK):
        raise _unwritable(
            shown, f"no permission to create files in {anc} ({os.strerror(errno.EACCES)})",
            _hint_for(errno.EACCES, flag),
        )  # fmt: skip
    try:
        probe = tempfile.mkdtemp(prefix=_tmp_prefix(missing[-1], "tmp"), dir=anc)
        os.rmdir(probe)
    except OSError as e:
        raise _unwritable(
            shown, f"cannot create files in {anc} ({e.strerror or e})", _hint_for(e.errno, flag)
        ) from e


def _check_dir(
    out_dir: str | Path, *, force: bool, inputs: Sequence[str | Path], flag: str, probe: bool
) -> None:
    """The rules of :func:`check_output_dir`; ``probe`` False skips the writability check."""
    shown = str(out_dir)
    forms = _forms(out_dir)
    _check_not_cwd(shown, forms, flag)
    path = Path(out_dir)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise _refuse(
            f"output path {shown} exists and is not a directory",
            "CO001",
            f"choose another {flag} DIR",
        )
    _check_inputs(shown, forms, inputs, flag)
    if os.path.isdir(path):  # os.path: a name too long is "no", not an exception
        names, count = _entries(path)
        if count:
            doc = read_output_manifest(path)
            if not force:
                if doc:
                    kind = "a previous snncc output"
                    hint = f"pass --force to replace it, or choose another {flag} DIR"
                else:
                    kind = "not an snncc output"
                    hint = f"choose another {flag} DIR; {_FORCE_RULE}"
                raise _refuse(
                    f"output directory {shown} exists and is not empty: {kind} holding "
                    f"{_describe(names, count)}",
                    "CO002",
                    hint,
                )
            if doc is None:
                raise _refuse(
                    f"--force refused: output directory {shown} is not a previous snncc output "
                    f"(no snncc {MANIFEST_NAME}) and holds {_describe(names, count)}",
                    "CO003",
                    f"choose another {flag} DIR or delete it yourself; {_FORCE_RULE}",
                )
            extra = _unlisted_files(path, doc)
            if extra:
                tops = sorted({r.split("/")[0] + ("/" if "/" in r else "") for r in extra})
                where = ", ".join(tops[:_SHOWN_ENTRIES]) + (
                    ", ..." if len(tops) > _SHOWN_ENTRIES else ""
                )
                files = f"{len(extra)} file{'s' if len(extra) > 1 else ''}"
                raise _refuse(
                    f"--force refused: output directory {shown} is a previous snncc output but "
                    f"also holds {files} that snncc did not write, in: {where}",
                    "CO003",
                    f"move those files out, choose another {flag} DIR, or delete it yourself",
                )
    if probe:
        _check_writable(path, shown, flag)


def check_output_dir(
    out_dir: str | Path,
    *,
    force: bool,
    inputs: Sequence[str | Path] = (),
    flag: str = "-o",
) -> None:
    """Raise :class:`SnnccError` (exit 2) unless ``out_dir`` may be written; writes nothing.

    Call it before any long work, with every path the command reads (checkpoint, ``--eval``
    file, ...) in ``inputs``; :func:`atomic_directory` checks again. Refused: the working
    directory or an ancestor (CO006); a file in the way (CO001); a directory that is or contains
    an input (CO005); a non-empty directory without ``force`` (CO002); with ``force``, one that
    is not a previous snncc output or holds files its manifest does not list (CO003); a target
    that cannot be created (CO007). ``flag`` is the option's name used in the fixes.
    """
    try:
        _check_dir(out_dir, force=force, inputs=inputs, flag=flag, probe=True)
    except OSError as e:  # e.g. the directory cannot be listed: one line, not a traceback
        raise _unwritable(str(out_dir), _os_reason(e), _hint_for(e.errno, flag)) from e


def check_target(out_dir: Path, *, force: bool) -> None:
    """:func:`check_output_dir` without inputs (kept for callers written before it)."""
    check_output_dir(out_dir, force=force)


def _check_file(
    path: str | Path, *, force: bool, inputs: Sequence[str | Path], flag: str, probe: bool
) -> None:
    """The rules of :func:`check_output_file`; ``probe`` False skips the writability check."""
    shown = str(path)
    forms = _forms(path)
    for item in inputs:
        if os.path.lexists(item) and (_forms(item) & forms or _is_within(_forms(item), forms)):
            raise _refuse(
                f"output {shown} is the input {item}; writing it would destroy that input",
                "CO005",
                f"choose another {flag} path",
            )
        if os.path.isdir(item) and _is_within(forms, _forms(item)):
            # e.g. `snncc run DIR --out DIR/spec.json`: a file inside an input directory (a
            # build) would replace part of it or leave a file its manifest does not list
            raise _refuse(
                f"output {shown} lies inside the input directory {item}; writing it would "
                "change that input",
                "CO005",
                f"choose a {flag} path outside {item}",
            )
    p = Path(path)
    if os.path.isdir(p):
        raise _refuse(
            f"output path {shown} exists and is a directory", "CO001", f"choose another {flag} FILE"
        )
    if os.path.lexists(p) and not force:
        raise _refuse(
            f"output file {shown} exists",
            "CO002",
            f"pass --force to replace it, or choose another {flag} FILE",
        )
    if probe:
        _check_writable(p, shown, flag)


def check_output_file(
    path: str | Path,
    *,
    force: bool,
    inputs: Sequence[str | Path] = (),
    flag: str = "-o",
) -> None:
    """Raise :class:`SnnccError` (exit 2) unless the single file ``path`` may be written.

    Refused: ``path`` is an input or a directory holding one (CO005); a directory (CO001); an
    existing file without ``force`` (CO002); a location that cannot be written (CO007). Call it
    before long work; :func:`atomic_write_file` checks again.
    """
    try:
        _check_file(path, force=force, inputs=inputs, flag=flag, probe=True)
    except OSError as e:
        raise _unwritable(str(path), _os_reason(e), _hint_for(e.errno, flag)) from e


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
