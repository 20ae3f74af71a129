"""Lava throughput benchmark (issue 10 §6): emitted program vs naive emission vs the reference.

For ``spikingformer-tiny`` (seeded random weights) and the committed digits checkpoint, each
compiled for Loihi, measured side by side in one run on the same host inputs (digits):

- **emitted**: the program ``snncc compile`` writes (one Lava process per population and per
  connection, plus the host RingBuffer): Lava steps per second under
  ``Loihi2SimCfg(select_tag="fixed_pt")``, Monitors off;
- **naive**: one Lava process per IR node of the deployed part, with Lava's own processes, as an
  emitter that neither fuses nor vectorises would produce: the same program plus pass-through
  processes for every IR node the lowering folded into a connection (structural re-indexing,
  adds, pools, products), and every convolution also run by Lava's ``Conv`` model (a Python
  loop over channel pairs per step) driven by random spikes of its input shape
  (:mod:`snncc.backends.lava.runtime.throughput`). It still contains the fused program's own
  convolution processes, so it slightly overstates the naive cost (by one im2col per conv);
- **reference**: the ``loihi`` mode of the numpy reference interpreter on the same quantized
  graph (what ``snncc compile --eval`` and ``snncc run --check`` use), in sample-steps per
  second (it computes a batch of samples at once).

Goal (reported, not asserted): emitted ≥ 5× naive steps per second. Results:
``benchmarks/results/lava_throughput.json`` (timings vary ±30–50 % run to run on 2 cores,
hardware-semantics §3).
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "lava_throughput.json"
MODELS = {
    "spikingformer-tiny": "spikingformer-tiny",
    "digits checkpoint": str(ROOT / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"),
}
SAMPLES = 8
STEPS = 200
GOAL = 5.0


def deployed_nodes(graph: Any, spec: Any) -> list[str]:
    """IR nodes on a path from a population to a population (the part a chip runs)."""
    pops = {p.name for p in spec.populations}
    users: dict[str, list[str]] = {n: [] for n in graph.topo_order()}
    for n in graph.topo_order():
        for i in graph.inputs_of(n):
            users[i].append(n)
    down: set[str] = set()
    for n in graph.topo_order():  # reachable from a population
        if n in pops or any(i in down for i in graph.inputs_of(n)):
            down.add(n)
    up: set[str] = set()
    for n in reversed(graph.topo_order()):  # reaches a population
        if n in pops or any(u in up for u in users[n]):
            up.add(n)
    return [n for n in graph.topo_order() if n in down and n in up]


def measure(name: str, ref: str) -> dict[str, Any]:
    """Compile ``ref`` for Loihi and time the three executions."""
    from snncc.backends.lava.runner import HOST_PREFIX
    from snncc.backends.lower import host
    from snncc.compiler import compile_model
    from snncc.data.digits import digits
    from snncc.reference import run
    from snncc.runtime.bridge import run_in_runtime
    from snncc.runtime.build import open_build
    from snncc.runtime.execute import feeds

    with tempfile.TemporaryDirectory() as tmp:
        compile_model(ref, target="loihi", budget="1GiB", out_dir=Path(tmp) / "b")
        build = open_build(Path(tmp) / "b")
    spec, g = build.spec, build.graph
    x = digits("test")[0][:SAMPLES]
    f = feeds(build, x)
    a_in, batch = host.encode(g, spec, f)
    doc, arrays = spec.to_payload()
    inputs = {**arrays, **{HOST_PREFIX + p: a for p, a in a_in.items()}}
    emitted_procs = len(spec.populations) + len(spec.connections) + len(spec.host_inputs)
    nodes = deployed_nodes(g, spec)
    extra_total = max(0, len(nodes) - len(spec.populations) - len(spec.connections))
    names = [p.name for p in spec.populations]
    extra = {
        n: extra_total // len(names) + (i < extra_total % len(names)) for i, n in enumerate(names)
    }
    module = "snncc.backends.lava.runtime.throughput"
    params = {"spec": doc, "batch": batch, "steps": STEPS}
    _, emitted = run_in_runtime(module, inputs, {**params, "extra": {}}, timeout=1200)
    naive_params = {**params, "extra": extra, "lava_conv": True}
    _, naive = run_in_runtime(module, inputs, naive_params, timeout=1200)
    t0 = time.perf_counter()
    run(g, f, "loihi")
    ref_s = time.perf_counter() - t0
    return {
        "model": name,
        "samples": batch,
        "timesteps": spec.timesteps,
        "ir_nodes_deployed": len(nodes),
        "emitted": {"processes": emitted["processes"], "steps_per_s": emitted["steps_per_s"],
                    "startup_s": emitted["startup_s"], "static_processes": emitted_procs},
        "naive": {"processes": naive["processes"], "steps_per_s": naive["steps_per_s"],
                  "startup_s": naive["startup_s"]},
        "reference_loihi": {"sample_steps_per_s": batch * spec.timesteps / ref_s,
                            "seconds": ref_s},
        "emitted_over_naive": emitted["steps_per_s"] / naive["steps_per_s"],
    }  # fmt: skip


def main() -> int:
    """Measure every model, print a line each, write the JSON."""
    rows = []
    for name, ref in MODELS.items():
        r = measure(name, ref)
        rows.append(r)
        print(
            f"{name}: emitted {r['emitted']['processes']} procs "
            f"{r['emitted']['steps_per_s']:.0f} steps/s; naive {r['naive']['processes']} procs "
            f"{r['naive']['steps_per_s']:.0f} steps/s ({r['emitted_over_naive']:.1f}x); "
            f"reference {r['reference_loihi']['sample_steps_per_s']:.0f} sample-steps/s"
        )
    doc = {
        "benchmark": "lava_throughput",
        "goal": f"emitted >= {GOAL}x naive steps per second",
        "met": all(r["emitted_over_naive"] >= GOAL for r in rows),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "steps_timed": STEPS,
        "results": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
