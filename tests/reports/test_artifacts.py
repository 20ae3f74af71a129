"""Atomic artifact directories and files, the output rules, and canonical JSON.

(snncc.reports.artifacts; issue 9: ``--force`` never loses data.) The rules are exercised on the
functions directly here; ``tests/test_output_safety.py`` drives them through ``snncc compile``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import types
from pathlib import Path

import numpy as np
import pytest

from snncc.diagnostics import SnnccError
from snncc.reports.artifacts import (
    MANIFEST_FORMAT,
    atomic_directory,
    atomic_write_file,
    canonical_json,
    check_output_dir,
    check_output_file,
    jsonable,
    read_output_manifest,
    tree_files,
    tree_hashes,
    write_bytes,
)


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _previous_build(out: Path, files: dict[str, str] | None = None) -> None:
    """A directory as an earlier snncc run left it: its files, listed in its manifest."""
    files = {"old.txt": "old"} if files is None else files
    for rel, text in files.items():
        write_bytes(out, rel, text.encode())
    doc = {"format": MANIFEST_FORMAT, "artifacts": {rel: "-" for rel in files}}
    write_bytes(out, "manifest.json", canonical_json(doc))


def _code(e: pytest.ExceptionInfo[SnnccError]) -> str:
    """The code of a refusal, after checking that it is one line and exit 2."""
    assert e.value.exit_code == 2 and "\n" not in e.value.format(), e.value.format()
    return e.value.code


def test_new_directory_appears_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "art"
    with atomic_directory(out) as tmp:
        write_bytes(tmp, "a/b.txt", b"x")
        assert not out.exists(), "the target must not exist before the block ends"
        assert tmp.parent == out.parent
    assert tree_files(out) == ["a/b.txt"] and _leftovers(out) == []


def test_exception_removes_temporary_and_keeps_old(tmp_path: Path) -> None:
    out = tmp_path / "art"
    _previous_build(out)
    with pytest.raises(RuntimeError):
        with atomic_directory(out, force=True) as tmp:
            write_bytes(tmp, "new.txt", b"new")
            raise RuntimeError("midway")
    assert tree_files(out) == ["manifest.json", "old.txt"] and _leftovers(out) == []
    assert (out / "old.txt").read_text() == "old"


def test_non_empty_requires_force_and_force_replaces(tmp_path: Path) -> None:
    out = tmp_path / "art"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(SnnccError) as e:
        with atomic_directory(out):
            pass  # pragma: no cover - refused before the body runs
    assert e.value.exit_code == 2 and "--force" in e.value.format() and str(out) in e.value.message
    (out / "old.txt").unlink()
    _previous_build(out)  # --force replaces only an earlier snncc output
    with pytest.raises(SnnccError) as e:
        with atomic_directory(out):
            pass  # pragma: no cover - refused before the body runs
    assert e.value.code == "CO002" and "--force" in e.value.format()
    with atomic_directory(out, force=True) as tmp:
        write_bytes(tmp, "new.txt", b"new")
    assert tree_files(out) == ["new.txt"] and _leftovers(out) == []


def test_empty_existing_directory_is_replaced_without_force(tmp_path: Path) -> None:
    out = tmp_path / "art"
    out.mkdir()
    with atomic_directory(out) as tmp:
        write_bytes(tmp, "f", b"1")
    assert tree_files(out) == ["f"]


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "art"
    out.write_text("not a dir")
    with pytest.raises(SnnccError, match="not a directory"):
        with atomic_directory(out, force=True):
            pass  # pragma: no cover
    assert out.read_text() == "not a dir"


def test_jsonable_normalises_numpy_and_non_finite() -> None:
    value = {"a": np.int64(3), "b": (np.float32(0.5), math.nan), 2: np.arange(2), "s": {2, 1}}
    out = jsonable(value)
    assert out == {"a": 3, "b": [0.5, None], "2": [0, 1], "s": [1, 2]}
    assert type(out["a"]) is int and type(out["b"][0]) is float


def test_canonical_json_is_order_independent() -> None:
    a = canonical_json({"z": 1, "a": [1, {"y": 2, "b": 3}]})
    b = canonical_json({"a": [1, {"b": 3, "y": 2}], "z": 1})
    assert a == b and json.loads(a) == {"a": [1, {"b": 3, "y": 2}], "z": 1}


def test_tree_hashes_exclude(tmp_path: Path) -> None:
    write_bytes(tmp_path, "x/y.bin", b"abc")
    write_bytes(tmp_path, "t.json", b"{}")
    h = tree_hashes(tmp_path, exclude=("t.json",))
    # sha256("abc") from FIPS 180-2, appendix B.1
    assert h == {"x/y.bin": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}


# -- --force replaces only an earlier snncc output --------------------------------------------
def test_force_refuses_a_directory_that_is_not_an_snncc_output(tmp_path: Path) -> None:
    out = tmp_path / "home"
    out.mkdir()
    for i in range(8):
        (out / f"thesis-{i}.tex").write_text("years of work")
    (out / "code").mkdir()
    with pytest.raises(SnnccError) as e:
        with atomic_directory(out, force=True):
            pass  # pragma: no cover - refused before the body runs
    assert _code(e) == "CO003"
    text = e.value.format()
    assert str(out) in text and "9 entries" in text and "code/" in text and "thesis-0.tex" in text
    assert "delete it yourself" in text and "choose another -o DIR" in text
    assert sorted(p.name for p in out.iterdir()) == ["code"] + [f"thesis-{i}.tex" for i in range(8)]
    assert _leftovers(out) == []


@pytest.mark.parametrize(
    "manifest",
    [b"{not json", b'["snncc-artifacts"]', b'{"format": "other-tool"}', b"\xff\xfe"],
    ids=["bad-json", "not-an-object", "foreign-format", "not-utf8"],
)
def test_force_refuses_a_manifest_that_is_not_snncc(tmp_path: Path, manifest: bytes) -> None:
    out = tmp_path / "d"
    write_bytes(out, "manifest.json", manifest)
    assert read_output_manifest(out) is None
    with pytest.raises(SnnccError) as e:
        check_output_dir(out, force=True)
    assert _code(e) == "CO003" and (out / "manifest.json").read_bytes() == manifest


def test_force_refuses_a_previous_output_holding_user_files(tmp_path: Path) -> None:
    out = tmp_path / "d"
    _previous_build(out, {"report.json": "{}", "ir/graph.json": "{}"})
    write_bytes(out, "ir/my-notes.txt", b"mine")
    (out / "draft.md").write_text("mine too")
    with pytest.raises(SnnccError) as e:
        check_output_dir(out, force=True)
    assert _code(e) == "CO003"
    assert "2 files" in e.value.message and "draft.md" in e.value.message
    assert "ir/" in e.value.message
    (out / "draft.md").unlink()
    (out / "ir/my-notes.txt").unlink()
    check_output_dir(out, force=True)  # only what the manifest lists: replaceable


def test_previous_output_without_force_names_force(tmp_path: Path) -> None:
    out = tmp_path / "d"
    _previous_build(out)
    with pytest.raises(SnnccError) as e:
        check_output_dir(out, force=False)
    assert _code(e) == "CO002" and "pass --force" in e.value.format()


# -- inputs and the working directory are never replaced ----------------------------------------
def test_output_holding_an_input_is_refused_even_as_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "d"
    _previous_build(out, {"model.pt": "weights"})
    ckpt = out / "model.pt"
    for target in (out, tmp_path):
        with pytest.raises(SnnccError) as e:
            with atomic_directory(target, force=True, inputs=[ckpt]):
                pass  # pragma: no cover - refused before the body runs
        assert _code(e) == "CO005" and str(ckpt) in e.value.message
    assert ckpt.read_text() == "weights" and _leftovers(out) == []


def test_output_reached_through_a_symlink_still_protects_inputs(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "model.pt").write_text("weights")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(SnnccError) as e:
        check_output_dir(link, force=True, inputs=[real / "model.pt"])
    assert _code(e) == "CO005"
    with pytest.raises(SnnccError) as e:  # the input named through the link, output by its name
        check_output_dir(real, force=True, inputs=[link / "model.pt"])
    assert _code(e) == "CO005"


def test_symlinked_output_is_replaced_at_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real"
    _previous_build(real)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with atomic_directory(link, force=True) as tmp:
        write_bytes(tmp, "new.txt", b"new")
    assert link.is_symlink() and tree_files(real) == ["new.txt"]
    assert _leftovers(real) == [] and _leftovers(link) == []


@pytest.mark.parametrize("where", [".", "..", "ancestor"])
def test_working_directory_and_its_ancestors_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    work = tmp_path / "a" / "b"
    _previous_build(work)  # even a previous output: replacing it would pull the floor away
    monkeypatch.chdir(work)
    target = tmp_path if where == "ancestor" else Path(where)
    with pytest.raises(SnnccError) as e:
        with atomic_directory(target, force=True):
            pass  # pragma: no cover - refused before the body runs
    assert _code(e) == "CO006" and "working directory" in e.value.message
    assert (work / "old.txt").read_text() == "old" and _leftovers(work) == []


# -- writability is checked before the work -----------------------------------------------------
@pytest.mark.parametrize("target", ["/proc/snncc-out", "/sys/snncc/out", "/dev/snncc-out"])
def test_pseudo_filesystems_are_refused_before_writing(target: str) -> None:
    """Linux's /proc, /sys and /dev (snncc is tested on Linux, README Requirements)."""
    with pytest.raises(SnnccError) as e:
        check_output_dir(target, force=False)
    assert _code(e) == "CO007" and target in e.value.message
    assert not os.path.lexists(target)


