"""Lava throughput benchmark (issue 10 §6): emitted program vs naive emission vs the reference.

For ``spikingformer-tiny`` (seeded random weights) and the committed digits checkpoint, each
compiled for Loihi, measured side by side in one run on the same host inputs (digits), Monitors
off (:mod:`snncc.backends.lava.runtime.throughput` builds each variant):

- **emitted**: the network ``snncc compile`` writes (one Lava process per population and per
  connection, plus the host RingBuffer) under the run configuration ``network.py`` uses:
  ``Loihi2SimCfg(select_tag="fixed_pt")`` with snncc's bit-identical, faster CPU model of Lava's
  ``DelayDense`` (:mod:`snncc.backends.lava.runtime.fast_models`);
- **fused**: the same ``network.py`` run with ``fused=True``: the whole program as one snncc
  ``SpecProgram`` process doing every population's and connection's arithmetic in numpy
  (:mod:`snncc.backends.lava.stepper`), bit-exact, CPU only (no Loihi 2 counterpart);
- **naive**: what a straightforward emitter produces: one Lava process per IR node of the
  deployed part, stock Lava processes and models (``LIFReset``, ``Dense``/``DelayDense``, Lava's
  ``Conv`` for the convolutions) under plain ``Loihi2SimCfg(select_tag="fixed_pt")``, snncc's
  ``SpecSynapse`` only where Lava has no process (spike products), and one pass-through process
  per IR node the lowering folded into a connection;
- **reference**: the ``loihi`` mode of the numpy reference interpreter on the same quantized
  graph (what ``snncc compile --eval`` and ``snncc run --check`` use), in sample-steps per
  second (it computes a batch of samples at once).

Before timing, the three Lava variants run once with every population recorded over the whole
batch, and their spikes are compared (``spikes_equal``): the naive and fused programs compute
exactly what the emitted one does.

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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "lava_throughput.json"
MODELS = {
    "spikingformer-tiny": "spikingformer-tiny",
    "digits checkpoint": str(ROOT / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"),
}
SAMPLES = 8
VARIANTS = ("emitted", "fused", "naive")
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
    params = {"spec": doc, "batch": batch, "extra": extra}
    record = batch * spec.period + spec.depth
    spikes = {}
    for v in VARIANTS:  # correctness first: every population, every step of the batch
        p = {**params, "variant": v, "steps": record - 1, "record": record}
        spikes[v], _ = run_in_runtime(module, inputs, p, timeout=1200)
    equal = all(
        spikes[v].keys() == spikes["emitted"].keys()
        and all(np.array_equal(spikes[v][k], x) for k, x in spikes["emitted"].items())
        for v in VARIANTS
    )
    timed = {}
    for v in VARIANTS:
        _, r = run_in_runtime(module, inputs, {**params, "variant": v, "steps": STEPS}, 1200)
        timed[v] = {k: r[k] for k in ("processes", "steps_per_s", "startup_s")}
    timed["emitted"]["static_processes"] = emitted_procs
    t0 = time.perf_counter()
    run(g, f, "loihi")
    ref_s = time.perf_counter() - t0
    naive = timed["naive"]["steps_per_s"]
    return {
        "model": name,
        "samples": batch,
        "timesteps": spec.timesteps,
        "ir_nodes_deployed": len(nodes),
        "spikes_equal": equal,
        "spikes_compared": int(sum(x.sum() for x in spikes["emitted"].values())),
        **timed,
        "reference_loihi": {"sample_steps_per_s": batch * spec.timesteps / ref_s,
                            "seconds": ref_s},
        "emitted_over_naive": timed["emitted"]["steps_per_s"] / naive,
        "fused_over_naive": timed["fused"]["steps_per_s"] / naive,
    }  # fmt: skip


def main() -> int:
    """Measure every model, print a line each, write the JSON."""
    rows = []
    for name, ref in MODELS.items():
        r = measure(name, ref)
        rows.append(r)
        print(
            f"{name}: emitted {r['emitted']['processes']} procs "
            f"{r['emitted']['steps_per_s']:.0f} steps/s ({r['emitted_over_naive']:.1f}x); "
            f"fused {r['fused']['processes']} procs {r['fused']['steps_per_s']:.0f} steps/s "
            f"({r['fused_over_naive']:.1f}x); naive {r['naive']['processes']} procs "
            f"{r['naive']['steps_per_s']:.0f} steps/s; spikes equal {r['spikes_equal']}; "
            f"reference {r['reference_loihi']['sample_steps_per_s']:.0f} sample-steps/s"
        )
    doc = {
        "benchmark": "lava_throughput",
        "goal": f"emitted >= {GOAL}x naive steps per second",
        "met": {
            "emitted": all(r["emitted_over_naive"] >= GOAL for r in rows),
            "fused": all(r["fused_over_naive"] >= GOAL for r in rows),
        },
        "naive": "one Lava process per deployed IR node: stock LIFReset, Dense/DelayDense and Conv "
        "(ProcessModels of Loihi2SimCfg(select_tag='fixed_pt')), SpecSynapse for spike "
        "products, a pass-through per folded node; computes the same spikes (spikes_equal)",
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
