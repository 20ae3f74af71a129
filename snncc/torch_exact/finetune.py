"""``snncc finetune``: train a model through its target program, write a checkpoint that compiles
back to exactly the trained integers.

The chain (docs/fidelity.md §4)::

    checkpoint ──trace, front passes, quantize (calibrated on the train split)──► program q
    q ──finetune (snncc.torch_exact.train: integers on q's grid)──► program q'
    q' ──map each deployed integer weight back into the checkpoint's float weight──► model_ft.pt
    model_ft.pt ──snncc compile (quantize honours the pinned grid)──► q'  (verified before writing)

Why the grid is pinned (:mod:`snncc.quant.pins`): the quantizer decides a stream's scale and a
layer's exponent from the weights themselves, so new weights could move the grid and the same
float values would round to other integers. Why weights are mapped back rather than stored as
integers: the checkpoint stays an ordinary snncc checkpoint (the float model still loads,
traces and trains in PyTorch), and ``compile`` really re-derives every integer from it.

Mapping back: the float weight the quantizer reads is the module's weight times one factor per
output channel (BatchNorm folding; :func:`snncc.passes.quantize.prepare_streams` gives it), and
the integer is ``rint(w_pre · c · unit / 2^e)`` (Loihi) or the stored weight at the ring-buffer
resolution (SpiNNaker). The inverse puts the new float weight on the grid point itself, half a
step away from either rounding boundary, so float32 storage and re-folding cannot move it.
A deployed weight whose pre-quantization form is not a per-channel multiple of one module
parameter (a rewrite mixed several) cannot be mapped: ``FT003``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.ir.ops import op_equal

#: Relative agreement required between the traced weight and module weight × channel factor.
RATIO_RTOL = 1e-5


@dataclass
class Setup:
    """A model file prepared for fine-tuning: its front graph, program and data."""

    loaded: Any
    target: str
    front: Graph  # after the front passes (float)
    prepared: Graph  # front + the quantizer's rewrites: the float weights quantize reads
    program: Graph  # quantized for ``target``
    calibration: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)


def _fail(message: str, code: str, hint: str | None = None, exit_code: int = 2) -> SnnccError:
    return SnnccError(message, code=code, hint=hint, exit_code=exit_code)


def prepare(model: str, target: str, data: str, **load: Any) -> Setup:
    """Load ``model`` and quantize it for ``target`` as ``snncc compile --eval data`` does."""
    from snncc.loading import resolve_model, to_graph
    from snncc.passes.manager import PassContext, run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE
    from snncc.passes.quantize import prepare_streams, quantize
    from snncc.reports.measure import calibration_feeds

    loaded = resolve_model(model, **load)
    if loaded.source not in ("checkpoint", "zoo") or loaded.module is None:
        raise _fail(
            f"{model}: fine-tuning writes an snncc checkpoint, and this is a {loaded.source} "
            "model (no zoo architecture to rebuild it from)",
            "FT001",
            "save the model with snncc.save_checkpoint (a registered zoo architecture) first",
        )
    from snncc import models

    if models.spec(loaded.arch).elastic:
        raise _fail(
            f"{model}: {loaded.arch} is elastic; its deployed program is one width slice",
            "FT001",
            "fine-tune a fixed-width model (an elastic slice exported with its weights)",
        )
    front, _ = run_pipeline(to_graph(loaded), FRONT_PIPELINE)
    calib = calibration_feeds(data, loaded, front)
    config = {"target": target, "calibration": calib}
    prepared = front.copy()
    prepare_streams(prepared, PassContext(config=dict(config)), target)
    program, _ = run_pipeline(front, [quantize], PassContext(config=dict(config)))
    return Setup(loaded, target, front, prepared, program, calib)


def _channel_factor(w_pre: np.ndarray, w_mod: np.ndarray, node: str) -> np.ndarray:
    """``a`` with ``w_pre[o] = a[o] · w_mod[o]`` for every output channel ``o`` (checked)."""
    if w_pre.shape != w_mod.shape:
        raise _fail(
            f"{node}: the deployed weight {list(w_pre.shape)} is not the module weight "
            f"{list(w_mod.shape)} (a rewrite reshaped it)",
            "FT003",
            "fine-tuning maps integers back only through per-channel factors (BatchNorm folding)",
        )
    rows_pre = w_pre.reshape(len(w_pre), -1).astype(np.float64)
    rows_mod = w_mod.reshape(len(w_mod), -1).astype(np.float64)
    pick = np.argmax(np.abs(rows_mod), axis=1)
    den = rows_mod[np.arange(len(rows_mod)), pick]
    num = rows_pre[np.arange(len(rows_pre)), pick]
    a = np.divide(num, den, out=np.zeros_like(num), where=den != 0)
    if not np.allclose(rows_pre, rows_mod * a[:, None], rtol=RATIO_RTOL, atol=0.0):
        raise _fail(
            f"{node}: the deployed weight is not the module weight times one factor per output "
            "channel (a rewrite combined weights)",
            "FT003",
            "fine-tuning maps integers back only through per-channel factors (BatchNorm folding)",
        )
    return a


def _grid_values(q_tuned: Graph, node: str, target: str) -> np.ndarray:
    """The float (quantizer-input) value of each trained integer of ``node``."""
    op, meta = q_tuned.op(node), q_tuned.node_meta(node)["quant"]
    w = np.asarray(op.weight, np.float64)
    unit = float(meta.get("input_unit", 1.0))
    if target == "loihi":
        # The IR holds mantissas W_q for Dense and Conv alike (the Lava emitter folds a conv's
        # exponent into its weights later: snncc.reference.loihi_kernels.conv_weights).
        return w * 2.0 ** int(meta["weight_exp"]) / (float(meta["scale"]) * unit)
    from snncc.backends.spinnaker.constraints import SPINNAKER

    shifts = np.where(w >= 0, int(meta["exc_shift"]), int(meta["inh_shift"]))
    raw = w * np.exp2(shifts)  # stored weight × ring-buffer resolution, in s16.15 raw units
    return raw / (float(1 << SPINNAKER.frac_bits) * float(meta["scale"]))


def tuned_state_dict(setup: Setup, tuned: Graph) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict with every changed deployed weight mapped back (see module)."""
    module = setup.loaded.module
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    for n in tuned.topo_order():
        meta = tuned.node_meta(n).get("quant") or {}
        if "stream" not in meta or not hasattr(tuned.op(n), "weight"):
            continue
        if np.array_equal(tuned.op(n).weight, setup.program.op(n).weight):
            continue  # unchanged: the original float weight already rounds to it
        key = f"{n}.weight"
        if key not in state:
            raise _fail(
                f"{n}: trained integers changed but the checkpoint has no parameter {key!r}",
                "FT003",
                "fine-tuning maps integers back to module weights named like the IR node",
            )
        w_mod = state[key].numpy()
        a = _channel_factor(np.asarray(setup.prepared.op(n).weight), w_mod, n)
        target_pre = _grid_values(tuned, n, setup.target)
        zero = a == 0
        safe = np.where(zero, 1.0, a).reshape((-1,) + (1,) * (w_mod.ndim - 1))
        new = target_pre / safe
        if np.any(zero) and np.any(target_pre[zero] != 0):
            raise _fail(
                f"{n}: an output channel with a zero BatchNorm gain got non-zero trained weights",
                "FT003",
            )
        new[zero] = 0.0
        state[key] = torch.from_numpy(new.astype(w_mod.dtype))
    return state


