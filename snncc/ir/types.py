"""Tensor types of the spike-graph IR.

A type is the *per-sample, per-timestep* shape of a value plus its *kind*. The kind is what makes
"spike-driven" checkable: a synaptic op whose input is ``SPIKE`` only accumulates weights (AC); one
whose input is ``COUNT`` or ``CURRENT`` multiplies (MAC).

- ``SPIKE``: values in {0, 1}.
- ``COUNT(max)``: small non-negative integers up to ``bound`` (a sum of k spike tensors, e.g. a SEW
  residual, or a spike matrix product).
- ``GRADED(bits)``: signed integers carried as a graded-spike payload of ``bound`` bits.
- ``CURRENT``: real values (membrane-like currents, BN outputs, pixels).

``temporal`` is False for values that exist once per sample rather than once per timestep: a static
image before it is repeated over time, or a readout after the mean over time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(str, enum.Enum):
    """The value domain of a tensor (see module docstring)."""

    SPIKE = "spike"
    COUNT = "count"
    GRADED = "graded"
    CURRENT = "current"


@dataclass(frozen=True)
class TensorType:
    """Shape (per sample, per timestep), kind and, for COUNT/GRADED, the bound or bit width."""

    shape: tuple[int, ...]
    kind: Kind = Kind.CURRENT
    bound: int | None = None
    temporal: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "kind", Kind(self.kind))

    @property
    def size(self) -> int:
        """Number of elements per sample and timestep."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    def with_kind(self, kind: Kind, bound: int | None = None) -> TensorType:
        """The same shape with another kind."""
        return TensorType(self.shape, kind, bound, self.temporal)

    def kind_str(self) -> str:
        """``spike``, ``count<=17``, ``graded8`` or ``current``."""
        if self.kind is Kind.COUNT:
            return f"count<={self.bound}"
        if self.kind is Kind.GRADED:
            return f"graded{self.bound}"
        return self.kind.value

    def __str__(self) -> str:
        dims = "x".join(str(s) for s in self.shape) or "scalar"
        return f"{self.kind_str()}[{dims}]" + ("" if self.temporal else "(static)")

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "shape": list(self.shape),
            "kind": self.kind.value,
            "bound": self.bound,
            "temporal": self.temporal,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TensorType:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(d["shape"]), Kind(d["kind"]), d.get("bound"), d.get("temporal", True))
