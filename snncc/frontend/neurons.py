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


#: SpikingJelly classes that are single-step unless told otherwise: clock_driven ``LIFNode`` /
#: ``IFNode`` have no ``step_mode`` (one step per call), activation_based ones default to ``'s'``.
SINGLE_STEP_BY_DEFAULT = {"LIFNode", "IFNode"}


def step_mode(module: nn.Module) -> str | None:
    """``'m'`` (multi-step over ``[T, B, ...]``), ``'s'`` (one step per call), None if no neuron."""
    name = type(module).__name__
    if name not in LIF_CLASSES and name not in IF_CLASSES and name != "ExpGIF":
        return None
    if name.startswith("MultiStep"):
        return "m"
    default = "s" if name in SINGLE_STEP_BY_DEFAULT else "m"
    return str(getattr(module, "step_mode", default))


def is_neuron(module: nn.Module) -> bool:
    """Whether ``module`` is a multi-step neuron the frontend keeps as one op."""
    return step_mode(module) == "m"


def single_step_neurons(model: nn.Module) -> list[Diagnostic]:
    """One diagnostic per single-step neuron: snncc cannot trace those (exit 3 at the caller).

    Why refuse instead of tracing: a single-step node is called once per timestep by the
    model's own loop and keeps its membrane between calls; traced as a multi-step node over the
    whole input it would integrate the wrong axis, silently.
    """
    return [
        Diagnostic(
            code="FE004",
            severity=Severity.ERROR,
            message=f"{type(m).__name__} is single-step (step_mode='s'): snncc traces neurons "
            "that process all timesteps [T, B, ...] in one call",
            node=path,
            hint="set step_mode='m' (spikingjelly functional.set_step_mode(net, 'm')) or use "
            "MultiStepLIFNode / MultiStepIFNode",
        )
        for path, m in model.named_modules()
        if step_mode(m) == "s"
    ]


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
        start = getattr(module, "start", None)
        return O.ExpGIF(  # type: ignore[attr-defined]
            theta=float(module.theta), bits=int(module.bits),
            start=None if start is None else int(start),
        )  # fmt: skip
    return Diagnostic(
        "FE002",
        Severity.ERROR,
        f"neuron class {name} has no IR op",
        src=path,
        hint="use snncc.nn.LIF / snncc.nn.IF",
    )
