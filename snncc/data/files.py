"""Arrays that enter snncc from users' files: finite values, and the one ``.npz`` data reader.

Why a module of its own: weights (checkpoints, pickled modules, ``.pt2`` programs) and data
(``energy --data FILE.npz``, ``compile --eval FILE.npz``) come from files snncc did not write.
A NaN weight or a 1e300 pixel does not make anything downstream fail: the reference interpreter
computes NaN firing rates, energy prints ``nan pJ``, the quantizer picks a scale from ``inf``.
So every array is checked where it enters, by one helper (:func:`check_finite`, ``E032`` for
weights, ``E033`` for data), and both data options read files through one reader
(:func:`read_npz`) so they accept and refuse the same files with the same messages.

Kept free of torch (tensors are handled by duck typing) because the runtime environment imports
snncc without torch.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError

#: Non-finite weights (checkpoint / pickled module / ``.pt2`` tensors).
WEIGHTS_CODE = "E032"
#: Non-finite or float32-overflowing data (``--data`` / ``--eval`` arrays).
DATA_CODE = "E033"
#: Largest finite float32: data is simulated in float32, so larger values become inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)

_WEIGHTS_HINT = (
    "the weights diverged in training or the file is damaged: restore an earlier checkpoint, "
    "or retrain (e.g. with a lower learning rate or gradient clipping)"
)
_DATA_HINT = "clean the data before saving it (e.g. np.nan_to_num, or drop the bad samples)"


# -- finite values ------------------------------------------------------------------------------
def nonfinite_counts(array: Any) -> tuple[int, int, int]:
    """``(nan, inf, total)`` of a numpy array or torch tensor (integer arrays: no bad values).

    Torch tensors are recognised by their ``is_floating_point`` method, so this module does not
    import torch; ``bfloat16``/``float16`` tensors are counted in torch (numpy has no bfloat16).
    """
    if hasattr(array, "is_floating_point") and hasattr(array, "isnan"):  # a torch tensor
        total = int(array.numel())
        if not (array.is_floating_point() or array.is_complex()) or total == 0:
            return 0, 0, total
        return int(array.isnan().sum()), int(array.isinf().sum()), total
    a = np.asarray(array)
    if a.dtype.kind not in "fc" or a.size == 0:
        return 0, 0, int(a.size)
    return int(np.isnan(a).sum()), int(np.isinf(a).sum()), int(a.size)


def _describe(nan: int, inf: int, total: int) -> str:
    parts = [f"{n} {what}" for n, what in ((nan, "NaN"), (inf, "Inf")) if n]
    return f"{' and '.join(parts)} of {total:,} values"


def check_finite(
    arrays: Iterable[tuple[str, Any]],
    where: str | Path,
    *,
    what: str = "weights",
    code: str = WEIGHTS_CODE,
    hint: str | None = None,
) -> None:
    """Raise ``code`` (exit 2) if any array holds NaN or Inf, naming ``where`` and the arrays.

    ``arrays`` is ``(name, array)`` pairs: state-dict keys for weights, ``'x'``/``'y'`` for data.
    The message names the first bad array with its counts and how many others are bad too, so
    one line says what to look at without listing a thousand tensors.
    """
    bad: list[tuple[str, int, int, int]] = []
    arrays = list(arrays)
    for name, array in arrays:
        nan, inf, total = nonfinite_counts(array)
        if nan or inf:
            bad.append((name, nan, inf, total))
    if not bad:
        if code == WEIGHTS_CODE:
            _check_variances(arrays, where)
        return
    name, nan, inf, total = bad[0]
    more = ""
    if len(bad) > 1:
        shown = ", ".join(repr(n) for n, *_ in bad[1:4])
        more = f"; also {len(bad) - 1} more: {shown}" + (", …" if len(bad) > 4 else "")
    default_hint = _WEIGHTS_HINT if code == WEIGHTS_CODE else _DATA_HINT
    raise SnnccError(
        f"{where}: non-finite {what}: {name!r} has {_describe(nan, inf, total)}{more}",
        code=code,
        hint=hint or default_hint,
        exit_code=2,
    )


def _check_variances(arrays: list[tuple[str, Any]], where: str | Path) -> None:
    """BatchNorm ``running_var`` must be >= 0: a negative one makes ``sqrt(var + eps)`` NaN in
    every later number (a corrupt checkpoint, not a model snncc could compile)."""
    for name, array in arrays:
        if not str(name).endswith("running_var"):
            continue
        v = np.asarray(array.detach().cpu() if hasattr(array, "detach") else array, np.float64)
        neg = int(np.count_nonzero(v < 0))
        if neg:
            raise SnnccError(
                f"{where}: invalid BatchNorm statistics: {name}: {neg} negative variance(s) of "
                f"{v.size} (smallest {v.min():g}); running variances are never negative",
                code=WEIGHTS_CODE,
                hint="the checkpoint is corrupt: retrain, or restore the BatchNorm statistics",
                exit_code=2,
            )


# -- the .npz reader ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DataFile:
    """A validated ``.npz``: ``x`` float32 ``[n, *input_shape]``, ``y`` int64 ``[n]`` or None."""

    x: np.ndarray
    y: np.ndarray | None
    path: Path


class _Reader:
    """Error construction for one file: every message starts with the option and the path."""

    def __init__(self, path: Path, option: str, code: str) -> None:
        self.path, self.option, self.code = path, option, code

    def bad(self, problem: str, hint: str | None = None, code: str | None = None) -> SnnccError:
        return SnnccError(
            f"{self.option} {self.path}: {problem}", code=code or self.code, hint=hint, exit_code=2
        )


_NPZ_HINT = "save the data with np.savez(path, x=inputs, y=labels)"
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def _sniff(path: Path) -> str | None:
    """Why ``path`` is certainly not an ``.npz`` (None: it may be one).

    Done before ``np.load`` because its messages mislead: a text file reads as "contains pickled
    (object) data", a truncated archive as "not a zip file".
    """
    with path.open("rb") as f:
        head = f.read(256)
    if not head:
        return "cannot read as .npz: the file is empty (0 bytes)"
    if head.startswith(b"\x93NUMPY"):
        return "cannot read as .npz: it is a single .npy array"
    if head.startswith(b"PK"):
        if not zipfile.is_zipfile(path):
            return "cannot read as .npz: truncated or corrupt (the zip archive has no directory)"
        return None
    try:
        text = head.decode("utf-8").strip()
    except UnicodeDecodeError:
        return "cannot read as .npz: not a zip archive (unrecognised binary format)"
    first = text.splitlines()[0][:40] if text else ""
    return f"cannot read as .npz: a text file (starts with {first!r})"


def _open(r: _Reader) -> dict[str, np.ndarray]:
    """Every array of the archive, read now (a truncated member fails here, named)."""
    if not r.path.exists():
        raise r.bad("no such file", hint="digits, gestures or FILE.npz")
    if r.path.is_dir():
        raise r.bad("is a directory, not an .npz file", hint=_NPZ_HINT)
    if not r.path.is_file():
        raise r.bad("is not a regular file (a device, pipe or socket)", hint=_NPZ_HINT)
    try:
        problem = _sniff(r.path)
    except OSError as e:
        raise r.bad(f"cannot read ({e.strerror or e})") from None
    if problem is not None:
        raise r.bad(problem, hint=_NPZ_HINT)
    try:
        archive = np.load(r.path, allow_pickle=False)
    except _READ_ERRORS as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise r.bad(f"cannot read as .npz ({first})", hint=_NPZ_HINT) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise r.bad("cannot read as .npz: it is a single .npy array", hint=_NPZ_HINT)
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except ValueError as e:
                if "allow_pickle" in str(e) or "Object arrays" in str(e):
                    raise r.bad(
                        f"array {name!r} holds Python objects (dtype object), not numbers",
                        hint="store numeric arrays: " + _NPZ_HINT,
                    ) from None
                raise r.bad(f"array {name!r} cannot be read ({e})", hint=_NPZ_HINT) from None
            except _READ_ERRORS as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
                raise r.bad(f"cannot read as .npz: array {name!r} is truncated or corrupt "
                            f"({first})", hint=_NPZ_HINT) from None  # fmt: skip
    return arrays


def _dtype_name(a: np.ndarray) -> str:
    kinds = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers",
             "M": "dates", "m": "time deltas", "V": "raw records"}  # fmt: skip
    return f"dtype {a.dtype}" + (f" ({kinds[a.dtype.kind]})" if a.dtype.kind in kinds else "")


def _samples(r: _Reader, x: np.ndarray, want: tuple[int, ...]) -> np.ndarray:
    """``x`` as float32 ``[n, *want]``: numeric, the model's shape, finite before and after."""
    if x.dtype.kind not in "biuf":
        raise r.bad(f"array 'x' has {_dtype_name(x)}, not real numbers", hint=_NPZ_HINT)
    if x.ndim == 0:
        raise r.bad(
            f"array 'x' is a scalar, not samples of shape [n, {', '.join(map(str, want))}]",
            hint="pass data in the model's input layout, [n, *input_shape]",
        )
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        shown = list(x.shape[1:])
        raise r.bad(
            f"array 'x': samples have shape {shown}, the model expects {list(want)}",
            hint="pass data in the model's input layout, [n, *input_shape]",
        )
    if len(x) == 0:
        raise r.bad("array 'x' has no samples (shape " + str(list(x.shape)) + ")")
    check_finite([("x", x)], f"{r.option} {r.path}", what="data", code=DATA_CODE)
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    if x.dtype.kind == "f":
        overflow = int(np.isinf(x32).sum())
        if overflow:
            largest = float(np.abs(x).max())
            raise r.bad(
                f"array 'x' has {overflow:,} values beyond float32's range (|v| > "
                f"{FLOAT32_MAX:.3g}; the largest is {largest:.3g}), which become Inf",
                hint="rescale the data; snncc simulates in float32",
                code=DATA_CODE,
            )
    return x32


