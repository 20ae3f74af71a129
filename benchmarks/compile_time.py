"""Compile-time benchmark: wall time and peak memory of ``snncc compile``, per pass (issue 5 §7).

Configurations: ``spikingformer-4-384`` and ``spikingformer-8-768`` (zoo names, so random seeded
weights), each for ``loihi`` and ``spinnaker``. Each configuration runs in its own subprocess,
because peak memory is only meaningful per process: ``tracemalloc`` does not see torch's
allocations, so the child reports ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux)
after importing and again after compiling.

Targets (reported, not asserted): the 66M-parameter ``spikingformer-8-768`` compiles in under
2 minutes and 8 GiB on a 2-core machine. Results: ``benchmarks/results/compile_time.json``,
with each configuration's cores, chips, lower bound and utilisation (lower bound / cores).
Loihi compiles use the cost model calibrated on Intel's compiler (``--conv-synapses shared``,
docs/budget.md §3) unless ``--conv-synapses per-connection`` is given.

Usage::

    python benchmarks/compile_time.py                 # all configurations
    python benchmarks/compile_time.py --models spikingformer-4-384 --targets loihi
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODELS = ("spikingformer-4-384", "spikingformer-8-768")
TARGETS = ("loihi", "spinnaker")
#: Large enough for every configuration: the benchmark times compilation, not the fit check.
BUDGET = "1000000TB"
RESULTS = Path(__file__).resolve().parent / "results" / "compile_time.json"
GOAL = {"model": "spikingformer-8-768", "seconds": 120.0, "peak_rss_bytes": 8 * 2**30}


def _maxrss_bytes() -> int:
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kib) * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux


def child(model: str, target: str, conv_synapses: str = "shared") -> dict[str, Any]:
    """Run one compile in this process and return its measurements."""
    t0 = time.perf_counter()
    import torch  # noqa: F401 - imported first so the baseline includes it

    from snncc.compiler import compile_model
    from snncc.diagnostics import SnnccError

    import_s, rss_import = time.perf_counter() - t0, _maxrss_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        try:
            costing = conv_synapses if target == "loihi" else "per-connection"
            res = compile_model(model, target=target, budget=BUDGET, out_dir=Path(tmp) / "out",
                                conv_synapses=costing)  # fmt: skip
            timings, error, report = res.timings, None, res.report
        except SnnccError as e:
            timings, error, report = {}, e.format(), {}
        wall = time.perf_counter() - t1
    return {
        "model": model,
        "target": target,
        "ok": error is None,
        "error": error,
        "compile_seconds": wall,
        "import_seconds": import_s,
        "peak_rss_bytes": _maxrss_bytes(),
        "rss_after_import_bytes": rss_import,
        "passes": timings.get("passes", []),
        "stages": timings.get("stages", {}),
        "cores": report.get("cores"),
        "chips": report.get("chips"),
        "cores_lower_bound": report.get("cores_lower_bound"),
        "cores_lower_bound_by_resource": report.get("cores_lower_bound_by_resource"),
        "core_utilisation": report.get("core_utilisation"),
        "cost_model": report.get("cost_model"),
        "memory_bytes": report.get("memory_bytes"),
    }


def run_config(
    model: str, target: str, timeout: float, conv_synapses: str = "shared"
) -> dict[str, Any]:
    """One configuration in a fresh interpreter (so ru_maxrss is this compile's peak)."""
    cmd = [sys.executable, __file__, "--child", model, target, conv_synapses]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"model": model, "target": target, "ok": False, "error": f"timeout {timeout}s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        return {"model": model, "target": target, "ok": False, "error": "\n".join(tail)}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - t0
    return out


def _machine() -> dict[str, Any]:
    import numpy
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def _goal(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whether each configuration of the goal model met the time and memory targets."""
    rows = []
    for r in results:
        if r["model"] == GOAL["model"] and r.get("ok"):
            rows.append({
                "target": r["target"],
                "seconds": r["compile_seconds"],
                "under_2_minutes": r["compile_seconds"] < GOAL["seconds"],
                "peak_rss_gib": r["peak_rss_bytes"] / 2**30,
                "under_8_gib": r["peak_rss_bytes"] < GOAL["peak_rss_bytes"],
            })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the configurations, print a summary and write the JSON results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--targets", nargs="+", default=list(TARGETS))
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per configuration")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--conv-synapses", default="shared", choices=("shared", "per-connection"),
                    help="Loihi cost model (default: shared, the calibrated one)")  # fmt: skip
    ap.add_argument("--child", nargs=3, metavar=("MODEL", "TARGET", "COST"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    results = []
    for model in args.models:
        for target in args.targets:
            r = run_config(model, target, args.timeout, args.conv_synapses)
            results.append(r)
            status = "ok" if r.get("ok") else f"FAILED: {r.get('error')}"
            secs, rss = r.get("compile_seconds", float("nan")), r.get("peak_rss_bytes", 0) / 2**30
            use = r.get("core_utilisation") or 0.0
            print(
                f"{model:>22} {target:>9}: {secs:7.1f} s  peak {rss:5.2f} GiB  "
                f"{r.get('cores')} cores, {r.get('chips')} chips, {use:.1%} used  {status}"
            )
    doc = {"benchmark": "compile_time", "machine": _machine(), "budget": BUDGET,
           "goal": GOAL, "goal_met": _goal(results), "results": results}  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
