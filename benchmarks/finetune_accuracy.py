"""Target-aware fine-tuning of the digits checkpoint: accuracy before and after, both targets.

Runs what ``snncc finetune examples/checkpoints/spikingformer-tiny-digits.pt --target T --data
digits -o ...`` runs (the whole train split, default learning rate, one epoch), for Loihi and
SpiNNaker, and records the float accuracy, the target's accuracy before and after on the 450
test digits, how many deployed integers moved, the final training loss and the wall time. The
goal (issue 14): the fine-tuned program's accuracy within 0.5 points of the float accuracy on
both targets. Every fine-tuned checkpoint is verified by the library to compile back to exactly
its trained integers before it is returned, so the "after" figure is the deployed program's.

Writes ``benchmarks/results/finetune_accuracy.json``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples/checkpoints/spikingformer-tiny-digits.pt"
RESULTS = Path(__file__).resolve().parent / "results" / "finetune_accuracy.json"
TARGETS = ("loihi", "spinnaker")
EPOCHS = 1
GOAL_POINTS = 0.5


def measure(target: str) -> dict:
    """Fine-tune for ``target`` and return the figures."""
    from snncc.cli.finetune_cmds import DEFAULT_LR
    from snncc.torch_exact.finetune import finetune_model

    t0 = time.perf_counter()
    out = finetune_model(str(MODEL), target, "digits", epochs=EPOCHS, lr=DEFAULT_LR)
    seconds = time.perf_counter() - t0
    gap = 100.0 * (out.before.float_acc - out.after.quant_acc)
    return {
        "target": target,
        "lr": DEFAULT_LR,
        "epochs": EPOCHS,
        "float_accuracy": out.before.float_acc,
        "accuracy_before": out.before.quant_acc,
        "accuracy_after": out.after.quant_acc,
        "points_below_float_after": gap,
        "within_goal": gap <= GOAL_POINTS,
        "changed_integers": out.changed,
        "deployed_integers": out.total,
        "final_loss": out.losses[-1],
        "seconds": seconds,
    }


def main() -> int:
    """Fine-tune for both targets, print one line each, write the JSON."""
    torch.set_num_threads(1)
    rows = []
    for target in TARGETS:
        r = measure(target)
        rows.append(r)
        print(
            f"{target}: float {100 * r['float_accuracy']:.2f} %, before "
            f"{100 * r['accuracy_before']:.2f} %, after {100 * r['accuracy_after']:.2f} % "
            f"({r['changed_integers']} of {r['deployed_integers']} integers moved, "
            f"{r['seconds']:.0f} s)"
        )
    doc = {
        "benchmark": "finetune_accuracy",
        "model": "examples/checkpoints/spikingformer-tiny-digits.pt",
        "data": "digits: train split (1347) to train and calibrate, test split (450) to score",
        "goal": f"accuracy after within {GOAL_POINTS} points of float on both targets",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "load_average_1min": os.getloadavg()[0],
        },
        "results": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RESULTS}")
    return 0 if all(r["within_goal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