def test_a_name_longer_than_name_max_is_refused(tmp_path: Path) -> None:
    long = tmp_path / ("x" * 300) / "out"
    with pytest.raises(SnnccError) as e:
        check_output_dir(long, force=False)
    assert _code(e) == "CO007" and os.strerror(errno.ENAMETOOLONG) in e.value.message
    with pytest.raises(SnnccError) as e:
        check_output_file(tmp_path / ("y" * 256), force=False)
    assert _code(e) == "CO007"
    assert sorted(os.listdir(tmp_path)) == []


def test_a_255_byte_name_still_works(tmp_path: Path) -> None:
    """The temporary siblings' names are shortened, so a legal target name is never too long."""
    out = tmp_path / ("n" * 255)
    with atomic_directory(out) as tmp:
        write_bytes(tmp, "f", b"1")
    atomic_write_file(tmp_path / ("m" * 255), b"2")
    assert tree_files(out) == ["f"] and (tmp_path / ("m" * 255)).read_bytes() == b"2"
    assert sorted(os.listdir(tmp_path)) == ["m" * 255, "n" * 255]


def test_a_file_in_the_parent_chain_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_text("weights")
    with pytest.raises(SnnccError) as e:
        check_output_dir(tmp_path / "model.pt" / "out", force=True)
    assert _code(e) == "CO007" and "not a directory" in e.value.message


