"""Run a build on its simulator and hold it against the references.

Three numbers come out of ``snncc run``, each answering a different question:

- **the simulation** (Lava for Loihi): per population and neuron, the spikes the emitted program
  produced, and the predictions its host readout gives;
- **parity** (``--check``): the same spikes from the bit-accurate reference interpreter on the
  build's own quantized IR. They must be equal, neuron by neuron and step by step; the first
  difference (layer, neuron, both counts, first differing step) is the bug report;
- **drift**: per layer, ``mean |Δcount| / mean float count`` between the simulation and the
  float reference of the *original* model (which equals PyTorch), i.e. what quantization
  changed. It needs the model the build was compiled from, found through the manifest and
  checked against its recorded SHA-256; when it is gone or changed, drift is left out and the
  reason is said.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.runtime.build import Build


@dataclass
class Mismatch:
    """The first place where the simulation and the reference differ."""

    layer: str
    sample: int
    neuron: tuple[int, ...]
    simulated: int
    reference: int
    first_step: int

    def text(self) -> str:
        idx = ",".join(str(i) for i in self.neuron)
        return (
            f"{self.layer} neuron [{idx}] of sample {self.sample}: {self.simulated} spikes "
            f"simulated, {self.reference} in the reference; first differs at step {self.first_step}"
        )


@dataclass
class RunOutcome:
    """What a run produced (see the module docstring)."""

    spikes: dict[str, np.ndarray]  # population -> [T, B, *shape] uint8
    outputs: dict[str, np.ndarray]  # graph output -> host readout
    predictions: np.ndarray
    labels: np.ndarray | None
    info: dict[str, Any]
    parity: dict[str, Any] | None = None
    drift: dict[str, float] | None = None
    drift_note: str | None = None
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, np.ndarray]:
        """Population -> per-neuron spike counts ``[B, *shape]``."""
        return {n: s.sum(axis=0, dtype=np.int64) for n, s in self.spikes.items()}

    @property
    def accuracy(self) -> float | None:
        if self.labels is None:
            return None
        return float(np.mean(self.predictions == self.labels))


def feeds(build: Build, x: np.ndarray) -> dict[str, np.ndarray]:
    """Model-layout samples ``[n, *input_shape]`` -> the reference's feeds for the build's IR."""
    from snncc.analysis.feeds import to_feeds

    return to_feeds(build.graph, x)


def _predict(outputs: dict[str, np.ndarray], graph: Any) -> np.ndarray:
    out = np.asarray(outputs[graph.outputs[0]])
    return np.argmax(out.reshape(out.shape[0], -1), axis=-1)


def simulate(
    build: Build,
    x: np.ndarray,
    labels: np.ndarray | None,
    *,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
    log_path: Path | None = None,
) -> RunOutcome:
    """Run ``x`` through the build's program on its simulator, ``batch_size`` samples per job."""
    from snncc import targets

    target = targets.get(build.target)
    runner = target.load("runner")
    encode, readout = target.load("encode"), target.load("readout")
    # the target's first simulator is its runner's default; another one is asked for by name
    extra = {"simulator": build.simulator} if build.simulator not in target.simulators[:1] else {}
    spikes: dict[str, list[np.ndarray]] = {}
    outputs: dict[str, list[np.ndarray]] = {}
    info: dict[str, Any] = {}
    done = 0
    for lo in range(0, len(x), batch_size):
        chunk = x[lo : lo + batch_size]
        f = feeds(build, chunk)
        a_in, batch = encode(build.graph, build.spec, f)

        def step(k: int, base: int = done) -> None:
            if progress is not None:
                progress(base + k)

        run = runner(build.spec, a_in, batch, progress=step, log_path=log_path, **extra)
        for name, s in run.spikes.items():
            spikes.setdefault(name, []).append(s)
        for name, o in readout(build.graph, build.spec, run.spikes, f).items():
            outputs.setdefault(name, []).append(np.asarray(o))
        info = run.info
        done += batch
    joined = {n: np.concatenate(v, axis=1) for n, v in spikes.items()}
    outs = {n: np.concatenate(v, axis=0) for n, v in outputs.items()}
    return RunOutcome(joined, outs, _predict(outs, build.graph), labels, info)


