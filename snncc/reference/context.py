"""What a reference kernel sees besides its op and input arrays.

Why a context object: the IR describes one sample at one timestep, but the interpreter evaluates
whole ``[T, B, ...]`` (or ``[B, ...]`` for static values) arrays at once. Every kernel therefore
needs to know how many *leading* axes precede the per-sample shape, so that per-sample axis
numbers from the IR (``Mean.axes``, ``BatchNorm.axis``, ...) can be shifted past them. Keeping
that in one small object shared by all numeric modes means a future ``loihi`` or ``spinnaker``
kernel table can be written against the same calling convention.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.ops import Op
from snncc.ir.types import TensorType

#: Code for an op the reference cannot evaluate in the form given (e.g. a neuron on a static value).
UNSUPPORTED = "REF003"


@dataclass(frozen=True)
class KernelCtx:
    """Per-node facts a kernel needs.

    ``lead`` is 2 for per-step values (``[T, B, *shape]``) and 1 for static ones (``[B, *shape]``);
    it describes the *output* of the node and, because the IR never mixes per-step and static
    inputs except at ``TimeMean``, its inputs too. ``feed`` is only set for ``Input`` nodes: the
    validated float64 array the caller supplied.
    """

    node: str
    lead: int
    timesteps: int
    batch: int
    out_type: TensorType
    feed: np.ndarray | None = None
    #: The node's metadata (read-only use): the integer modes read ``meta["quant"]`` there.
    meta: Mapping[str, Any] = field(default_factory=dict)

    def axis(self, axis: int, rank: int) -> int:
        """Map a per-sample axis (negative allowed) of a rank-``rank`` sample to an array axis."""
        return axis % rank + self.lead

    def fail(self, op: Op, problem: str) -> SnnccError:
        """An error naming the node and op kind (returned, so callers write ``raise ctx.fail``)."""
        return SnnccError(f"node {self.node!r} ({op.kind}): {problem}", code=UNSUPPORTED)


#: A kernel maps (op, input arrays in port order, context) to the node's output array.
Kernel = Callable[[Op, list[np.ndarray], KernelCtx], np.ndarray]


def flatten_lead(x: np.ndarray, lead: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Merge the ``lead`` leading axes of ``x`` into one: returns ``([N, *sample], lead_shape)``.

    Spatial kernels (convolution, pooling) work on ``[N, C, *spatial]`` like torch; they call
    this, compute, and reshape the result back with ``lead_shape``.
    """
    lead_shape = tuple(x.shape[:lead])
    return x.reshape((-1,) + x.shape[lead:]), lead_shape
