"""The integer arithmetic of one connection, shared by the numpy executor and the Lava models.

One function per connection kind maps the operands' spikes (``[L, n_source]`` per operand, ``L``
steps at once: the whole run in the executor, one step in a Lava process) to the target's input
``a_in`` (``[L, n_target]``, int64). Why one implementation for both: the executor proves the
lowering against the reference, and the Lava custom processes are then correct by construction
for the same spec; only Lava's own ``Dense``/``LIF`` are simulated by Lava itself, and the
executor models them with :mod:`snncc.reference.loihi_kernels` (the functions pinned against
Lava by the trap tests), not with code of its own.

Arithmetic per kind (facts in docs/hardware-semantics.md §2.2, §2.3):

- ``dense``: Lava ``PyDenseModelBitAcc`` — sign mode MIXED, clip, truncate, ``W @ s``, then
  ``weight_exp`` on the sum (:func:`~snncc.reference.loihi_kernels.dense_input`).
- ``conv``: Lava ``PyConvModelFixed`` — a true convolution with the Lava-layout kernel on the
  gathered operand, wrapped into signed 24 bits; computed as the equal cross-correlation with
  the un-flipped kernel (im2col + one integer-exact float64 product, the reference's own
  ``conv_nd``), then the output index map. A ``weight_exp < 0`` (never emitted for an IR conv)
  shifts the sum like Dense.
- ``product``: the IR ops of the program (:mod:`snncc.backends.lower.program`) with the
  ``loihi`` reference kernels (float64 on exact integers, every partial sum far below 2^53;
  a synaptic step gets its ``weight_exp`` as the reference does from node meta), rounded back
  to int64, then the output index map.

An output index map ``[n_target, J]`` sums ``J`` entry outputs per target neuron, each one
already shifted by the weight exponent (:func:`to_targets`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from snncc.backends.lower.spec import Connection, product_steps
from snncc.backends.lower.structure import gather, torch_kernel
from snncc.ir.types import TensorType
from snncc.reference.context import KernelCtx
from snncc.reference.float_spatial import conv_nd
from snncc.reference.loihi_kernels import KERNELS as LOIHI_KERNELS
from snncc.reference.loihi_kernels import dense_input, shift_sum

#: Lava Conv wraps its output into this many signed bits (``signed_clamp``).
CONV_OUT_BITS = 24


def signed_wrap(x: np.ndarray, bits: int = CONV_OUT_BITS) -> np.ndarray:
    """Lava's ``signed_clamp``: ``(x + 2^(bits-1)) mod 2^bits - 2^(bits-1)`` (a wrap)."""
    base = 1 << bits
    return (np.asarray(x, np.int64) + base // 2) % base - base // 2


def to_targets(flat: np.ndarray, out_index: np.ndarray) -> np.ndarray:
    """``[L, n_target]``: entry outputs ``flat`` (``[L, n]``) gathered per target neuron; with
    an ``[n_target, J]`` map, the ``J`` gathered outputs summed (``-1`` contributes 0)."""
    y = gather(flat, out_index)
    return y.sum(axis=-1) if np.ndim(out_index) == 2 else y


def _dense(c: Connection, xs: list[np.ndarray]) -> np.ndarray:
    (s,) = xs  # [L, n_source] spikes; Dense folds every index map into its matrix
    w = np.asarray(c.params["weights"], np.int64)
    a = dense_input(w, s.T, int(c.params["weight_exp"]), 8, c.params["sign_mode"])
    return a.T


def conv_lava(
    x: np.ndarray,
    kernel: np.ndarray,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> np.ndarray:
    """Lava ``Conv`` on ``x = [L, C, H, W]`` (torch layout) with a Lava-layout ``kernel``.

    ``stride``/``padding``/``dilation`` are in Lava's ``(X, Y)`` order. Returns ``[L, O, H', W']``
    int64, wrapped to 24 bits as ``PyConvModelFixed`` does. Lava's true convolution with the
    flipped kernel equals the cross-correlation with :func:`torch_kernel` of it, which
    ``conv_nd`` computes exactly on integers.
    """
    y = conv_nd(
        np.asarray(x, np.float64),
        torch_kernel(kernel).astype(np.float64),
        None,
        tuple(stride[::-1]),
        tuple(padding[::-1]),
        tuple(dilation[::-1]),
        int(groups),
    )
    return signed_wrap(np.rint(y).astype(np.int64))


def _conv(c: Connection, xs: list[np.ndarray]) -> np.ndarray:
    (s,) = xs
    p = c.params
    x = gather(s, c.operands[0].index)  # [L, C, H, W]
    y = conv_lava(x, p["kernel"], p["stride"], p["padding"], p["dilation"], p["groups"])
    e = int(p.get("weight_exp", 0))
    flat = y.reshape(y.shape[0], -1)
    if e < 0:
        flat = shift_sum(flat, e)
    return to_targets(flat, c.out_index)


def _product(c: Connection, xs: list[np.ndarray]) -> np.ndarray:
    values = [gather(s, o.index).astype(np.float64) for s, o in zip(xs, c.operands, strict=True)]
    steps = len(xs[0])
    for op, refs, meta in product_steps(c):
        ctx = KernelCtx(
            node=c.entry,
            lead=1,
            timesteps=steps,
            batch=1,
            out_type=TensorType((1,)),
            meta={"quant": dict(meta)} if meta else {},
        )
        values.append(LOIHI_KERNELS[type(op)](op, [values[r] for r in refs], ctx))
    y = np.rint(values[-1]).astype(np.int64)
    return to_targets(y.reshape(y.shape[0], -1), c.out_index)


#: Connection kind -> its arithmetic (operands' spikes -> target a_in).
KINDS: dict[str, Callable[[Connection, list[np.ndarray]], np.ndarray]] = {
    "dense": _dense,
    "conv": _conv,
    "product": _product,
}


def connection_output(c: Connection, xs: list[np.ndarray]) -> np.ndarray:
    """``a_in`` contribution ``[L, n_target]`` (int64) of ``c`` for operand spikes ``xs``.

    Requires: ``xs[k]`` is ``[L, size of operand k's source]`` of 0/1 (already delayed).
    Ensures:  row ``l`` is what the connection's process sends one step after reading row
              ``l`` (the caller applies the one-step hop).
    """
    return np.asarray(KINDS[c.kind](c, xs), np.int64)
