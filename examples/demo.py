"""``make demo``: the main job end to end on the committed digits model.

1. ``snncc inspect`` the committed checkpoint ``examples/checkpoints/spikingformer-tiny-digits.pt``
   (a Spikingformer trained on scikit-learn's bundled digits; no download);
2. ``snncc verify --strict``: every synaptic op must read spikes (Spikingformer's claim);
3. ``snncc compile`` it for Loihi 2 under a 2 MiB budget with ``--eval digits``: the graph is
   quantized to Lava's fixed-point arithmetic, partitioned into cores, and the bit-accurate
   ``loihi`` reference interpreter is run on the whole digits test split next to the float one;
4. print what the compile found: cores, memory, float vs quantized accuracy, where the report is.

Every step is the real CLI (``snncc.cli.main``), so what the demo prints is what a user sees.
The artifacts go to ``out/demo/`` (replaced on each run: the demo passes ``--force``).
Exit code: the first failing step's, else 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from snncc.cli import main as snncc

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ROOT / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"
OUT = ROOT / "out" / "demo"


def step(title: str, *argv: str) -> None:
    """Run one ``snncc`` command; stop the demo with its exit code if it fails."""
    print(f"\n=== {title}\n$ snncc {' '.join(argv)}", flush=True)
    code = snncc(list(argv))
    if code != 0:
        print(f"demo: `snncc {argv[0]}` failed with exit code {code}", file=sys.stderr)
        raise SystemExit(code)


def main() -> int:
    """Run the walkthrough; returns 0 when every step succeeded."""
    ckpt = str(CHECKPOINT.relative_to(ROOT)) if CHECKPOINT.is_relative_to(ROOT) else str(CHECKPOINT)
    out = str(OUT.relative_to(ROOT))
    step("1. the model, node by node", "inspect", ckpt)
    step("2. is it purely spike-driven?", "verify", ckpt, "--strict")
    step(
        "3. compile for Loihi 2 under 2 MiB, checking accuracy on the digits test split",
        "compile", ckpt, "--target", "loihi", "--budget", "2MiB", "-o", out, "--force",
        "--eval", "digits",
    )  # fmt: skip
    report = json.loads((OUT / "report.json").read_text())
    acc = report["accuracy"]
    print("\n=== 4. result")
    cores, bound, memory = report["cores"], report["cores_lower_bound"], report["memory_bytes"]
    print(f"fits 2 MiB: {report['fits']}  cores: {cores} (bound {bound})  memory: {memory:,} B")
    fl, qu, n = 100 * acc["float"], 100 * acc["quantized"], acc["samples"]
    print(f"digits test accuracy: float {fl:.1f} %, Loihi fixed point {qu:.1f} % on {n} images")
    print(f"spike-driven: {report['spike_driven']}")
    print(f"report: {out}/report.html (also report.md, report.json, manifest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
