"""``verify_spike_driven``: prove or refute that every synaptic op is driven by binary spikes.

Spikingformer's claim (seed-models.md §2.6): a spiking transformer must not multiply integers or
reals by float weights. In the IR that is a property of port kinds (``snncc.ir.types``): a
synaptic op whose input is ``SPIKE`` only *accumulates* weights (AC); one whose input is
``COUNT(k)`` (a sum of up to k spikes, e.g. Spikformer's SEW residual) or ``CURRENT`` (real
values) *multiplies* (MAC). Two places are allowed to multiply and are reported, not flagged:

- the **encoding layer**: the first synaptic op(s) reached from a real-valued graph input (the
  first conv on pixels runs on the host; architecture.md, "Lowering decisions");
- the **readout head**: synaptic ops fed by the mean over tokens/time (or by a static value after
  ``TimeMean``) with no neuron downstream.

Products of two dynamic operands (``MatMul``, ``Mul``) hold no weights: over spikes and counts each
product is an AND and each sum an accumulate, so they are spike-driven and listed as dynamic-operand
ops; one with a real-valued operand is a violation. A constant ``Scale`` on an operand commutes
with the product (it folds into the consumer's threshold) and is looked through.

The rules are a table (code-style §2.6): :data:`RULES` maps an op type to a function returning a
:class:`Verdict`. :func:`check_spike_driven` is pure and returns a :class:`VerifyResult`; the pass
records the result and raises only when ``ctx.config["strict"]`` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from snncc.diagnostics import Diagnostic, Severity, SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind, TensorType
from snncc.passes.manager import PassContext

#: Diagnostic code of a spike-driven violation (docs/verification.md).
VIOLATION_CODE = "SD001"
#: Exit code of ``snncc verify --strict`` when violations are found.
STRICT_EXIT = 1
#: Ops that only re-index values: kinds and bounds pass through them unchanged.
STRUCTURAL = (O.Reshape, O.Permute, O.Repeat, O.Slice, O.Pad, O.Delay)
#: Ops that multiply a dynamic input by stored weights.
SYNAPTIC = (O.Linear, O.Conv1d, O.Conv2d, O.AvgPool2d)
#: Ops whose output is a mean over tokens or time (what a readout head reads).
MEANS = (O.Mean, O.TimeMean)

SEW_FIX = (
    "use the membrane-shortcut residual: move the LIF to the start of each branch and add BN "
    "outputs (Spikingformer/MS residual)"
)
COUNT_FIX = "insert a spiking neuron (LIF) between the sum and this layer so it reads 0/1 spikes"
CURRENT_FIX = (
    "insert a LIF before this layer (pre-activation order LIF -> Conv -> BN, as Spikingformer), "
    "or declare it the encoding layer by making it the first layer on the input"
)
DYNAMIC_FIX = "make both operands spikes: put a LIF on the real-valued operand before the product"


@dataclass(frozen=True)
class Violation:
    """One synaptic op that multiplies a non-binary input (JSON schema in docs/verification.md)."""

    node: str
    op: str
    input_kind: str
    max_count: int | None
    source: str
    reason: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary with exactly the schema's keys."""
        return asdict(self)

    def diagnostic(self) -> Diagnostic:
        """The violation as a warning diagnostic (``SD001``) with provenance."""
        return Diagnostic(
            VIOLATION_CODE,
            Severity.WARNING,
            f"{self.op} reads {self.input_kind}: {self.reason}",
            node=self.node,
            src=self.node,
            loc=self.source or None,
            pass_name="verify_spike_driven",
            hint=self.fix,
        )


@dataclass
class VerifyResult:
    """What the verifier found; ``spike_driven`` is True exactly when there are no violations."""

    spike_driven: bool
    violations: list[Violation] = field(default_factory=list)
    encoding: list[str] = field(default_factory=list)
    readout: list[str] = field(default_factory=list)
    dynamic_ops: list[str] = field(default_factory=list)

    @property
    def max_count(self) -> int | None:
        """The largest COUNT bound read by a violating op (None when no COUNT is read)."""
        counts = [v.max_count for v in self.violations if v.max_count is not None]
        return max(counts) if counts else None

    def to_json(self) -> dict[str, Any]:
        """``{"spike_driven", "violations": [...], "encoding", "readout", "dynamic_ops"}``."""
        return {
            "spike_driven": self.spike_driven,
            "violations": [v.to_dict() for v in self.violations],
            "encoding": list(self.encoding),
            "readout": list(self.readout),
            "dynamic_ops": list(self.dynamic_ops),
        }


