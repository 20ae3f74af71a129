"""Rewrites that ``quantize`` applies first, so every target sees only ops it already handles.

Average pooling over spikes is a synaptic op with uniform weights: with ``count_include_pad``
(PyTorch's default), every output is the sum of its ``kh x kw`` window, padding taps included as
zeros, times ``1/(kh·kw)``. That is exactly a depthwise ``Conv2d`` (``groups = C``, weight
``[C, 1, kh, kw]`` filled with ``1/(kh·kw)``, same stride and zero padding, no bias), so the
pass replaces a deployed ``AvgPool2d`` that reads spikes or counts by that conv. The Loihi and
SpiNNaker quantizers, their reference kernels and the memory model then treat it as an ordinary
conv (the memory model counts the same synapses for both forms: ``kh·kw`` per output).

Without ``count_include_pad`` a border window divides by the number of *real* inputs, so its
weights depend on the output position: not a convolution. With zero padding the two divisors
agree and the lowering is exact; otherwise quantize refuses it (``QNT001``).

Exactness on chip: the node meta ``lowered_from.divisor = kh·kw`` lets the quantizers pick, for a
stream whose every entry is such a pool, a scale ``c = D·2^k`` (:func:`snncc.quant.streams.
stream_divisor`), so that each weight ``c/D = 2^k`` is an exact integer even for a 3x3 window
(where a power-of-two ``c`` would round ``c/9``, and a window of all ones would miss a threshold
it reaches exactly, e.g. a LIF at 0.5 with tau 2).
"""

from __future__ import annotations

import numpy as np

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind

_SPIKY = (Kind.SPIKE, Kind.COUNT)


def avg_pool_as_conv(op: O.AvgPool2d, channels: int, node: str = "AvgPool2d") -> O.Conv2d:
    """The depthwise ``Conv2d`` equal to ``op`` on ``[channels, H, W]`` (see module docstring)."""
    if not op.count_include_pad and any(p > 0 for p in op.padding):
        raise SnnccError(
            f"{node}: AvgPool2d(count_include_pad=False, padding={op.padding}) divides border "
            "windows by their number of real inputs, so its weights depend on the position: it "
            "is not a convolution and has no synaptic form on chip",
            code="QNT001",
            hint="use count_include_pad=True (torch's default) or padding=0",
            exit_code=2,
        )
    kh, kw = op.kernel
    weight = np.full((channels, 1, kh, kw), 1.0 / (kh * kw))
    return O.Conv2d(weight=weight, bias=None, stride=op.stride, padding=op.padding, groups=channels)


def lower_avg_pools(g: Graph, nodes: set[str]) -> list[str]:
    """Replace every ``AvgPool2d`` in ``nodes`` that reads spikes/counts by its depthwise conv.

    Same node name, inputs and type, so nothing else in the graph changes; the node meta records
    ``lowered_from`` (the original op's parameters). Returns the lowered nodes, in graph order.
    """
    done = []
    for n in g.topo_order():
        op = g.op(n)
        if n not in nodes or not isinstance(op, O.AvgPool2d):
            continue
        (src,) = g.inputs_of(n)
        t = g.type(src)
        if t.kind not in _SPIKY:
            continue  # an average of currents stays, and the stream check reports it
        g.set_op(n, avg_pool_as_conv(op, t.shape[0], n))
        g.node_meta(n)["lowered_from"] = {
            "op": "AvgPool2d",
            "kernel": list(op.kernel),
            "stride": list(op.stride),
            "padding": list(op.padding),
            "count_include_pad": bool(op.count_include_pad),
            "divisor": int(op.kernel[0] * op.kernel[1]),
        }
        done.append(n)
    return done
