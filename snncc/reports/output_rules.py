"""Which output paths a command may write or replace: the rules behind every ``-o`` and ``--out``.

Split from :mod:`snncc.reports.artifacts` (which writes atomically and hashes) so the rules read
on their own; see that module's docstring for why each rule exists and the CO00x codes. Every
function here only looks: nothing is written except the probe sibling that
:func:`check_output_dir` creates and removes at once to prove the target is writable.
"""

from __future__ import annotations

import errno
import heapq
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snncc.diagnostics import SnnccError

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
