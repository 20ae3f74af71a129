"""ANN -> SNN with ExpG-IF neurons, lossless with respect to the K-bit quantized ANN.

**The quantized ANN.** Each activation ``j`` (ReLU, or Clip from 0) becomes the K-bit quantizer

    q_j(a) = theta_j * clip(floor(a * 2^K / theta_j), 0, 2^K - 1) / 2^K

with a per-layer threshold ``theta_j``, a power of two calibrated on data (the smallest
``2^e >= max`` pre-activation over the calibration samples, layer by layer on the quantized
values before it; for Clip at most ``2^floor(log2 max)`` so that saturation stays below it).
Powers of two keep every quantized value a short dyadic number, so sums of bit-weighted events
are exact in float64.

**Why ExpG-IF reproduces it exactly.** A one-group ExpG-IF neuron (:class:`snncc.ir.ops.ExpGIF`
with ``start``) integrates its input at steps ``t <= start`` and then, at steps ``start …
start + K - 1``, emits the binary expansion of ``q(a)`` of the sum ``a`` MSB first: each
``v - th`` is exact (Sterbenz), so its bits are ``floor(a * 2^K / theta)``, it saturates at
``2^K - 1`` for ``a >= theta``, and it is silent afterwards, so the sum of all its events over
the sample is exactly ``q(a)``.

**The pipeline.** A layer can fire its MSB only once every bit of its input is known, so layer
levels run in consecutive groups: an activation at level ``L`` (``L = 1 +`` the highest level it
reads) has ``start = (L-1) K`` and fires during steps ``[(L-1)K, LK)``. Its input is a plain sum
of synapses, as on a neurocore:

- level 1 reads the input (a host current, the same at every step) through the ANN's ops and
  integrates it once, at step 0;
- a deeper level reads each source activation's events at every step through that source's
  *linear part* of the ANN ops between them (biases removed): the ANN's own op when the path has
  one synaptic op or pool plus re-indexing, else their composition as one dense ``Linear``
  (a chip cannot pool or re-weight a sum of currents). The sources have all finished by
  ``start``, so the neuron has integrated ``A q`` by then;
- the constant term ``f(0)`` (biases, through the ops after them) arrives once, as the weight of
  a synapse from a *clock*: a 1-bit one-group ExpG-IF neuron fed a constant 1 that fires once,
  at step 0.

The output (the last linear ops after the last activation) reads ``T x`` each source's events
through a ``TimeMean``: ``sum(T e) / T = q`` exactly, so the final ops see exactly ``q`` and its
logits are the quantized ANN's. The SNN needs ``T >= (L_out - 1) K + 1`` steps.

**Exactness.** Every event is ``theta·2^-(k+1)`` (power-of-two thresholds), every product of a
float32 weight with it is exact, and the neuron's sum over steps equals the ANN's ``W q + b``
whenever those float64 sums are exact, i.e. when the values do not span more than 53 bits (the
case for float32 weights within about 2^25 of each other, power-of-two pools); a layer whose
sums round may differ from the ANN in the last bit, which can move a code only at a
quantization boundary. ``snncc convert`` checks 16 calibration samples before writing and the
tests check whole test splits. On Loihi every layer is the programmable neuron
``LoihiExpGIF`` with the same ``start`` (integer weights: an approximation of this graph, not
bit-equal to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snncc.diagnostics import Diagnostic, Severity, SnnccError
from snncc.interop.onnx_read import UNSUPPORTED, Ann
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind, TensorType


@dataclass
class Conversion:
    """What was converted and how: thresholds, bits, levels and the step count."""

    ann: Ann
    bits: int
    thetas: dict[str, float]
    levels: dict[str, int] = field(default_factory=dict)
    out_level: int = 1

    @property
    def min_timesteps(self) -> int:
        return (self.out_level - 1) * self.bits + 1


# -- the ANN, float or quantized, on the reference interpreter's kernels ------------------------
def _eval(op: O.Op, xs: list[np.ndarray], shape: tuple[int, ...], batch: int) -> np.ndarray:
    from snncc.reference.context import KernelCtx
    from snncc.reference.float_kernels import KERNELS

    ctx = KernelCtx("ann", 1, 1, batch, TensorType(shape, temporal=False))
    return KERNELS[type(op)](op, xs, ctx)


def quantize_activation(a: np.ndarray, theta: float, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(q, code)``: the K-bit quantizer above and its integer codes."""
    code = np.clip(np.floor(a * (2.0**bits / theta)), 0, 2**bits - 1)
    return code * (theta / 2.0**bits), code.astype(np.int64)


