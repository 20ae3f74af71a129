"""How large a SpiNNaker program gets, known before it is built (refusals instead of exhaustion).

The SpiNNaker lowering writes every synapse into a list (PyNN's ``FromListConnector``) and
expands every spike product into AND neurons, ``O(N²·d²)`` per attention head for
``Q·Kᵀ·V``. A spikingformer-8-768 at 224 pixels would need about 2·10⁹ AND neurons per block:
far beyond any SpiNNaker machine, and beyond this host's memory long before that. So each rule
first counts what it will build from shapes and entry counts alone (:func:`synapse_bound`,
:func:`~snncc.backends.lower.expand.product_neurons`), and :class:`SizeGuard` refuses
(``LOW024``) a program whose lists would exceed :data:`MAX_SYNAPSES`, naming the op, its cost
and cheaper alternatives. The partitioner still costs such a model (docs/budget.md), so
``snncc compile`` reports what it would need (exit 4 against a realistic budget).
"""

from __future__ import annotations

import math

import numpy as np

from snncc.backends.lower.linmap import LinMap
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O

#: Most synapses (list entries) one program may hold: ~2 GB of lists while lowering; a
#: SpiNN-5 board's 768 application cores hold a few million synapses of a transformer.
MAX_SYNAPSES = 2**24
NEURONS_PER_CORE = 256
CORES_PER_BOARD = 48 * 16


def synapse_bound(op: O.Op, in_shape: tuple, out_shape: tuple, value: LinMap) -> int:
    """At most how many list entries a synaptic op's output has: its weight uses (output
    elements x inputs per output) x the most entries of one input element."""
    per_input = int(np.bincount(value.row, minlength=value.size).max(initial=0))
    if isinstance(op, O.Scale):
        return value.entries
    w = np.asarray(op.weight)
    fan_in = int(math.prod(w.shape[1:]))
    return int(math.prod(out_shape)) * fan_in * max(per_input, 1)


class SizeGuard:
    """Refuses past :data:`MAX_SYNAPSES`: one op's list entries (:meth:`check`, before they are
    built) or the program's synapses so far (:meth:`add`, as projections are made)."""

    def __init__(self, limit: int = MAX_SYNAPSES) -> None:
        self.limit = limit
        self.total = 0

    def check(self, node: str, kind: str, synapses: int, neurons: int = 0) -> None:
        """One op about to build ``synapses`` entries (``neurons`` AND neurons among them)."""
        if self.total + int(synapses) > self.limit:
            self._refuse(node, kind, int(synapses), neurons, self.total + int(synapses))

    def add(self, node: str, kind: str, synapses: int) -> None:
        """Projections of ``synapses`` more synapses made into ``node``."""
        self.total += int(synapses)
        if self.total > self.limit:
            self._refuse(node, kind, int(synapses), 0, self.total)

    def _refuse(self, node: str, kind: str, synapses: int, neurons: int, total: int) -> None:
        cores = math.ceil(max(neurons, 1) / NEURONS_PER_CORE)
        what = f"{neurons:,} AND neurons and " if neurons else ""
        raise SnnccError(
            f"lower (spinnaker): {node}: {kind} needs {what}{synapses:,} synapses"
            + (
                f" (>= {cores:,} cores, {cores / CORES_PER_BOARD:,.1f} SpiNN-5 boards)"
                if neurons
                else ""
            )  # fmt: skip
            + f"; the program would hold {total:,} synapses, beyond the "
            f"{self.limit:,} snncc writes as PyNN synapse lists",
            code="LOW024",
            hint=_AND_HINT if neurons else _LIST_HINT,
            exit_code=2,
        )


_AND_HINT = (
    "exact AND expansion costs O(N²·d²) per attention head: use a smaller slice (snncc "
    "slices), local attention windows (lsformer's window), fewer tokens (a smaller input), or "
    "--target loihi (spike products as a custom process)"
)
_LIST_HINT = (
    "use fewer channels or a smaller input (snncc slices for an elastic model); sPyNNaker's "
    "ConvolutionConnector would share kernels on chip, but PyNN on Brian2 has no such "
    "connector, so snncc emits synapse lists that both simulators run identically"
)
