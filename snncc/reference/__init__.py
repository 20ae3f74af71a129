"""The reference interpreter: the oracle every backend is checked against.

``run(graph, inputs, mode="float", record="neurons") -> RunResult``; see
:mod:`snncc.reference.interpreter` for the conventions and :mod:`snncc.reference.float_kernels`
for the per-op kernels. Imports numpy and networkx only.
"""

from __future__ import annotations

from snncc.reference.interpreter import MODES, PLANNED_MODES, RunResult, run

__all__ = ["MODES", "PLANNED_MODES", "RunResult", "run"]
