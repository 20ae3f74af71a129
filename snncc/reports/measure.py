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


def _dataset(name: str, want: tuple[int, ...], timesteps: int) -> tuple[np.ndarray, np.ndarray]:
    from snncc import data

    if name == "digits":
        if len(want) != 3 or want[0] != 1:
            raise _bad(f"digits are [1, s, s] images; the model expects {list(want)}")
        return data.digits("test", size=want[-1])
    if len(want) != 4 or want[1] != 2:
        raise _bad(f"gestures are [T, 2, s, s] event frames; the model expects {list(want)}")
    return data.gestures(GESTURES_PER_CLASS, T=want[0], size=want[-1], split="test")


def num_classes(loaded: Any, g: Graph | None = None) -> int | None:
    """The model's number of classes, for checking labels (None when it cannot be told).

    The graph's readout width is authoritative (what the model produces); without a graph,
    the config's ``num_classes`` or the module's ``num_classes`` attribute (zoo models have
    both) stand in, so labels are checked even before tracing.
    """
    if g is not None:
        from snncc.analysis.feeds import readout_width

        width = readout_width(g)
        if width is not None:
            return width
    for value in (
        (getattr(loaded, "config", None) or {}).get("num_classes"),
        getattr(getattr(loaded, "module", None), "num_classes", None),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _read_file(spec: str, loaded: Any, g: Graph | None) -> Any:
    """The validated ``--eval`` file (:func:`snncc.data.files.read_npz`, shared with energy)."""
    from snncc.data.files import read_npz

    return read_npz(
        spec, want=tuple(int(s) for s in loaded.input_shape), option="--eval", code="CO030",
        require_labels=True, num_classes=num_classes(loaded, g),
    )  # fmt: skip


def eval_data(spec: str, loaded: Any, g: Graph | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(x, y, description)`` for ``--eval spec``; shapes, values and labels are checked.

    ``g`` (the traced graph), when given, supplies the readout width the labels must fit;
    otherwise the recorded ``num_classes`` does (see :func:`num_classes`).
    """
    want = tuple(int(s) for s in loaded.input_shape)
    if spec in ("digits", "gestures"):
        x, y = _dataset(spec, want, int(loaded.timesteps))
        if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
            raise _bad(
                f"--eval {spec}: samples have shape {list(x.shape[1:])}, the model expects "
                f"{list(want)}",
                hint="pass data in the model's input layout, [n, *input_shape]",
            )
        classes = num_classes(loaded, g)
        if classes is not None and int(y.max()) >= classes:
            raise _bad(
                f"--eval {spec}: the dataset has {int(y.max()) + 1} classes but the model "
                f"{classes}",
                hint="evaluate on the data the model was trained for",
            )
        return x, y, f"{spec} test split ({len(y)} samples)"
    data = _read_file(spec, loaded, g)
    return data.x, data.y, f"{Path(spec).name} ({len(data.y)} samples)"


def _train_samples(spec: str, want: tuple[int, ...], loaded: Any, g: Graph) -> np.ndarray:
    """Calibration inputs: the *train* split of a bundled dataset, else the file's first rows."""
    from snncc import data

    if spec == "digits":
        return data.digits("train", size=want[-1])[0][:CALIBRATION_SAMPLES]
    if spec == "gestures":
        per_class = max(1, CALIBRATION_SAMPLES // len(data.GESTURE_CLASSES))
        return data.gestures(per_class, T=want[0], size=want[-1], split="train")[0]
    return _read_file(spec, loaded, g).x[:CALIBRATION_SAMPLES]


def reference_layout(g: Graph, x: np.ndarray) -> np.ndarray:
    """Model-layout samples ``[n, *input_shape]`` -> reference layout ``[n, …]`` / ``[T, n, …]``."""
    from snncc.analysis.feeds import to_feeds

    return np.ascontiguousarray(to_feeds(g, x)[g.inputs[0]])


def calibration_feeds(spec: str, loaded: Any, g: Graph) -> dict[str, np.ndarray]:
    """Reference feeds for ``quantize``'s ``ctx.config["calibration"]`` (see :func:`eval_data`).

    Why the train split: calibrating on the samples the accuracy is measured on would flatter
    the quantized accuracy. A user file has no split, so its first rows are used (noted).
    """
    if spec in ("digits", "gestures"):
        eval_data(spec, loaded, g)  # validates the spec and shapes first, with the same messages
    x = _train_samples(spec, tuple(int(s) for s in loaded.input_shape), loaded, g)
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
