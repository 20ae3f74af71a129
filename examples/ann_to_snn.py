"""ANN -> SNN on digits: train a small CNN, export ONNX, convert to ExpG-IF spikes, compare.

1. train a small torch CNN (Conv-ReLU, a residual Conv-ReLU, average pool, Linear-ReLU, Linear)
   on scikit-learn's digits (8x8, bundled: no download), a few seconds on a CPU;
2. export it to ONNX (torch's TorchScript exporter, a fixed 1x1x8x8 input);
3. ``snncc convert ann.onnx --timesteps T --bits K --calibrate digits -o snn.pt``: one
   power-of-two threshold per ReLU calibrated on the *train* split, ExpG-IF neurons (snncc.nn's
   grouped exponential coding), layers pipelined in groups of K steps;
4. load ``snn.pt`` the way ``snncc compile`` does (``snncc.loading`` plus the front passes) and
   run the bit-exact float reference interpreter on the whole test split;
5. ``snncc compile snn.pt --target loihi --eval digits``: every layer becomes Loihi 2's
   programmable ExpG-IF neuron (integer weights, thresholds and a one-group schedule); the
   compile report holds the bit-accurate Loihi reference's accuracy on the whole test split;
6. ``snncc run BUILD --data digits --samples N --check``: the emitted Lava program on ``N`` test
   digits, every neuron's spikes compared with that reference (needs the Lava runtime,
   ``make setup``; ``--lava-samples 0`` skips it);
7. print the float ANN, the K-bit quantized ANN, the SNN and the Loihi accuracy, how many test
   samples give SNN outputs bit-identical to the quantized ANN (all of them: the conversion is
   lossless) and the Lava parity verdict.

    python examples/ann_to_snn.py [--bits 4] [--epochs 15] [--lava-samples 16] [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from snncc import data
from snncc.cli import main as snncc

ROOT = Path(__file__).resolve().parent.parent


class CNN(torch.nn.Module):
    """The ANN: every op is one the converter reads (docs/interop.md)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.c2 = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.pool = torch.nn.AvgPool2d(2)
        self.fc = torch.nn.Linear(16 * 4 * 4, 64)
        self.head = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.bn1(self.c1(x)))
        b = torch.relu(self.c2(a)) + a
        h = torch.relu(self.fc(torch.flatten(self.pool(b), 1)))
        return self.head(h)


def train(epochs: int, seed: int) -> CNN:
    torch.manual_seed(seed)
    x, y = data.digits("train", size=8)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    model = CNN()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(xs))
        for i in range(0, len(xs), 64):
            idx = perm[i : i + 64]
            loss = torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def export_onnx(model: CNN, path: Path) -> None:
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter (no onnxscript needed)
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), buf, dynamo=False)
    path.write_bytes(buf.getvalue())


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, -1) == y))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bits", type=int, default=4, help="bits per activation (default 4)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lava-samples", type=int, default=16,
                   help="test digits run on Lava with --check (0: skip; default 16)")  # fmt: skip
    p.add_argument("--out", default=str(ROOT / "out" / "ann2snn"))
    args = p.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    print("1. training the CNN on digits (train split)", flush=True)
    model = train(args.epochs, args.seed)
    x_test, y_test = data.digits("test", size=8)
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x_test)).numpy()

    print(f"2. exporting {out / 'ann.onnx'}", flush=True)
    export_onnx(model, out / "ann.onnx")

    from snncc.interop.ann2snn import ann_forward, levels
    from snncc.interop.onnx_read import read_onnx

    ann = read_onnx(out / "ann.onnx")
    _, out_level = levels(ann)
    T = (out_level - 1) * args.bits + 1
    argv = ["convert", str(out / "ann.onnx"), "--timesteps", str(T), "--bits", str(args.bits),
            "--calibrate", "digits", "-o", str(out / "snn.pt"), "--force"]  # fmt: skip
    print(f"3. $ snncc {' '.join(argv)}", flush=True)
    if snncc(argv) != 0:
        return 1

    print("4. the SNN through snncc's loader and front passes, float reference on the test split")
    from snncc.loading import resolve_model, to_graph
    from snncc.passes.manager import run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE
    from snncc.reference import run

    loaded = resolve_model(str(out / "snn.pt"))
    graph, _ = run_pipeline(to_graph(loaded), FRONT_PIPELINE)
    x = x_test.astype(np.float64)
    snn_logits = np.concatenate(
        [run(graph, {graph.inputs[0]: x[i : i + 64]}).outputs[graph.outputs[0]]
         for i in range(0, len(x), 64)]
    )  # fmt: skip
    ann_logits, _ = ann_forward(ann, x)
    q_logits, _ = ann_forward(ann, x, thetas=loaded.config["thetas"], bits=args.bits)
    same = int(np.sum(np.all(snn_logits == q_logits, axis=-1)))

    build = out / "loihi"
    argv = ["compile", str(out / "snn.pt"), "--target", "loihi", "--budget", "8MiB",
            "--eval", "digits", "-o", str(build), "--force"]  # fmt: skip
    print(f"5. $ snncc {' '.join(argv)}", flush=True)
    if snncc(argv) != 0:
        return 1
    loihi = json.loads((build / "report.json").read_text())["accuracy"]
    parity = "skipped (--lava-samples 0)"
    if args.lava_samples > 0:
        argv = ["run", str(build), "--data", "digits", "--samples", str(args.lava_samples),
                "--check"]  # fmt: skip
        print(f"6. $ snncc {' '.join(argv)}", flush=True)
        code = snncc(argv)
        if code != 0:
            return code
        parity = f"every spike equals the Loihi reference on {args.lava_samples} test digits"

    print(f"\n{len(x)} test digits, T = {T} steps, K = {args.bits} bits:")
    print(f"  float ANN (torch)          {accuracy(torch_logits, y_test):.1%}")
    print(f"  float ANN (snncc kernels)  {accuracy(ann_logits, y_test):.1%}")
    print(f"  {args.bits}-bit quantized ANN       {accuracy(q_logits, y_test):.1%}")
    print(f"  ExpG-IF SNN (reference)    {accuracy(snn_logits, y_test):.1%}")
    print(f"  Loihi 2 (bit-accurate)     {loihi['quantized']:.1%}  ({loihi['samples']} samples)")
    print(f"  SNN outputs bit-identical to the quantized ANN on {same}/{len(x)} samples")
    print(f"  Lava: {parity}")
    return 0 if same == len(x) else 1


if __name__ == "__main__":
    sys.exit(main())
