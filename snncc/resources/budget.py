"""``--budget``: how much of a machine a compiled model may use, in bytes, cores or chips.

Why three units: a user planning a shared Loihi board thinks in cores, one asking "does it fit a
Kapoho Point?" in chips (8), a user comparing slices of an elastic model thinks in memory. Byte
suffixes follow IEC/SI exactly, because a factor of 1.024² hidden in "MB" is a 5 % error on a
budget that decides whether a model fits:

- ``B``; SI ``kB``/``MB``/``GB``/``TB`` = 10^3, 10^6, 10^9, 10^12 bytes;
- IEC ``KiB``/``MiB``/``GiB``/``TiB`` = 2^10, 2^20, 2^30, 2^40 bytes;
- ``Ncores`` (or ``N cores``, ``1core``): a core count;
- ``Nchips`` (or ``N chips``, ``1chip``): a chip count, compared with the partition's ``chips``:
  on Loihi 2 the cores divided by the usable cores per chip of the constraints module (120,
  lava-nc's mapper), on SpiNNaker the chips sPyNNaker's planner fills (16 application cores and
  one SDRAM per chip). Reference Loihi 2 systems: Oheo Gulch 1 chip, Kapoho Point 8, Hala
  Point 1,152;
- ``Nboards`` (or ``N boards``, ``1board``): SpiNN-5 boards of 48 SpiNNaker chips
  (:data:`CHIPS_PER_BOARD`), compared with the partition's chips (and, when sPyNNaker mapped
  the program on a virtual board, with the chips it used). SpiNNaker only.

Suffixes are case-insensitive (``2mb`` = ``2MB``; ``b`` always means bytes, never bits); a space
between number and unit is allowed; decimals are allowed when the result is a whole number of
bytes (``1.5MB``), never for cores. A bare integer is a byte count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from snncc.diagnostics import SnnccError

#: Exit code when nothing fits the budget (README: 4 = does not fit).
NO_FIT_EXIT = 4

_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_CORES = ("core", "cores")
_CHIPS = ("chip", "chips")
_BOARDS = ("board", "boards")
#: SpiNNaker chips per SpiNN-5 board ("version 5"; hardware-semantics §1.3, measured on sPyNNaker's
#: virtual board; the same number as ``snncc.backends.spinnaker.constraints.SPINNAKER``).
CHIPS_PER_BOARD = 48
_PATTERN = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*$")
ACCEPTED = "2MB (10^6 B), 2MiB (2^20 B), 512KiB, 512kB, 1000B, 16cores, 8chips, 1board"


@dataclass(frozen=True)
class Budget:
    """A parsed budget: exactly one of ``bytes``, ``cores``, ``chips`` and ``boards`` is set;
    ``text`` is the input."""

    bytes: int | None
    cores: int | None
    text: str
    chips: int | None = None
    boards: int | None = None

    @property
    def chip_limit(self) -> int | None:
        """Chips allowed: ``chips``, or ``boards`` SpiNN-5 boards of 48 chips."""
        if self.boards is not None:
            return self.boards * CHIPS_PER_BOARD
        return self.chips

    def describe(self) -> str:
        """``2,000,000 B``, ``16 cores`` or ``8 chips``: the exact quantity, for messages."""
        if self.bytes is not None:
            return f"{self.bytes:,} B"
        if self.chips is not None:
            return f"{self.chips} chips"
        if self.boards is not None:
            return f"{self.boards} boards ({self.chip_limit} chips)"
        return f"{self.cores} cores"


def _bad(text: str, problem: str) -> SnnccError:
    return SnnccError(
        f"bad --budget {text!r}: {problem}",
        code="BU001",
        hint=f"write a positive size or core count, e.g. {ACCEPTED}",
        exit_code=2,
    )


def parse_budget(text: str) -> Budget:
    """Parse ``--budget`` text (see the module docstring); bad text is SnnccError exit 2."""
    if not isinstance(text, str):
        raise _bad(str(text), "expected text")
    m = _PATTERN.match(text.lower())
    if m is None:
        raise _bad(text, "not a number followed by a unit")
    number, unit = m.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the pattern only admits valid decimals
        raise _bad(text, "not a number") from None
    if unit in _CORES:
        if value != value.to_integral_value() or value < 1:
            raise _bad(text, "a core count must be a whole number >= 1")
        return Budget(bytes=None, cores=int(value), text=text.strip())
    if unit in _CHIPS:
        if value != value.to_integral_value() or value < 1:
            raise _bad(text, "a chip count must be a whole number >= 1")
        return Budget(bytes=None, cores=None, text=text.strip(), chips=int(value))
    if unit in _BOARDS:
        if value != value.to_integral_value() or value < 1:
            raise _bad(text, "a board count must be a whole number >= 1")
        return Budget(bytes=None, cores=None, text=text.strip(), boards=int(value))
    if unit not in _UNITS:
        raise _bad(text, f"unknown unit {unit!r}")
    n = value * _UNITS[unit]
    if n != n.to_integral_value():
        raise _bad(text, f"{n} is not a whole number of bytes")
    if n < 1:
        raise _bad(text, "the budget must be at least 1 byte")
    return Budget(bytes=int(n), cores=None, text=text.strip())


def _plan_totals(plan: Any) -> tuple[int, int, int]:
    """``(memory_bytes, cores, chips)`` of a PartitionPlan (or its ``to_dict()`` form)."""
    if isinstance(plan, dict):
        chips = plan.get("chips")
        return int(plan["memory_bytes"]), int(plan["cores"]), int(chips if chips else 0)
    return int(plan.memory_bytes), int(plan.cores), int(getattr(plan, "chips", 0) or 0)


def fits(plan: Any, budget: Budget | None) -> bool:
    """Does the partition fit? Bytes: total partition memory <= budget; cores: cores <= budget;
    chips: the chips the partitioner placed its cores on <= budget."""
    if budget is None:
        return True
    memory, cores, chips = _plan_totals(plan)
    if budget.bytes is not None:
        return memory <= budget.bytes
    if budget.cores is not None:
        return cores <= budget.cores
    if budget.chip_limit is not None:
        return chips <= budget.chip_limit
    return True


def human_bytes(n: int) -> str:
    """``412.3 kB``: SI units with one decimal (the exact count is printed next to it)."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def suggest_budget(memory_bytes: int, cores: int, budget: Budget, chips: int = 0) -> str:
    """The smallest round budget, in the user's unit, that admits ``memory_bytes``/``cores``
    (``chips`` for a chip budget; without it, the cores are suggested, which always fit).

    Bytes are rounded *up* to whole kB (SI) so the suggestion always fits: 412,345 B -> 413kB.
    """
    if budget.boards is not None and chips > 0:
        return f"{-(-chips // CHIPS_PER_BOARD)}boards"
    if budget.chips is not None and chips > 0:
        return f"{chips}chips"
    if budget.chips is not None or budget.boards is not None:
        return f"{cores}cores"
    if budget.cores is not None:
        return f"{cores}cores"
    return f"{-(-memory_bytes // 1000)}kB"
