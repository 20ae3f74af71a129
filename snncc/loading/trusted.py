"""Trusted model files: whole pickled ``nn.Module`` objects and ``.pt2`` programs.

Both are read only with ``trust_pickle=True`` (``--trust-pickle``): unpickling runs whatever code
the file names (:mod:`snncc.loading.checkpoint_io` refuses them otherwise, ``E023``). Neither
records the zoo architecture, so they load as they are, with their shape and timesteps from
the caller or the module's attributes (``E028`` when neither says), and every tensor they carry,
persistent or not, is checked for NaN / Inf (``E032``). Split from
:mod:`snncc.loading.checkpoint`, which reads the weights-only snncc checkpoint format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from snncc.data.files import check_finite
from snncc.loading.checkpoint import LoadedModel
from snncc.loading.checkpoint_io import _error


def module_tensors(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters and buffers of ``module`` by name (non-persistent buffers included).

    A pickled module carries state outside ``state_dict()`` too (non-persistent buffers), and
    all of it feeds the forward pass, so all of it is checked for NaN / Inf.
    """
    named = dict(module.named_parameters())
    named.update(dict(module.named_buffers()))
    return list(named.items())


def from_module(
    module: nn.Module,
    path: Path,
    *,
    input_shape: tuple[int, ...] | None,
    timesteps: int | None,
    time_axis: int | None,
) -> LoadedModel:
    """Wrap a trusted module; shape and timesteps come from the caller or its attributes."""
    T = timesteps if timesteps is not None else getattr(module, "T", None)
    if not isinstance(T, int) or T < 1:
        raise _error(
            path,
            "the model does not say how many timesteps it runs (no integer attribute T)",
            "E028",
            "pass --timesteps T",
        )
    if isinstance(getattr(module, "T", None), int) and module.T != T:
        # --timesteps overrides the module's own T; left alone, the module would repeat its input
        # module.T times while the tracer expects T steps (an "unsupported op", exit 3).
        module.T = T
    shape = input_shape if input_shape is not None else getattr(module, "input_shape", None)
    if shape is None:
        raise _error(
            path,
            "the model does not record its input shape",
            "E028",
            "pass --input-shape, e.g. --input-shape 3,32,32 (per sample, without the batch axis)",
        )
    axis = time_axis if time_axis is not None else getattr(module, "time_axis", None)
    check_finite(module_tensors(module), path)
    module.eval()
    return LoadedModel(
        module=module,
        arch=type(module).__name__,
        config={},
        input_shape=tuple(int(s) for s in shape),
        timesteps=T,
        time_axis=axis,
        metrics=None,
        path=path,
        source="pickle",
    )


def program_constants(ep: Any) -> list[tuple[str, torch.Tensor]]:
    """A program's lifted tensor constants (non-persistent buffers, captured tensors)."""
    constants = getattr(ep, "constants", None) or {}
    return [(str(k), v) for k, v in constants.items() if isinstance(v, torch.Tensor)]


def from_program(
    path: Path,
    *,
    trust_pickle: bool,
    input_shape: tuple[int, ...] | None,
    timesteps: int | None,
) -> LoadedModel:
    """A ``.pt2`` written by :func:`snncc.export_program` (see :mod:`snncc.frontend.exported`).

    An exported program has fixed shapes, so an ``input_shape`` or ``timesteps`` other than the
    recorded ones is refused here (exit 2) rather than failing later inside torch.
    """
    from snncc.frontend.exported import load_program, program_to_graph

    program = load_program(path, trust_pickle=trust_pickle)
    if program.meta is None:
        program_to_graph(program)  # raises FE020: not written by snncc, neurons are inlined
    meta = program.meta
    ep = program.ep
    check_finite([*ep.state_dict.items(), *program_constants(ep)], path)
    shape = tuple(int(s) for s in meta["input_shape"])
    T = int(meta["timesteps"])
    wrong = []
    if input_shape is not None and tuple(int(s) for s in input_shape) != shape:
        wrong.append(f"input shape {list(input_shape)}")
    if timesteps is not None and timesteps != T:
        wrong.append(f"{timesteps} timesteps")
    if wrong:
        raise _error(
            path,
            f"{' and '.join(wrong)} does not fit: the program was exported for input shape "
            f"{list(shape)} with {T} timesteps",
            "E031",
            "export the program again with snncc.export_program for the new shape",
        )
    return LoadedModel(
        module=program.ep.module(),
        arch=str(meta.get("arch") or "torch.export program"),
        config={},
        input_shape=shape,
        timesteps=T,
        time_axis=meta.get("time_axis"),
        metrics=None,
        path=path,
        source="export",
        program=program,
    )
