"""The pass manager: run an ordered list of passes, lint between them, record what each did.

A pass is a plain function ``def name(g: Graph, ctx: PassContext) -> Graph`` in its own module,
with a docstring that has ``Requires:`` and ``Ensures:`` lines. It may mutate ``g`` (through the
:class:`~snncc.ir.graph.Graph` facade) and return it, or return a new graph. It reports its work
through the context: ``ctx.decide(...)`` for a human-readable decision, ``ctx.count(...)`` /
``ctx.stats[...]`` for numbers, ``ctx.diagnose(...)`` for warnings.

How ``changed`` is decided (one mechanism, no cooperation needed from passes): the manager
snapshots the graph before each pass (``Graph.copy`` shares the immutable ops, so this is cheap)
and compares the result with ``Graph.__eq__``. A pass therefore cannot forget to report a change,
and a pass that rewrites something into an identical form is correctly reported as unchanged.

Why lint between passes: a broken invariant found right after the pass that broke it is a bug
report with an address; found three passes later it is a mystery. Errors are re-raised with the
pass name and the passes that ran before it (torch.fx ``PassManager`` does the same).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from snncc.diagnostics import Diagnostic, Severity, SnnccError
from snncc.ir.graph import Graph
from snncc.ir.verify import lint as lint_graph

log = logging.getLogger(__name__)

#: Exit code for internal errors (a pass crashed or broke the IR): BSD ``EX_SOFTWARE``.
INTERNAL_EXIT = 70


@dataclass
class PassRecord:
    """What one pass did: the data the report renders (see code-style §2.10).

    ``seconds`` is wall time and therefore the one non-deterministic field; ``to_dict`` can leave
    it out so that records of two runs on the same input compare equal byte for byte.
    """

    name: str
    changed: bool
    seconds: float
    stats: dict[str, Any] = field(default_factory=dict)
    decisions: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def to_dict(self, timings: bool = True) -> dict[str, Any]:
        """JSON-ready dictionary; ``timings=False`` drops ``seconds`` (for deterministic output)."""
        d: dict[str, Any] = {"name": self.name, "changed": self.changed}
        if timings:
            d["seconds"] = self.seconds
        d["stats"] = dict(self.stats)
        d["decisions"] = list(self.decisions)
        d["diagnostics"] = [x.to_dict() for x in self.diagnostics]
        return d


@dataclass
class PassContext:
    """State shared by the passes of one pipeline run.

    ``config`` holds options (target, budget, …); ``records`` grows by one :class:`PassRecord` per
    pass; ``diagnostics`` collects every non-fatal diagnostic of the run. ``stats`` and
    ``decisions`` are the scratch space of the pass that is running: the manager empties them
    before each pass and moves them into that pass's record afterwards.
    """

    config: dict[str, Any] = field(default_factory=dict)
    records: list[PassRecord] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    decisions: list[str] = field(default_factory=list)
    pass_name: str | None = None

    def decide(self, text: str) -> None:
        """Record one decision of the running pass (one line, for the report)."""
        self.decisions.append(text)

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the integer statistic ``key`` of the running pass."""
        self.stats[key] = int(self.stats.get(key, 0)) + n

    def diagnose(
        self,
        code: str,
        message: str,
        *,
        severity: Severity = Severity.WARNING,
        node: str | None = None,
        hint: str | None = None,
    ) -> Diagnostic:
        """Record a non-fatal diagnostic attributed to the running pass."""
        d = Diagnostic(code, severity, message, node=node, pass_name=self.pass_name, hint=hint)
        self.diagnostics.append(d)
        return d


PassFn = Callable[[Graph, PassContext], Graph]


def pass_name(fn: PassFn) -> str:
    """The name a pass is recorded under (its function name)."""
    return getattr(fn, "__name__", type(fn).__name__)


def pass_contract(fn: PassFn) -> tuple[str, str]:
    """The ``Requires:`` and ``Ensures:`` text of a pass docstring ("" when a line is missing)."""
    found = {"Requires:": "", "Ensures:": ""}
    for line in (fn.__doc__ or "").splitlines():
        stripped = line.strip()
        for key in found:
            if stripped.startswith(key):
                found[key] = stripped[len(key) :].strip()
    return found["Requires:"], found["Ensures:"]


def _after(done: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in done) if done else "none"


def _with_pass(diags: list[Diagnostic], name: str) -> list[Diagnostic]:
    """Attribute diagnostics that carry no pass name to pass ``name``."""
    return [d if d.pass_name else dataclasses.replace(d, pass_name=name) for d in diags]


def _lint(g: Graph, where: str, name: str | None) -> None:
    """Raise an internal error listing every lint problem, located at ``where``."""
    diags = lint_graph(g)
    if diags:
        if name is not None:
            diags = _with_pass(diags, name)
        raise SnnccError.from_diagnostics(
            f"IR lint failed {where}", diags, code="IR100", exit_code=INTERNAL_EXIT
        )


def _run_one(fn: PassFn, g: Graph, ctx: PassContext, done: list[str]) -> Graph:
    """Call one pass, turning any exception into an SnnccError that names it and its history."""
    name = pass_name(fn)
    where = f"in pass '{name}' (after passes: {_after(done)})"
    try:
        out = fn(g, ctx)
    except SnnccError as e:
        # Keep the class, code, exit code and traceback; only add where it happened.
        e.message = f"{where}: {e.message}"
        e.args = (e.message,)
        e.diagnostics = _with_pass(e.diagnostics, name)
        raise
    except Exception as e:
        raise SnnccError(
            f"{where}: {type(e).__name__}: {e}",
            code="PASS001",
            exit_code=INTERNAL_EXIT,
            hint="this is a bug in snncc; please report it with the model",
        ) from e
    if not isinstance(out, Graph):
        raise SnnccError(
            f"{where}: returned {type(out).__name__}, expected a Graph",
            code="PASS001",
            exit_code=INTERNAL_EXIT,
        )
    return out


def run_pipeline(
    graph: Graph,
    passes: Sequence[PassFn],
    ctx: PassContext | None = None,
    *,
    lint: bool = True,
) -> tuple[Graph, PassContext]:
    """Run ``passes`` in order on a copy of ``graph``; return the result and the context.

    The caller's graph is never modified. With ``lint`` the graph is linted before the first pass
    and after each one; a failure names the pass that broke it. Each pass leaves a
    :class:`PassRecord` in ``ctx.records``.
    """
    ctx = ctx if ctx is not None else PassContext()
    g = graph.copy()
    done: list[str] = []
    if lint and passes:
        _lint(g, f"on the input graph (before pass '{pass_name(passes[0])}')", None)
    for fn in passes:
        name = pass_name(fn)
        before = g.copy()
        ctx.stats, ctx.decisions, ctx.pass_name = {}, [], name
        n_diags = len(ctx.diagnostics)
        t0 = time.perf_counter()
        g = _run_one(fn, g, ctx, done)
        seconds = time.perf_counter() - t0
        ctx.diagnostics[n_diags:] = _with_pass(ctx.diagnostics[n_diags:], name)
        record = PassRecord(
            name=name,
            changed=g != before,
            seconds=seconds,
            stats=ctx.stats,
            decisions=ctx.decisions,
            diagnostics=list(ctx.diagnostics[n_diags:]),
        )
        ctx.records.append(record)
        ctx.stats, ctx.decisions, ctx.pass_name = {}, [], None
        log.debug("pass %s: changed=%s %.3fs %s", name, record.changed, seconds, record.stats)
        if lint:
            _lint(g, f"after pass '{name}' (passes run before it: {_after(done)})", name)
        done.append(name)
    return g, ctx
