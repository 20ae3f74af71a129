"""One small handler per ATen op: the frontend's explicit translation table.

Each handler receives the :class:`~snncc.frontend.trace.Translator` and the exported ``fx.Node`` and
returns the translated :class:`~snncc.frontend.values.Value` (or raises :class:`Unsupported` with
the rule broken and a fix). ``HANDLERS`` maps ATen overload packets to handlers; anything absent is
reported as unsupported, all at once, by the tracer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import fx

import snncc.frontend.neurons  # noqa: F401 - registers torch.ops.snncc.neuron
from snncc.exact import pow2_exponent
from snncc.frontend.values import Const, Value
from snncc.ir import ops as O
from snncc.ir.types import Kind

if TYPE_CHECKING:
    from snncc.frontend.trace import Translator

aten = torch.ops.aten


class Unsupported(Exception):
    """A node that cannot be represented, with the rule and the fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _shape(node: fx.Node) -> tuple[int, ...]:
    return tuple(int(s) for s in node.meta["val"].shape)


def _tensor(tr: Translator, arg: Any) -> Value:
    v = tr.val(arg)
    if not isinstance(v, Value):
        raise Unsupported("expected a traced tensor operand, got a constant")
    return v


def _np(c: Any) -> Any:
    if c is None:
        return None
    if not isinstance(c, Const):
        raise Unsupported("expected a parameter tensor")
    return c.tensor.detach().to(torch.float64).cpu().numpy()


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = list(v)
    return (int(v[0]), int(v[-1])) if len(v) in (1, 2) else (int(v[0]), int(v[1]))


def _one_lead(x: Value, what: str) -> None:
    if x.lead != 1:
        raise Unsupported(
            f"{what} expects time and batch merged into one leading axis, got roles {x.roles}",
            "flatten [T, B, ...] to [T*B, ...] before the layer, as multi-step SNN code does",
        )


def _data_axis(x: Value, dim: int) -> int:
    d = dim % len(x.shape)
    if d < x.lead:
        raise Unsupported(
            f"operates on a time/batch axis (dim {dim} of roles {x.roles})",
            "keep time and batch as leading axes and operate on data axes only",
        )
    return d - x.lead


