"""Reading a checkpoint file safely: recognise foreign files, then a weights-only ``torch.load``.

Split from :mod:`snncc.loading.checkpoint` (which validates the dictionary and rebuilds the model)
because this part is about bytes and pickles: why a text file, an ``.npz`` or a truncated zip must
be told apart *before* ``torch.load`` (whose errors for them are cryptic, e.g. ``KeyError: 101``),
and how a refused pickle is told apart from a corrupt one. Every problem is an
:class:`~snncc.diagnostics.SnnccError` with exit code 2 and one line naming the file.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from snncc.diagnostics import SnnccError

_TRUST_HINT = (
    "if you trust the file, pass --trust-pickle (trust_pickle=True); unpickling runs whatever code "
    "the file names, so never do it for files from unknown sources"
)
_RESAVE_HINT = (
    "write checkpoints with snncc.save_checkpoint(path, model, arch, config, input_shape, "
    "timesteps)"
)


def _error(path: Path | str, problem: str, code: str, hint: str | None = None) -> SnnccError:
    return SnnccError(f"{path}: {problem}", code=code, hint=hint, exit_code=2)


# -- reading ---------------------------------------------------------------------------
def _sniff(path: Path) -> tuple[str | None, str | None]:
    """Recognise files that are certainly not torch checkpoints: ``(problem, code)`` or Nones.

    Done before ``torch.load`` because its errors for foreign files are cryptic (``KeyError: 101``
    for a text file) and because a truncated zip must be told apart from a foreign one.
    """
    try:
        with path.open("rb") as f:
            head = f.read(512)
    except OSError as e:  # e.g. EIO from a pseudo file: a read error carries no file name
        raise OSError(e.errno, e.strerror, str(path)) from None
    if not head:
        return "empty file (0 bytes), not a checkpoint", "E022"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array file, not an snncc checkpoint", "E021"
    if head.startswith(b"PK"):
        if not zipfile.is_zipfile(path):
            return "truncated or corrupt (the zip archive has no central directory)", "E022"
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if not any(n.endswith("data.pkl") for n in names):
            if names and all(n.endswith(".npy") for n in names):
                return "a NumPy .npz archive, not an snncc checkpoint", "E021"
            return "a zip archive that is not a PyTorch file", "E021"
        return None, None
    if head.startswith(b"\x80"):
        return None, None  # a pickle: legacy torch.save format, or a foreign pickle
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "not a PyTorch file (unrecognised binary format)", "E021"
    first = text.strip().splitlines()[0][:40] if text.strip() else ""
    return f"a text file (starts with {first!r}), not an snncc checkpoint", "E021"


def _unsafe_global(message: str) -> str | None:
    """The ``module.Name`` a weights-only load refused, parsed from torch's message."""
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    return m.group(1) if m else None


def _importable(qualname: str) -> bool:
    """Whether ``pkg.mod.Name`` resolves (a refused global that does not hints at corruption)."""
    import importlib

    parts = qualname.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def read_file(path: Path, *, trust_pickle: bool) -> Any:
    """``torch.load(weights_only=True)``, or full unpickling when trusted; errors mapped."""
    problem, code = _sniff(path)
    if problem is not None:
        raise _error(path, problem, code or "E021", _RESAVE_HINT)
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": noise next to our one line
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if trust_pickle:
            return _unpickle(path)
        name = _unsafe_global(str(e))
        if name is None:
            raise _error(path, "pickle data that is not a PyTorch checkpoint", "E021") from None
        if not _importable(name):
            raise _error(
                path, f"truncated or corrupt (refers to unknown Python object {name})", "E022"
            ) from None
        raise _error(
            path,
            f"contains a pickled Python object ({name}); refusing to unpickle it",
            "E023",
            _TRUST_HINT,
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise _error(path, f"truncated or corrupt: {first}", "E022") from None


def _unpickle(path: Path) -> Any:
    """Full unpickling (the caller has been told to trust the file)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=False)
    except (ImportError, AttributeError) as e:
        raise _error(
            path,
            f"cannot unpickle: {e}",
            "E027",
            "import the module that defines the pickled class first, or save an snncc checkpoint",
        ) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise _error(path, f"truncated or corrupt: {first}", "E022") from None
