"""``.pt2`` files: ``torch.export`` programs that snncc can translate without the model's code.

Why a program written by snncc and not any ``.pt2``: ``torch.export`` traces through each neuron's
Python time loop, so a plain exported program holds each LIF as T copies of ``sub``/``div``/``ge``
/``mul`` with nothing left that says "this is a neuron with tau=2". snncc cannot recover neurons
from that soup reliably, so it refuses such files (``FE020``, exit 3) instead of guessing.
:func:`export_program` writes a program in which every neuron is one ``snncc::neuron`` node (the
same custom op :func:`snncc.trace` uses) and stores, next to the program in the archive, a small
JSON record (``snncc.json``) with each neuron's IR op, the timesteps, the time axis, the input
shape and the batch size the program was exported with. Loading such a file needs no Python class
from the user: :func:`load_program` deserializes it and :func:`program_to_graph` translates it with
the tracer's own translator.

``torch.export.load`` unpickles constants, so loading is gated by ``trust_pickle`` like a pickled
module (``E023`` otherwise). The program is exported for one concrete input shape; another
``--input-shape`` or ``--timesteps`` cannot be honoured (``E031``, exit 2).
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snncc.diagnostics import Diagnostic, Severity, SnnccError
from snncc.frontend.neurons import neuron_op  # importing it registers snncc::neuron for load
from snncc.frontend.trace import (
    export_with_neurons,
    prepare_input,
    resolve_timesteps,
    translate,
)
from snncc.ir.graph import Graph
from snncc.ir.ops import Op
from snncc.ir.serialize import atomic_write_bytes, op_from_dict, op_to_dict

META_FILE = "snncc.json"
FORMAT = "snncc-export"
VERSION = 1
_TRUST_HINT = (
    "if you trust the file, pass --trust-pickle (trust_pickle=True); torch.export.load unpickles "
    "the program's constants, so never do it for files from unknown sources"
)
_EXPORT_HINT = (
    "write the program with snncc.export_program(path, model, example_input), or save an snncc "
    "checkpoint with snncc.save_checkpoint"
)


@dataclass
class Program:
    """A loaded ``.pt2``: the exported program and snncc's record (None: not written by snncc)."""

    ep: Any
    meta: dict[str, Any] | None
    path: Path

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input shape (no batch axis) from the program's only tensor input."""
        user = set(self.ep.graph_signature.user_inputs)
        shapes = [
            tuple(int(s) for s in n.meta["val"].shape)
            for n in self.ep.graph.nodes
            if n.op == "placeholder" and n.name in user and "val" in n.meta
        ]
        if len(shapes) != 1:
            raise _error(self.path, f"program has {len(shapes)} tensor inputs; snncc needs 1")
        shape = list(shapes[0])
        axis = self.meta.get("time_axis") if self.meta else None
        del shape[1 if axis == 0 else 0]
        return tuple(shape)


def _error(path: Path, problem: str, code: str = "E026", hint: str | None = None) -> SnnccError:
    return SnnccError(f"{path}: {problem}", code=code, hint=hint, exit_code=2)


# -- writing ------------------------------------------------------------------------------------
def _neuron_record(path: str, module: nn.Module) -> dict[str, Any]:
    """One neuron's IR op as JSON (or why it has none, reported when the file is translated)."""
    op = neuron_op(module, path)
    if isinstance(op, Diagnostic):
        return {"path": path, "error": op.message, "hint": op.hint}
    arrays: dict[str, Any] = {}
    record = op_to_dict(op, path, arrays)
    if arrays:  # neuron ops carry scalars only; an array would not survive the JSON record
        return {"path": path, "error": f"neuron {path} has array parameters", "hint": None}
    return {"path": path, "op": record}


