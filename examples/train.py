"""Train a seed-zoo model on an offline data set and save a snncc checkpoint.

    python examples/train.py spikingformer-tiny --data digits --epochs 40 -o model.pt
    python examples/train.py sdt-tiny --data gestures --epochs 30 -o model.pt

AdamW with a cosine learning-rate schedule, cross-entropy, a tqdm progress bar, and a final
evaluation on the held-out test split; the checkpoint records the test accuracy, the data set and
the number of epochs (``snncc.save_checkpoint``). Elastic models (``spec.elastic``) are trained
as the Elastic Spiking Transformer code does: one granularity per batch, sampled with
probabilities proportional to 1, 2, 3, 4 (0.1 / 0.2 / 0.3 / 0.4, small -> full), and the accuracy
of every granularity is recorded. See examples/README.md for the commands that reproduce the
committed checkpoints.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

import snncc.models
from snncc.data import digits, gestures
from snncc.diagnostics import SnnccError
from snncc.loading.checkpoint import save_checkpoint
from snncc.models.elastic import sample_granularity
from snncc.models.registry import ModelSpec


def load_data(spec: ModelSpec, data: str, args: argparse.Namespace) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)`` shaped for ``spec``'s input (checked here)."""
    size = spec.input_shape[-1]
    if data == "digits":
        train = digits("train", size, seed=args.data_seed)
        test = digits("test", size, seed=args.data_seed)
    elif data == "gestures":
        kw = {"T": spec.timesteps, "size": size, "seed": args.data_seed}
        train = gestures(args.n_per_class, split="train", **kw)
        test = gestures(args.test_per_class, split="test", **kw)
    else:
        raise SnnccError(f"unknown data set {data!r}", code="DA003", hint="digits or gestures")
    if tuple(train[0].shape[1:]) != tuple(spec.input_shape):
        raise SnnccError(
            f"{spec.name} expects input {spec.input_shape}, {data} gives {train[0].shape[1:]}",
            code="DA004",
            hint="pick a model whose input matches the data set (see examples/README.md)",
        )
    return train[0], train[1], test[0], test[1]


def elastic_levels(model: nn.Module) -> list[dict[str, int]]:
    """Joint granularities of an elastic model as ``set_granularity`` keyword arguments,
    smallest first (``[{}]`` for a static model).

    ``model.granularities()`` maps each elastic dimension to its *levels* (widths: channels,
    heads, hidden units), but ``set_granularity`` takes granularity *indices* into those lists,
    so joint granularity ``i`` is ``{dim: i}`` for every dimension (clamped to the last index
    of a dimension with fewer levels). Passing the widths themselves would ask for index 64 of
    a four-level MLP and fail, or silently pick the wrong sub-network for small widths.
    """
    if not hasattr(model, "granularities"):
        return [{}]
    counts = {dim: len(levels) for dim, levels in model.granularities().items()}
    if not counts:
        return [{}]
    n = max(counts.values())
    return [{dim: min(i, c - 1) for dim, c in counts.items()} for i in range(n)]


def random_shift(x: np.ndarray, max_shift: int, rng: np.random.Generator, mode: str) -> np.ndarray:
    """Translate each sample by up to ``max_shift`` pixels (padding ``mode``: edge or constant).

    The only augmentation: small translations keep both data sets' labels (a digit or a
    gesture moved by a pixel is the same class) and cut over-fitting on 1-2k samples.
    """
    if max_shift <= 0:
        return x
    m = max_shift
    pad = [(0, 0)] * (x.ndim - 2) + [(m, m), (m, m)]
    padded = np.pad(x, pad, mode=mode)
    h, w = x.shape[-2:]
    dy, dx = rng.integers(0, 2 * m + 1, size=(2, len(x)))
    crops = [p[..., a : a + h, b : b + w] for p, a, b in zip(padded, dy, dx, strict=True)]
    return np.stack(crops)


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on ``(x, y)``."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(x[i : i + batch_size]))
            correct += int((logits.argmax(1).numpy() == y[i : i + batch_size]).sum())
    return correct / len(x)


