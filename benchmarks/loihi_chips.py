"""Loihi 2 chips per zoo configuration under the calibrated cost model (issue 12).

For every model of the seed zoo (``snncc models``; seeded random weights, the full width of
elastic models), trace, run the front passes and ``quantize(loihi)``, and partition with the cost
model calibrated on Intel's compiler output (``--conv-synapses shared``, docs/budget.md §3).
Records cores, chips (120 usable cores per chip), the lower bound, utilisation and which
reference system holds it: Oheo Gulch (1 chip), Kapoho Point (8), Hala Point (1,152). A model
that ``quantize`` refuses for Loihi (e.g. ExpG-IF neurons, QNT002) is listed with its code; its
cost is still given from the front graph (the memory model counts shapes only), marked so.

Each model runs in its own subprocess (peak memory of the ImageNet models stays per model).
Results: ``benchmarks/results/loihi_chips.json``. Usage::

    python benchmarks/loihi_chips.py                      # every zoo model
    python benchmarks/loihi_chips.py spikingformer-4-384  # a selection
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "loihi_chips.json"
#: Reference Loihi 2 systems, chips each (hardware-semantics §1.2).
SYSTEMS = (("Oheo Gulch", 1), ("Kapoho Point", 8), ("Hala Point", 1152))


def child(name: str) -> dict[str, Any]:
    """Partition one zoo model in this process; its cores, chips and utilisation."""
    from snncc.diagnostics import SnnccError
    from snncc.loading import resolve_model, to_graph
    from snncc.passes.manager import PassContext, run_pipeline
    from snncc.passes.partition import plan_partition
    from snncc.passes.pipeline import FRONT_PIPELINE
    from snncc.passes.quantize import quantize

    t0 = time.perf_counter()
    front, _ = run_pipeline(to_graph(resolve_model(name)), FRONT_PIPELINE)
    refused = None
    try:
        graph, _ = run_pipeline(front, [quantize], PassContext(config={"target": "loihi"}))
    except SnnccError as e:
        graph, refused = front, e.code
    plan = plan_partition(graph, "loihi", conv_synapses="shared")
    bound = max(plan.cores_lower_bound.values())
    binding: dict[str, int] = {}
    for row in plan.layers:
        binding[row["binding"]] = binding.get(row["binding"], 0) + row["cores"]
    system = next((s for s, chips in SYSTEMS if plan.chips <= chips), "more than Hala Point")
    return {
        "model": name,
        "refused_by_quantize": refused,
        "cores": plan.cores,
        "chips": plan.chips,
        "cores_lower_bound": bound,
        "core_utilisation": bound / plan.cores,
        "smallest_system": system,
        "neurons": sum(r["neurons"] for r in plan.layers),
        "memory_bytes": plan.memory_bytes,
        "cores_by_binding_resource": dict(sorted(binding.items())),
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    """Partition the selected zoo models and write the JSON results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help="zoo names (default: every zoo model)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per model")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    from snncc.models import names as zoo_names

    names = args.models or zoo_names()
    rows = []
    for name in names:
        cmd = [sys.executable, __file__, "--child", name]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        if proc.returncode != 0:
            rows.append({"model": name, "error": proc.stderr.strip().splitlines()[-1:]})
            print(f"{name:>32}: FAILED {rows[-1]['error']}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{name:>32}: {r['cores']:>7,} cores {r['chips']:>5,} chips "
              f"{r['core_utilisation']:6.1%} used  {r['smallest_system']}")  # fmt: skip
    doc = {"benchmark": "loihi_chips", "cost_model": "calibrated (--conv-synapses shared)",
           "systems": dict(SYSTEMS), "results": rows}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
