"""A ``conv`` connection with its im2col gather precomputed: the per-step convolution of the
fused program and of ``SpecSynapse``.

Why: :func:`snncc.backends.lower.kernels.connection_output` builds the operand (an index-map
gather), pads it and cuts it into im2col columns on every call; inside a Lava process that is
every step, for a layout that never changes. :class:`ConvPlan` runs the reference's own column
builder (:func:`snncc.reference.float_spatial._im2col`, so the column order is the same) once,
on the operand's *source indices* (``index + 1``, with 0 for padding and unread entries)
instead of on values; a step is then one gather of the source spikes through those columns,
the same float64 product with the same kernel matrix as ``conv_nd`` (exact: the constructor
checks that no sum can reach 2^53), Lava's 24-bit wrap, the exponent and the output map — what
``connection_output`` computes, checked by ``tests/backends/test_lava_stepper.py`` on every
conv of the test programs.
"""

from __future__ import annotations

import numpy as np

from snncc.backends.lower.kernels import signed_wrap, to_targets
from snncc.backends.lower.spec import Connection
from snncc.backends.lower.structure import torch_kernel
from snncc.reference.float_spatial import _im2col, _out_len
from snncc.reference.loihi_kernels import shift_sum

#: Sums below this bound are exact in float64.
_EXACT = 1 << 53


class ConvPlan:
    """``conv`` connection ``c`` as precomputed columns; call it on one step's source outputs."""

    def __init__(self, c: Connection, max_input: int = 1) -> None:
        p = c.params
        (operand,) = c.operands
        index = np.asarray(operand.index, np.int64) + 1  # [C, H, W]; 0 reads zero
        kernel = torch_kernel(np.asarray(p["kernel"]))  # [O, C/g, kh, kw], cross-correlation
        stride, padding, dilation = (tuple(int(v) for v in p[k][::-1])
                                     for k in ("stride", "padding", "dilation"))  # fmt: skip
        groups = int(p["groups"])
        ksize = tuple(kernel.shape[2:])
        out = tuple(
            _out_len(index.shape[1 + i], ksize[i], stride[i], padding[i], dilation[i])
            for i in range(2)
        )
        padded = np.pad(index[None], [(0, 0), (0, 0)] + [(q, q) for q in padding])
        self.cols = _im2col(padded, ksize, stride, dilation, out, groups)  # [g, K, P]
        self.w = kernel.astype(np.float64).reshape(groups, kernel.shape[0] // groups, -1)
        if int(np.abs(self.w).sum(axis=2).max(initial=0)) * max_input >= _EXACT:
            raise ValueError(f"{c.name}: conv sums may exceed 2^53, not exact in float64")
        self.o_ch = kernel.shape[0]
        self.exp = int(p.get("weight_exp", 0))
        self.out_index = c.out_index

    def __call__(self, s: np.ndarray) -> np.ndarray:
        """``a_in`` contribution ``[n_target]`` (int64) for one step's source outputs ``s``."""
        x = np.concatenate(([0.0], np.asarray(s, np.float64).reshape(-1)))[self.cols]
        y = signed_wrap(np.rint(self.w @ x).astype(np.int64)).reshape(1, -1)
        if self.exp < 0:
            y = shift_sum(y, self.exp)
        return to_targets(y, self.out_index)[0]