def test_read_only_filesystem_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """statvfs's ST_RDONLY (root ignores permission bits but not a read-only mount)."""
    real = os.statvfs

    def statvfs(path: os.PathLike[str] | str) -> object:
        return types.SimpleNamespace(f_flag=real(path).f_flag | os.ST_RDONLY)

    monkeypatch.setattr(os, "statvfs", statvfs)
    with pytest.raises(SnnccError) as e:
        check_output_dir(tmp_path / "out", force=False)
    assert _code(e) == "CO007" and os.strerror(errno.EROFS) in e.value.message


def test_no_write_permission_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The permission check itself, as root too (where chmod 0o555 would not stop a write)."""
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    with pytest.raises(SnnccError) as e:
        check_output_dir(tmp_path / "out" / "deeper", force=False)
    assert _code(e) == "CO007" and os.strerror(errno.EACCES) in e.value.message
    assert str(tmp_path) in e.value.message and os.listdir(tmp_path) == []


def test_a_failing_probe_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last word is creating a sibling: whatever the OS says there is reported."""
    import tempfile

    def mkdtemp(*_a: object, **_k: object) -> str:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path))

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(SnnccError) as e:
        check_output_dir(tmp_path / "out", force=False)
    assert _code(e) == "CO007" and os.strerror(errno.EACCES) in e.value.message


# -- OS errors while writing --------------------------------------------------------------------
def test_disk_full_while_writing_is_one_line_and_keeps_old(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "art"
    _previous_build(out)
    before = tree_hashes(out)
    with pytest.raises(SnnccError) as e:
        with atomic_directory(out, force=True) as tmp:
            write_bytes(tmp, "a.txt", b"1")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp / "ir" / "x.npz"))
    assert _code(e) == "CO008"
    text = e.value.format()
    assert os.strerror(errno.ENOSPC) in text and str(out / "ir" / "x.npz") in text
    assert ".tmp-" not in text and "free space" in text
    assert tree_hashes(out) == before and _leftovers(out) == []


def test_failure_removes_the_parent_folders_it_created(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "art"
    with pytest.raises(SnnccError) as e:
        with atomic_directory(out):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert _code(e) == "CO008" and os.listdir(tmp_path) == []


# -- single output files ------------------------------------------------------------------------
def test_atomic_write_file_rules(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.bin"
    atomic_write_file(path, b"one")
    assert path.read_bytes() == b"one"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like open(), not mkstemp's 0600
    with pytest.raises(SnnccError) as e:
        atomic_write_file(path, b"two")
    assert _code(e) == "CO002" and "--force" in e.value.format() and path.read_bytes() == b"one"
    atomic_write_file(path, "two", force=True)
    assert path.read_text() == "two"
    with pytest.raises(SnnccError) as e:
        atomic_write_file(path, b"three", force=True, inputs=[path])
    assert _code(e) == "CO005" and path.read_text() == "two"
    with pytest.raises(SnnccError) as e:
        atomic_write_file(tmp_path / "sub", b"x", force=True)
    assert _code(e) == "CO001"
    assert sorted(os.listdir(path.parent)) == ["out.bin"]


def test_atomic_write_file_os_error_keeps_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(SnnccError) as e:
        atomic_write_file(path, b"new", force=True)
    assert _code(e) == "CO008" and str(path) in e.value.message
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]
