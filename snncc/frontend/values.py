"""Values flowing through the translation of an exported torch graph into the IR.

A traced torch tensor has leading *time/batch* axes and trailing per-sample *data* axes. The IR is
per sample and per timestep, so every translated tensor remembers the *roles* of its leading axes:

- ``("T", "B")``: time then batch (SpikingJelly's multi-step layout ``[T, B, ...]``);
- ``("TB",)``: time and batch merged (``x.flatten(0, 1)`` before a conv);
- ``("B",)``: a sample without time (a static image, or a readout after the mean over time);
- ``("1", "B")``: a static sample after ``unsqueeze(0)``, about to be repeated over time;
- ``("B", "T")`` / ``("BT",)``: event frames given batch-first.

Reshapes, permutes and repeats that only touch leading axes change roles and emit no IR op; ones
that touch data axes become IR structure ops; ones that mix the two are rejected, because they
would make a timestep or a sample depend on another.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import torch


@dataclass(frozen=True)
class Value:
    """An IR node's output seen as a torch tensor with role-tagged leading axes."""

    name: str
    roles: tuple[str, ...]
    shape: tuple[int, ...]
    static: bool = False  # True only after TimeMean: exists once per sample in the IR

    @property
    def lead(self) -> int:
        """Number of leading time/batch axes."""
        return len(self.roles)

    @property
    def data_shape(self) -> tuple[int, ...]:
        """The per-sample, per-timestep shape (the IR type's shape)."""
        return self.shape[self.lead :]


@dataclass(frozen=True)
class Const:
    """A parameter, buffer or lifted constant tensor."""

    tensor: torch.Tensor
    name: str


class Roles:
    """Sizes of the role axes for one trace, and the rules that move roles through reshapes."""

    def __init__(self, timesteps: int, batch: int) -> None:
        self.T = timesteps
        self.B = batch
        self.size = {"T": timesteps, "B": batch, "TB": timesteps * batch, "1": 1}
        self.size["BT"] = self.size["TB"]

    def lead_shape(self, roles: tuple[str, ...]) -> tuple[int, ...]:
        """The torch sizes of the leading axes with these roles."""
        return tuple(self.size[r] for r in roles)

    def after_reshape(self, x: Value, out: tuple[int, ...]) -> tuple[str, ...] | None:
        """Roles of ``out`` when ``x`` is reshaped to it, or None if leading axes get mixed.

        Candidates are tried in order; one is accepted when the leading sizes match and the data
        part keeps its element count (so the reshape is per sample and per timestep).
        """
        candidates = [x.roles]
        merge = {("T", "B"): ("TB",), ("B", "T"): ("BT",)}
        split = {v: k for k, v in merge.items()}
        if x.roles in merge:
            candidates.append(merge[x.roles])
        if x.roles in split:
            candidates.append(split[x.roles])
        if x.roles == ("B",):
            candidates.append(("1", "B"))
        if x.roles == ("1", "B"):
            candidates.append(("B",))
        n_data = prod(x.data_shape)
        for roles in candidates:
            k = len(roles)
            if tuple(out[:k]) == self.lead_shape(roles) and prod(out[k:]) == n_data:
                return roles
        return None