def deployed(g: Graph) -> list[str]:
    """The nodes of a quantized graph that run on the chip (integer weights and neurons)."""
    return [n for n in g.topo_order() if "stream" in (g.node_meta(n).get("quant") or {})]


def first_difference(a: Graph, b: Graph) -> str | None:
    """The first deployed node whose op (integers, thresholds, parameters) differs, or None.

    Host ops are float and may differ: a host copy of a deployed current (the readout reading a
    residual stream) takes the checkpoint's new float weight, where training kept it frozen.
    """
    if deployed(a) != deployed(b):
        return f"different deployed nodes: {sorted(set(deployed(a)) ^ set(deployed(b)))[:3]}"
    for n in deployed(a):
        if not op_equal(a.op(n), b.op(n)):
            return n
    return None


def checkpoint_bytes(
    setup: Setup,
    tuned: Graph,
    metrics: dict[str, Any],
    *,
    verify: Callable[[Path], Graph],
) -> tuple[bytes, Graph]:
    """The fine-tuned checkpoint file, proven to compile back to ``tuned``, and its program.

    ``verify(path)`` quantizes a checkpoint file as ``snncc compile`` will; the file is written
    to a private temporary directory, verified, and returned as bytes for the caller's atomic
    writer (so nothing half-checked ever reaches the output path).
    """
    import tempfile

    from snncc.loading.checkpoint import save_checkpoint
    from snncc.quant.pins import record_of

    loaded = setup.loaded
    module = loaded.module
    original = {k: v.detach().clone() for k, v in module.state_dict().items()}
    module.load_state_dict(tuned_state_dict(setup, tuned))
    try:
        with tempfile.TemporaryDirectory(prefix="snncc-finetune-") as tmp:
            path = Path(tmp) / "model_ft.pt"
            save_checkpoint(
                path,
                module,
                loaded.arch,
                loaded.config,
                loaded.input_shape,
                loaded.timesteps,
                time_axis=loaded.time_axis,
                metrics=metrics,
                quantization=record_of(setup.program),
            )
            compiled = verify(path)
            diff = first_difference(compiled, tuned)
            if diff is not None:
                raise _fail(
                    "the fine-tuned checkpoint would compile to other integers (first at "
                    f"{diff}); nothing was written",
                    "FT900",
                    "report this as a bug with the command line",
                    exit_code=70,
                )
            return path.read_bytes(), compiled
    finally:
        module.load_state_dict(original)