def _theta(top: float, clip: float) -> float:
    theta = 2.0 ** math.ceil(math.log2(top)) if top > 0 and math.isfinite(top) else 1.0
    if math.isfinite(clip):
        theta = min(theta, 2.0 ** math.floor(math.log2(clip)))
    return theta


def ann_forward(
    ann: Ann,
    x: np.ndarray,
    *,
    thetas: dict[str, float] | None = None,
    bits: int | None = None,
    calibrate: bool = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the ANN on ``x`` ``[B, *input_shape]``: float activations without ``thetas``, else the
    K-bit quantized ANN. Returns the output and, per activation, its integer codes (quantized)
    or values (float). ``calibrate`` fills ``thetas`` layer by layer from this batch."""
    vals: dict[str, np.ndarray] = {}
    acts: dict[str, np.ndarray] = {}
    batch = int(x.shape[0])
    for name, node in ann.nodes.items():
        if isinstance(node.op, O.Input):
            vals[name] = np.asarray(x, np.float64)
        elif node.op is not None:
            vals[name] = _eval(node.op, [vals[i] for i in node.inputs], node.shape, batch)
        else:
            a = vals[node.inputs[0]]
            if thetas is None:
                vals[name] = acts[name] = np.minimum(np.maximum(a, 0.0), node.clip)
                continue
            if calibrate:
                thetas[name] = _theta(float(np.max(a, initial=0.0)), node.clip)
            vals[name], acts[name] = quantize_activation(a, thetas[name], int(bits or 1))
    return vals[ann.output], acts


def calibrate(ann: Ann, x: np.ndarray, bits: int) -> dict[str, float]:
    """Per-activation power-of-two thresholds from calibration samples ``x`` (never test data)."""
    thetas: dict[str, float] = {}
    ann_forward(ann, x, thetas=thetas, bits=bits, calibrate=True)
    return thetas


def _refuse(node: str, why: str, hint: str) -> SnnccError:
    """``CV010`` (exit 3) for an ANN construct the conversion cannot express."""
    d = Diagnostic(UNSUPPORTED, Severity.ERROR, why, node=node, hint=hint)
    return SnnccError.from_diagnostics(
        "the ANN cannot be converted", [d], code=UNSUPPORTED, exit_code=3
    )


# -- the SNN graph ------------------------------------------------------------------------------
def _linear_part(op: O.Op) -> O.Op:
    """``op`` without its constant term: ``f(x) - f(0)`` for the affine ops the reader emits."""
    if isinstance(op, (O.Linear, O.Conv1d, O.Conv2d)) and op.bias is not None:
        return op.replace(bias=None)
    if isinstance(op, O.BatchNorm):
        zero = np.zeros_like(np.asarray(op.bias))
        return op.replace(bias=zero, running_mean=zero)
    return op  # pooling, means, reshapes, Add: linear already


#: Ops that only re-index a tensor (or add): kept on a path to a neuron as they are.
_REINDEX = (O.Reshape, O.Permute, O.Pad, O.Slice, O.Repeat)
#: Most synapses one composed path may have (a dense Linear: weights x 8 bits on chip).
_DENSE_MAX = 1 << 22


class _Builder:
    def __init__(self, ann: Ann, conv: Conversion, timesteps: int) -> None:
        self.ann, self.conv, self.T, self.K = ann, conv, timesteps, conv.bits
        self.g = Graph("ann2snn")
        self.clock_node: str | None = None

    def node(self, name: str, op: O.Op, inputs: list[str]) -> str:
        name = self.g.unique_name(name)
        self.g.add(name, op)
        for port, src in zip(op.in_ports, inputs, strict=True):
            self.g.connect(src, name, port)
        return name

    def clock(self) -> str:
        """One event of value 1 at step 0, then silence: a one-group, 1-bit ExpG-IF neuron fed a
        constant 1 (``Linear(0, bias 1)`` of the input; IR graphs have no constants)."""
        if self.clock_node is None:
            shape = self.ann.input_shape
            flat = self.node("clock.flat", O.Reshape((math.prod(shape),)), [self.ann.input])
            one = self.node("clock.one", O.Linear(np.zeros((1, math.prod(shape))), np.ones(1)),
                            [flat])  # fmt: skip
            self.clock_node = self.node("clock", O.ExpGIF(theta=2.0, bits=1, start=0), [one])
        return self.clock_node

    def apply(
        self, nodes: list[str], feed: dict[str, str], suffix: str, linear: bool = False
    ) -> dict[str, str]:
        """Clone the ANN ``nodes`` reading ``feed`` (ANN name -> graph node); ``linear`` drops
        their constant terms."""
        out = dict(feed)
        for n in nodes:
            a = self.ann.nodes[n]
            op = _linear_part(a.op) if linear else a.op
            out[n] = self.node(f"{n}{suffix}", op, [out[i] for i in a.inputs])
        return out

    def constant(self, nodes: list[str], sources: list[str], target: str) -> np.ndarray:
        """``f(0)``: what the region ``nodes`` gives ``target`` with every source at zero."""
        vals = {s: np.zeros((1, *self.ann.nodes[s].shape)) for s in sources}
        for n in nodes:
            a = self.ann.nodes[n]
            vals[n] = _eval(a.op, [vals[i] for i in a.inputs], a.shape, 1)
        return vals[target][0]

    def current(self, j: str, nodes: list[str], sources: list[str], suffix: str) -> str:
        """The input of a deeper activation ``j``: one synaptic path per source on its events at
        every step (:meth:`path`), plus the region's constant ``f(0)`` once, from the clock."""
        pre = self.ann.nodes[j].inputs[0]
        parts = [self.path(s, nodes, pre, suffix if len(sources) == 1 else f"@{s}")
                 for s in sources]  # fmt: skip
        c = self.constant(nodes, sources, pre)
        if np.any(c):
            shape = self.ann.nodes[pre].shape
            bias = self.node(f"{j}.bias", O.Linear(c.reshape(-1, 1)), [self.clock()])
            if len(shape) != 1:
                bias = self.node(f"{j}.bias.r", O.Reshape(tuple(shape)), [bias])
            parts.append(bias)
        if len(parts) == 1:
            return parts[0]
        return self.node(f"{j}.in", O.Add(len(parts)), parts)

    def path(self, s: str, nodes: list[str], pre: str, suffix: str) -> str:
        """The linear map from source ``s``'s events to ``pre`` as ops a neurocore runs: the ANN's
        own ops when the path has one synaptic op (or pool) and re-indexing, else their
        composition as one dense ``Linear`` (a chip sums synapses into a neuron; it cannot
        pool or re-weight a sum of currents)."""
        sub = []
        for n in nodes:
            if any(i == s or i in sub for i in self.ann.nodes[n].inputs):
                sub.append(n)
        heavy = [n for n in sub if not isinstance(self.ann.nodes[n].op, _REINDEX)]
        single = len(heavy) <= 1 and not any(isinstance(self.ann.nodes[n].op, O.Add) for n in heavy)
        if single:
            out = {s: s}
            for n in sub:
                a = self.ann.nodes[n]
                ins = [out[i] for i in a.inputs if i in out]
                out[n] = self.node(f"{n}{suffix}", _linear_part(a.op), ins)
            return out[pre]
        shape, size = self.ann.nodes[s].shape, math.prod(self.ann.nodes[s].shape)
        out_shape = self.ann.nodes[pre].shape
        if size * math.prod(out_shape) > _DENSE_MAX:
            raise _refuse(
                pre,
                f"the linear ops from {s} to this layer "
                f"({', '.join(sub)}) compose to a {math.prod(out_shape)} x {size} "
                f"matrix, over {_DENSE_MAX} synapses",
                "an activation between them (one synaptic op per layer)",
            )
        vals = {s: np.eye(size).reshape(size, *shape)}
        for n in sub:
            a = self.ann.nodes[n]
            ins = [vals[i] for i in a.inputs if i in vals]
            if isinstance(a.op, O.Add):
                vals[n] = ins[0] if len(ins) == 1 else np.sum(ins, axis=0)
            else:
                vals[n] = _eval(_linear_part(a.op), ins, a.shape, size)
        weight = vals[pre].reshape(size, -1).T
        flat = self.node(f"{s}.flat", O.Reshape((size,)), [s]) if len(shape) != 1 else s
        y = self.node(f"{pre}{suffix}", O.Linear(weight), [flat])
        if len(out_shape) != 1:
            y = self.node(f"{pre}{suffix}.r", O.Reshape(tuple(out_shape)), [y])
        return y


def region(ann: Ann, target: str) -> tuple[list[str], list[str]]:
    """The linear nodes feeding ``target`` (topological) and its sources (activations or the
    input)."""
    nodes, sources, todo = set(), set(), list(ann.nodes[target].inputs)
    while todo:
        n = todo.pop()
        op = ann.nodes[n].op
        if op is None or isinstance(op, O.Input):
            sources.add(n)
        elif n not in nodes:
            nodes.add(n)
            todo.extend(ann.nodes[n].inputs)
    return [n for n in ann.nodes if n in nodes], sorted(sources)


def build_snn(ann: Ann, conv: Conversion, timesteps: int) -> Graph:
    """The one-group ExpG-IF pipeline of the module doc for ``ann`` (levels set in ``conv``)."""
    b = _Builder(ann, conv, timesteps)
    b.g.add(ann.input, O.Input(ann.input_shape, kind_in=Kind.CURRENT, temporal=False))
    b.g.inputs = [ann.input]
    members: dict[str, int] = {}
    regions = {}
    for target in [*ann.activations(), ann.output]:
        regions[target] = region(ann, target)
        for n in regions[target][0]:
            members[n] = members.get(n, 0) + 1
    for j in ann.activations():
        nodes, sources = regions[j]
        level = conv.levels[j]
        suffix = "" if all(members[n] == 1 for n in nodes) else f"@{j}"
        if level == 1:  # the host current, the same at every step: integrated at step 0 only
            pre = b.apply(nodes, {ann.input: ann.input}, suffix)[ann.nodes[j].inputs[0]]
        else:
            pre = b.current(j, nodes, sources, suffix)
        start = (level - 1) * conv.bits
        b.node(j, O.ExpGIF(theta=conv.thetas[j], bits=conv.bits, start=start), [pre])
    # readout: T x the events summed over time is T q exactly, so their time mean is q
    o = ann.output
    scale = float(timesteps)
    if ann.nodes[o].op is None:  # the output is an activation: read it out as q
        tq = b.node(f"{o}.xT", O.Scale(scale), [o])
        b.g.outputs = [b.node(f"{o}.q", O.TimeMean(), [tq])]
    else:
        nodes, sources = regions[o]
        feed = {s: b.node(f"{s}.q", O.TimeMean(), [b.node(f"{s}.xT", O.Scale(scale), [s])])
                for s in sources}  # fmt: skip
        suffix = "@out" if any(members.get(n, 0) > 1 for n in nodes) else ""
        b.g.outputs = [b.apply([*nodes, o], feed, suffix)[o]]
    b.g.meta = {"timesteps": int(timesteps), "time_axis": None,
                "input_shape": list(ann.input_shape)}  # fmt: skip
    from snncc.passes.infer_types import infer_node

    for n in b.g.topo_order():
        b.g.set_type(n, infer_node(b.g, n))
    return b.g


def levels(ann: Ann) -> tuple[dict[str, int], int]:
    """Each activation's level and the output's (see module doc); refuses an output that reads
    the input with no activation in between (its exact static value cannot be formed)."""
    lvl: dict[str, int] = {}
    for name, node in ann.nodes.items():
        if isinstance(node.op, O.Input):
            lvl[name] = 0
        else:
            top = max(lvl[i] for i in node.inputs)
            lvl[name] = top + 1 if node.op is None else top
    acts = {n: lvl[n] for n in ann.activations()}
    for j, level in acts.items():
        if level > 1 and ann.input in region(ann, j)[1]:
            raise _refuse(
                j,
                "a layer after the first activations also "
                "reads the network input (a skip from the input): on chip the input "
                "is a current at every step, which a one-group neuron would add "
                f"{(level - 1)} x bits + 1 times",
                "start the skip after the first activation",
            )
    out = ann.output
    out_level = lvl[out] + 1
    if ann.nodes[out].op is not None:
        _, sources = region(ann, out)
        if ann.input in sources or not acts:
            raise _refuse(
                out,
                "the output reads the input through linear ops only (no activation in between)",
                "an ANN whose output layer follows a ReLU",
            )
    return acts, out_level


def convert(
    ann: Ann, x_calib: np.ndarray, *, bits: int | None, timesteps: int
) -> tuple[Graph, Conversion]:
    """Calibrate on ``x_calib`` and build the SNN for ``timesteps`` steps.

    ``bits`` None: the largest K (at most 16) that fits ``timesteps``. Raises ``CV002`` (exit 2)
    when ``timesteps`` is too short for the network's levels and ``bits``.
    """
    acts, out_level = levels(ann)
    groups = out_level - 1
    if bits is None:
        bits = min(16, (timesteps - 1) // groups) if groups else 16
    need = groups * bits + 1
    if bits < 1 or timesteps < need:
        raise SnnccError(
            f"{timesteps} timesteps are too few: {groups} activation level(s) of "
            f"{max(bits, 1)} bits need {groups * max(bits, 1) + 1} (levels x bits + 1 readout "
            "step)",
            code="CV002",
            hint=f"--timesteps {groups * max(bits, 1) + 1} or more, or fewer --bits",
        )
    thetas = calibrate(ann, x_calib, bits)
    conv = Conversion(ann, bits, thetas, acts, out_level)
    return build_snn(ann, conv, timesteps), conv
