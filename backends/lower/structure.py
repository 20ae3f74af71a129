"""Index maps and the convolution normal form that lowering folds into connectivity.

Why index maps: structural ops (reshape, permute, slice, pad, repeat) move values without
arithmetic, so a chain of them between a population and a synapse (or a synapse and a neuron)
is fully described by one integer array: for every element of the result, the flat index of
the element it copies, or ``-1`` for a zero (padding). Rather than re-deriving each op's index
arithmetic, :func:`reindex` runs the op's own reference kernel on ``index + 1`` (float64, exact
for any realistic size), so lowering and the reference interpreter cannot disagree on what a
structural op means. Extending lowering to a new re-indexing op is one entry in
:data:`STRUCTURAL` plus its reference kernel.

Why a normal form for synaptic ops: ``Linear`` over tokens, ``Conv1d`` and ``Conv2d`` are all a
2-D convolution over ``[C, H, W]`` once their input and output elements are ordered suitably
(:class:`ConvForm`); the dense and the convolution lowering then have one implementation each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snncc.ir import ops as O
from snncc.ir.types import TensorType
from snncc.reference.context import KernelCtx
from snncc.reference.float_kernels import KERNELS as FLOAT_KERNELS

#: Ops that only move values: lowering composes them into index maps.
STRUCTURAL = (O.Reshape, O.Permute, O.Slice, O.Pad, O.Repeat)


def identity_index(shape: tuple[int, ...]) -> np.ndarray:
    """``arange(size).reshape(shape)``: every element reads itself."""
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


def narrow(a: np.ndarray) -> np.ndarray:
    """An integer array in the narrowest of int16/int32/int64 holding its values (a copy).

    Why: index maps, kernels and biases of a large model are hundreds of MB as int64; every
    consumer converts them to int64 or float64 before arithmetic, so storage can be narrow.
    """
    a = np.asarray(a)
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for dt in (np.int16, np.int32):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return a.astype(dt)
    return a.astype(np.int64)


def reindex(op: O.Op, node: str, out_type: TensorType, index: np.ndarray) -> np.ndarray:
    """The index map of ``op``'s output, given the index map ``index`` of its input.

    Requires: ``op`` is one of :data:`STRUCTURAL`; ``index`` has the input's per-sample shape.
    Ensures:  the result has ``out_type.shape``; element ``k`` holds ``index`` at the element
              ``op`` copies to ``k``, or -1 where ``op`` inserts a zero.
    """
    return reindex_terms(op, node, out_type, np.asarray(index)[None])[0]


def reindex_terms(op: O.Op, node: str, out_type: TensorType, index: np.ndarray) -> np.ndarray:
    """:func:`reindex` of ``J`` maps at once: ``index`` is ``[J, *in_shape]``."""
    ctx = KernelCtx(node=node, lead=1, timesteps=1, batch=len(index), out_type=out_type)
    shifted = (np.asarray(index, np.int64) + 1).astype(np.float64)
    y = FLOAT_KERNELS[type(op)](op, [shifted], ctx)
    return np.rint(y).astype(np.int64) - 1


def sum_terms(op: O.Sum, in_shape: tuple[int, ...], index: np.ndarray) -> np.ndarray:
    """Index maps ``[J·N, *out_shape]`` of ``Sum(axes)`` of a value with maps ``[J, *in_shape]``.

    A sum over ``N`` elements is ``N`` terms: element ``k`` of the output is the sum, over the
    new leading axis, of the elements the maps select (the summed axes move next to ``J``).
    """
    rank = len(in_shape)
    axes = sorted({a % rank for a in op.axes})
    keep = [a for a in range(rank) if a not in axes]
    moved = np.transpose(index, [0] + [1 + a for a in axes] + [1 + a for a in keep])
    n = math.prod(in_shape[a] for a in axes)
    out = (
        [1 if (a in axes) else in_shape[a] for a in range(rank)]
        if op.keepdim
        else [in_shape[a] for a in keep]
    )
    return moved.reshape((len(index) * n, *out))


def gather(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``x[..., index]`` over the last axis of ``x``, reading 0 where ``index`` is -1.

    ``x`` is ``[..., n]`` (flat values), the result ``[..., *index.shape]``.
    """
    flat = np.asarray(index, np.int64).ravel()
    y = np.take(x, np.maximum(flat, 0), axis=-1)
    if (flat < 0).any():
        y = np.where(flat >= 0, y, 0)
    return y.reshape(x.shape[:-1] + tuple(np.shape(index)))


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Index map of "read ``inner`` through ``outer``": ``inner.flat[outer]``, -1 kept."""
    outer = np.asarray(outer, np.int64)
    picked = np.asarray(inner, np.int64).ravel()[np.maximum(outer, 0)]
    return np.where(outer >= 0, picked, -1)


@dataclass(frozen=True)
class ConvForm:
    """A synaptic op as a 2-D convolution (torch semantics: cross-correlation).

    ``in_order[k]`` is the entry-input flat index of conv input element ``k`` (C-order over
    ``in_shape``), ``out_order[k]`` the entry-output flat index of conv output element ``k``.
    """

    weight: np.ndarray  # [O, I/groups, KH, KW]
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    in_order: np.ndarray
    out_order: np.ndarray


def _out_len(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv_form(op: O.Op, in_shape: tuple[int, ...], weight: np.ndarray) -> ConvForm:
    """The :class:`ConvForm` of a ``Linear``, ``Conv1d`` or ``Conv2d`` reading ``in_shape``.

    ``weight`` replaces the op's weights (e.g. the integer mantissas). A ``Linear`` over
    ``[*tokens, in]`` becomes a 1x1 convolution over ``[in, 1, tokens]``; a ``Conv1d`` over
    ``[C, L]`` one over ``[C, 1, L]``.
    """
    w = np.asarray(weight)
    if isinstance(op, O.Linear):
        n_in, n_out = in_shape[-1], w.shape[0]
        tokens = math.prod(in_shape[:-1])
        in_order = (np.arange(tokens)[None, :] * n_in + np.arange(n_in)[:, None]).ravel()
        out_order = (np.arange(tokens)[None, :] * n_out + np.arange(n_out)[:, None]).ravel()
        return ConvForm(
            w[:, :, None, None], (n_in, 1, tokens), (n_out, 1, tokens), (1, 1), (0, 0),
            (1, 1), 1, in_order.astype(np.int64), out_order.astype(np.int64),
        )  # fmt: skip
    if isinstance(op, O.Conv1d):
        c, length = in_shape
        lo = _out_len(length, w.shape[2], op.stride, op.padding, op.dilation)
        n_in, n_out = c * length, w.shape[0] * lo
        return ConvForm(
            w[:, :, None, :], (c, 1, length), (w.shape[0], 1, lo), (1, op.stride),
            (0, op.padding), (1, op.dilation), op.groups,
            np.arange(n_in, dtype=np.int64), np.arange(n_out, dtype=np.int64),
        )  # fmt: skip
    if isinstance(op, O.Conv2d):
        c, h, wd = in_shape
        kh, kw = w.shape[2:]
        ho = _out_len(h, kh, op.stride[0], op.padding[0], op.dilation[0])
        wo = _out_len(wd, kw, op.stride[1], op.padding[1], op.dilation[1])
        return ConvForm(
            w, (c, h, wd), (w.shape[0], ho, wo), tuple(op.stride), tuple(op.padding),
            tuple(op.dilation), op.groups, np.arange(c * h * wd, dtype=np.int64),
            np.arange(w.shape[0] * ho * wo, dtype=np.int64),
        )  # fmt: skip
    raise TypeError(f"{op.kind} has no convolution form")


def conv_pairs(f: ConvForm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every synapse of the convolution: ``(out, in, weight index)``, flat, padding dropped.

    ``out``/``in`` index the conv output/input in C-order of ``out_shape``/``in_shape``;
    ``weight index`` indexes ``f.weight`` flat. Each (out, in) pair occurs at most once.
    """
    o_ch, i_g, kh, kw = f.weight.shape
    _, h, w = f.in_shape
    _, ho, wo = f.out_shape
    o, oy, ox, c, ky, kx = np.meshgrid(
        np.arange(o_ch), np.arange(ho), np.arange(wo), np.arange(i_g), np.arange(kh),
        np.arange(kw), indexing="ij", sparse=True,
    )  # fmt: skip
    iy = oy * f.stride[0] - f.padding[0] + ky * f.dilation[0]
    ix = ox * f.stride[1] - f.padding[1] + kx * f.dilation[1]
    ic = (o // (o_ch // f.groups)) * i_g + c
    full = np.broadcast_shapes(o.shape, oy.shape, ox.shape, c.shape, ky.shape, kx.shape)
    valid = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w), full)
    out = np.broadcast_to((o * ho + oy) * wo + ox, full)[valid]
    inp = np.broadcast_to((ic * h + iy) * w + ix, full)[valid]
    widx = np.broadcast_to(((o * i_g + c) * kh + ky) * kw + kx, full)[valid]
    return out.astype(np.int64), inp.astype(np.int64), widx.astype(np.int64)


def lava_kernel(w_torch: np.ndarray) -> np.ndarray:
    """Torch ``[O, I/g, KH, KW]`` to Lava Conv's ``[O, KW, KH, I/g]``, flipped (trap 3)."""
    return np.ascontiguousarray(np.asarray(w_torch).transpose(0, 3, 2, 1)[:, ::-1, ::-1])


def torch_kernel(w_lava: np.ndarray) -> np.ndarray:
    """Inverse of :func:`lava_kernel`."""
    return np.ascontiguousarray(np.asarray(w_lava)[:, ::-1, ::-1].transpose(0, 3, 2, 1))
