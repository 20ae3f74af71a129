"""How fast can a deployed program be evaluated on a whole test set? (issue 14, deliverable 5)

For the committed digits checkpoint compiled for each target, on the 450 test digits, samples per
second of:

- **torch_exact** (:mod:`snncc.torch_exact`) on the CPU with one thread and with every thread
  torch is given, and on CUDA when a GPU is present; batches of ``BATCH``;
- **reference**: the numpy reference interpreter in the target's mode (BLAS limited to one
  thread, as it runs), same batches;
- **simulator**: the build's emitted program on the target's simulator (Lava ``fixed_pt`` for
  Loihi, PyNN on Brian2 for SpiNNaker) through ``snncc.runtime.execute.simulate``, on
  ``SIM_SAMPLES`` digits in one job, its process start-up included (what ``snncc run`` costs),
  with its spikes checked against torch_exact's.

Every torch run is checked against the reference (spikes of every population equal) before it
is timed; the best of ``REPEATS`` passes over the test set is reported (this host is shared: run
to run variation is large, hardware-semantics §3). Results:
``benchmarks/results/torch_exact_speed.json``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "torch_exact_speed.json"
CHECKPOINT = ROOT / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"
BUDGETS = {"loihi": "2MiB", "spinnaker": "1GiB"}
BATCH = 64
REPEATS = 3
SIM_SAMPLES = 8


def best_rate(n: int, fn: Callable[[], object]) -> float:
    """Samples per second of the fastest of ``REPEATS`` calls of ``fn`` (``n`` samples each)."""
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def _torch_pass(prog: Any, x: np.ndarray, device: str) -> Callable[[], None]:
    def go() -> None:
        with torch.inference_mode():
            for lo in range(0, len(x), BATCH):
                res = prog(prog.feeds(x[lo : lo + BATCH]))
                if device == "cuda":
                    torch.cuda.synchronize()
                del res

    return go


def _check_equal(prog: Any, graph: Any, x: np.ndarray, mode: str) -> None:
    """Refuse to time a torch program whose spikes differ from the reference's."""
    from snncc.analysis.feeds import to_feeds
    from snncc.reference import run

    want = run(graph, to_feeds(graph, x), mode).spikes
    with torch.inference_mode():
        got = prog(prog.feeds(x)).spikes
    for n, s in want.items():
        if not np.array_equal(got[n].cpu().numpy(), s):
            raise SystemExit(f"torch_exact differs from the reference at {n}: not timing it")


def measure(target: str) -> dict[str, Any]:
    """Compile the checkpoint for ``target`` and time every way of evaluating it."""
    from snncc import targets
    from snncc.analysis.feeds import to_feeds
    from snncc.compiler import compile_model
    from snncc.data.digits import digits
    from snncc.reference import run
    from snncc.torch_exact import from_build, from_model

    x, y = digits("test")
    x = x.astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "b"
        if targets.get(target).runner is not None:  # a build: the simulator runs it too
            compile_model(str(CHECKPOINT), target=target, budget=BUDGETS[target], out_dir=out)
            prog = from_build(out)
        else:
            prog = from_model(str(CHECKPOINT), target)
        graph = prog.graph
        row: dict[str, Any] = {"target": target, "samples": len(x), "batch": BATCH,
                               "timesteps": prog.timesteps}  # fmt: skip
        _check_equal(prog, graph, x[:BATCH], target)
        threads = torch.get_num_threads()
        cpu: dict[str, float] = {}
        for n in sorted({1, threads}):
            torch.set_num_threads(n)
            cpu[f"threads_{n}"] = best_rate(len(x), _torch_pass(prog, x, "cpu"))
        torch.set_num_threads(threads)
        row["torch_exact_cpu_samples_per_s"] = cpu
        if torch.cuda.is_available():
            gpu = prog.to("cuda")
            _check_equal(gpu, graph, x[:BATCH], target)
            row["torch_exact_cuda_samples_per_s"] = best_rate(len(x), _torch_pass(gpu, x, "cuda"))
            row["cuda_device"] = torch.cuda.get_device_name()
            prog = gpu.to("cpu")

        def reference() -> None:
            for lo in range(0, len(x), BATCH):
                run(graph, to_feeds(graph, x[lo : lo + BATCH]), target)

        row["reference_samples_per_s"] = best_rate(len(x), reference)
        row["simulator"] = _simulate(out, target, x[:SIM_SAMPLES], y[:SIM_SAMPLES], prog)
    return row


def _simulate(path: Path, target: str, x: np.ndarray, y: np.ndarray, prog: Any) -> Any:
    """Samples per second of the emitted program on its simulator (None without one)."""
    from snncc import targets
    from snncc.runtime.build import open_build
    from snncc.runtime.execute import simulate

    t = targets.get(target)
    if t.runner is None:
        return {"simulator": None, "note": f"no {target} simulator runs builds yet"}
    build = open_build(path)
    t0 = time.perf_counter()
    chip = simulate(build, x, y, batch_size=len(x))
    seconds = time.perf_counter() - t0
    with torch.inference_mode():
        res = prog(prog.feeds(x), record="all")
    equal = all(
        np.array_equal(chip.spikes[p.name], (res.values[p.name] != 0).to(torch.uint8).numpy())
        for p in build.spec.populations
        if getattr(p, "checked", True)  # a SpiNNaker AND expansion has no IR node
    )
    return {"simulator": t.simulators[0], "samples": len(x), "seconds": seconds,
            "samples_per_s": len(x) / seconds, "spikes_equal_torch_exact": equal}  # fmt: skip


def main() -> int:
    """Measure both targets, print one line each, write the JSON."""
    rows = []
    for target in BUDGETS:
        r = measure(target)
        rows.append(r)
        sim = r["simulator"]
        sim_txt = f"{sim['samples_per_s']:.2f}" if sim.get("samples_per_s") else "n/a"
        print(
            f"{target}: torch_exact CPU {r['torch_exact_cpu_samples_per_s']} samples/s, "
            f"CUDA {r.get('torch_exact_cuda_samples_per_s', 'n/a')}, reference "
            f"{r['reference_samples_per_s']:.0f}, {sim.get('simulator')} {sim_txt}"
        )
    doc = {
        "benchmark": "torch_exact_speed",
        "model": "examples/checkpoints/spikingformer-tiny-digits.pt",
        "data": "digits test split (450 samples; simulator: the first 8)",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "load_average_1min": os.getloadavg()[0],
        },  # fmt: skip
        "repeats": REPEATS,
        "results": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
