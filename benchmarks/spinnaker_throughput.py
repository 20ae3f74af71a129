"""SpiNNaker benchmark (issue 11 §6): virtual-board mapping time, and Brian2 timesteps per second
of the emitted PyNN program next to the ``spinnaker`` reference interpreter on the same network.

For ``spikingformer-tiny`` (seeded random weights) and the committed digits checkpoint, each
compiled with ``--target spinnaker --budget 1board``:

- **compile**: the whole compile's wall time and the part sPyNNaker 7.4.1 spends mapping the
  program on a virtual SpiNN-5 board (partition, placement, routing; data generation skipped);
- **brian2**: the emitted ``network.py`` on PyNN 0.13 + Brian2 2.9 (numpy code generation), one
  run of ``T + depth`` steps per sample: simulator steps per second over the samples after the
  first (the first also builds the network and generates code, reported as ``build_s``), and
  sample-steps (the model's ``T`` per sample) per second;
- **reference**: the ``spinnaker`` mode of the numpy reference interpreter on the same quantized
  graph (what ``snncc run --check`` uses), in sample-steps per second (a batch at once).

Results: ``benchmarks/results/spinnaker_throughput.json`` (timings vary ±30 % run to run on 2
cores).
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "spinnaker_throughput.json"
MODELS = {
    "spikingformer-tiny": "spikingformer-tiny",
    "digits checkpoint": str(ROOT / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"),
}
SAMPLES = 5


def measure(name: str, ref: str) -> dict[str, Any]:
    """Compile ``ref`` for SpiNNaker (with the mapping) and time Brian2 and the reference."""
    from snncc.backends.spinnaker import host
    from snncc.backends.spinnaker.runner import run_on_pynn
    from snncc.compiler import compile_model
    from snncc.data.digits import digits
    from snncc.reference import run
    from snncc.runtime.build import open_build
    from snncc.runtime.execute import feeds

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = compile_model(ref, target="spinnaker", budget="1board", out_dir=Path(tmp) / "b")
        compile_s = time.perf_counter() - t0
        build = open_build(Path(tmp) / "b")
    spec, g = build.spec, build.graph
    f = feeds(build, digits("test")[0][:SAMPLES])
    spikes, batch = host.encode(g, spec, f)
    b2 = run_on_pynn(spec, spikes, batch, timeout=1800)
    later = b2.info["sample_s"][1:]
    steady = sum(later)
    t0 = time.perf_counter()
    run(g, f, "spinnaker")
    ref_s = time.perf_counter() - t0
    mapping = res.report["mapping"] or {}
    return {
        "model": name,
        "samples": batch,
        "timesteps": spec.timesteps,
        "pipeline_depth": spec.depth,
        "neurons": int(sum(p.size for p in spec.populations)),
        "synapses": int(b2.info["synapses"]),
        "compile": {
            "seconds": round(compile_s, 2),
            "virtual_board_mapping_s": round(res.timings["stages"]["map on a virtual board"], 2),
            "cores": mapping.get("cores"),
            "chips": mapping.get("chips"),
        },
        "brian2": {
            "build_s": b2.info["sample_s"][0],
            "steps_per_s": len(later) * spec.period / steady,
            "sample_steps_per_s": len(later) * spec.timesteps / steady,
            "setup_s": b2.info["setup_s"],
        },
        "reference_spinnaker": {
            "sample_steps_per_s": batch * spec.timesteps / ref_s,
            "seconds": ref_s,
        },  # fmt: skip
    }


def main() -> None:
    """Measure every model and write the JSON."""
    import os

    results = [measure(name, ref) for name, ref in MODELS.items()]
    doc = {
        "benchmark": "spinnaker_throughput",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    for r in results:
        print(
            f"{r['model']}: mapping {r['compile']['virtual_board_mapping_s']} s "
            f"({r['compile']['cores']} cores, {r['compile']['chips']} chips); Brian2 "
            f"{r['brian2']['steps_per_s']:.1f} steps/s "
            f"({r['brian2']['sample_steps_per_s']:.1f} sample-steps/s, build "
            f"{r['brian2']['build_s']} s); reference "
            f"{r['reference_spinnaker']['sample_steps_per_s']:.0f} sample-steps/s"
        )


if __name__ == "__main__":
    main()
