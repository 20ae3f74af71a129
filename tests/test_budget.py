"""``--budget`` parsing and the fit rule (issue 5, deliverable 5)."""

from __future__ import annotations

import pytest

from snncc.budget import Budget, fits, parse_budget, suggest_budget
from snncc.diagnostics import SnnccError


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("2MB", 2_000_000),
        ("2MiB", 2_097_152),
        ("512KiB", 524_288),
        ("512kB", 512_000),
        ("1000B", 1000),
        ("1000", 1000),
        ("1.5MB", 1_500_000),
        ("2 mib", 2_097_152),
        ("1GiB", 1_073_741_824),
    ],
)
def test_byte_budgets_are_exact(text: str, nbytes: int) -> None:
    b = parse_budget(text)
    assert (b.bytes, b.cores) == (nbytes, None)


@pytest.mark.parametrize(("text", "cores"), [("16cores", 16), ("1core", 1), ("120 cores", 120)])
def test_core_budgets(text: str, cores: int) -> None:
    b = parse_budget(text)
    assert (b.bytes, b.cores) == (None, cores)


@pytest.mark.parametrize("text", ["", "MB", "2XB", "-1MB", "0", "1.5cores", "0cores", "0.5B"])
def test_bad_budgets_are_exit_2_naming_the_text(text: str) -> None:
    with pytest.raises(SnnccError) as e:
        parse_budget(text)
    assert e.value.exit_code == 2 and repr(text) in e.value.message
    assert "2MiB" in (e.value.hint or "")


def test_fit_rule_uses_the_budget_unit() -> None:
    plan = {"memory_bytes": 1_000_000, "cores": 8}
    assert fits(plan, Budget(bytes=1_000_000, cores=None, text="1MB"))
    assert not fits(plan, Budget(bytes=999_999, cores=None, text="999999B"))
    assert fits(plan, Budget(bytes=None, cores=8, text="8cores"))
    assert not fits(plan, Budget(bytes=None, cores=7, text="7cores"))


def test_suggested_budget_rounds_up_so_it_fits() -> None:
    b = Budget(bytes=1, cores=None, text="1B")
    assert suggest_budget(412_345, 3, b) == "413kB"
    assert parse_budget(suggest_budget(412_345, 3, b)).bytes >= 412_345
    assert suggest_budget(412_345, 3, Budget(bytes=None, cores=1, text="1cores")) == "3cores"
