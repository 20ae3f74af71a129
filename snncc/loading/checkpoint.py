"""snncc checkpoints: weights plus everything needed to rebuild and trace the model.

A checkpoint is a ``torch.save`` file holding one plain dictionary::

    {"format": "snncc-checkpoint", "version": 1, "arch": str, "config": dict,
     "input_shape": tuple[int, ...], "timesteps": int, "time_axis": int | None,
     "state_dict": dict[str, Tensor], "metrics": dict | None}

Why a dictionary of plain values and not a pickled ``nn.Module``: unpickling a module runs code
named by the file, so a checkpoint downloaded from anywhere could execute anything. A dictionary of
tensors, numbers and strings loads with ``torch.load(weights_only=True)``, which refuses every other
Python object; the model is rebuilt from the seed-zoo registry (``arch`` + ``config``) and the
weights are loaded with ``strict=True``. Whole pickled modules and ``torch.export`` programs
(``.pt2``, whose loader also unpickles) are accepted only with ``trust_pickle=True``
(``--trust-pickle``; :mod:`snncc.loading.trusted`).

Every problem with the file is an :class:`~snncc.diagnostics.SnnccError` with exit code 2 whose one
line names the file, says what is wrong and how to fix it. Reading the bytes safely lives in
:mod:`snncc.loading.checkpoint_io`, ``.pt2`` programs in :mod:`snncc.frontend.exported`. Codes: E020
no such file, E021 not a checkpoint, E022 truncated or corrupt, E023 refused pickle, E024 weights do
not match the architecture, E025 written by a newer snncc, E026 invalid field, E027 unreadable
pickled class, E028 input shape or timesteps unknown, E030 recorded timesteps contradict the config
or the model, E031 recorded input shape contradicts the config (or does not fit a ``.pt2`` program),
E032 NaN or Inf in a tensor, E010/E011/E015 unknown architecture / unknown config field / invalid
config value.

Why the file is checked this far before anything runs: every field of a checkpoint is input. A
NaN weight makes ``energy`` print NaN energies and ``compile`` quantize to garbage without any
error; a header ``timesteps`` that contradicts the config's ``T`` surfaces only at trace time as
an "unsupported op" (exit 3, with advice to edit the model's source), and a negative width
surfaces as a ``RuntimeError`` inside torch. Each is reported here, naming the field or tensor
and both contradicting values, as bad input (exit 2).
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snncc.data.files import check_finite
from snncc.diagnostics import SnnccError
from snncc.ir.serialize import atomic_write_bytes
from snncc.loading.checkpoint_io import _RESAVE_HINT, _error, _unsafe_global, read_file

FORMAT = "snncc-checkpoint"
VERSION = 1
#: Fields a checkpoint must have (``format``/``version``/``time_axis``/``metrics`` may be absent in
#: files written before ``save_checkpoint`` existed: those are read as version 0).
REQUIRED = ("arch", "config", "input_shape", "timesteps", "state_dict")


@dataclass
class LoadedModel:
    """A model ready to trace: the module (eval mode) and how to feed it.

    ``input_shape`` excludes the batch axis; ``time_axis`` is where time is in the input *with*
    the batch axis (``None``: the model repeats a static sample over time itself). ``source`` says
    where the module came from: ``checkpoint``, ``pickle`` (a whole pickled module), ``export``
    (a ``torch.export`` program, kept in ``program``) or ``zoo`` (a registry name with seeded
    random weights). ``nir`` (a NIR file) and ``graph`` (an ``snncc-graph`` file, e.g. written
    by ``snncc convert``) have no module: they hold the IR ``graph`` itself
    (:mod:`snncc.loading.graph_model`).
    """

    module: nn.Module | None
    arch: str
    config: dict[str, Any]
    input_shape: tuple[int, ...]
    timesteps: int
    time_axis: int | None = None
    metrics: dict[str, Any] | None = None
    path: Path | None = None
    source: str = "checkpoint"
    #: For ``source == "export"``: the loaded :class:`snncc.frontend.exported.Program`.
    program: Any = None
    #: For ``source in ("nir", "graph")``: the :class:`snncc.ir.graph.Graph` (no module).
    graph: Any = None
    #: Quantization decisions a fine-tuned checkpoint pins (:mod:`snncc.quant.pins`), or None.
    quantization: dict[str, Any] | None = None


# -- saving -------------------------------------------------------------------------------------
def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    arch: str,
    config: dict[str, Any],
    input_shape: tuple[int, ...] | list[int],
    timesteps: int,
    *,
    time_axis: int | None = None,
    metrics: dict[str, Any] | None = None,
    quantization: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and its description to ``path`` atomically (temp file + rename).

    ``arch`` must be a registered zoo name and ``config`` its configuration (what
    ``snncc.models.create(arch, **config)`` needs to rebuild the module). ``config`` and
    ``metrics`` may hold only values a weights-only load accepts (numbers, strings, None, lists,
    tuples, dicts); anything else is refused here rather than producing an unreadable file.
    ``quantization`` is the grid a fine-tuned model's integers were trained on
    (:mod:`snncc.quant.pins`; written by ``snncc finetune``), honoured by ``snncc compile``.
    """
    from snncc import models

    path = Path(path)
    models.spec(arch)  # unknown names fail now, not when someone tries to load the file
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "arch": str(arch),
        "config": dict(config),
        "input_shape": tuple(int(s) for s in input_shape),
        "timesteps": int(timesteps),
        "time_axis": None if time_axis is None else int(time_axis),
        "metrics": None if metrics is None else dict(metrics),
    }
    if quantization is not None:
        from snncc.quant.pins import check_record

        header["quantization"] = check_record(quantization, str(path))
    _check_weights_only(header, path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({**header, "state_dict": state}, buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _check_weights_only(header: dict[str, Any], path: Path) -> None:
    """Refuse config/metrics values that ``torch.load(weights_only=True)`` would not read back."""
    buf = io.BytesIO()
    torch.save(header, buf)
    buf.seek(0)
    try:
        torch.load(buf, weights_only=True)
    except pickle.UnpicklingError as e:
        name = _unsafe_global(str(e)) or "an unsupported object"
        raise _error(
            path,
            f"cannot save: config or metrics contain {name}, which a weights-only load refuses",
            "E026",
            "store plain numbers, strings, lists and dicts in config and metrics",
        ) from None


# -- validating and rebuilding ------------------------------------------------------------------
def _document(obj: Any, path: Path) -> dict[str, Any]:
    """Check that ``obj`` is an snncc checkpoint dictionary of a version we read."""
    if not isinstance(obj, dict):
        raise _error(
            path, f"contains a {type(obj).__name__}, not an snncc checkpoint", "E021", _RESAVE_HINT
        )
    fmt = obj.get("format")
    if fmt is None and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise _error(
            path,
            "a bare state_dict (weights without the architecture), not an snncc checkpoint",
            "E021",
            _RESAVE_HINT,
        )
    if fmt is None and not all(k in obj for k in REQUIRED):
        raise _error(
            path,
            "a torch file without the 'format' key of an snncc checkpoint",
            "E021",
            _RESAVE_HINT,
        )
    if fmt is not None and fmt != FORMAT:
        raise _error(path, f"format {fmt!r} is not {FORMAT!r}", "E021", _RESAVE_HINT)
    version = obj.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise _error(
            path,
            f"checkpoint version {version!r} is newer than this snncc reads ({VERSION})",
            "E025",
            "upgrade snncc",
        )
    if "arch" not in obj:
        raise _error(
            path,
            "the checkpoint records no `arch` (the zoo architecture to rebuild the model from)",
            "E026",
            _RESAVE_HINT,
        )
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise _error(path, f"checkpoint lacks field(s) {missing}", "E026", _RESAVE_HINT)
    _check_fields(obj, path)
    check_finite(_tensors(obj), path)
    return obj


def _tensors(doc: dict[str, Any]) -> list[tuple[str, torch.Tensor]]:
    """Every tensor in a checkpoint document: state-dict keys as they are, others by field path.

    The state dict holds the weights and the buffers (BatchNorm running statistics too); a
    tensor elsewhere (e.g. a metric curve in ``metrics``) is checked as well, since it is shown.
    """
    found = [(str(k), v) for k, v in doc["state_dict"].items()]
    for key, value in doc.items():
        if key != "state_dict":
            found += _nested_tensors(value, str(key))
    return found


def _nested_tensors(obj: Any, name: str) -> list[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        return [(name, obj)]
    if isinstance(obj, dict):
        return [t for k, v in obj.items() for t in _nested_tensors(v, f"{name}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [t for i, v in enumerate(obj) for t in _nested_tensors(v, f"{name}[{i}]")]
    return []


def _check_fields(doc: dict[str, Any], path: Path) -> None:
    """Type checks, so a hand-edited file fails here with a name rather than deep in torch."""
    problems = []
    if not isinstance(doc["arch"], str):
        problems.append("'arch' is not a string")
    if not isinstance(doc["config"], dict):
        problems.append("'config' is not a dict")
    shape = doc["input_shape"]
    if not isinstance(shape, (list, tuple)) or not all(isinstance(s, int) and s > 0 for s in shape):
        problems.append(f"'input_shape' {shape!r} is not a list of positive integers")
    if not isinstance(doc["timesteps"], int) or doc["timesteps"] < 1:
        problems.append(f"'timesteps' {doc['timesteps']!r} is not a positive integer")
    if doc.get("time_axis") not in (None, 0, 1):
        problems.append(f"'time_axis' {doc['time_axis']!r} is not None, 0 or 1")
    sd = doc["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        problems.append("'state_dict' is not a dict of tensors")
    if problems:
        raise _error(path, "invalid checkpoint: " + "; ".join(problems), "E026", _RESAVE_HINT)


def _first(keys: list[str], n: int = 3) -> str:
    shown = ", ".join(repr(k) for k in keys[:n])
    return shown + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], path: Path, arch: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming the first bad keys."""
    want = module.state_dict()
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    parts = []
    if missing:
        parts.append(f"missing keys {_first(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {_first(unexpected)}")
    bad = [k for k in want if k in state and tuple(want[k].shape) != tuple(state[k].shape)]
    if bad and not parts:
        k = bad[0]
        parts.append(
            f"shape of {k!r} is {list(state[k].shape)} in the file but {list(want[k].shape)} in "
            f"the model" + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else "")
        )
    hint = "the weights come from a different architecture or config than the one recorded"
    if parts:
        raise _error(path, f"weights do not match {arch}: " + "; ".join(parts), "E024", hint)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = (str(e).splitlines() or ["load_state_dict failed"])[0][:160]
        raise _error(path, f"weights do not match {arch}: {first}", "E024", hint) from None


def _time_index(time_axis: int | None) -> int | None:
    """Index of the time dimension in the per-sample ``input_shape`` (None: a static sample)."""
    return None if time_axis is None else 0


def _check_header(doc: dict[str, Any], path: Path, *, input_shape: bool, timesteps: bool) -> None:
    """The recorded ``timesteps`` / ``input_shape`` must agree with the config (before building).

    ``input_shape`` / ``timesteps`` say whether the caller overrides that header value
    (``--input-shape`` / ``--timesteps``): an overridden value is checked where the override is
    applied instead (:mod:`snncc.loading`), so the user can run a file whose header is wrong.
    """
    config, T, shape = doc["config"], doc["timesteps"], list(doc["input_shape"])
    resave = "save the checkpoint again with snncc.save_checkpoint and consistent values"
    if not timesteps and "T" in config and config["T"] != T:
        raise _error(
            path,
            f"the checkpoint records timesteps={T} but its config has T={config['T']}",
            "E030",
            f"{resave} (or pass --timesteps to choose one)",
        )
    t = _time_index(doc.get("time_axis"))
    if input_shape:
        return
    if not timesteps and t is not None and t < len(shape) and shape[t] != T:
        raise _error(
            path,
            f"the checkpoint's input_shape {shape} has {shape[t]} steps on its time axis but "
            f"it records timesteps={T}",
            "E030",
            resave,
        )
    c = 0 if t is None else t + 1
    channels = config.get("in_channels")
    if isinstance(channels, int) and c < len(shape) and shape[c] != channels:
        fixed = shape[:c] + [channels] + shape[c + 1 :]
        raise _error(
            path,
            f"the checkpoint's input_shape {shape} has {shape[c]} channels but its config has "
            f"in_channels={channels}",
            "E031",
            f"{resave}, e.g. input_shape={tuple(fixed)} (or pass --input-shape)",
        )


def _rebuild(
    doc: dict[str, Any],
    path: Path,
    *,
    input_shape: tuple[int, ...] | None = None,
    timesteps: int | None = None,
) -> LoadedModel:
    """Build ``arch`` with ``config`` from the registry and load the weights strictly.

    The config is validated (field types and ranges, ``E015``) and the header checked against it
    before anything is built, so a bad value never reaches a torch constructor.
    """
    from snncc import models
    from snncc.models.registry import validate_config

    arch = doc["arch"]
    try:
        models.spec(arch)
        validate_config(arch, doc["config"])
        _check_header(
            doc, path, input_shape=input_shape is not None, timesteps=timesteps is not None
        )
        module = models.create(arch, **doc["config"])
    except SnnccError as e:
        if e.message.startswith(f"{path}: "):
            raise
        raise _error(path, e.message, e.code, e.hint) from None
    except (TypeError, ValueError) as e:
        raise _error(path, f"config does not build {arch}: {e}", "E026") from None
    T = getattr(module, "T", None)
    if timesteps is None and isinstance(T, int) and T != doc["timesteps"]:
        raise _error(
            path,
            f"the checkpoint records timesteps={doc['timesteps']} but its {arch} model runs T={T}",
            "E030",
            "save the checkpoint again with snncc.save_checkpoint and timesteps=model.T",
        )
    load_weights(module, doc["state_dict"], path, arch)
    module.eval()
    quantization = doc.get("quantization")
    if quantization is not None:
        from snncc.quant.pins import check_record

        check_record(quantization, str(path))
    return LoadedModel(
        module=module,
        arch=arch,
        config=dict(doc["config"]),
        input_shape=tuple(int(s) for s in doc["input_shape"]),
        timesteps=int(doc["timesteps"]),
        time_axis=doc.get("time_axis"),
        metrics=doc.get("metrics"),
        path=path,
        quantization=quantization,
    )


def load_checkpoint(
    path: str | Path,
    *,
    trust_pickle: bool = False,
    input_shape: tuple[int, ...] | None = None,
    timesteps: int | None = None,
    time_axis: int | None = None,
) -> LoadedModel:
    """Load an snncc checkpoint (or, with ``trust_pickle``, a pickled module or ``.pt2``).

    Checkpoints are read with ``torch.load(weights_only=True)`` and rebuilt from the registry.
    ``input_shape``/``timesteps``/``time_axis`` are used only for whole modules, which do not
    record them (a module's ``T``, ``input_shape`` and ``time_axis`` attributes are used when
    present); a ``.pt2`` program records them and accepts only the same values. For a checkpoint
    they only say that the caller overrides the recorded values (applied by
    :func:`snncc.loading.resolve_model`), so a header value they replace is not held against
    the file. Every tensor is checked for NaN / Inf (``E032``).
    """
    path = Path(path)
    if not path.exists():
        raise _error(path, "no such file", "E020", "check the path")
    if path.is_dir():
        raise _error(path, "is a directory, not a checkpoint file", "E021")
    if not path.is_file():
        raise _error(path, "is not a regular file (a device, pipe or socket)", "E021")
    from snncc.loading.trusted import from_module, from_program

    if path.suffix == ".pt2":
        return from_program(
            path, trust_pickle=trust_pickle, input_shape=input_shape, timesteps=timesteps
        )
    obj = read_file(path, trust_pickle=trust_pickle)
    if isinstance(obj, dict) and obj.get("format") == "snncc-graph":  # a graph, no module
        from snncc.loading.graph_model import load_graph_document

        return load_graph_document(obj, path, input_shape=input_shape, timesteps=timesteps)
    if not isinstance(obj, nn.Module):
        return _rebuild(_document(obj, path), path, input_shape=input_shape, timesteps=timesteps)
    return from_module(obj, path, input_shape=input_shape, timesteps=timesteps, time_axis=time_axis)
