"""Atomic artifact directories and canonical JSON (snncc.reports.artifacts)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from snncc.diagnostics import SnnccError
from snncc.reports.artifacts import (
    atomic_directory,
    canonical_json,
    jsonable,
    tree_files,
    tree_hashes,
    write_bytes,
)


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_new_directory_appears_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "art"
    with atomic_directory(out) as tmp:
        write_bytes(tmp, "a/b.txt", b"x")
        assert not out.exists(), "the target must not exist before the block ends"
        assert tmp.parent == out.parent
    assert tree_files(out) == ["a/b.txt"] and _leftovers(out) == []


def test_exception_removes_temporary_and_keeps_old(tmp_path: Path) -> None:
    out = tmp_path / "art"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(out, force=True) as tmp:
            write_bytes(tmp, "new.txt", b"new")
            raise RuntimeError("midway")
    assert tree_files(out) == ["old.txt"] and _leftovers(out) == []


def test_non_empty_requires_force_and_force_replaces(tmp_path: Path) -> None:
    out = tmp_path / "art"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(SnnccError) as e:
        with atomic_directory(out):
            pass  # pragma: no cover - refused before the body runs
    assert e.value.exit_code == 2 and "--force" in e.value.format() and str(out) in e.value.message
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
