"""Diagnostics are data: every problem snncc finds is a :class:`Diagnostic` with provenance.

Why data and not strings: the CLI prints them as one line each (file, node, rule, fix), ``--json``
serialises them, the report renders them, and tests assert on their ``code`` rather than on
message wording. Stable codes are listed in ``docs/diagnostics.md``.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class Severity(str, enum.Enum):
    """How bad a diagnostic is: errors stop compilation, warnings are reported."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Diagnostic:
    """One finding, with where it came from and how to fix it.

    ``node`` is the IR node name, ``src`` the PyTorch module path (usually the same string) and
    ``loc`` the user's source ``file:line`` when the frontend could recover it.
    """

    code: str
    severity: Severity
    message: str
    node: str | None = None
    src: str | None = None
    loc: str | None = None
    pass_name: str | None = None
    hint: str | None = None

    def format(self) -> str:
        """Render as one line: ``code: where: message (fix: hint)``."""
        where = ", ".join(x for x in (self.node or self.src, self.loc) if x)
        text = f"{self.code} {self.severity.value}: "
        if where:
            text += f"{where}: "
        text += self.message
        if self.hint:
            text += f" (fix: {self.hint})"
        return text

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        d = asdict(self)
        d["severity"] = self.severity.value
        return d


class SnnccError(Exception):
    """A user-facing error: the CLI prints it as one line per diagnostic and exits ``exit_code``.

    It either wraps a list of diagnostics (``SnnccError.from_diagnostics``) or a single message.
    Exit codes are documented in README.md: 2 bad input, 3 untraceable model, 4 does not fit.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "E000",
        hint: str | None = None,
        exit_code: int = 2,
        diagnostics: list[Diagnostic] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint
        self.exit_code = exit_code
        self.diagnostics = list(diagnostics or [])

    @classmethod
    def from_diagnostics(
        cls, headline: str, diagnostics: list[Diagnostic], *, code: str, exit_code: int
    ) -> SnnccError:
        """Bundle several diagnostics (e.g. every unsupported op) into one error."""
        return cls(headline, code=code, exit_code=exit_code, diagnostics=diagnostics)

    def format(self) -> str:
        """The text the CLI prints: the headline, then one line per diagnostic."""
        head = f"error[{self.code}]: {self.message}"
        if self.hint:
            head += f" (fix: {self.hint})"
        lines = [head] + ["  " + d.format() for d in self.diagnostics]
        return "\n".join(lines)


class IRError(SnnccError):
    """An op or graph violates an IR invariant (bad parameter, dangling port, shape mismatch)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, code="IR001", hint=hint, exit_code=2)
