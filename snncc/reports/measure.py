"""Measurements a compile report carries besides the partition: eval data and SOPs per layer.

``--eval digits|gestures|FILE.npz`` names labelled data in the model's input layout
(``[n, *input_shape]``). The bundled datasets are generated here at the model's size and
timesteps; a file must hold arrays ``x`` and ``y``. The same samples drive the SOP count, so the
report's SOPs are measured firing activity when data is given, and an upper bound otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph

#: Gesture samples per class for ``--eval gestures`` (the test split is generated, not stored).
GESTURES_PER_CLASS = 16
#: Samples simulated for measured SOPs (firing rates settle long before this).
SOP_SAMPLES = 16
#: Calibration samples for ``quantize`` (bounds of the host encoding currents).
CALIBRATION_SAMPLES = 64


def _bad(message: str, hint: str | None = None) -> SnnccError:
    return SnnccError(message, code="CO030", hint=hint, exit_code=2)


def _check(x: np.ndarray, y: np.ndarray, want: tuple[int, ...], what: str) -> None:
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise _bad(
            f"--eval {what}: samples have shape {list(x.shape[1:])}, the model expects "
            f"{list(want)}",
            hint="pass data in the model's input layout, [n, *input_shape]",
        )
    if y.ndim != 1 or len(y) != len(x):
        raise _bad(f"--eval {what}: y must be 1-D with one label per sample, got {y.shape}")


def _dataset(name: str, want: tuple[int, ...], timesteps: int) -> tuple[np.ndarray, np.ndarray]:
    from snncc import data

    if name == "digits":
        if len(want) != 3 or want[0] != 1:
            raise _bad(f"digits are [1, s, s] images; the model expects {list(want)}")
        return data.digits("test", size=want[-1])
    if len(want) != 4 or want[1] != 2:
        raise _bad(f"gestures are [T, 2, s, s] event frames; the model expects {list(want)}")
    return data.gestures(GESTURES_PER_CLASS, T=want[0], size=want[-1], split="test")


def eval_data(spec: str, loaded: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """``(x, y, description)`` for ``--eval spec``; shapes are checked against the model."""
    want = tuple(int(s) for s in loaded.input_shape)
    if spec in ("digits", "gestures"):
        x, y = _dataset(spec, want, int(loaded.timesteps))
        desc = f"{spec} test split"
    else:
        if not Path(spec).is_file():
            raise _bad(f"--eval {spec!r}: no such file", hint="digits, gestures or FILE.npz")
        try:
            with np.load(spec, allow_pickle=False) as z:
                if "x" not in z.files or "y" not in z.files:
                    raise _bad(f"--eval {spec}: needs arrays 'x' and 'y', has {z.files}")
                x, y = np.asarray(z["x"], dtype=np.float32), np.asarray(z["y"])
        except (OSError, ValueError) as e:
            raise _bad(f"--eval {spec}: cannot read as .npz ({e})") from e
        desc = Path(spec).name
    _check(x, y, want, spec)
    return x, y, f"{desc} ({len(y)} samples)"


def _train_samples(spec: str, want: tuple[int, ...]) -> np.ndarray:
    """Calibration inputs: the *train* split of a bundled dataset, else the file's first rows."""
    from snncc import data

    if spec == "digits":
        return data.digits("train", size=want[-1])[0][:CALIBRATION_SAMPLES]
    if spec == "gestures":
        per_class = max(1, CALIBRATION_SAMPLES // len(data.GESTURE_CLASSES))
        return data.gestures(per_class, T=want[0], size=want[-1], split="train")[0]
    with np.load(spec, allow_pickle=False) as z:
        return np.asarray(z["x"][:CALIBRATION_SAMPLES], dtype=np.float32)


def reference_layout(g: Graph, x: np.ndarray) -> np.ndarray:
    """Model-layout samples ``[n, *input_shape]`` -> reference layout ``[n, …]`` / ``[T, n, …]``."""
    from snncc.analysis.feeds import to_feeds

    return np.ascontiguousarray(to_feeds(g, x)[g.inputs[0]])


def calibration_feeds(spec: str, loaded: Any, g: Graph) -> dict[str, np.ndarray]:
    """Reference feeds for ``quantize``'s ``ctx.config["calibration"]`` (see :func:`eval_data`).

    Why the train split: calibrating on the samples the accuracy is measured on would flatter
    the quantized accuracy. A user file has no split, so its first rows are used (noted).
    """
    eval_data(spec, loaded)  # validates the spec and shapes first, with the same messages
    x = _train_samples(spec, tuple(int(s) for s in loaded.input_shape))
    return {g.inputs[0]: reference_layout(g, x)}


def measure_sops(g_traced: Graph, x: np.ndarray | None) -> dict[str, Any]:
    """Synaptic operations per sample per layer (Linear/Conv), measured or bounded.

    With data, firing rates come from the float reference on the first :data:`SOP_SAMPLES`
    samples (``snncc.analysis.energy``); without, each layer's bound is its ANN-equivalent
    FLOPs times the steps it runs (every input spiking at every step).
    """
    from snncc.analysis.energy import analyze, prepare
    from snncc.analysis.sops import costed_layers

    g = prepare(g_traced)
    T = int(g.meta.get("timesteps", 1))
    if x is None:
        rows = [
            {"name": lay.node, "op": lay.op, "flops": lay.flops,
             "sops": float(lay.flops * (T if lay.temporal else 1)), "klass": None}
            for lay in costed_layers(g)
        ]  # fmt: skip
        return {"source": "bound (every input spikes at every step)", "layers": rows}
    rep = analyze(g, x[:SOP_SAMPLES], batch_size=8)
    rows = [
        {"name": c.node, "op": c.op, "flops": c.flops, "sops": float(c.sops), "klass": c.klass}
        for c in rep.layers
    ]
    return {"source": f"measured on {min(len(x), SOP_SAMPLES)} samples", "layers": rows}
