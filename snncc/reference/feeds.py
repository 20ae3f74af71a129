"""Validation of the arrays a caller feeds to :func:`snncc.reference.run`.

Why strict: the reference is the oracle every backend is compared against, so a silently
broadcast or transposed input would make two wrong answers agree. Every problem is an
:class:`~snncc.diagnostics.SnnccError` with code ``REF001`` (exit code 2) that names the input and
says which shape was expected and which was given.

Layout convention: an ``Input`` with ``temporal=True`` is fed ``[T, B, *shape]``; one with
``temporal=False`` (a static sample such as an image under direct encoding) is fed ``[B, *shape]``
and presented at every step. All inputs share one batch size ``B``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph

BAD_INPUT = "REF001"


def _bad(message: str, hint: str | None = None) -> SnnccError:
    return SnnccError(message, code=BAD_INPUT, hint=hint, exit_code=2)


def expected_layout(op: O.Input, timesteps: int) -> str:
    """Human-readable expected layout, e.g. ``[T=4, B, 3, 32, 32]``."""
    dims = ", ".join(str(s) for s in op.shape)
    head = f"T={timesteps}, B" if op.temporal else "B"
    return f"[{head}{', ' + dims if dims else ''}]"


def timesteps_of(graph: Graph, inputs: Mapping[str, object]) -> int:
    """``graph.meta["timesteps"]``; without it, the common T of the per-step feeds."""
    t = graph.meta.get("timesteps")
    if t is not None:
        if int(t) < 1:
            raise _bad(f"graph.meta['timesteps'] must be >= 1, got {t}")
        return int(t)
    seen = {
        int(np.shape(inputs[n])[0])
        for n in graph.inputs
        if n in inputs and graph.op(n).temporal and np.ndim(inputs[n]) > 0
    }
    if len(seen) != 1:
        raise _bad(
            "graph.meta has no 'timesteps' and the per-step inputs do not determine T",
            hint="set graph.meta['timesteps'] (the frontend records it when tracing)",
        )
    return seen.pop()


def _as_float64(name: str, value: object) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as e:
        raise _bad(f"input {name!r}: cannot convert to a float64 array ({e})") from e
    return arr


def validate_feeds(
    graph: Graph, inputs: Mapping[str, object], timesteps: int
) -> tuple[dict[str, np.ndarray], int]:
    """Check names and shapes; returns float64 copies of the feeds and the batch size ``B``."""
    if not graph.inputs:
        raise _bad("graph has no inputs, so the batch size is unknown")
    names = set(inputs)
    missing = [n for n in graph.inputs if n not in names]
    extra = sorted(names - set(graph.inputs))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing input(s) {missing}")
        if extra:
            parts.append(f"unknown input(s) {extra}")
        raise _bad("; ".join(parts), hint=f"the graph's inputs are {list(graph.inputs)}")
    feeds: dict[str, np.ndarray] = {}
    batch = -1  # set by the first input
    first = ""
    for name in graph.inputs:
        op = graph.op(name)
        arr = _as_float64(name, inputs[name])
        lead = (timesteps,) if op.temporal else ()
        n_lead = len(lead) + 1
        ok = (
            arr.ndim == n_lead + len(op.shape)
            and arr.shape[: len(lead)] == lead
            and arr.shape[n_lead:] == tuple(op.shape)
        )
        if not ok:
            raise _bad(
                f"input {name!r}: expected shape {expected_layout(op, timesteps)}, "
                f"got {list(arr.shape)}",
                hint="per-step inputs are [T, B, *shape]; static inputs (Input.temporal=False) "
                "are [B, *shape]",
            )
        b = int(arr.shape[len(lead)])
        if batch < 0:
            batch, first = b, name
        elif b != batch:
            raise _bad(
                f"input {name!r}: expected batch size B={batch} (from input {first!r}), got {b} "
                f"in shape {list(arr.shape)}"
            )
        feeds[name] = arr
    return feeds, batch
