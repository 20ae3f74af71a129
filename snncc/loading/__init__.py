"""Turn what the user typed (a file or a zoo name) into a model and then into a spike graph.

``resolve_model(ref)`` accepts an existing file (an snncc checkpoint; pickled modules and ``.pt2``
programs written by ``snncc.export_program`` with ``trust_pickle``; a NIR file or an ``snncc-graph``
file, which hold a graph and no module, :mod:`snncc.loading.graph_model`) or a registered seed-zoo
name (built with ``torch.manual_seed(0)`` so that the same name always gives the same weights).
``to_graph`` builds the example input and traces (a graph model's graph is copied). Both raise
:class:`~snncc.diagnostics.SnnccError` with exit code 2 for bad input, so the CLI prints one line
and no traceback.

Why ``to_graph`` runs the model once before tracing: ``torch.export`` reports a wrong input shape
as a generic export failure (which ``snncc.trace`` must treat as an untraceable model, exit 3).
Running the plain forward first under module hooks separates "your input shape does not fit" (exit
2, naming the module that rejected it) from "the model uses ops snncc cannot compile" (exit 3).
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.loading.checkpoint import LoadedModel, load_checkpoint

#: File suffixes that make a missing reference read as a path rather than a model name.
_FILE_SUFFIXES = (".pt", ".pth", ".pt2", ".ckpt", ".tar", ".bin", ".pkl", ".nir")


def _time_index(time_axis: int | None) -> int | None:
    """Index of the time dimension in a shape *without* the batch axis."""
    if time_axis is None:
        return None
    batch_axis = 1 if time_axis == 0 else 0
    return time_axis if time_axis < batch_axis else time_axis - 1


def _with_timesteps(loaded: LoadedModel, timesteps: int) -> LoadedModel:
    """Run ``loaded`` for ``timesteps`` steps: sets the module's ``T`` and the input's time axis."""
    if timesteps < 1:
        raise SnnccError(f"--timesteps must be positive, got {timesteps}", code="E030")
    if hasattr(loaded.module, "T") and loaded.source != "export":
        loaded.module.T = timesteps
    shape = list(loaded.input_shape)
    i = _time_index(loaded.time_axis)
    if i is not None and i < len(shape):
        shape[i] = timesteps
    return dataclasses.replace(loaded, timesteps=timesteps, input_shape=tuple(shape))


def _zoo(name: str, timesteps: int | None) -> LoadedModel:
    """A registry model with deterministic seeded random weights (no metrics: it is untrained)."""
    from snncc import models

    spec = models.spec(name)
    overrides: dict[str, Any] = {}
    if timesteps is not None and "T" in spec.config:
        overrides["T"] = timesteps
    torch.manual_seed(0)
    module = models.create(name, **overrides).eval()
    return LoadedModel(
        module=module,
        arch=name,
        config={**spec.config, **overrides},
        input_shape=tuple(spec.input_shape),
        timesteps=spec.timesteps,
        time_axis=spec.time_axis,
        metrics=None,
        path=None,
        source="zoo",
    )


def _not_found(ref: str) -> SnnccError:
    """'No such file or model name', with the closest zoo names as the fix."""
    from snncc import models

    close = difflib.get_close_matches(ref, models.names(), n=3, cutoff=0.5)
    looks_like_file = Path(ref).suffix in _FILE_SUFFIXES or "/" in ref or "\\" in ref
    problem = "no such file" if looks_like_file else "no such file or model name"
    hint = "check the path; " if looks_like_file else ""
    hint += f"did you mean {', '.join(close)}? " if close else ""
    hint += "`snncc models` lists the zoo names"
    return SnnccError(f"{ref}: {problem}", code="E020", hint=hint, exit_code=2)


def resolve_model(
    ref: str,
    *,
    trust_pickle: bool = False,
    input_shape: tuple[int, ...] | None = None,
    timesteps: int | None = None,
) -> LoadedModel:
    """Load ``ref``: an existing file, else a zoo name, else an error listing close names.

    ``input_shape`` (without the batch axis) and ``timesteps`` override what the checkpoint or
    registry records; for whole pickled modules they supply what the file does not record.
    """
    from snncc import models

    path = Path(ref)
    if path.is_file() and _is_nir(path):  # a graph from NIR: no module (snncc.loading.graph_model)
        from snncc.loading.graph_model import load_nir_model

        return load_nir_model(path, input_shape=input_shape, timesteps=timesteps)
    if path.exists():
        loaded = load_checkpoint(
            path, trust_pickle=trust_pickle, input_shape=input_shape, timesteps=timesteps
        )
        if loaded.graph is not None:  # a graph file: shape and timesteps already applied
            return loaded
    elif ref in models.names():
        loaded = _zoo(ref, timesteps)
    else:
        raise _not_found(ref)
    if timesteps is not None and timesteps != loaded.timesteps:
        loaded = _with_timesteps(loaded, timesteps)
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        check_shape(loaded, shape)
        loaded = dataclasses.replace(loaded, input_shape=shape)
    return loaded


def _is_nir(path: Path) -> bool:
    from snncc.interop.nir_common import looks_like_nir

    return looks_like_nir(path)


def _label(loaded: LoadedModel) -> str:
    return str(loaded.path) if loaded.path is not None else loaded.arch


def check_shape(loaded: LoadedModel, shape: tuple[int, ...]) -> None:
    """Check an input-shape override against ``loaded.input_shape`` and its timesteps.

    Positive dimensions, the same rank, and for event inputs a time dimension equal to the
    timesteps; whether the sizes fit the layers is left to :func:`check_forward`.
    """
    if not shape or any(s < 1 for s in shape):
        raise SnnccError(
            f"{_label(loaded)}: input shape {list(shape)} must be positive integers",
            code="E030",
            hint="e.g. --input-shape 3,32,32 (per sample, without the batch axis)",
        )
    want = loaded.input_shape
    if len(shape) != len(want):
        raise SnnccError(
            f"{_label(loaded)}: input shape {list(shape)} has {len(shape)} dimensions but the "
            f"model takes {len(want)} (like {','.join(str(s) for s in want)})",
            code="E030",
            hint="give the per-sample shape without the batch axis",
        )
    i = _time_index(loaded.time_axis)
    if i is not None and (i >= len(shape) or shape[i] != loaded.timesteps):
        got = shape[i] if i < len(shape) else "none"
        raise SnnccError(
            f"{_label(loaded)}: input shape {list(shape)} has {got} steps on its time axis "
            f"but the model runs {loaded.timesteps} timesteps",
            code="E030",
            hint="make the first --input-shape entry equal --timesteps",
        )


def _module_names(module: nn.Module) -> dict[int, tuple[str, str]]:
    return {id(m): (p or "(root)", type(m).__name__) for p, m in module.named_modules()}


def check_forward(loaded: LoadedModel, x: torch.Tensor) -> None:
    """Run the model once; a failure becomes exit 2 naming the innermost failing module."""
    names = _module_names(loaded.module)
    stack: list[tuple[str, str]] = []

    def enter(mod: nn.Module, args: Any) -> None:
        stack.append(names.get(id(mod), ("?", type(mod).__name__)))

    def leave(mod: nn.Module, args: Any, out: Any) -> None:
        stack.pop()

    handles = []
    for m in loaded.module.modules():
        handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    try:
        with torch.no_grad():
            loaded.module(x)
    except Exception as e:  # noqa: BLE001 - any failure on this input is reported as a misfit
        where = f" at {stack[-1][0]} ({stack[-1][1]})" if stack else ""
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        shape = list(x.squeeze(1 if loaded.time_axis == 0 else 0).shape)
        hint = "give the per-sample shape the model was built for (--input-shape)"
        if loaded.source == "checkpoint":  # the shape may be the file's own: say how to mend it
            hint += "; if the checkpoint records this shape, save it again with the right one"
        raise SnnccError(
            f"{_label(loaded)}: input shape {shape} does not fit the model{where}: {first}",
            code="E031",
            hint=hint,
        ) from None
    finally:
        for h in handles:
            h.remove()


def example_input(loaded: LoadedModel, shape: tuple[int, ...]) -> torch.Tensor:
    """Zeros of ``shape`` with a batch axis of 1 inserted where the model expects it."""
    batch_axis = 1 if loaded.time_axis == 0 else 0
    return torch.zeros(shape).unsqueeze(batch_axis)


def to_graph(loaded: LoadedModel, *, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Trace ``loaded`` (batch-1 zero input of ``input_shape`` or its recorded shape).

    A ``.pt2`` program (``loaded.source == "export"``) is not traced again but translated as
    exported (:mod:`snncc.frontend.exported`): its shapes are fixed and its neurons are already
    single ``snncc::neuron`` nodes.
    """
    import snncc

    if loaded.graph is not None:  # NIR or graph file: nothing to trace (snncc.loading.graph_model)
        from snncc.loading.graph_model import graph_for

        return graph_for(loaded, input_shape)
    if loaded.source == "export":  # already exported: translate it, with its fixed shapes
        from snncc.frontend.exported import program_to_graph

        if input_shape is not None and tuple(int(s) for s in input_shape) != loaded.input_shape:
            raise SnnccError(
                f"{_label(loaded)}: input shape {list(input_shape)} does not fit: the program "
                f"was exported for {list(loaded.input_shape)}",
                code="E031",
                hint="export the program again with snncc.export_program for the new shape",
            )
        return program_to_graph(loaded.program, name=loaded.arch)
    shape = loaded.input_shape
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        check_shape(loaded, shape)
    x = example_input(loaded, shape)
    check_forward(loaded, x)
    g = snncc.trace(
        loaded.module, x, timesteps=loaded.timesteps, time_axis=loaded.time_axis, name=loaded.arch
    )
    if loaded.quantization is not None:  # a fine-tuned checkpoint's grid (snncc.quant.pins)
        from snncc.quant.pins import KEY

        g.meta[KEY] = loaded.quantization
    return g
