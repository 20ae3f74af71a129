"""``--budget`` parsing and the fit rule (issue 5, deliverable 5)."""

from __future__ import annotations

import pytest

from snncc.diagnostics import SnnccError
from snncc.resources.budget import Budget, fits, parse_budget, suggest_budget


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


@pytest.mark.parametrize(("text", "chips"), [("8chips", 8), ("1chip", 1), ("1152 chips", 1152)])
def test_chip_budgets(text: str, chips: int) -> None:
    b = parse_budget(text)
    assert (b.bytes, b.cores, b.chips) == (None, None, chips)
    assert b.describe() == f"{chips} chips"


@pytest.mark.parametrize("text", ["1.5chips", "0chips", "-1chips"])
def test_bad_chip_budgets_are_exit_2(text: str) -> None:
    with pytest.raises(SnnccError) as e:
        parse_budget(text)
    assert e.value.exit_code == 2 and repr(text) in e.value.message
    assert "8chips" in (e.value.hint or "")


def test_chip_budget_fits_the_plans_chips() -> None:
    plan = {"memory_bytes": 10**9, "cores": 729, "chips": 7}  # spikingformer-4-384, calibrated
    kapoho_point = parse_budget("8chips")
    assert fits(plan, kapoho_point) and not fits(plan, parse_budget("6chips"))
    assert suggest_budget(10**9, 729, parse_budget("6chips"), chips=7) == "7chips"
    assert suggest_budget(10**9, 729, parse_budget("6chips")) == "729cores"  # chips unknown


def test_chip_budget_on_a_real_partition() -> None:
    """Loihi 2: 120 usable cores per chip (lava-nc's mapper), so 121 cores need 2 chips."""
    from snncc.backends.lava.constraints import LOIHI
    from snncc.passes.partition import Core, _chips
    from snncc.resources.core_fit import target_model

    model = target_model("loihi", conv_synapses="shared")
    assert LOIHI.cores_per_chip == 120
    assert _chips(model, [Core(0, 120, [], {})], 120) == 1
    assert _chips(model, [Core(0, 121, [], {})], 121) == 2