def check_parity(build: Build, x: np.ndarray, outcome: RunOutcome) -> dict[str, Any]:
    """Compare every population's spikes with the target's reference mode, step by step.

    Returns ``{"equal", "populations", "neurons", "mismatch", "predictions_equal"}``; the
    mismatch is the first one in program order (the earliest layer is where the cause is).
    """
    from snncc import targets
    from snncc.reference import run

    mode = targets.get(build.target).reference_mode
    ref = run(build.graph, feeds(build, x), mode, record="all")
    first: Mismatch | None = None
    neurons = 0
    checked = [p for p in build.spec.populations if getattr(p, "checked", True)]
    for p in checked:  # (an AND expansion of a MatMul has no reference value of its own)
        want = (np.asarray(ref.values[p.name]) != 0).astype(np.uint8)
        got = outcome.spikes[p.name]
        neurons += int(np.prod(p.shape))
        if first is not None or np.array_equal(want, got):
            continue
        diff_counts = got.sum(axis=0, dtype=np.int64) - want.sum(axis=0, dtype=np.int64)
        # A count that differs is the headline; equal counts with shifted spikes still differ.
        where = (
            np.argwhere(diff_counts) if np.any(diff_counts) else np.argwhere((got != want).any(0))
        )
        b, *idx = (int(i) for i in where[0])
        sel = (slice(None), b, *idx)
        t = int(np.argmax(got[sel] != want[sel]))
        first = Mismatch(p.name, b, tuple(idx), int(got[sel].sum()), int(want[sel].sum()), t)
    ref_pred = _predict(ref.outputs, build.graph)
    return {
        "equal": first is None and bool(np.array_equal(ref_pred, outcome.predictions)),
        "populations": len(checked),
        "neurons": neurons,
        "samples": int(len(x)),
        "mismatch": dataclasses.asdict(first) if first else None,
        "mismatch_text": first.text() if first else None,
        "predictions_equal": bool(np.array_equal(ref_pred, outcome.predictions)),
    }


def _float_graph(build: Build) -> tuple[Any, str | None]:
    """The original model's float graph after the front passes, or ``(None, why not)``."""
    from snncc.reports.artifacts import sha256_file

    inputs = build.manifest.get("inputs", {})
    ref = inputs.get("model")
    if not ref:
        return None, "the manifest does not name the model"
    from snncc import models

    path = Path(ref)
    if path.exists():
        want = inputs.get("model_sha256")
        if want is not None and sha256_file(path) != want:
            return None, f"{ref} changed since the compile (its SHA-256 differs)"
    elif ref not in models.names():
        return None, f"{ref} (the compiled model) is no longer there"
    from snncc.loading import resolve_model, to_graph
    from snncc.passes.manager import run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE

    loaded = resolve_model(
        ref, input_shape=build.input_shape, timesteps=build.timesteps, trust_pickle=False
    )
    gran = build.manifest.get("slice")
    if gran is not None and hasattr(loaded.module, "granularities"):
        from snncc.models.elastic import export_slice

        f, a, m = gran
        loaded = dataclasses.replace(
            loaded, module=export_slice(loaded.module, feature=f, attention=a, mlp=m)
        )
    g, _ = run_pipeline(to_graph(loaded), FRONT_PIPELINE)
    return g, None


def float_drift(build: Build, x: np.ndarray, outcome: RunOutcome) -> None:
    """Fill ``outcome.drift`` per population (vs the float model), or ``drift_note`` why not."""
    from snncc.quant.accuracy import spike_count_drift
    from snncc.reference import run

    try:
        g, why = _float_graph(build)
    except SnnccError as e:  # a model that no longer loads: drift is optional, say why
        g, why = None, f"the model no longer loads ({e.code}: {e.message})"
    if g is None:
        outcome.drift_note = f"drift against the float model not measured: {why}"
        return
    float_counts = run(g, _float_feeds(g, x), "float").spike_counts()
    outcome.drift = spike_count_drift(float_counts, outcome.counts())


def _float_feeds(g: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    from snncc.analysis.feeds import to_feeds

    return to_feeds(g, x)