def export_program(
    path: str | Path,
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    timesteps: int | None = None,
    time_axis: int | None = None,
    arch: str | None = None,
) -> Path:
    """Export ``model`` on ``example_input`` (batch axis included) to a ``.pt2`` snncc can read.

    Same conventions as :func:`snncc.trace` (``timesteps`` defaults to ``model.T``; ``time_axis``
    None, 0 or 1). The file is a regular ``torch.export`` archive written atomically; its
    neurons are ``snncc::neuron`` nodes, so it is meant for snncc rather than for running.
    """
    path = Path(path)
    T = resolve_timesteps(model, timesteps)
    x, _, batch = prepare_input(example_input, T, time_axis)
    ep, neurons = export_with_neurons(model, x)
    shape = list(example_input.shape)
    del shape[1 if time_axis == 0 else 0]
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "arch": arch or type(model).__name__,
        "timesteps": T,
        "time_axis": time_axis,
        "input_shape": [int(s) for s in shape],
        "batch": batch,
        "neurons": {str(i): _neuron_record(p, m) for i, (p, m) in neurons.items()},
    }
    buf = io.BytesIO()
    torch.export.save(ep, buf, extra_files={META_FILE: json.dumps(meta)})
    atomic_write_bytes(path, buf.getvalue())
    return path


# -- reading ------------------------------------------------------------------------------------
def load_program(path: str | Path, *, trust_pickle: bool) -> Program:
    """Deserialize a ``.pt2`` (only with ``trust_pickle``) and its snncc record, if any."""
    path = Path(path)
    if not trust_pickle:
        raise _error(
            path,
            "torch.export programs are loaded by unpickling (torch.export.load); refusing",
            "E023",
            _TRUST_HINT,
        )
    extra = {META_FILE: ""}
    log = logging.getLogger("torch.export")
    level = log.level
    log.setLevel(logging.CRITICAL)  # torch logs a traceback before raising; we print one line
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.load(str(path), extra_files=extra)
    except Exception as e:  # noqa: BLE001 - any failure to read the archive is a bad file
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise _error(path, f"not a readable torch.export program: {first}", "E022") from None
    finally:
        log.setLevel(level)
    meta = None
    if extra[META_FILE]:
        try:
            meta = json.loads(extra[META_FILE])
        except ValueError:
            raise _error(path, f"corrupt {META_FILE} record in the program", "E022") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise _error(path, f"{META_FILE} is not an snncc export record", "E021")
        if int(meta.get("version", 0)) > VERSION:
            raise _error(
                path,
                f"export record version {meta['version']} is newer than this snncc ({VERSION})",
                "E025",
                "upgrade snncc",
            )
    return Program(ep, meta, path)


def _neuron_table(meta: dict[str, Any]) -> dict[int, tuple[str, Op | Diagnostic]]:
    """``{index: (path, IR op or diagnostic)}`` from the record, for the translator."""
    table: dict[int, tuple[str, Op | Diagnostic]] = {}
    for key, rec in meta["neurons"].items():
        if "op" in rec:
            table[int(key)] = (rec["path"], op_from_dict(rec["op"], {}))
        else:
            diag = Diagnostic(
                "FE002", Severity.ERROR, rec["error"], src=rec["path"], hint=rec.get("hint")
            )
            table[int(key)] = (rec["path"], diag)
    return table


def program_to_graph(program: Program, *, name: str | None = None) -> Graph:
    """Translate a program written by :func:`export_program`; FE020 (exit 3) for any other."""
    meta = program.meta
    if meta is None:
        raise SnnccError(
            f"{program.path}: a torch.export program not written by snncc: export inlines each "
            "neuron's time loop into elementwise ops, so snncc cannot recover the neurons",
            code="FE020",
            exit_code=3,
            hint=_EXPORT_HINT,
        )
    return translate(
        program.ep,
        _neuron_table(meta),
        timesteps=int(meta["timesteps"]),
        batch=int(meta["batch"]),
        time_axis=meta.get("time_axis"),
        input_shape=list(meta["input_shape"]),
        name=name or str(meta.get("arch") or "model"),
    )