def _labels(r: _Reader, y: np.ndarray, n: int, num_classes: int | None) -> np.ndarray:
    """``y`` as int64 ``[n]``: integral, one per sample, in ``[0, num_classes)``."""
    if y.dtype.kind not in "biuf":
        raise r.bad(f"array 'y' has {_dtype_name(y)}, not integer class labels")
    if y.ndim != 1 or len(y) != n:
        raise r.bad(
            f"array 'y' must be 1-D with one label per sample ({n} in 'x'), got shape "
            f"{list(y.shape)}",
            hint="class indices, not one-hot rows" if y.ndim == 2 else None,
        )
    if y.dtype.kind == "f":
        check_finite([("y", y)], f"{r.option} {r.path}", what="labels", code=DATA_CODE)
        frac = y[y != np.round(y)]
        if len(frac):
            raise r.bad(
                f"array 'y' holds {len(frac)} non-integer label(s) (e.g. {float(frac[0])!r})",
                hint="labels are class indices 0, 1, …",
            )
        if np.abs(y).max() > 2**53:
            raise r.bad("array 'y' holds labels too large to be class indices")
    labels = y.astype(np.int64)
    if labels.min() < 0:
        raise r.bad(
            f"array 'y' holds negative labels (smallest {int(labels.min())})",
            hint="labels are class indices 0, 1, …",
        )
    if num_classes is not None and labels.max() >= num_classes:
        count = int((labels >= num_classes).sum())
        raise r.bad(
            f"array 'y' holds label {int(labels.max())} ({count} out of range): the model has "
            f"{num_classes} classes (labels 0..{num_classes - 1})",
            hint="use the data the model was trained for, or the model for this data",
        )
    return labels


