"""Where does the float-vs-chip spike drift come from? (issue 14, deliverable 4: the investigation)

The digits checkpoint compiled for a target: its float model (``float`` reference = PyTorch)
and its integer program (the target's reference mode = ``snncc.torch_exact`` = the simulator)
agree on accuracy but not on spikes. Four measurements on the test digits, per neuron layer in
program order (drift = ``mean |Δcount| / mean float count``, as ``snncc compile --eval``):

1. **end to end**: the integer program against the float model;
2. **local** (teacher-forced): every layer of the integer program fed the *float* model's
   spikes of the layers before it, so that each layer shows only its own rounding;
3. **weights only**: the float model with every deployed weight replaced by its quantized value
   (``W_q · 2^e / scale``), float dynamics, float biases; end to end and local. Local integer
   minus local weights-only is what the rest (biases, host rounding, leak truncation, threshold
   placement) adds;
4. **one flip**: the float model with a single spike of one sample flipped in the first
   layer; how many spikes change downstream (amplification of a single flip).

Writes ``benchmarks/results/fidelity_drift.json``; docs/fidelity.md discusses the numbers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "fidelity_drift.json"
CHECKPOINT = ROOT / "examples" / "checkpoints" / "spikingformer-tiny-digits.pt"
FLIPS = 40
Values = dict[str, np.ndarray]


def evaluate(
    g: Any,
    mode: str,
    feeds: dict[str, np.ndarray],
    forced: Values | None = None,
    flip: Callable[[str, np.ndarray], np.ndarray] | None = None,
) -> Values:
    """Every node's value with the reference kernels of ``mode``.

    ``forced``: neuron values that replace a neuron's output *as its consumers see it* (the
    teacher forcing of experiment 2; the neuron's own value is still computed and returned).
    ``flip(name, value)``: a perturbation applied to a node's value before its consumers read it.
    """
    from snncc.reference.context import KernelCtx
    from snncc.reference.feeds import validate_feeds
    from snncc.reference.interpreter import MODES

    kernels = MODES[mode]
    T = int(g.meta["timesteps"])
    feeds, B = validate_feeds(g, feeds, T)
    own: Values = {}
    seen: Values = {}
    for n in g.topo_order():
        ty = g.type(n)
        ctx = KernelCtx(n, 2 if ty.temporal else 1, T, B, ty, feeds.get(n), g.node_meta(n))
        y = kernels[type(g.op(n))](g.op(n), [seen[d] for d in g.inputs_of(n)], ctx)
        own[n] = y
        if forced is not None and n in forced:
            y = forced[n]
        if flip is not None:
            y = flip(n, y)
        seen[n] = y
    return own


def counts(g: Any, values: Values) -> dict[str, np.ndarray]:
    """Neuron layer -> spike counts ``[B, *shape]``."""
    return {n: (values[n] != 0).sum(axis=0) for n in g.topo_order() if g.op(n).NEURON}


def drift(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    from snncc.quant.accuracy import spike_count_drift

    return {n: round(v, 4) for n, v in spike_count_drift(a, b).items()}


def flip_rate(g: Any, a: Values, b: Values) -> dict[str, float]:
    """Fraction of (neuron, step, sample) spikes that differ, per layer."""
    return {
        n: round(float(np.mean((a[n] != 0) != (b[n] != 0))), 5)
        for n in g.topo_order()
        if g.op(n).NEURON
    }


def dequantized(front: Any, q: Any) -> Any:
    """The float graph with every deployed weight replaced by ``W_q · 2^e / scale``."""
    g = front.copy()
    for n in g.topo_order():
        meta = q.node_meta(n).get("quant") if n in q else None
        if not meta or "weight_exp" not in meta:
            continue
        wq = np.asarray(q.op(n).weight, dtype=np.float64)
        w = wq * 2.0 ** int(meta["weight_exp"]) / float(meta["scale"])
        g.set_op(n, g.op(n).replace(weight=w))
    return g


def weight_error(front: Any, q: Any) -> dict[str, dict[str, float]]:
    """Per deployed weight layer: step ``2^e/scale``, max |W|, relative RMS rounding error."""
    out = {}
    for n in front.topo_order():
        meta = q.node_meta(n).get("quant") if n in q else None
        if not meta or "weight_exp" not in meta:
            continue
        w = np.asarray(front.op(n).weight, dtype=np.float64)
        step = 2.0 ** int(meta["weight_exp"]) / float(meta["scale"])
        wd = np.asarray(q.op(n).weight, dtype=np.float64) * step
        out[n] = {
            "step": step,
            "max_abs_w": round(float(np.abs(w).max()), 5),
            "max_abs_wq": int(np.abs(q.op(n).weight).max()),
            "rel_rms_error": round(float(np.sqrt(np.mean((wd - w) ** 2) / np.mean(w**2))), 5),
            "stream_scale": float(meta["scale"]),
        }
    return out


def one_flip(front: Any, feeds: dict[str, np.ndarray], base: Values, layer: str,
             rng: np.random.Generator) -> dict[str, float]:  # fmt: skip
    """Per layer: mean number of spikes changed by flipping one spike of ``layer``."""
    changed: dict[str, list[int]] = {}
    s = base[layer]
    for _ in range(FLIPS):
        idx = tuple(int(rng.integers(0, d)) for d in s.shape)

        def flip(n: str, y: np.ndarray, idx: tuple[int, ...] = idx) -> np.ndarray:
            if n != layer:
                return y
            y = y.copy()
            y[idx] = 1.0 - y[idx]
            return y

        pert = evaluate(front, "float", feeds, flip=flip)
        b = idx[1]
        for n in counts(front, base):
            changed.setdefault(n, []).append(
                int(np.sum((pert[n][:, b] != 0) != (base[n][:, b] != 0)))
            )
    return {n: round(float(np.mean(v)), 2) for n, v in changed.items()}


def on_grid(front: Any, q: Any, bits: int) -> Any:
    """The float graph with each deployed weight rounded to ``bits``-bit mantissas on the
    quantizer's own exponent (``bits = 8``: its grid; every extra bit halves the step)."""
    g = front.copy()
    for n in g.topo_order():
        meta = q.node_meta(n).get("quant") if n in q else None
        if not meta or "weight_exp" not in meta:
            continue
        step = 2.0 ** (int(meta["weight_exp"]) - (bits - 8)) / float(meta["scale"])
        w = np.asarray(g.op(n).weight, dtype=np.float64)
        g.set_op(n, g.op(n).replace(weight=np.rint(w / step) * step))
    return g


