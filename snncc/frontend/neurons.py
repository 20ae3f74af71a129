"""Neuron modules as leaves: recognition, parameter extraction and the tracing custom op.

During tracing every recognised neuron module's ``forward`` is temporarily replaced by a call to
the custom op ``snncc::neuron(x, index)``. ``torch.export`` then records each neuron as exactly one
graph node (instead of its Python time loop), carrying the module path in ``nn_module_stack``. The
``index`` points into a table of the modules being traced, from which :func:`neuron_op` reads the
parameters. Recognised classes (by class name, so SpikingJelly is not a dependency):

- ``snncc.nn.LIF`` / ``snncc.nn.IF``;
- SpikingJelly ``MultiStepLIFNode`` / ``MultiStepIFNode`` (clock_driven) and ``LIFNode`` /
  ``IFNode`` (activation_based with ``step_mode='m'``): same arithmetic as
  :mod:`snncc.nn.neurons`;
- ``snncc.nn.expgif.ExpGIF`` when the seed zoo provides it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from snncc.diagnostics import Diagnostic, Severity
from snncc.ir import ops as O

#: Class names treated as leaf neurons.
LIF_CLASSES = {"LIF", "MultiStepLIFNode", "LIFNode", "MultiStepParametricLIFNode"}
IF_CLASSES = {"IF", "MultiStepIFNode", "IFNode"}
_TABLE: list[nn.Module] = []


@torch.library.custom_op("snncc::neuron", mutates_args=())
def _neuron(x: torch.Tensor, index: int) -> torch.Tensor:
    """Eager implementation: run the original module (only used if something executes eagerly)."""
    module = _TABLE[index]
    return type(module).forward(module, x).clone()


@_neuron.register_fake
def _neuron_fake(x: torch.Tensor, index: int) -> torch.Tensor:
    return torch.empty_like(x)


def is_neuron(module: nn.Module) -> bool:
    """Whether ``module`` is a neuron the frontend keeps as one op."""
    name = type(module).__name__
    if name in LIF_CLASSES or name in IF_CLASSES or name == "ExpGIF":
        return getattr(module, "step_mode", "m") == "m"
    return False


@contextlib.contextmanager
def neurons_as_ops(model: nn.Module) -> Iterator[dict[int, str]]:
    """Patch every neuron's forward to the custom op for the duration of the block.

    Yields ``{index: module path}``. The patch is an instance attribute and is removed on exit,
    so the user's model is left exactly as it was.
    """
    _TABLE.clear()
    paths: dict[int, str] = {}
    patched: list[nn.Module] = []
    for path, module in model.named_modules():
        if is_neuron(module):
            index = len(_TABLE)
            _TABLE.append(module)
            paths[index] = path
            module.forward = _make_forward(index)  # type: ignore[method-assign]
            patched.append(module)
    try:
        yield paths
    finally:
        for module in patched:
            del module.forward
        _TABLE.clear()


def _make_forward(index: int):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.ops.snncc.neuron(x, index)

    return forward


def _float_or_none(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return float(value.detach().reshape(-1)[0])
    return float(value)  # type: ignore[arg-type]


def neuron_op(module: nn.Module, path: str) -> O.Op | Diagnostic:
    """The IR op for a neuron module, or a diagnostic saying why it cannot be represented."""
    name = type(module).__name__
    v_th = _float_or_none(getattr(module, "v_threshold", 1.0))
    v_reset = _float_or_none(getattr(module, "v_reset", 0.0))
    if name in LIF_CLASSES:
        tau = getattr(module, "tau", None)
        if tau is None and hasattr(module, "w"):  # parametric LIF: tau = 1 / sigmoid(w)
            tau = 1.0 / float(torch.sigmoid(module.w.detach()))
        return O.LIF(
            tau=float(tau),
            v_threshold=float(v_th),
            v_reset=v_reset,
            decay_input=bool(getattr(module, "decay_input", True)),
        )
    if name in IF_CLASSES:
        return O.IF(v_threshold=float(v_th), v_reset=v_reset)
    if name == "ExpGIF" and hasattr(O, "ExpGIF"):
        return O.ExpGIF(theta=float(module.theta), bits=int(module.bits))  # type: ignore[attr-defined]
    return Diagnostic(
        "FE002",
        Severity.ERROR,
        f"neuron class {name} has no IR op",
        src=path,
        hint="use snncc.nn.LIF / snncc.nn.IF",
    )