@dataclass(frozen=True)
class Verdict:
    """A rule's answer for one node: its role and, for ``"violation"``, the violation."""

    role: str  # "spike-driven" | "encoding" | "readout" | "dynamic" | "violation"
    violation: Violation | None = None


@dataclass(frozen=True)
class Roles:
    """Graph-level facts the per-node rules need (computed once per check)."""

    encoding: frozenset[str]
    readout: frozenset[str]


Rule = Callable[[Graph, str, Roles], Verdict]


# -- graph walks ---------------------------------------------------------------------------------
def origin(g: Graph, name: str, *, through_scale: bool = False) -> tuple[str, float]:
    """The node that produced ``name``'s values, looking through re-indexing (and ``Scale``).

    Returns ``(node, factor)``: the product of the looked-through ``Scale`` factors.
    """
    factor = 1.0
    while True:
        op = g.op(name)
        if isinstance(op, STRUCTURAL) or (through_scale and isinstance(op, O.Scale)):
            factor *= op.factor if isinstance(op, O.Scale) else 1.0
            name = g.inputs_of(name)[0]
            continue
        return name, factor


def _encoding_nodes(g: Graph) -> frozenset[str]:
    """Synaptic ops reached from a real-valued graph input without crossing a neuron."""
    found: set[str] = set()
    stack = [n for n in g.inputs if g.type(n) is not None and g.type(n).kind is Kind.CURRENT]
    seen = set(stack)
    while stack:
        node = stack.pop()
        for user, _ in g.users(node):
            op = g.op(user)
            if isinstance(op, SYNAPTIC):
                found.add(user)
            elif not op.NEURON and user not in seen:
                seen.add(user)
                stack.append(user)
    return frozenset(found)


def _feeds_neuron(g: Graph, name: str) -> bool:
    """True when some neuron is downstream of ``name`` (so its output is not a pure readout)."""
    stack, seen = [name], {name}
    while stack:
        for user, _ in g.users(stack.pop()):
            if g.op(user).NEURON:
                return True
            if user not in seen:
                seen.add(user)
                stack.append(user)
    return False


def _readout_nodes(g: Graph) -> frozenset[str]:
    """Synaptic ops reading a token/time mean or a static value, with no neuron downstream."""
    found = set()
    for n in g.nodes():
        if not isinstance(g.op(n), SYNAPTIC):
            continue
        src = g.inputs_of(n)[0]
        src_origin, _ = origin(g, src)
        reads_mean = not g.type(src).temporal or isinstance(g.op(src_origin), MEANS)
        if reads_mean and not _feeds_neuron(g, n):
            found.add(n)
    return frozenset(found)


# -- rules ---------------------------------------------------------------------------------------
def _loc(g: Graph, name: str) -> str:
    return g.loc(name) or g.src(name)


def _count_fix(g: Graph, src: str) -> tuple[str, str]:
    """(what made the count, the fix) for a COUNT input coming from ``src``."""
    node, _ = origin(g, src)
    op = g.op(node)
    if isinstance(op, O.Add):
        return f"SEW residual {node} adds spike tensors", SEW_FIX
    return f"{op.kind} {node} sums spikes", COUNT_FIX


def _synaptic(g: Graph, name: str, roles: Roles) -> Verdict:
    """Weights × input: SPIKE (or GRADED payload) is an accumulate; COUNT and CURRENT multiply."""
    if name in roles.encoding:
        return Verdict("encoding")
    if name in roles.readout:
        return Verdict("readout")
    src = g.inputs_of(name)[0]
    t: TensorType = g.type(src)
    if t.kind in (Kind.SPIKE, Kind.GRADED):
        return Verdict("spike-driven")
    op = g.op(name).kind
    if t.kind is Kind.COUNT:
        what, fix = _count_fix(g, src)
        reason = (
            f"integer × float weight multiplications (MAC): input is a sum of up to {t.bound} "
            f"spikes ({what})"
        )
        v = Violation(name, op, t.kind_str(), t.bound, _loc(g, name), reason, fix)
        return Verdict("violation", v)
    node, _ = origin(g, src)
    reason = (
        f"float × float multiplications (MAC): input is real-valued "
        f"({g.op(node).kind} {node}), not spikes"
    )
    return Verdict(
        "violation", Violation(name, op, t.kind_str(), None, _loc(g, name), reason, CURRENT_FIX)
    )