# -- structure -------------------------------------------------------------------------------
def reshape_like(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    out = _shape(node)
    roles = tr.roles.after_reshape(x, out)
    if roles is None:
        raise Unsupported(
            f"reshape {x.shape} -> {out} mixes time/batch axes with data axes",
            "reshape so that the leading [T, B] (or [T*B]) axes stay intact",
        )
    data = out[len(roles) :]
    if data == x.data_shape:
        return Value(x.name, roles, out, x.static)
    return tr.emit(O.Reshape(shape=data), [x], node, roles)


def identity(tr: Translator, node: fx.Node) -> Value:
    return _tensor(tr, node.args[0])


def to_copy(tr: Translator, node: fx.Node) -> Value:
    dtype = node.kwargs.get("dtype")
    if dtype is not None and not dtype.is_floating_point:
        raise Unsupported(f"cast to {dtype} is not representable", "keep tensors floating point")
    return _tensor(tr, node.args[0])


def dropout(tr: Translator, node: fx.Node) -> Value:
    train = node.args[2] if len(node.args) > 2 else node.kwargs.get("train", False)
    if train:
        raise Unsupported("dropout in training mode", "call model.eval() before compiling")
    return _tensor(tr, node.args[0])


def permute(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    n = len(x.shape)
    if node.target in (aten.transpose.int, aten.transpose):
        a, b = (int(d) % n for d in node.args[1:3])
        dims = list(range(n))
        dims[a], dims[b] = dims[b], dims[a]
    elif node.target is aten.t.default:
        dims = list(range(n))[::-1]
    else:
        dims = [int(d) % n for d in node.args[1]]
    k = x.lead
    if sorted(dims[:k]) != list(range(k)):
        raise Unsupported(
            f"permute {dims} moves time/batch axes {x.roles} among data axes",
            "keep [T, B] leading; permute data axes only",
        )
    roles = tuple(x.roles[d] for d in dims[:k])
    data_dims = tuple(d - k for d in dims[k:])
    out = _shape(node)
    if data_dims == tuple(range(len(data_dims))):
        return Value(x.name, roles, out, x.static)
    return tr.emit(O.Permute(dims=data_dims), [x], node, roles)


def repeat(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    sizes = [int(s) for s in node.args[1]]
    if node.target is aten.expand.default:
        sizes = [1 if s == -1 or s == d else s for s, d in zip(sizes, x.shape, strict=False)]
    if len(sizes) != len(x.shape):
        raise Unsupported("repeat/expand that adds axes", "unsqueeze first, then repeat")
    k = x.lead
    lead, data = sizes[:k], tuple(sizes[k:])
    roles = x.roles
    if x.roles == ("1", "B") and lead == [tr.roles.T, 1]:
        roles = ("T", "B")  # direct encoding: the static sample is presented at every step
    elif any(s != 1 for s in lead):
        raise Unsupported(
            f"repeat {lead} of time/batch axes {x.roles} (timesteps={tr.roles.T})",
            "repeat a static input over time with x.unsqueeze(0).repeat(T, 1, ...)",
        )
    out = _shape(node)
    if all(s == 1 for s in data):
        return Value(x.name, roles, out, x.static)
    return tr.emit(O.Repeat(repeats=data), [x], node, roles)


def slice_(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    dim = int(node.args[1]) if len(node.args) > 1 else 0
    size = x.shape[dim % len(x.shape)]
    start = node.args[2] if len(node.args) > 2 and node.args[2] is not None else 0
    stop = node.args[3] if len(node.args) > 3 and node.args[3] is not None else size
    step = int(node.args[4]) if len(node.args) > 4 else 1
    start, stop, step = slice(int(start), int(min(stop, size)), step).indices(size)
    if (start, stop, step) == (0, size, 1):
        return x
    axis = _data_axis(x, dim)
    return tr.emit(O.Slice(axis=axis, start=start, stop=stop, step=step), [x], node, x.roles)


def pad(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    widths = [int(p) for p in node.args[1]]
    value = float(node.args[2]) if len(node.args) > 2 else 0.0
    if value != 0.0:
        raise Unsupported("padding with a non-zero constant", "pad with zeros")
    cur = x
    for i in range(0, len(widths), 2):
        before, after = widths[i], widths[i + 1]
        if before == after == 0:
            continue
        if before < 0 or after < 0:
            raise Unsupported("negative padding (cropping)", "slice instead")
        axis = _data_axis(cur, len(cur.shape) - 1 - i // 2)
        shape = list(cur.shape)
        shape[axis + cur.lead] += before + after
        cur = tr.emit(
            O.Pad(axis=axis, before=before, after=after), [cur], node, cur.roles, shape=tuple(shape)
        )
    return cur


def reduce(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    n = len(x.shape)
    dims = node.args[1] if len(node.args) > 1 else None
    dims = list(range(n)) if dims is None else ([dims] if isinstance(dims, int) else dims)
    dims = sorted(int(d) % n for d in dims)
    keepdim = bool(node.args[2]) if len(node.args) > 2 else bool(node.kwargs.get("keepdim"))
    is_mean = node.target.overloadpacket is aten.mean
    if dims == [0] and x.roles == ("T", "B") and not keepdim and is_mean:
        return tr.emit(O.TimeMean(), [x], node, ("B",), static=True)
    axes = tuple(_data_axis(x, d) for d in dims)
    op = O.Mean(axes=axes, keepdim=keepdim) if is_mean else O.Sum(axes=axes, keepdim=keepdim)
    return tr.emit(op, [x], node, x.roles)


# -- synaptic ops ----------------------------------------------------------------------------
def linear(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    bias = node.args[2] if len(node.args) > 2 else None
    op = O.Linear(weight=_np(tr.val(node.args[1])), bias=_np(tr.val(bias)))
    return tr.emit(op, [x], node, x.roles)


def conv(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    args = list(node.args) + [None] * 7
    w, b = _np(tr.val(args[1])), _np(tr.val(args[2]))
    stride, padding, dilation = args[3] or 1, args[4] or 0, args[5] or 1
    groups = int(args[6] or 1)
    if isinstance(padding, str):
        raise Unsupported(f"string padding {padding!r}", "use integer padding")
    _one_lead(x, "convolution")
    if w.ndim == 3:
        op: O.Op = O.Conv1d(
            weight=w,
            bias=b,
            stride=_pair(stride)[0],
            padding=_pair(padding)[0],
            dilation=_pair(dilation)[0],
            groups=groups,
        )
    elif w.ndim == 4:
        op = O.Conv2d(
            weight=w,
            bias=b,
            stride=_pair(stride),
            padding=_pair(padding),
            dilation=_pair(dilation),
            groups=groups,
        )
    else:
        raise Unsupported(f"{w.ndim - 2}-d convolution", "use Conv1d or Conv2d")
    return tr.emit(op, [x], node, x.roles)


def batch_norm(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    if node.target is aten.batch_norm.default:
        w, b, mean, var, training, _momentum, eps = node.args[1:8]
    else:  # _native_batch_norm_legit_no_training(input, weight, bias, mean, var, momentum, eps)
        w, b, mean, var, _momentum, eps = node.args[1:7]
        training = False
    if training:
        raise Unsupported("batch norm in training mode", "call model.eval() before compiling")
    axis = _data_axis(x, 1)
    wt, bt = _np(tr.val(w)), _np(tr.val(b))
    mt, vt = _np(tr.val(mean)), _np(tr.val(var))
    n = x.data_shape[axis]
    op = O.BatchNorm(
        weight=wt if wt is not None else torch.ones(n, dtype=torch.float64).numpy(),
        bias=bt if bt is not None else torch.zeros(n, dtype=torch.float64).numpy(),
        running_mean=mt,
        running_var=vt,
        eps=float(eps),
        axis=axis,
    )
    return tr.emit(op, [x], node, x.roles)


def max_pool(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    args = list(node.args) + [None] * 6
    kernel = _pair(args[1])
    stride = _pair(args[2]) if args[2] else kernel
    if args[5]:
        raise Unsupported("max pooling with ceil_mode=True", "use ceil_mode=False")
    _one_lead(x, "max pooling")
    op = O.MaxPool2d(
        kernel=kernel, stride=stride, padding=_pair(args[3] or 0), dilation=_pair(args[4] or 1)
    )
    return tr.emit(op, [x], node, x.roles)


def avg_pool(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    args = list(node.args) + [None] * 7
    kernel = _pair(args[1])
    stride = _pair(args[2]) if args[2] else kernel
    if args[4] or args[6] is not None:
        raise Unsupported("avg pooling with ceil_mode or divisor_override", "use the defaults")
    _one_lead(x, "average pooling")
    cip = True if args[5] is None else bool(args[5])
    op = O.AvgPool2d(
        kernel=kernel, stride=stride, padding=_pair(args[3] or 0), count_include_pad=cip
    )
    return tr.emit(op, [x], node, x.roles)


# -- algebra ---------------------------------------------------------------------------------
def _same_layout(a: Value, b: Value, what: str) -> None:
    if a.roles != b.roles or len(a.shape) != len(b.shape) or a.static != b.static:
        raise Unsupported(
            f"{what} of tensors with different layouts {a.roles}{a.shape} and {b.roles}{b.shape}",
            "give both operands the same [T, B, ...] layout and rank",
        )


def add(tr: Translator, node: fx.Node) -> Value:
    a, b = tr.val(node.args[0]), tr.val(node.args[1])
    alpha = node.kwargs.get("alpha", 1)
    if alpha != 1:
        raise Unsupported("add with alpha != 1", "write a + b")
    if isinstance(a, Value) and isinstance(b, (int, float)) and b == 0:
        return a
    if not (isinstance(a, Value) and isinstance(b, Value)):
        raise Unsupported("adding a constant to a tensor", "fold constants into a layer's bias")
    _same_layout(a, b, "addition")
    return tr.emit(O.Add(n=2), [a, b], node, a.roles, static=a.static)


def mul(tr: Translator, node: fx.Node) -> Value:
    a, b = tr.val(node.args[0]), tr.val(node.args[1])
    if isinstance(a, (int, float)):
        a, b = b, a
    if isinstance(a, Value) and isinstance(b, (int, float)):
        return tr.emit(O.Scale(factor=float(b)), [a], node, a.roles, static=a.static)
    if isinstance(a, Value) and isinstance(b, Value):
        _same_layout(a, b, "element-wise product")
        return tr.emit(O.Mul(), [a, b], node, a.roles, static=a.static)
    raise Unsupported("multiplication by a constant tensor", "use a layer with weights")


def div(tr: Translator, node: fx.Node) -> Value:
    a, b = tr.val(node.args[0]), tr.val(node.args[1])
    if isinstance(a, Value) and isinstance(b, (int, float)) and pow2_exponent(b) is not None:
        # Division by a power of two equals multiplication by its inverse bit for bit.
        return tr.emit(O.Scale(factor=1.0 / float(b)), [a], node, a.roles, static=a.static)
    raise Unsupported(
        "division other than by a positive power of two",
        "multiply by a constant (x * 0.125) instead",
    )


def matmul(tr: Translator, node: fx.Node) -> Value:
    a, b = tr.val(node.args[0]), tr.val(node.args[1])
    if not (isinstance(a, Value) and isinstance(b, Value)):
        raise Unsupported("matmul with a constant operand", "use nn.Linear for static weights")
    _same_layout(a, b, "matrix product")
    if len(a.data_shape) < 2:
        raise Unsupported("matmul of vectors", "keep [..., N, d] operands")
    return tr.emit(O.MatMul(), [a, b], node, a.roles)


def neuron(tr: Translator, node: fx.Node) -> Value:
    x = _tensor(tr, node.args[0])
    if x.roles[:1] != ("T",) or x.static:
        raise Unsupported(
            f"neuron input has leading axes {x.roles}; multi-step neurons need time first",
            "reshape to [T, B, ...] before the neuron",
        )
    return tr.emit(tr.neuron_op(int(node.args[1])), [x], node, x.roles, kind=Kind.SPIKE)


def getitem(tr: Translator, node: fx.Node) -> Value:
    src = tr.val(node.args[0])
    if isinstance(src, tuple):
        return src[int(node.args[1])]
    raise Unsupported("indexing a tensor", "use slicing on data axes")


def batch_norm_tuple(tr: Translator, node: fx.Node) -> tuple[Value, None, None]:
    return (batch_norm(tr, node), None, None)


HANDLERS: dict[Any, Callable[[Translator, fx.Node], Any]] = {
    aten.view: reshape_like,  # structure: per-sample reshape or a role change
    aten.reshape: reshape_like,
    aten._unsafe_view: reshape_like,
    aten.flatten: reshape_like,
    aten.unflatten: reshape_like,
    aten.unsqueeze: reshape_like,
    aten.squeeze: reshape_like,
    aten.contiguous: identity,  # memory layout only
    aten.clone: identity,
    aten.alias: identity,
    aten.detach: identity,
    aten.lift_fresh_copy: identity,
    aten._to_copy: to_copy,  # float casts are value-preserving for spikes and currents
    aten.to: to_copy,
    aten.type_as: identity,
    aten.dropout: dropout,  # identity in eval mode (Dropout, DropPath)
    aten.permute: permute,
    aten.transpose: permute,
    aten.t: permute,
    aten.repeat: repeat,  # static input over time = direct encoding
    aten.expand: repeat,
    aten.slice: slice_,  # elastic first-k selection
    aten.constant_pad_nd: pad,  # zero-padded dropped heads
    aten.pad: pad,
    aten.mean: reduce,  # token mean, or the mean over time (readout)
    aten.sum: reduce,
    aten.linear: linear,
    aten.conv1d: conv,
    aten.conv2d: conv,
    aten.batch_norm: batch_norm,
    aten._native_batch_norm_legit_no_training: batch_norm_tuple,
    aten.max_pool2d: max_pool,  # OR over spikes
    aten.avg_pool2d: avg_pool,
    aten.add: add,  # residual joins
    aten.mul: mul,  # constant scale, or AND of spikes
    aten.div: div,
    aten.matmul: matmul,  # dynamic spike products (attention)
    torch.ops.snncc.neuron: neuron,  # every neuron module (see frontend/neurons.py)
}

#: Fixes suggested for well-known unsupported ops.
HINTS = {
    "layer_norm": "spike-driven models use BatchNorm (Spikingformer's norm1/norm2 are unused)",
    "softmax": "spiking self-attention needs no softmax: use (Q @ K^T) @ V * scale",
    "_softmax": "spiking self-attention needs no softmax: use (Q @ K^T) @ V * scale",
    "gelu": "use a spiking neuron (snncc.nn.LIF) as the non-linearity",
    "relu": "use a spiking neuron (snncc.nn.LIF) as the non-linearity",
    "cat": "zero-pad with torch.nn.functional.pad instead of concatenating zeros",
    "zeros": "tensors created inside forward cannot be deployed; use F.pad for zero padding",
}
