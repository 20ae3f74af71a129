"""``make demo``: the main job end to end on the committed digits model.

1. ``snncc inspect`` the committed checkpoint ``examples/checkpoints/spikingformer-tiny-digits.pt``
   (a Spikingformer trained on scikit-learn's bundled digits; no download);
2. ``snncc verify --strict``: every synaptic op must read spikes (Spikingformer's claim);
3. ``snncc compile`` it for Loihi 2 under a 2 MiB budget with ``--eval digits``: the graph is
   quantized to Lava's fixed-point arithmetic, lowered to a Lava program (``network.py``),
   partitioned into cores, and the bit-accurate ``loihi`` reference interpreter is run on the
   whole digits test split next to the float one;
4. ``snncc run --check``: the generated Lava program simulates 20 test digits on the CPU
   (``Loihi2SimCfg(select_tag="fixed_pt")``) and every neuron's spikes are compared, step by
   step, with the reference;
5. ``snncc compile --target spinnaker --budget 1board``: the same model lowered to a PyNN
   program and mapped by sPyNNaker onto a virtual SpiNN-5 board (cores, chips, router entries);
6. print parity, Lava accuracy, float accuracy, the SpiNNaker mapping and where the reports are.

Every step is the real CLI (``snncc.cli.main``), so what the demo prints is what a user sees.
The artifacts go to ``out/demo/`` (replaced on each run: the demo passes ``--force``).
Exit code: the first failing step's, else 0.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from snncc.cli import main as snncc
from snncc.cli.run_cmds import show_result

ROOT = Path(__file__).resolve().parent.parent
LAVA_SAMPLES = 20
CHECKPOINT = ROOT / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"
OUT = ROOT / "out" / "demo"
OUT_SPINNAKER = ROOT / "out" / "demo-spinnaker"


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
    print(f"\n=== 4. simulate {LAVA_SAMPLES} test digits in Lava and check every spike")
    argv = ["run", out, "--data", "digits", "--samples", str(LAVA_SAMPLES), "--check", "--json"]
    print(f"$ snncc {' '.join(argv[:-1])}", flush=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = snncc(argv)
    if code != 0:
        print(f"demo: `snncc run` failed with exit code {code}", file=sys.stderr)
        raise SystemExit(code)
    run = json.loads(buf.getvalue())
    show_result(run)  # the table `snncc run` prints without --json
    sp_out = str(OUT_SPINNAKER.relative_to(ROOT))
    step(
        "5. the same model for SpiNNaker: a PyNN program, mapped by sPyNNaker on a virtual board",
        "compile", ckpt, "--target", "spinnaker", "--budget", "1board", "-o", sp_out, "--force",
    )  # fmt: skip
    mapping = json.loads((OUT_SPINNAKER / "report.json").read_text())["mapping"]
    report = json.loads((OUT / "report.json").read_text())
    acc, par = report["accuracy"], run["parity"]
    print("\n=== 6. result")
    cores, bound, memory = report["cores"], report["cores_lower_bound"], report["memory_bytes"]
    print(f"fits 2 MiB: {report['fits']}  cores: {cores} (bound {bound})  memory: {memory:,} B")
    verdict = "identical to the bit-accurate reference" if par["equal"] else "DIFFERENT"
    print(f"Lava parity: {verdict} ({par['populations']} populations, {par['neurons']:,} "
          f"neurons, {par['samples']} digits, every step)")  # fmt: skip
    print(f"Lava accuracy: {100 * run['accuracy']:.1f} % on {run['samples']} test digits")
    fl, qu, n = 100 * acc["float"], 100 * acc["quantized"], acc["samples"]
    print(f"float accuracy: {fl:.1f} % (Loihi fixed-point reference {qu:.1f} %) on all {n} "
          "test digits")  # fmt: skip
    print(f"spike-driven: {report['spike_driven']}")
    print(f"SpiNNaker (sPyNNaker's own mapping on a virtual SpiNN-5 board): {mapping['cores']} "
          f"application cores on {mapping['chips']} chips, at most {mapping['router_entries_max']} "
          f"router entries per chip; the partitioner agrees: {mapping['agrees']}")  # fmt: skip
    print(f"report: {out}/report.html (also report.md, report.json, manifest.json); "
          f"the Lava program: {out}/network.py; the PyNN program: {sp_out}/network.py")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
