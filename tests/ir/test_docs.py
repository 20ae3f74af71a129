"""docs/ir.md documents every IR op class and the exact ``inspect --json`` keys."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from snncc.ir import ops as O

DOC = Path(__file__).resolve().parents[2] / "docs" / "ir.md"


def _sections() -> dict[str, str]:
    text = DOC.read_text()
    parts = re.split(r"^### (\w+)\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_op_has_a_section_naming_its_fields() -> None:
    sections = _sections()
    missing = sorted(set(O.OPS) - set(sections))
    assert not missing, f"docs/ir.md lacks a '### Name' section for {missing}"
    for name, cls in O.OPS.items():
        body = sections[name]
        for f in dataclasses.fields(cls):
            assert f"`{f.name}" in body, f"docs/ir.md: {name} does not mention field {f.name}"


def test_inspect_schema_keys_documented() -> None:
    text = DOC.read_text()
    for key in ("input_kinds", "shape", "params", "neurons", "synapses", "totals", "timesteps"):
        assert f"`{key}`" in text or f"`nodes[].{key}`" in text, key