def read_npz(
    path: str | Path,
    *,
    want: tuple[int, ...],
    option: str,
    code: str,
    require_labels: bool,
    num_classes: int | None = None,
) -> DataFile:
    """Read and validate a user's ``.npz`` for ``option`` (``--eval`` / ``--data``).

    ``x`` must be real numbers of shape ``[n, *want]``, finite and within float32 (``E033``
    otherwise); ``y`` (required when ``require_labels``, else checked when present) must be
    ``n`` integral, non-negative labels below ``num_classes`` (when known). Other problems
    raise ``code`` (exit 2); every message names ``option``, the file and the array.
    """
    r = _Reader(Path(path), option, code)
    arrays = _open(r)
    need = ["x", "y"] if require_labels else ["x"]
    missing = [k for k in need if k not in arrays]
    if missing:
        raise r.bad(
            f"no array {' or '.join(repr(k) for k in missing)} in the file (it has "
            f"{sorted(arrays)}; {option} needs {' and '.join(repr(k) for k in need)})",
            hint=_NPZ_HINT,
        )
    x = _samples(r, arrays["x"], tuple(int(s) for s in want))
    y = arrays.get("y")
    labels = None if y is None else _labels(r, y, len(x), num_classes)
    return DataFile(x=x, y=labels, path=r.path)
