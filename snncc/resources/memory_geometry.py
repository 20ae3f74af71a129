"""Counts of one synaptic op from its shapes and parameters: synapses, receptive field, fan-out,
convolution geometry, and the op's form as a Lava ``Conv`` (:class:`LavaForm`).

Why a module of its own: :mod:`snncc.resources.memory` walks the graph; what one op stores and
reads is plain arithmetic on shapes that the per-target byte models and the calibrated Loihi 2 model
(``snncc.backends.lava.calibrated``) both need. Everything here is exact integer arithmetic on
shapes, so the float graph and the quantized graph give the same numbers. numpy + networkx only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from snncc.exact import ceil_div
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.printer import node_stats


class LavaForm(NamedTuple):
    """A synaptic op as the Lava ``Conv`` that shares its weights (``backends/lower`` emits
    the same normal form, ``snncc.backends.lower.structure.conv_form``).

    ``groups``, ``c_in_g`` (input channels per group), ``taps`` (kernel positions kh·kw),
    ``c_out`` (output channels), ``rows`` and ``cols`` (output positions per channel: a
    ``Linear`` over ``[*tokens, in]`` is a 1x1 convolution over ``[in, 1, tokens]``), and
    ``mapped``: the op's outputs map one-to-one onto the consuming layer's atoms (no slicing,
    repeating or pooling in between), so a core's share of the layer is a share of the op's
    output channels and positions.
    """

    groups: int
    c_in_g: int
    taps: int
    c_out: int
    rows: int
    cols: int
    mapped: bool

    @property
    def positions(self) -> int:
        """Output positions per channel (1 for a Linear over a single token)."""
        return self.rows * self.cols

    @property
    def kernel(self) -> int:
        """Stored weights of the shared kernel: ``c_out · c_in_g · taps``."""
        return self.c_out * self.c_in_g * self.taps


def _size(g: Graph, name: str) -> int:
    return g.type(name).size


def lava_form(g: Graph, s: str, mapped: bool) -> LavaForm | None:
    """The :class:`LavaForm` of synaptic op ``s`` (None for ``Sum``/``Mean``)."""
    op = g.op(s)
    shape_out = g.type(s).shape
    if isinstance(op, O.Linear):
        tokens = math.prod(g.type(g.inputs_of(s)[0]).shape[:-1])
        n_out, n_in = (int(x) for x in op.weight.shape)
        return LavaForm(1, n_in, 1, n_out, 1, tokens, mapped)
    if isinstance(op, O.Conv1d):
        c_out, c_in_g, k = (int(x) for x in op.weight.shape)
        return LavaForm(op.groups, c_in_g, k, c_out, 1, int(shape_out[-1]), mapped)
    if isinstance(op, O.Conv2d):
        c_out, c_in_g, kh, kw = (int(x) for x in op.weight.shape)
        return LavaForm(op.groups, c_in_g, kh * kw, c_out, int(shape_out[-2]),
                        int(shape_out[-1]), mapped)  # fmt: skip
    if isinstance(op, (O.AvgPool2d, O.MaxPool2d)):  # depthwise, unit weights (quantize, lower)
        c = int(shape_out[0])
        taps = op.kernel[0] * op.kernel[1]
        return LavaForm(c, 1, taps, c, int(shape_out[-2]), int(shape_out[-1]), mapped)
    return None


def identity_form(shape: tuple[int, ...]) -> LavaForm:
    """A one-to-one connection from a value of ``shape`` as a depthwise 1x1 convolution: one
    weight per channel (the first axis), the other axes its positions."""
    dims = [int(x) for x in shape] or [1]
    rows = dims[-2] if len(dims) >= 3 else 1
    cols = math.prod(dims[1:]) // rows if len(dims) > 1 else 1
    return LavaForm(dims[0], 1, 1, dims[0], rows, cols, True)


def conv_geometry(g: Graph, s: str) -> tuple[int, ...]:
    """See :attr:`snncc.resources.memory.Projection.conv`; Conv1d is a convolution over one row."""
    op = g.op(s)
    if not isinstance(op, (O.Conv1d, O.Conv2d)):
        return ()
    c_in_g, c_out = int(op.weight.shape[1]), int(op.weight.shape[0])
    shape_in, shape_out = g.type(g.inputs_of(s)[0]).shape, g.type(s).shape
    if isinstance(op, O.Conv1d):
        ext = (op.weight.shape[2] - 1) * op.dilation + 1
        return (op.groups, c_in_g, 1, shape_in[-1], c_out, 1, shape_out[-1], 1, 1, op.stride, ext)
    ext_h = (op.weight.shape[2] - 1) * op.dilation[0] + 1
    ext_w = (op.weight.shape[3] - 1) * op.dilation[1] + 1
    return (op.groups, c_in_g, shape_in[-2], shape_in[-1], c_out, shape_out[-2], shape_out[-1],
            op.stride[0], ext_h, op.stride[1], ext_w)  # fmt: skip


def conv_sources(conv: tuple[int, ...], k: int) -> int:
    """Most distinct input elements ``k`` consecutive outputs of a convolution read.

    Outputs are channel-major (``[C_out, H_out, W_out]`` flattened). ``k`` consecutive outputs
    lie in at most ``ceil(k / (H_out·W_out)) + 1`` output channels, hence in a few channel
    groups, and — when they stay within a channel's map — in at most ``ceil(k / W_out) + 2``
    output rows (the run may wrap into the next channel), which read at most
    ``(rows - 1)·stride + extent`` input rows of every input channel of their groups, all
    columns. A run shorter than a row covers at most two row segments (``k`` outputs in all),
    whose windows span at most ``(k - 1)·stride_w + 2·extent_w`` input columns over
    ``stride_h + extent_h`` input rows. Neighbouring outputs share most of their window, so
    this is far below ``k·rf`` once ``k`` is more than a few atoms.
    """
    groups, c_in_g, h_in, w_in, c_out, h_out, w_out, stride, ext, stride_w, ext_w = conv
    per_channel = h_out * w_out
    channels = min(c_out, ceil_div(k, per_channel) + 1)
    out_per_group = max(1, c_out // groups)
    groups_hit = min(groups, ceil_div(channels, out_per_group) + 1)
    cols_in = w_in
    if k >= per_channel:
        rows_in = h_in
    elif k < w_out:
        rows_in = min(h_in, stride + ext)
        cols_in = min(w_in, (k - 1) * stride_w + 2 * ext_w)
    else:
        rows_out = min(h_out, ceil_div(k, w_out) + 2)
        rows_in = min(h_in, (rows_out - 1) * stride + ext)
    return groups_hit * c_in_g * rows_in * cols_in


def conv_kernel(g: Graph, s: str) -> tuple[int, int]:
    """``(weights per output channel, output atoms per channel)`` of a convolution, else (0, 0)."""
    op = g.op(s)
    if not isinstance(op, (O.Conv1d, O.Conv2d)):
        return 0, 0
    return math.prod(op.weight.shape[1:]), _size(g, s) // op.weight.shape[0]


def synaptic_counts(g: Graph, s: str) -> tuple[int, int, int, int]:
    """``(synapses, rf, fan_out, group)`` of one synaptic op, from shapes and parameters."""
    op, out = g.op(s), g.type(s)
    in_size = _size(g, g.inputs_of(s)[0])
    if isinstance(op, (O.Sum, O.Mean)):
        return in_size, max(1, in_size // max(1, out.size)), 1, 1
    syn = node_stats(g, s).synapses
    if isinstance(op, O.Linear):
        return syn, op.weight.shape[1], op.weight.shape[0], op.weight.shape[0]
    if isinstance(op, O.AvgPool2d):
        k = op.kernel[0] * op.kernel[1]
        return syn, k, taps(op.kernel, op.stride, (1, 1)), 1
    w = op.weight
    per_group_out = w.shape[0] // op.groups
    kernel = tuple(w.shape[2:])
    stride = op.stride if isinstance(op.stride, tuple) else (op.stride,)
    dil = op.dilation if isinstance(op.dilation, tuple) else (op.dilation,)
    rf = math.prod(w.shape[1:])
    return syn, rf, per_group_out * taps(kernel, stride, dil), 1


def taps(kernel: tuple, stride: tuple, dilation: tuple) -> int:
    """Most outputs one input position feeds: ceil(k/s) per axis (k when dilated)."""
    n = 1
    for k, s, d in zip(kernel, stride, dilation, strict=True):
        n *= ceil_div(k, s) if d == 1 else k
    return n