def measure(target: str, samples: int) -> dict[str, Any]:
    from snncc.analysis.feeds import to_feeds
    from snncc.data.digits import digits
    from snncc.loading import resolve_model, to_graph
    from snncc.passes.manager import PassContext, run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE
    from snncc.passes.quantize import quantize

    front, _ = run_pipeline(to_graph(resolve_model(str(CHECKPOINT))), FRONT_PIPELINE)
    q, _ = run_pipeline(front.copy(), [quantize], PassContext(config={"target": target}))
    x, y = digits("test")
    x, y = x[:samples], y[:samples]
    ff, fq = to_feeds(front, x), to_feeds(q, x)
    fv = evaluate(front, "float", ff)
    qv = evaluate(q, target, fq)
    spikes_f = {n: fv[n] for n in counts(front, fv)}
    q_local = evaluate(q, target, fq, forced=spikes_f)
    dq = dequantized(front, q) if target == "loihi" else None
    row: dict[str, Any] = {"target": target, "samples": samples}
    cf = counts(front, fv)
    row["float_mean_count"] = {n: round(float(np.mean(c)), 3) for n, c in cf.items()}
    row["end_to_end_drift"] = drift(cf, counts(q, qv))
    row["end_to_end_flip_rate"] = flip_rate(front, fv, qv)
    row["local_drift"] = drift(cf, counts(q, q_local))
    row["local_flip_rate"] = flip_rate(front, fv, q_local)
    accs = {}
    for name, g, v in (("float", front, fv), (target, q, qv)):
        out = v[g.outputs[0]]
        accs[name] = round(float(np.mean(out.reshape(len(y), -1).argmax(-1) == y)), 4)
    row["accuracy"] = accs
    if dq is not None:
        dv = evaluate(dq, "float", ff)
        d_local = evaluate(dq, "float", ff, forced=spikes_f)
        row["weights_only_drift"] = drift(cf, counts(dq, dv))
        row["weights_only_local_drift"] = drift(cf, counts(dq, d_local))
        row["weights_only_local_flip_rate"] = flip_rate(front, fv, d_local)
        row["weights"] = weight_error(front, q)
        row["weight_bits_end_to_end_drift"] = {
            bits: drift(cf, counts(front, evaluate(on_grid(front, q, bits), "float", ff)))
            for bits in (8, 10, 12, 16)
        }
        # The quantizer's own threshold placement (membrane granule analysed per neuron).
        row["thresholds"] = {
            n: {k: q.node_meta(n)["quant"][k] for k in ("vth", "membrane_granule",
                                                         "threshold_exact", "fire_shift_v")}
            for n in cf
        }  # fmt: skip
    first = next(n for n in front.topo_order() if front.op(n).NEURON)
    sub = to_feeds(front, x[:32])
    sub_base = evaluate(front, "float", sub)
    row["one_flip"] = {"layer": first, "flips": FLIPS, "samples": 32,
                       "spikes_changed_per_layer": one_flip(front, sub, sub_base, first,
                                                            np.random.default_rng(0))}  # fmt: skip
    return row


def main() -> int:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 450
    rows = [measure(t, samples) for t in ("loihi", "spinnaker")]
    for r in rows:
        worst = max(r["end_to_end_drift"].items(), key=lambda kv: kv[1])
        print(f"{r['target']}: accuracy {r['accuracy']}, worst end-to-end drift {worst}")
    doc = {"benchmark": "fidelity_drift", "model": str(CHECKPOINT.relative_to(ROOT)),
           "data": f"digits test split, first {samples}", "results": rows}  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
