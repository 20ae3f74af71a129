"""What every torch kernel of :mod:`snncc.torch_exact` shares: its calling convention and helpers.

The convention mirrors the reference interpreter's (:mod:`snncc.reference.context`) so that
each torch kernel can be read next to the numpy kernel it reproduces:

- a value is a tensor ``[T, B, *shape]`` (per-step) or ``[B, *shape]`` (static), ``lead`` being
  2 or 1; deployed integers travel as float64 tensors holding exact integers (the reference's
  convention), SpiNNaker's two ring-buffer sums as one complex128 tensor ``exc + 1j·inh``;
- a *builder* runs once per node when the program is built: it checks the op as the reference
  kernel checks it, turns the op's arrays into tensors registered as buffers (so ``.to(device)``
  moves them) and returns a :class:`Kernel`, an ``nn.Module`` whose ``forward(xs, run)`` maps the
  input tensors (port order) to the node's output.

Why builders rather than per-call conversion: weights are converted, folded (``W << e``) and
bounded once, and the module becomes an ordinary ``nn.Module`` whose buffers follow ``.to()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.ir.ops import Op
from snncc.ir.types import TensorType

#: Code for an op (or op form) the torch program cannot evaluate; the reference's REF003 twin.
UNSUPPORTED = "TEX003"
#: Largest integer below which every float64 integer sum is exact (2^53).
EXACT_LIMIT = float(2**53)


@dataclass(frozen=True)
class NodeInfo:
    """Build-time facts about one node (the static part of the reference's ``KernelCtx``)."""

    node: str
    lead: int
    out_type: TensorType
    in_types: tuple[TensorType, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def axis(self, axis: int, rank: int) -> int:
        """A per-sample axis (negative allowed) of a rank-``rank`` sample as a tensor axis."""
        return axis % rank + self.lead

    def fail(self, op: Op, problem: str) -> SnnccError:
        """An error naming the node and op kind (returned, so callers write ``raise``)."""
        return SnnccError(f"node {self.node!r} ({op.kind}): {problem}", code=UNSUPPORTED)


@dataclass(frozen=True)
class RunCtx:
    """Per-call facts: ``T``, ``B`` and the feed of the node being evaluated (inputs only)."""

    timesteps: int
    batch: int
    feed: torch.Tensor | None = None


KernelFn = Callable[["Kernel", list[torch.Tensor], RunCtx], torch.Tensor]


class Kernel(nn.Module):
    """One node's torch kernel: ``fn(self, xs, run)`` with the op's tensors as buffers.

    Requires: ``tensors`` are the op's arrays already converted (float64, int64 or complex).
    Ensures:  ``forward(xs, run)`` returns the node's value; buffers move with ``.to(device)``.
    """

    def __init__(
        self,
        op: Op,
        info: NodeInfo,
        fn: KernelFn,
        tensors: Mapping[str, torch.Tensor] | None = None,
        **params: Any,
    ) -> None:
        super().__init__()
        self.op, self.info, self.fn, self.params = op, info, fn, params
        for name, t in (tensors or {}).items():
            self.register_buffer(name, t, persistent=False)

    def t(self, name: str) -> torch.Tensor:
        """A buffer registered under ``name``."""
        return self.get_buffer(name)

    def forward(self, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        return self.fn(self, xs, run)


#: A builder makes a node's :class:`Kernel` from its op and build-time facts.
Builder = Callable[[Op, NodeInfo], Kernel]


def stateless(fn: Callable[[Any, list[torch.Tensor], NodeInfo, RunCtx], torch.Tensor]) -> Builder:
    """A builder for an op without arrays: ``fn(op, xs, info, run)`` called on every forward."""

    def build(op: Op, info: NodeInfo) -> Kernel:
        return Kernel(op, info, lambda k, xs, run: fn(k.op, xs, k.info, run))

    build.__name__ = build.__qualname__ = getattr(fn, "__name__", "stateless")
    build.__doc__ = fn.__doc__
    return build


def f64(a: np.ndarray | None) -> torch.Tensor | None:
    """A numpy array as a float64 tensor (copied); None stays None."""
    return None if a is None else torch.tensor(np.asarray(a, dtype=np.float64))


def i64(a: np.ndarray | int) -> torch.Tensor:
    """An integer array as an int64 tensor (copied)."""
    return torch.tensor(np.asarray(a, dtype=np.int64))


def scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a 0-dim float64 tensor on ``like``'s device.

    Why not a Python float: on CUDA, ``tensor / python_scalar`` is computed as a multiplication
    by the reciprocal, which is not correctly rounded; dividing by a device tensor is, on every
    device, so float kernels keep numpy's bits.
    """
    return torch.tensor(float(value), dtype=torch.float64, device=like.device)


def real_part(x: torch.Tensor) -> torch.Tensor:
    """``np.real``: the real part of a complex tensor, the tensor itself otherwise."""
    return x.real if x.is_complex() else x


def imag_part(x: torch.Tensor) -> torch.Tensor:
    """``np.imag``: the imaginary part of a complex tensor, zeros otherwise."""
    return x.imag if x.is_complex() else torch.zeros_like(x)


def align_samples(xs: list[torch.Tensor], lead: int) -> list[torch.Tensor]:
    """Give operands equal per-sample rank by inserting 1s after the ``lead`` leading axes."""
    rank = max(x.dim() - lead for x in xs)
    return [
        x.reshape(tuple(x.shape[:lead]) + (1,) * (rank - (x.dim() - lead)) + tuple(x.shape[lead:]))
        for x in xs
    ]


def flatten_lead(x: torch.Tensor, lead: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Merge the ``lead`` leading axes into one: ``([N, *sample], lead_shape)``."""
    lead_shape = tuple(x.shape[:lead])
    return x.reshape((-1,) + tuple(x.shape[lead:])), lead_shape


def exact_integers(x: torch.Tensor) -> torch.Tensor:
    """``rint(x)`` as int64 (round half to even, as ``np.rint``)."""
    return torch.round(x).to(torch.int64)
