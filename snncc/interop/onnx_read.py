"""ONNX ANN -> a list of snncc ops plus activation markers (what ``ann2snn`` converts).

The converter needs the ANN as *linear* ops (the IR's Conv/Linear/AvgPool/Mean/Reshape/Add,
evaluated by the reference interpreter's own kernels) separated by *activations* (ReLU, or Clip
from 0), because each activation becomes an ExpG-IF layer and everything between two of them is
applied to exactly quantized values. So this module reads the ONNX graph once, folds what folds
(BatchNormalization and bias ``Add`` into the Conv/Gemm/MatMul before them, as
:func:`snncc.passes.fold_bn.fold_into` does), and refuses the rest node by node.

Supported: Conv (1-D/2-D, symmetric pads), Gemm (``transA = 0``), MatMul by a constant, Relu,
Clip (``min = 0``), BatchNormalization, Add (two activations, or a constant bias after a
Conv/Gemm/MatMul), AveragePool (``ceil_mode = 0``, symmetric pads), GlobalAveragePool, Flatten
(``axis = 1``), Reshape (constant shape, batch axis kept), Identity and Dropout (inference).
Every other node, or a supported one with an attribute outside that, is listed (``CV010``,
exit 3) with why and what would work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snncc.diagnostics import Diagnostic, Severity, SnnccError
from snncc.ir import ops as O
from snncc.ir.shapes import output_shape

UNSUPPORTED = "CV010"


@dataclass
class AnnNode:
    """One ANN node: a linear snncc op, or an activation (``op is None``) clipping at ``clip``."""

    name: str
    op: O.Op | None
    inputs: list[str]
    shape: tuple[int, ...]
    clip: float = math.inf
    onnx_op: str = ""


@dataclass
class Ann:
    """The ANN in topological order; ``input`` is the graph input's node name."""

    input: str
    input_shape: tuple[int, ...]
    nodes: dict[str, AnnNode] = field(default_factory=dict)
    output: str = ""

    def activations(self) -> list[str]:
        return [n for n, a in self.nodes.items() if a.op is None]


class _Refuse(Exception):
    def __init__(self, why: str, fix: str) -> None:
        super().__init__(why)
        self.why, self.fix = why, fix


def _name(text: str, i: int, op_type: str) -> str:
    base = text.strip("/").replace("/", ".").replace(":", "_") if text else ""
    return base or f"{op_type}_{i}"


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pair_pads(pads: list[int], n: int) -> tuple[int, ...]:
    if not pads:
        return (0,) * n
    if list(pads[:n]) != list(pads[n:]):
        raise _Refuse(f"asymmetric pads {list(pads)}", "equal padding on both sides")
    return tuple(int(p) for p in pads[:n])


