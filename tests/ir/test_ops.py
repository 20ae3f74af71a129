"""IR ops are frozen: no field can be reassigned and no weight array written in place."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from snncc.diagnostics import IRError
from snncc.ir import ops as O


def test_fields_cannot_be_reassigned() -> None:
    op = O.LIF(tau=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.tau = 3.0  # type: ignore[misc]
    lin = O.Linear(weight=np.ones((2, 3)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        lin.weight = np.zeros((2, 3))  # type: ignore[misc]


def test_arrays_are_read_only_copies() -> None:
    w = np.ones((2, 3))
    lin = O.Linear(weight=w, bias=np.zeros(2))
    with pytest.raises(ValueError):
        lin.weight[0, 0] = 5.0
    with pytest.raises(ValueError):
        lin.bias[0] = 5.0
    w[0, 0] = 7.0  # the caller's array is not shared with the op
    assert lin.weight[0, 0] == 1.0


def test_lists_become_tuples() -> None:
    op = O.Permute(dims=[1, 0])  # type: ignore[arg-type]
    assert op.dims == (1, 0) and isinstance(op.dims, tuple)


def test_replace_returns_a_new_validated_op() -> None:
    op = O.LIF(tau=2.0)
    new = op.replace(tau=4.0)
    assert op.tau == 2.0 and new.tau == 4.0 and type(new) is O.LIF
    with pytest.raises(IRError):
        op.replace(tau=0.5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: O.Linear(weight=np.ones(3)),
        lambda: O.Conv2d(weight=np.ones((2, 1, 3, 3)), stride=(0, 1)),
        lambda: O.Permute(dims=(0, 0)),
        lambda: O.Add(n=1),
        lambda: O.IF(v_threshold=0.0),
        lambda: O.Input(shape=(0, 3)),
    ],
)
def test_invalid_parameters_raise_irerror(make: Callable[[], O.Op]) -> None:
    with pytest.raises(IRError):
        make()


def test_every_op_class_is_frozen_and_registered() -> None:
    for name, cls in O.OPS.items():
        assert cls.__name__ == name and issubclass(cls, O.Op)
        assert cls.__dataclass_params__.frozen, name  # type: ignore[attr-defined]
        op = cls()
        for f in dataclasses.fields(op):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(op, f.name, getattr(op, f.name))