def _operand_kind(g: Graph, src: str) -> tuple[TensorType, str]:
    """The operand's kind, looking through constant scales: ``(type, text)``."""
    node, factor = origin(g, src, through_scale=True)
    t = g.type(node)
    text = t.kind_str() + (f" ×{factor:g}" if factor != 1.0 else "")
    return t, text


def _dynamic(g: Graph, name: str, roles: Roles) -> Verdict:
    """Product of two dynamic operands: spike/count × spike/count is AND + accumulate."""
    kinds = [_operand_kind(g, d) for d in g.inputs_of(name)]
    if all(t.kind in (Kind.SPIKE, Kind.COUNT) for t, _ in kinds):
        return Verdict("dynamic")
    text = " × ".join(k for _, k in kinds)
    bounds = [t.bound for t, _ in kinds if t.kind is Kind.COUNT]
    reason = f"float × float products of two dynamic operands ({text}): not AND + accumulate"
    v = Violation(
        name, g.op(name).kind, text, max(bounds) if bounds else None, _loc(g, name), reason,
        DYNAMIC_FIX,
    )  # fmt: skip
    return Verdict("violation", v)


RULES: dict[type[O.Op], Rule] = {
    O.Linear: _synaptic,  # W·x over the last axis: spikes only (AC); counts/reals are MACs
    O.Conv1d: _synaptic,  # convolutions: same rule, except the encoding layer and the readout
    O.Conv2d: _synaptic,
    O.AvgPool2d: _synaptic,  # weighted pooling (unit weights × 1/k²): spikes only
    O.MatMul: _dynamic,  # Q·Kᵀ, (QKᵀ)·V: spike/count operands = AND + accumulate
    O.Mul: _dynamic,  # Hadamard masks (SDT): spike ⊙ spike = AND
}


def check_spike_driven(g: Graph) -> VerifyResult:
    """Classify every synaptic and dynamic-operand op of a typed graph (pure; ``g`` unchanged)."""
    roles = Roles(_encoding_nodes(g), _readout_nodes(g))
    result = VerifyResult(spike_driven=True)
    for name in g.topo_order():
        rule = RULES.get(type(g.op(name)))
        if rule is None:
            continue
        verdict = rule(g, name, roles)
        if verdict.role == "encoding":
            result.encoding.append(name)
        elif verdict.role == "readout":
            result.readout.append(name)
        elif verdict.role == "dynamic":
            result.dynamic_ops.append(name)
        elif verdict.violation is not None:
            result.violations.append(verdict.violation)
    result.spike_driven = not result.violations
    return result


def spike_status(g: Graph) -> dict[str, str]:
    """Per-node status for ``snncc inspect``: encoding / readout / dynamic / ok / MAC(kind)."""
    roles = Roles(_encoding_nodes(g), _readout_nodes(g))
    out: dict[str, str] = {}
    for name in g.nodes():
        rule = RULES.get(type(g.op(name)))
        if rule is None:
            continue
        v = rule(g, name, roles)
        out[name] = f"MAC ({v.violation.input_kind})" if v.violation else v.role
    return out


def verify_spike_driven(g: Graph, ctx: PassContext) -> Graph:
    """Check that every synaptic op consumes only binary spikes (encoding and readout excepted).

    Requires: types inferred (``infer_types``): every node has a TensorType with kind and bound.
    Ensures:  graph unchanged; one ``SD001`` warning per violation in ``ctx.diagnostics``; the
              result's counts in the pass record (``spike_driven``, ``violations``, ``max_count``);
              with ``ctx.config["strict"]`` any violation raises SnnccError (exit code 1).
    """
    result = check_spike_driven(g)
    ctx.stats["spike_driven"] = result.spike_driven
    ctx.stats["violations"] = len(result.violations)
    ctx.stats["dynamic_ops"] = len(result.dynamic_ops)
    if result.max_count is not None:
        ctx.stats["max_count"] = result.max_count
    for kind, names in (("encoding", result.encoding), ("readout", result.readout)):
        for n in names:
            ctx.decide(f"{kind} layer {n} ({g.op(n).kind}) may multiply: not a violation")
    diags = [v.diagnostic() for v in result.violations]
    ctx.diagnostics.extend(diags)
    if diags and ctx.config.get("strict"):
        raise SnnccError.from_diagnostics(
            f"{len(diags)} synaptic op(s) are not spike-driven",
            diags,
            code=VIOLATION_CODE,
            exit_code=STRICT_EXIT,
        )
    return g