class _Reader:
    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        g = model.graph
        self.graph = g
        self.consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.value: dict[str, str] = {}  # ONNX value name -> ANN node name
        self.users: dict[str, int] = {}
        for node in g.node:
            for v in node.input:
                self.users[v] = self.users.get(v, 0) + 1
        self.problems: list[Diagnostic] = []
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise SnnccError(
                f"the ONNX graph has {len(inputs)} inputs; the converter takes one",
                code="CV001",
            )
        dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
        if len(dims) < 2 or any(d <= 0 for d in dims[1:]):
            raise SnnccError(
                f"input {inputs[0].name!r} has shape {dims}: need [batch, C, ...] with fixed "
                "per-sample sizes",
                code="CV001",
                hint="export with a fixed input shape",
            )
        name = _name(inputs[0].name, 0, "input")
        self.ann = Ann(name, tuple(dims[1:]))
        self.ann.nodes[name] = AnnNode(name, O.Input(tuple(dims[1:])), [], tuple(dims[1:]))
        self.value[inputs[0].name] = name

    # -- helpers ----------------------------------------------------------------------------
    def const(self, v: str) -> np.ndarray | None:
        return self.consts.get(v)

    def src(self, v: str) -> str:
        if v not in self.value:  # a constant where an activation is expected, or a failed node
            raise _Refuse(f"input {v!r} comes from an unsupported node or is not a constant",
                          "see the other diagnostics")  # fmt: skip
        return self.value[v]

    def add(self, name: str, op: O.Op | None, inputs: list[str], onnx_op: str, **kw: Any) -> str:
        shapes = [self.ann.nodes[i].shape for i in inputs]
        shape = shapes[0] if op is None else output_shape(op, shapes)
        self.ann.nodes[name] = AnnNode(name, op, inputs, tuple(shape), onnx_op=onnx_op, **kw)
        return name

    def sole_synapse(self, v: str) -> AnnNode | None:
        """The Conv/Linear producing value ``v`` when ``v`` has no other reader."""
        node = self.ann.nodes.get(self.value.get(v, ""))
        ok = node is not None and isinstance(node.op, (O.Linear, O.Conv1d, O.Conv2d))
        return node if ok and self.users.get(v, 0) == 1 else None

    # -- the walk ---------------------------------------------------------------------------
    def run(self) -> None:
        for i, node in enumerate(self.graph.node):
            name = _name(node.name, i, node.op_type)
            while name in self.ann.nodes:
                name += "_"
            try:
                handler = getattr(self, f"op_{node.op_type}", None)
                if handler is None:
                    raise _Refuse(
                        f"no spiking equivalent for ONNX {node.op_type}",
                        "the ops docs/interop.md lists (e.g. MaxPool -> AveragePool, "
                        "Sigmoid/Softmax -> Relu before the head)",
                    )
                out = handler(node, name, _attrs(node))  # None: a constant, no node
                if out is not None:
                    self.value[node.output[0]] = out
            except _Refuse as r:
                self.problem(name, node.op_type, r.why, r.fix)
            except SnnccError as e:
                self.problem(name, node.op_type, e.message, "check the node's shapes")
        outs = list(self.graph.output)
        if len(outs) != 1:
            raise SnnccError(f"the ONNX graph has {len(outs)} outputs; the converter takes one",
                             code="CV001")  # fmt: skip
        if not self.problems:
            self.ann.output = self.src(outs[0].name)

    def problem(self, name: str, op_type: str, why: str, fix: str) -> None:
        self.problems.append(
            Diagnostic(UNSUPPORTED, Severity.ERROR, f"{op_type}: {why}", node=name, hint=fix)
        )

    # -- one handler per ONNX op ------------------------------------------------------------
    def op_Conv(self, node: Any, name: str, a: dict[str, Any]) -> str:
        w = self.const(node.input[1])
        if w is None:
            raise _Refuse("weights are not a constant", "constant (initializer) weights")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
            raise _Refuse(f"auto_pad {a['auto_pad']!r}", "explicit pads")
        n = w.ndim - 2
        if n not in (1, 2):
            raise _Refuse(f"a {n}-D convolution", "Conv1d or Conv2d")
        b = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        kw: dict[str, Any] = {"weight": w.astype(np.float64), "groups": int(a.get("group", 1))}
        kw["bias"] = None if b is None else b.astype(np.float64)
        stride = tuple(int(s) for s in a.get("strides", [1] * n))
        dilation = tuple(int(s) for s in a.get("dilations", [1] * n))
        pads = _pair_pads(list(a.get("pads", [])), n)
        if n == 1:
            op: O.Op = O.Conv1d(stride=stride[0], padding=pads[0], dilation=dilation[0], **kw)
        else:
            op = O.Conv2d(stride=stride, padding=pads, dilation=dilation, **kw)
        return self.add(name, op, [self.src(node.input[0])], "Conv")

    def op_Gemm(self, node: Any, name: str, a: dict[str, Any]) -> str:
        bmat = self.const(node.input[1])
        if bmat is None or a.get("transA", 0):
            raise _Refuse("B is not a constant, or transA = 1", "Gemm(x, W) with W an initializer")
        w = (bmat if a.get("transB", 0) else bmat.T).astype(np.float64) * float(a.get("alpha", 1))
        c = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        bias = None
        if c is not None:
            bias = np.broadcast_to(c * float(a.get("beta", 1.0)), (w.shape[0],)).astype(float)
        return self.add(name, O.Linear(w, bias), [self.src(node.input[0])], "Gemm")

    def op_MatMul(self, node: Any, name: str, a: dict[str, Any]) -> str:
        bmat = self.const(node.input[1])
        if bmat is None or bmat.ndim != 2:
            raise _Refuse("a product of two activations (or a batched constant)",
                          "MatMul(x, W) with W a 2-D initializer")  # fmt: skip
        return self.add(name, O.Linear(bmat.T.astype(np.float64)), [self.src(node.input[0])],
                        "MatMul")  # fmt: skip

    def op_Add(self, node: Any, name: str, a: dict[str, Any]) -> str:
        consts = [self.const(v) for v in node.input]
        if all(c is None for c in consts):
            ins = [self.src(v) for v in node.input]
            shapes = {self.ann.nodes[i].shape for i in ins}
            if len(shapes) != 1:
                raise _Refuse(f"a broadcasting add of shapes {sorted(shapes)}", "equal shapes")
            return self.add(name, O.Add(2), ins, "Add")
        v = node.input[0] if consts[1] is not None else node.input[1]
        c = consts[1] if consts[1] is not None else consts[0]
        syn = self.sole_synapse(v)
        if syn is None:
            raise _Refuse("adds a constant that is not the bias of a Conv/Gemm/MatMul",
                          "put the constant in the preceding layer's bias")  # fmt: skip
        channels = syn.op.weight.shape[0]
        vec = c.reshape(-1) if c.size in (1, channels) else None
        if vec is None or (isinstance(syn.op, O.Linear) and c.ndim > 1 and c.shape[-1] != c.size):
            raise _Refuse(f"a constant of shape {list(c.shape)} is not one bias per channel",
                          "a per-channel bias")  # fmt: skip
        old = syn.op.bias if syn.op.bias is not None else np.zeros(channels)
        syn.op = syn.op.replace(bias=old + np.broadcast_to(vec.astype(np.float64), (channels,)))
        return syn.name

    def op_Relu(self, node: Any, name: str, a: dict[str, Any]) -> str:
        return self.add(name, None, [self.src(node.input[0])], "Relu")

    def op_Clip(self, node: Any, name: str, a: dict[str, Any]) -> str:
        lo = a.get("min")
        hi = a.get("max")
        if len(node.input) > 1 and node.input[1]:
            lo = self.const(node.input[1])
        if len(node.input) > 2 and node.input[2]:
            hi = self.const(node.input[2])
        if lo is None or float(np.asarray(lo)) != 0.0:
            raise _Refuse(f"Clip from {lo!r}, not from 0", "Clip(min=0[, max]) or Relu")
        top = math.inf if hi is None else float(np.asarray(hi))
        if not top > 0:
            raise _Refuse(f"Clip max {top}", "a positive max")
        return self.add(name, None, [self.src(node.input[0])], "Clip", clip=top)

    def op_BatchNormalization(self, node: Any, name: str, a: dict[str, Any]) -> str:
        from snncc.passes.fold_bn import fold_into

        p = [self.const(v) for v in node.input[1:5]]
        if any(x is None for x in p):
            raise _Refuse("statistics are not constants", "an exported inference BatchNorm")
        scale, bias, mean, var = (x.astype(np.float64) for x in p)  # type: ignore[union-attr]
        bn = O.BatchNorm(scale, bias, mean, var, float(a.get("epsilon", 1e-5)), axis=0)
        syn = self.sole_synapse(node.input[0])
        if syn is not None:  # output channel o of a Conv/Linear is weight row o
            syn.op = fold_into(syn.op, bn)
            return syn.name
        return self.add(name, bn, [self.src(node.input[0])], "BatchNormalization")

    def op_AveragePool(self, node: Any, name: str, a: dict[str, Any]) -> str:
        k = tuple(int(x) for x in a["kernel_shape"])
        if len(k) != 2 or a.get("ceil_mode", 0):
            raise _Refuse("not a 2-D floor-mode pool", "AveragePool 2-D, ceil_mode = 0")
        op = O.AvgPool2d(kernel=k, stride=tuple(int(s) for s in a.get("strides", [1, 1])),
                         padding=_pair_pads(list(a.get("pads", [])), 2),
                         count_include_pad=bool(a.get("count_include_pad", 0)))  # fmt: skip
        return self.add(name, op, [self.src(node.input[0])], "AveragePool")

    def op_GlobalAveragePool(self, node: Any, name: str, a: dict[str, Any]) -> str:
        src = self.src(node.input[0])
        axes = tuple(range(1, len(self.ann.nodes[src].shape)))
        return self.add(name, O.Mean(axes, keepdim=True), [src], "GlobalAveragePool")

    def op_Flatten(self, node: Any, name: str, a: dict[str, Any]) -> str:
        if int(a.get("axis", 1)) != 1:
            raise _Refuse(f"axis {a.get('axis')}", "Flatten(axis=1)")
        src = self.src(node.input[0])
        return self.add(name, O.Reshape((math.prod(self.ann.nodes[src].shape),)), [src], "Flatten")

    def op_Reshape(self, node: Any, name: str, a: dict[str, Any]) -> str:
        target = self.const(node.input[1])
        if target is None:
            raise _Refuse("a shape computed at run time (Shape/Gather/Concat)",
                          "export with constant folding, or use nn.Flatten")  # fmt: skip
        src = self.src(node.input[0])
        have = self.ann.nodes[src].shape
        want = [int(d) for d in target.reshape(-1)]
        if not want or want[0] not in (-1, 0, 1):
            raise _Refuse(f"target shape {want} changes the batch axis", "keep axis 0 the batch")
        per = [have[i - 1] if d == 0 and i - 1 < len(have) else d for i, d in enumerate(want)][1:]
        if per.count(-1) == 1:
            known = math.prod(d for d in per if d != -1)
            per[per.index(-1)] = math.prod(have) // known if known else 0
        if math.prod(per) != math.prod(have) or any(d < 1 for d in per):
            raise _Refuse(f"cannot reshape {list(have)} to {want}", "a consistent shape")
        return self.add(name, O.Reshape(tuple(per)), [src], "Reshape")

    def op_Constant(self, node: Any, name: str, a: dict[str, Any]) -> None:
        from onnx import numpy_helper

        if "value" not in a:
            raise _Refuse("a Constant without a tensor 'value'", "a tensor constant")
        self.consts[node.output[0]] = numpy_helper.to_array(a["value"])
        return None

    def op_Identity(self, node: Any, name: str, a: dict[str, Any]) -> str:
        return self.src(node.input[0])

    op_Dropout = op_Identity


def read_onnx(path: str | Path) -> Ann:
    """Read an ONNX file into an :class:`Ann`; every unsupported node at once (``CV010``)."""
    import onnx

    path = Path(path)
    with open(path, "rb") as f:  # missing / unreadable: OSError -> OS001 in the CLI
        data = f.read()
    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - protobuf and checker errors have many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise SnnccError(f"{path}: not a valid ONNX model ({first})", code="CV001",
                         hint="export it with torch.onnx.export") from None  # fmt: skip
    reader = _Reader(model)
    reader.run()
    if reader.problems:
        raise SnnccError.from_diagnostics(
            f"{path}: {len(reader.problems)} ONNX node(s) the converter cannot turn into spikes",
            reader.problems, code=UNSUPPORTED, exit_code=3,
        )  # fmt: skip
    return reader.ann