#: Gesture training samples per class (the bundled generator makes any number).
GESTURES_TRAIN_PER_CLASS = 32


def train_split(spec: str, loaded: Any) -> tuple[np.ndarray, np.ndarray]:
    """The bundled dataset's *train* split at the model's size (the test split is for accuracy)."""
    from snncc import data

    want = tuple(int(s) for s in loaded.input_shape)
    if spec == "digits":
        return data.digits("train", size=want[-1])
    if spec == "gestures":
        return data.gestures(GESTURES_TRAIN_PER_CLASS, T=want[0], size=want[-1], split="train")
    raise _fail(f"--data {spec}: not a bundled dataset", "FT002", "use digits or gestures")


@dataclass
class Outcome:
    """What a fine-tune did: accuracies before and after, the checkpoint bytes, what changed."""

    before: Any  # snncc.quant.accuracy.AccuracyReport (float and target accuracy)
    after: Any
    losses: list[float]
    changed: int  # deployed integers that changed
    total: int  # deployed integers
    data: bytes


def finetune_model(
    model: str,
    target: str,
    data: str,
    *,
    epochs: int,
    lr: float,
    batch: int = 64,
    train_samples: int | None = None,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
    **load: Any,
) -> Outcome:
    """Fine-tune ``model`` for ``target`` on ``data`` and build its verified checkpoint."""
    from snncc.quant.accuracy import evaluate_accuracy
    from snncc.reports.measure import eval_data, reference_layout
    from snncc.torch_exact.train import finetune

    setup = prepare(model, target, data, **load)
    x_test, y_test, _ = eval_data(data, setup.loaded, setup.front)
    x_train, y_train = train_split(data, setup.loaded)
    if train_samples is not None:
        x_train, y_train = x_train[:train_samples], y_train[:train_samples]
    feeds = reference_layout(setup.front, x_test)
    before = evaluate_accuracy(setup.front, setup.program, feeds, y_test, target)
    losses: list[float] = []

    def tick(epoch: int, loss: float) -> None:
        losses.append(loss)
        if progress is not None:
            progress(epoch, loss)

    tuned = finetune(
        setup.program, x_train, y_train, epochs=epochs, lr=lr, batch=batch, seed=seed,
        progress=tick,
    )  # fmt: skip
    changed = total = 0
    for n in tuned.topo_order():
        if "stream" in (tuned.node_meta(n).get("quant") or {}) and hasattr(tuned.op(n), "weight"):
            new, old = np.asarray(tuned.op(n).weight), np.asarray(setup.program.op(n).weight)
            changed += int(np.sum(new != old))
            total += new.size
    metrics: dict[str, Any] = {
        "finetune": {
            "target": target,
            "data": data,
            "epochs": int(epochs),
            "lr": float(lr),
            "train_samples": len(x_train),
            "accuracy_before": float(before.quant_acc),
            "float_accuracy": float(before.float_acc),
        }
    }

    def verify(path: Path) -> Graph:
        return prepare(str(path), target, data, **load).program

    blob, compiled = checkpoint_bytes(setup, tuned, metrics, verify=verify)
    # Accuracy of what `snncc compile` will deploy from the file (its host copies included).
    after = evaluate_accuracy(setup.front, compiled, feeds, y_test, target)
    return Outcome(before, after, losses, changed, total, blob)