def train(model: nn.Module, data: tuple[np.ndarray, ...], args: argparse.Namespace) -> None:
    """AdamW + cosine schedule (linear warm-up over the first epoch), cross-entropy loss.

    An elastic model gets one joint granularity per batch from
    :func:`snncc.models.elastic.sample_granularity` (``p = 0.1 / 0.2 / 0.3 / 0.4``, small ->
    full, as the authors' training loop) and is left at full granularity afterwards.
    """
    x_train, y_train = data[0], data[1]
    levels = elastic_levels(model)
    rng = np.random.default_rng(args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = len(x_train) // args.batch_size  # drop the ragged last batch (BatchNorm)
    total = steps_per_epoch * args.epochs

    def lr_at(step: int) -> float:
        if step < steps_per_epoch:
            return (step + 1) / steps_per_epoch
        return 0.5 * (1.0 + math.cos(math.pi * step / total))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    loss_fn = nn.CrossEntropyLoss()
    bar = tqdm(total=total, unit="batch", dynamic_ncols=True)
    pad_mode = "edge" if args.data == "digits" else "constant"
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(x_train))
        for i in range(steps_per_epoch):
            idx = order[i * args.batch_size : (i + 1) * args.batch_size]
            if len(levels) > 1:
                model.set_granularity(**levels[sample_granularity(rng, len(levels))])
            xb = random_shift(x_train[idx], args.shift, rng, pad_mode)
            loss = loss_fn(model(torch.from_numpy(xb)), torch.from_numpy(y_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.set_description(f"epoch {epoch + 1}/{args.epochs}")
            bar.set_postfix(loss=f"{loss.item():.3f}")
            bar.update()
    bar.close()
    if len(levels) > 1:
        model.set_granularity(**levels[-1])


def save(path: str, model: nn.Module, spec: ModelSpec, metrics: dict[str, Any]) -> None:
    """Write the snncc checkpoint (``snncc.loading.checkpoint.save_checkpoint``): weights plus the
    registry name and config, so ``snncc.loading.checkpoint.load_checkpoint`` rebuilds the model
    with a weights-only load and ``snncc inspect`` shows ``metrics``."""
    save_checkpoint(
        path,
        model,
        spec.name,
        dict(spec.config),
        tuple(spec.input_shape),
        spec.timesteps,
        time_axis=spec.time_axis,
        metrics=metrics,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="seed-zoo model name (see `snncc models`)")
    p.add_argument("--data", required=True, choices=("digits", "gestures"))
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("-o", "--output", required=True, help="checkpoint path (.pt)")
    p.add_argument("--force", action="store_true", help="replace an existing checkpoint")
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch-order seed")
    p.add_argument("--data-seed", type=int, default=0, help="data split / generation seed")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--shift", type=int, default=1, help="random translation (pixels)")
    p.add_argument("--n-per-class", type=int, default=128, help="gestures: training samples")
    p.add_argument("--test-per-class", type=int, default=64, help="gestures: test samples")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if Path(args.output).exists() and not args.force:  # checked before minutes of training
        print(f"train.py: error: {args.output} exists (fix: pass --force to replace it, or "
              "choose another -o)", file=sys.stderr)  # fmt: skip
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    spec = snncc.models.spec(args.model)
    model = snncc.models.create(args.model)
    data = load_data(spec, args.data, args)
    start = time.perf_counter()
    train(model, data, args)
    minutes = (time.perf_counter() - start) / 60
    levels = elastic_levels(model)
    per_level = []
    for level in levels:
        if level:
            model.set_granularity(**level)
        per_level.append(evaluate(model, data[2], data[3]))
    metrics: dict[str, Any] = {
        "test_accuracy": per_level[-1],
        "data": args.data,
        "epochs": args.epochs,
        "seed": args.seed,
        "train_minutes": round(minutes, 2),
    }
    if len(levels) > 1:
        # Index g of the list is joint granularity g (smallest first); the widths say what g
        # means for this model, so `snncc inspect` output can be read without the code.
        metrics["test_accuracy_per_granularity"] = per_level
        metrics["granularity_levels"] = {k: list(v) for k, v in model.granularities().items()}
    save(args.output, model, spec, metrics)
    shown = " / ".join(f"{a:.4f}" for a in per_level)
    print(f"{args.model}: test accuracy {shown} ({minutes:.1f} min) -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
