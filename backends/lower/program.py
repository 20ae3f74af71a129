"""Programs: exact integer evaluation of IR ops over population outputs (``product`` kind).

Some values on chip are not a synaptic sum of one population's spikes: spike products
(attention's ``Q·Kᵀ·V``), a synaptic op reading such a product, a max-pool of currents (SDT's
and Ge²mS-T's tokenizers pool BN outputs), a product of a current with spikes. Lowering builds
them as a :class:`Prog`: the operand populations (each read through an index map) and the IR
ops that compute the value from them, in order, each with the quantizer's meta it needs
(``weight_exp`` for a synaptic op). The ``product`` connection kind evaluates the program with
the ``loihi`` reference kernels (:mod:`snncc.backends.lower.kernels`), so a program computes
what the reference interpreter computes for the same nodes, by construction.

A reference is ``("o", k)`` (operand ``k``) or ``("s", k)`` (the result of step ``k``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snncc.backends.lower.spec import Connection, Operand
from snncc.ir import ops as O
from snncc.ir.graph import Graph

Ref_ = tuple[str, int]


@dataclass
class Ref:
    """Outputs of population ``pop`` read through ``index`` (the value's shape)."""

    pop: str
    index: np.ndarray


@dataclass
class Step:
    """One op of a program: its input references and the quantizer meta it needs."""

    op: O.Op
    refs: list[Ref_]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prog:
    """A program: operands, then steps (see the module docstring)."""

    operands: list[Ref]
    steps: list[Step] = field(default_factory=list)

    @property
    def result(self) -> Ref_:
        return ("s", len(self.steps) - 1) if self.steps else ("o", 0)


def as_prog(x: Ref | Prog) -> Prog:
    """``x`` as a program (a population value is a program without steps).

    Raises ``LOW030`` for a product expanded into AND neurons (a count of several populations'
    spikes): a program reads populations through one index map each.
    """
    if not isinstance(x, (Ref, Prog)):
        from snncc.diagnostics import SnnccError

        raise SnnccError(
            "lower (attention and): a product expanded into AND neurons is read by an op that "
            "only a program computes (a max-pool of currents, a product with a current)",
            code="LOW030",
            hint="use --attention process",
            exit_code=2,
        )
    return x if isinstance(x, Prog) else Prog([x])


def merge(progs: list[Prog]) -> tuple[Prog, list[Ref_]]:
    """One program holding all of ``progs``; returns it and each input's result ref in it."""
    out, results = Prog([]), []
    for p in progs:
        no, ns = len(out.operands), len(out.steps)

        def shift(r: Ref_, no: int = no, ns: int = ns) -> Ref_:
            return (r[0], r[1] + (no if r[0] == "o" else ns))

        out.operands.extend(p.operands)
        out.steps.extend(Step(s.op, [shift(r) for r in s.refs], s.meta) for s in p.steps)
        results.append(shift(p.result))
    return out, results


def step_meta(g: Graph, n: str) -> dict[str, Any]:
    """What a program step of node ``n`` needs from the quantizer: a synaptic op's exponent."""
    quant = g.node_meta(n).get("quant") or {}
    return {"weight_exp": int(quant["weight_exp"])} if "weight_exp" in quant else {}


def extend(g: Graph, n: str, inputs: list[Ref | Prog]) -> Prog:
    """The program computing node ``n`` from the programs (or values) of its inputs."""
    prog, refs = merge([as_prog(x) for x in inputs])
    prog.steps.append(Step(g.op(n), refs, step_meta(g, n)))
    return prog


def connection(name: str, e: str, target: str, prog: Prog, out_map: np.ndarray) -> Connection:
    """A ``product`` connection evaluating ``prog`` into ``target`` through ``out_map``."""
    n_ops = len(prog.operands)

    def ref(r: Ref_) -> int:
        return r[1] if r[0] == "o" else n_ops + r[1]

    params = {
        "steps": [s.op for s in prog.steps],
        "step_inputs": [[ref(r) for r in s.refs] for s in prog.steps],
        "step_meta": [dict(s.meta) for s in prog.steps],
    }
    operands = [Operand(r.pop, r.index) for r in prog.operands]
    return Connection(name, target, e, "product", operands, params, np.asarray(out_map, np.int64))
