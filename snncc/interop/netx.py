"""Loihi-quantized snncc graph -> lava-dl netx HDF5 (``netx.hdf5.Network(net_config=FILE)``).

netx (lava-dl ``src/lava/lib/dl/netx/hdf5.py``) loads a *sequential* list ``layer/0..n-1`` of
``input``, ``conv``, ``dense`` and ``flatten`` layers (``pool``, ``average``, ``concat``, ``convT``
raise ``NotImplementedError`` there), each ``conv``/``dense`` with a CUBA neuron. So a graph is
written only when its deployed part is a chain ``[first population] -> ([flatten] -> synapse ->
population)*``; residuals, pooling, attention products, delays and branches are refused with one
diagnostic per node (``NX010``, exit 3).

Layout and conventions (hardware-semantics §2.6; the field names and dtypes are the ones lava-dl's
SLAYER ``export_hdf5`` writes and ``NetDict`` reads):

- ``type``: ASCII bytes, shape ``(1,)`` (``S10``); ``shape``: int64, torch order ``(C, H, W)`` or
  ``(N,)`` (netx reverses it to Lava's ``(W, H, C)``);
- ``neuron/{type='CUBA', iDecay, vDecay, vThMant, refDelay, gradedSpike}``: netx builds Lava's
  ``LIF`` with ``vth = vThMant``, ``du = iDecay - 1``, ``dv = vDecay``, ``bias_exp = 6``; snncc's
  ``LoihiLIF`` maps one to one (``bias_exp`` must be 6);
- ``weight``: int32, ``[out, in]`` (dense) or torch's ``[out, in/groups, kh, kw]`` (conv; netx
  flips and transposes it for Lava's true convolution). netx stores *effective integer weights*
  without an exponent: snncc's ``W_q << weight_exp``. Dense weights must lie in ``[-256, 254]``
  (what ``optimize_weight_bits`` keeps exact); a negative exponent is written only when it
  divides every weight;
- ``bias``: int32 ``bias_mant`` (per channel for conv when uniform over the feature map, else per
  neuron in Lava's ``(W, H, C)`` order);
- ``stride``, ``padding``, ``dilation`` (int64, ``(H, W)``), ``groups``; ``inChannels``,
  ``outChannels``, ``kernelSize``, ``inFeatures``, ``outFeatures`` as SLAYER writes them;
- ``simulation/{Ts=1, tSample=T}``.

The input layer: a population fed by host currents (the first conv on pixels runs on the host in
snncc) becomes ``layer/0`` of type ``input`` *with* its neuron; feed it each step through its
neurons' ``bias_mant`` = ``rint(x * host_scale) + bias`` (a delta synapse, ``du = 4095``, makes
that equal to snncc's ``a_in``). A spike input becomes an ``input`` layer without a neuron. Extra
facts netx does not read (``host_scale``, the input bias, node names, the host readout) are in the
top-level group ``snncc``, which netx ignores.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snncc.diagnostics import Diagnostic, Severity, SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph

UNSUPPORTED = "NX010"
FORMAT = "snncc-netx"
VERSION = 1
#: Dense weights netx's ``optimize_weight_bits`` keeps exactly (mixed sign: it clips to these).
DENSE_MIN, DENSE_MAX = -256, 254
#: Why a deployed op cannot be a netx layer, by op class.
WHY: dict[type[O.Op], str] = {
    O.Add: "a residual join: netx layers are sequential (its 'concat' raises NotImplementedError)",
    O.MaxPool2d: "pooling: netx's 'pool' layer raises NotImplementedError",
    O.AvgPool2d: "pooling: netx's 'pool'/'average' layers raise NotImplementedError",
    O.Mul: "a spike product (attention): netx has no product of two layers",
    O.MatMul: "a spike matrix product (attention): netx has no product of two layers",
    O.Delay: "a delay between layers: netx conv layers ignore delays, dense ones take per-synapse "
    "delays only",
}


@dataclass
class _Plan:
    layers: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[list[str]] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    host: dict[str, Any] = field(default_factory=dict)


def _problem(plan: _Plan, g: Graph, n: str, why: str, fix: str) -> None:
    plan.problems.append(
        Diagnostic(UNSUPPORTED, Severity.ERROR, f"{g.op(n).kind}: {why}", node=n, hint=fix)
    )


def _neuron(op: O.LoihiLIF) -> dict[str, Any]:
    return {
        "type": "CUBA",
        "iDecay": int(op.du) + 1,
        "vDecay": int(op.dv),
        "vThMant": int(op.vth),
        "refDelay": 1,
        "gradedSpike": False,
    }


def _bias(op: O.LoihiLIF, shape: tuple[int, ...]) -> np.ndarray | None:
    b = np.broadcast_to(np.asarray(op.bias_mant, np.int64), shape)
    if not np.any(b):
        return None
    if len(shape) == 3:
        per = b.reshape(shape[0], -1)
        if np.all(per == per[:, :1]):
            return per[:, 0].astype(np.int32)
        return np.ascontiguousarray(b.transpose(2, 1, 0)).astype(np.int32)  # Lava's (W, H, C)
    return b.astype(np.int32)


def effective_weights(g: Graph, n: str) -> np.ndarray | str:
    """The integer weights of synapse ``n`` as netx stores them (``W_q << weight_exp``), or why
    they cannot be stored."""
    op, q = g.op(n), g.node_meta(n).get("quant") or {}
    if "weight_exp" not in q:
        return "not quantized for Loihi (no weight_exp)"
    w, e = np.asarray(op.weight, np.int64), int(q["weight_exp"])
    if e >= 0:
        return w << e
    if np.any(w % (1 << -e)):
        return f"weight_exp {e} < 0 does not divide every weight (netx stores no exponent)"
    return w >> -e


def _fits_dense(w: np.ndarray) -> bool:
    return bool(w.min(initial=0) >= DENSE_MIN and w.max(initial=0) <= DENSE_MAX)


@dataclass
class _Step:
    """One ``[flatten] -> synapse -> population`` step of the chain."""

    flatten: str | None
    synapse: str
    neuron: str
    in_shape: tuple[int, ...]  # the synapse's input (before the flatten, if any)
    weight: np.ndarray


def _walk(g: Graph) -> tuple[_Plan, list[_Step], str | None]:
    """Check the neurons, find the input layer and follow the chain (see module doc)."""
    plan = _Plan()
    if len(g.inputs) != 1:
        raise SnnccError(f"netx needs one input, the graph has {g.inputs}", code=UNSUPPORTED,
                         exit_code=3)  # fmt: skip
    fix = "compile for --target loihi; netx has only CUBA LIF neurons"
    for n in g.nodes():
        op = g.op(n)
        if op.NEURON and not isinstance(op, O.LoihiLIF):
            _problem(plan, g, n, "not a Lava LIF (netx's CUBA neuron)", fix)
        elif isinstance(op, O.LoihiLIF) and op.bias_exp != 6:
            _problem(plan, g, n, f"bias_exp {op.bias_exp}: netx fixes bias_exp = 6", fix)
    deployed = [n for n in g.topo_order() if isinstance(g.op(n), O.LoihiLIF)]
    if not deployed:
        _problem(plan, g, g.inputs[0], "no Loihi neuron population", fix)
        return plan, [], None
    first = deployed[0]
    if g.op(first).host_scale > 0:  # host-fed: the encoding stays on the host
        shape = tuple(g.type(first).shape)
        plan.host = {"host_scale": float(g.op(first).host_scale), "encoding": _host_ops(g, first),
                     "input_bias_mant": np.broadcast_to(g.op(first).bias_mant, shape)}  # fmt: skip
        return plan, _chain(g, first, deployed, plan), first
    return plan, _chain(g, g.inputs[0], deployed, plan), None


def _host_ops(g: Graph, first: str) -> list[str]:
    out, n = [], g.inputs_of(first)[0]
    while not isinstance(g.op(n), O.Input):
        out.append(n)
        n = g.inputs_of(n)[0]
    return out[::-1]


def _chain(g: Graph, cur: str, deployed: list[str], plan: _Plan) -> list[_Step]:
    """The ``[flatten] -> synapse -> population`` steps from ``cur`` while neurons remain."""
    steps: list[_Step] = []
    remaining = set(deployed) - {cur}
    while remaining:
        users = [u for u, _ in g.users(cur)]
        if len(users) != 1:
            for u in users:
                _problem(plan, g, u, f"one of {len(users)} readers of {cur}: netx is sequential",
                         "a chain without branches")  # fmt: skip
            return steps
        n, in_shape, flat = users[0], tuple(g.type(cur).shape), None
        if isinstance(g.op(n), O.Reshape) and len(g.type(n).shape) == 1 and len(in_shape) > 1:
            flat, nxt = n, [u for u, _ in g.users(n)]
            n = nxt[0] if len(nxt) == 1 else n
        op = g.op(n)
        if not isinstance(op, (O.Linear, O.Conv2d)) or (
            isinstance(op, O.Linear) and len(g.type(g.inputs_of(n)[0]).shape) != 1
        ):
            why = WHY.get(type(op), f"{op.kind} between populations has no netx layer")
            _problem(plan, g, n, why, "a chain of input, conv, flatten and dense layers")
            return steps
        nrn = [u for u, _ in g.users(n)]
        if len(nrn) != 1 or not isinstance(g.op(nrn[0]), O.LoihiLIF):
            _problem(plan, g, n, "its output is not one CUBA population",
                     "each conv/dense feeding exactly one LIF population")  # fmt: skip
            return steps
        w = effective_weights(g, n)
        if isinstance(w, str):
            _problem(plan, g, n, w, "a graph quantized by snncc compile --target loihi")
            return steps
        steps.append(_Step(flat, n, nrn[0], in_shape, w))
        cur = nrn[0]
        remaining.discard(cur)
    return steps


def _layers(g: Graph, steps: list[_Step], first: str | None, plan: _Plan) -> bool:
    """Fill ``plan.layers``; returns whether dense layers were written as convolutions.

    netx's dense loader re-derives an exponent from the stored weights and clips them to
    ``[-256, 254]``; its conv loader passes integer weights through (Lava's Conv ignores
    ``weight_exp``). When some dense layer's ``W_q << weight_exp`` leaves that range, every dense
    layer is written as the equal convolution whose kernel covers its whole input (output
    ``(N, 1, 1)``), so the file stays exact.
    """
    as_conv = any(
        isinstance(g.op(s.synapse), O.Linear) and not _fits_dense(s.weight) for s in steps
    )

    def shape3(shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape + (1,) * (3 - len(shape)) if as_conv else shape

    if first is not None:
        shape = shape3(tuple(g.type(first).shape))
        plan.layers.append({"type": "input", "shape": shape, "neuron": _neuron(g.op(first))})
        plan.nodes.append([first])
    else:
        plan.layers.append({"type": "input", "shape": shape3(tuple(g.op(g.inputs[0]).shape))})
        plan.nodes.append([g.inputs[0]])
    for s in steps:
        op, nrn = g.op(s.synapse), g.op(s.neuron)
        out = tuple(g.type(s.neuron).shape)
        layer: dict[str, Any]
        if isinstance(op, O.Conv2d) or as_conv:
            cin = s.in_shape[0]
            if isinstance(op, O.Conv2d):
                w, k = s.weight, op.weight.shape[2:]
                geom = {"stride": op.stride, "padding": op.padding, "dilation": op.dilation}
                groups = op.groups
            else:  # a dense layer as a conv whose kernel is its whole (C, H, W) input
                k = shape3(s.in_shape)[1:]
                w = s.weight.reshape((s.weight.shape[0], cin, *k))
                geom = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)}
                groups, out = 1, shape3(out)
            layer = {"type": "conv", "shape": out, "inChannels": cin, "outChannels": w.shape[0]}
            layer.update(kernelSize=tuple(k), groups=groups, **geom)
        else:
            if s.flatten is not None:
                plan.layers.append({"type": "flatten", "shape": tuple(g.type(s.flatten).shape)})
                plan.nodes.append([s.flatten])
            w = s.weight
            layer = {"type": "dense", "shape": out, "inFeatures": w.shape[1]}
            layer["outFeatures"] = w.shape[0]
        layer["weight"] = w.astype(np.int32)
        layer["neuron"] = _neuron(nrn)
        bias = _bias(nrn, tuple(g.type(s.neuron).shape))
        if bias is not None:
            layer["bias"] = bias
        plan.layers.append(layer)
        plan.nodes.append([n for n in (s.flatten, s.synapse, s.neuron) if n is not None])
    return as_conv


def _write(group: Any, layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if key == "type":
            group.create_dataset("type", (1,), "S10", [value.encode("ascii")], track_times=False)
        elif key == "neuron":
            _write(group.create_group("neuron"), value)
        else:
            group.create_dataset(key, data=np.asarray(value), track_times=False)


def netx_bytes(g: Graph) -> bytes:
    """The netx HDF5 file of a Loihi-quantized graph; refuses (``NX010``, exit 3) otherwise."""
    import h5py

    plan, steps, first = _walk(g)
    as_conv = _layers(g, steps, first, plan) if not plan.problems else False
    if plan.problems:  # name every construct netx lacks, not only where the chain stopped
        named = {d.node for d in plan.problems}
        for n in _deployed(g):
            host_copy = "copy_of" in (g.node_meta(n).get("rewritten") or {})  # readout side
            if n not in named and type(g.op(n)) in WHY and not host_copy:
                _problem(plan, g, n, WHY[type(g.op(n))], "a chain of conv/dense layers")
    if plan.problems:
        raise SnnccError.from_diagnostics(
            f"{g.name}: {len(plan.problems)} construct(s) netx cannot express",
            plan.problems, code=UNSUPPORTED, exit_code=3,
        )  # fmt: skip
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for i, layer in enumerate(plan.layers):
            _write(f.create_group(f"layer/{i}"), layer)
        sim = f.create_group("simulation")
        sim.create_dataset("Ts", data=1, track_times=False)
        sim.create_dataset("tSample", data=int(g.meta.get("timesteps", 1)), track_times=False)
        snn = f.create_group("snncc")
        meta = {"format": FORMAT, "version": VERSION, "nodes": plan.nodes,
                "readout": _readout(g), "host_encoding": plan.host.get("encoding", []),
                "dense_as_conv": as_conv}  # fmt: skip
        snn.create_dataset("about", data=json.dumps(meta, sort_keys=True),
                           dtype=h5py.string_dtype(), track_times=False)  # fmt: skip
        if plan.host:
            snn.create_dataset("host_scale", data=plan.host["host_scale"], track_times=False)
            snn.create_dataset("input_bias_mant", data=np.asarray(
                plan.host["input_bias_mant"], np.int32), track_times=False)  # fmt: skip
    return buf.getvalue()


def _reach(g: Graph, start: list[str], step: Any) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        for u in step(todo.pop()):
            if u not in seen:
                seen.add(u)
                todo.append(u)
    return seen


def _deployed(g: Graph) -> list[str]:
    """Nodes on a path between two populations (what netx would have to hold)."""
    pops = [n for n in g.topo_order() if g.op(n).NEURON]
    after = _reach(g, pops, lambda n: [u for u, _ in g.users(n)])
    before = _reach(g, pops, g.inputs_of)
    return [n for n in g.topo_order() if n in after and n in before]


def _readout(g: Graph) -> list[str]:
    """Host ops after the last population (what netx's output spikes still go through)."""
    last = [n for n in g.topo_order() if isinstance(g.op(n), O.LoihiLIF)][-1:]
    seen = _reach(g, last, lambda n: [u for u, _ in g.users(n)])
    return [n for n in g.topo_order() if n in seen]
