"""Data for firing-rate measurement: datasets in the model's own layout, turned into feeds.

Firing rates depend on the data, so the energy command needs real samples: the bundled digits,
the synthetic gestures, or the user's ``.npz`` (an array ``x`` in the model's input layout,
``[n, *input_shape]``). Random inputs are allowed only when asked for, because random pixels
give firing rates no deployed model will see. A file is read by the same validating reader as
``compile --eval`` (:func:`snncc.data.files.read_npz`): NaN, Inf or float32 overflow in ``x``
would make every firing rate and energy figure NaN, so it is refused (``E033``) before any run;
labels ``y``, when the file has them, must fit the model's readout.

Layout: ``graph.meta["input_shape"]`` is one sample in the *model's* layout and
``graph.meta["time_axis"]`` says where time is in ``[B, …]`` (None: a static sample). The
reference wants ``[T, B, …]`` for per-step inputs and ``[B, …]`` for static ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind

DATASETS = ("digits", "gestures")


def _bad(message: str, hint: str | None = None) -> SnnccError:
    return SnnccError(message, code="EN001", hint=hint, exit_code=2)


def _single_input(g: Graph) -> O.Input:
    if len(g.inputs) != 1:
        raise _bad(f"energy analysis needs a graph with one input, got {list(g.inputs)}")
    return g.op(g.inputs[0])


def model_input_shape(g: Graph) -> tuple[int, ...]:
    """One sample's shape in the model's layout (time included when ``time_axis`` is set)."""
    if "input_shape" in g.meta:
        return tuple(int(s) for s in g.meta["input_shape"])
    op = _single_input(g)
    return tuple(op.shape)


def readout_width(g: Graph) -> int | None:
    """The number of classes: the last dimension of the graph's single output (None if unclear).

    Why from the graph: it is what the model actually produces, also for pickled modules and
    ``.pt2`` programs that record no ``num_classes``; labels in a data file are checked against it.
    """
    if len(g.outputs) != 1:
        return None
    shape = tuple(g.type(g.outputs[0]).shape)
    return int(shape[-1]) if shape else None


def _check(x: np.ndarray, want: tuple[int, ...], what: str) -> np.ndarray:
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise _bad(
            f"{what}: samples have shape {list(x.shape[1:])}, the model expects {list(want)}",
            hint="pass data in the model's input layout, [n, *input_shape]",
        )
    return x


def _dataset(name: str, want: tuple[int, ...], n: int, timesteps: int) -> np.ndarray:
    from snncc import data

    if name == "digits":
        if len(want) != 3 or want[0] != 1 or want[1] != want[2]:
            raise _bad(f"digits are [1, s, s] images; the model expects {list(want)}")
        x, _ = data.digits("test", size=want[-1])
        return x[:n]
    if len(want) != 4 or want[1] != 2 or want[0] != timesteps:
        raise _bad(f"gestures are [T, 2, s, s] event frames; the model expects {list(want)}")
    per_class = max(1, math.ceil(n / len(data.GESTURE_CLASSES)))
    x, _ = data.gestures(per_class, T=timesteps, size=want[-1], split="test")
    return x[:n]


def load_samples(
    source: str | None, g: Graph, n: int, *, random: bool = False, seed: int = 0
) -> tuple[np.ndarray, str]:
    """``n`` samples ``[n, *input_shape]`` and a description of where they came from."""
    if n < 1:
        raise _bad(f"--samples must be >= 1, got {n}")
    want = model_input_shape(g)
    timesteps = int(g.meta.get("timesteps", 1))
    if source is None:
        if not random:
            raise _bad(
                "firing rates need data",
                hint="pass --data digits|gestures|FILE.npz, or --random for random inputs",
            )
        rng = np.random.default_rng(seed)
        if _single_input(g).kind_in is Kind.SPIKE:
            x = (rng.random((n, *want)) < 0.2).astype(np.float32)
        else:
            x = rng.standard_normal((n, *want)).astype(np.float32)
        return x, f"random (seed {seed}, {n} samples)"
    if source in DATASETS:
        x = _check(_dataset(source, want, n, timesteps), want, source)
        return x, f"{source} test split ({len(x)} samples)"
    from snncc.data.files import read_npz

    data = read_npz(
        source, want=want, option="--data", code="EN001", require_labels=False,
        num_classes=readout_width(g),
    )  # fmt: skip
    x = data.x[:n]
    return x, f"{source} ({len(x)} samples)"


def to_feeds(g: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Model-layout samples ``[B, …]`` -> reference feeds for the graph's single input."""
    op = _single_input(g)
    time_axis = g.meta.get("time_axis")
    if time_axis is not None:
        x = np.moveaxis(x, int(time_axis), 0)  # [B, T, …] -> [T, B, …]
    elif op.temporal:
        T = int(g.meta.get("timesteps", 1))
        x = np.broadcast_to(x, (T, *x.shape))  # a static sample presented at every step
    return {g.inputs[0]: x}


def batches(g: Graph, x: np.ndarray, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Reference feeds for consecutive slices of ``x`` of at most ``batch_size`` samples."""
    for i in range(0, len(x), max(1, batch_size)):
        yield to_feeds(g, x[i : i + batch_size])
