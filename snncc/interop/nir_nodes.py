"""NIR nodes -> snncc ops: neurons under the convention of ``nir_common``, then the rest.

The Euler step of a NIR ``LIF`` with ``a = dt / tau`` is::

    v <- v + a * (v_leak - v + r * I)

snncc's ``LIF`` (SpikingJelly) with ``tau_s = tau / dt`` steps and hard reset to ``v_reset``::

    decay_input:      H = V + (X - (V - v_reset)) / tau_s   = V + a * (X + v_reset - V)
    not decay_input:  H = V - (V - v_reset) / tau_s + X     = V + a * (v_reset - V) + X

so the two agree when the input ``X`` the snncc neuron sees is

    decay_input:      X = r * I + (v_leak - v_reset)
    not decay_input:  X = a * r * I + a * (v_leak - v_reset)

Which form is chosen: the one that needs no extra arithmetic. ``r = 1`` with ``v_leak = v_reset``
(Norse's LIF box) is ``decay_input`` with ``X = I``; ``a * r = 1`` (snnTorch: ``r = tau/dt``) is
``not decay_input`` with ``X = I``. Anything else is ``decay_input`` with an input *gain* ``r``
and *bias* ``v_leak - v_reset``, which :mod:`snncc.interop.nir_import` folds into the preceding
Affine/Conv (or, for a gain shared by every neuron, a ``Scale`` node). ``IF`` is ``X = dt * r * I``.
``CubaLIF`` is accepted when its synapse passes this step's input straight through
(``tau_syn = dt``: ``I <- w_in * S``), as an ``LIF`` with gain ``r * w_in``; the membrane then
uses the new current, as Lava's LIF does (Norse's uses the previous one: one step later).

What cannot be converted raises :class:`Refusal` with the reason and what would work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from snncc.interop.nir_common import close, uniform
from snncc.ir import ops as O


class Refusal(Exception):
    """A NIR node snncc cannot lower: why, and what would work instead."""

    def __init__(self, why: str, fix: str) -> None:
        super().__init__(why)
        self.why = why
        self.fix = fix


@dataclass
class NeuronPlan:
    """The snncc neuron plus the affine map its input needs: ``X = gain * I + bias``.

    ``gain`` and ``bias`` are None (1 and 0), a float shared by every neuron, or an array of the
    neuron shape.
    """

    op: O.Op
    gain: float | np.ndarray | None = None
    bias: float | np.ndarray | None = None


def arr(value: Any) -> np.ndarray:
    """A node field as a float64 array (torch tensors from in-memory exporters included)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _one(d: dict[str, Any], key: str, what: str) -> float:
    """The single value of a per-neuron parameter snncc keeps per layer (refuse if it varies)."""
    if key not in d:
        raise Refusal(f"no {key!r} field", "write the node with every field NIR defines")
    value = uniform(arr(d[key]))
    if value is None or not np.isfinite(value):
        raise Refusal(
            f"{key} varies across the layer (or is not finite): snncc's neurons share one {what} "
            "per layer",
            f"use one {key} per node (split the layer into nodes with equal {key})",
        )
    return value


def _maybe(value: np.ndarray, default: float) -> float | np.ndarray | None:
    """None when ``value`` is ``default`` everywhere (up to float32 rounding), a float when
    uniform, else the array."""
    u = uniform(value)
    if u is not None:
        return None if close(u, default) or u == default else u
    return value


def _step(tau: float, dt: float) -> float:
    tau_s = tau / dt
    if not tau_s > 1.0:
        raise Refusal(
            f"tau = {tau:g} s is not longer than one step (dt = {dt:g} s): the Euler step "
            "v += (dt/tau)(...) would overshoot and snncc's LIF needs tau > 1 step",
            "a smaller dt (graph metadata 'dt' or the dt argument) or a larger tau",
        )
    return tau_s


def lif_plan(d: dict[str, Any], dt: float, *, gain_in: Any = 1.0) -> NeuronPlan:
    """A NIR ``LIF`` (or a delta-synapse ``CubaLIF`` with its ``w_in`` as ``gain_in``)."""
    tau_key = "tau" if "tau" in d else "tau_mem"
    tau_s = _step(_one(d, tau_key, "time constant"), dt)
    vth = _one(d, "v_threshold", "threshold")
    v_reset = _one(d, "v_reset", "reset potential") if "v_reset" in d else 0.0
    if not vth > v_reset:
        raise Refusal(
            f"v_threshold {vth:g} is not above v_reset {v_reset:g}",
            "a threshold above the reset potential",
        )
    shape = arr(d[tau_key]).shape
    r = np.broadcast_to(arr(d.get("r", 1.0)), shape) * arr(gain_in)
    leak = np.broadcast_to(arr(d.get("v_leak", 0.0)), shape) - v_reset
    a = 1.0 / tau_s
    extra = leak if np.any(leak != 0) else None
    ru = uniform(r)
    if extra is None and ru is not None and close(ru, 1.0):
        return NeuronPlan(O.LIF(tau=tau_s, v_threshold=vth, v_reset=v_reset, decay_input=True))
    if extra is None and ru is not None and close(a * ru, 1.0):
        return NeuronPlan(O.LIF(tau=tau_s, v_threshold=vth, v_reset=v_reset, decay_input=False))
    op = O.LIF(tau=tau_s, v_threshold=vth, v_reset=v_reset, decay_input=True)
    return NeuronPlan(op, gain=_maybe(r, 1.0), bias=None if extra is None else _maybe(extra, 0.0))


def if_plan(d: dict[str, Any], dt: float) -> NeuronPlan:
    """A NIR ``IF``: ``v += dt * r * I``, hard reset to ``v_reset``."""
    vth = _one(d, "v_threshold", "threshold")
    v_reset = _one(d, "v_reset", "reset potential") if "v_reset" in d else 0.0
    if not vth > v_reset:
        raise Refusal(
            f"v_threshold {vth:g} is not above v_reset {v_reset:g}",
            "a threshold above the reset potential",
        )
    gain = arr(d.get("r", 1.0)) * dt
    return NeuronPlan(O.IF(v_threshold=vth, v_reset=v_reset), gain=_maybe(gain, 1.0))


def cubalif_plan(d: dict[str, Any], dt: float) -> NeuronPlan:
    """A NIR ``CubaLIF`` whose synapse is a delta synapse (``tau_syn = dt``)."""
    tau_syn = _one(d, "tau_syn", "synaptic time constant")
    if not close(tau_syn, dt):
        raise Refusal(
            f"a current-based synapse with tau_syn = {tau_syn:g} s (dt = {dt:g} s) keeps a "
            "second state (the current) that snncc's LIF does not have",
            "tau_syn = dt (a delta synapse), or a plain LIF node",
        )
    return lif_plan(d, dt, gain_in=d.get("w_in", 1.0))


def refuse(type_name: str) -> Refusal:
    """The refusal for a NIR node type snncc has no op for."""
    reasons = {
        "LI": ("a leaky integrator without spikes: snncc has no non-spiking neuron",
               "end the graph at the last spiking layer (snncc reads its spike rate out with a "
               "TimeMean), or use LIF"),
        "CubaLI": ("a current-based leaky integrator without spikes: snncc has no non-spiking "
                   "neuron", "end the graph at the last spiking layer, or use LIF"),
        "I": ("an integrator without spikes: snncc has no non-spiking neuron",
              "end the graph at the last spiking layer, or use IF"),
        "Threshold": ("a stateless threshold: snncc has no memoryless spike generator",
                      "an IF or LIF node (with a reset) in its place"),
        "NIRGraph": ("a nested subgraph (e.g. snnTorch's RLeaky/RSynaptic, a recurrent layer): "
                     "snncc's IR has no recurrence", "a feed-forward graph (Leaky/Synaptic)"),
    }  # fmt: skip
    why, fix = reasons.get(
        type_name,
        (f"unknown node type {type_name!r}", "the node types docs/interop.md lists as supported"),
    )
    return Refusal(why, fix)


def ints(value: Any, n: int) -> tuple[int, ...]:
    """An int or a sequence as ``n`` ints (a scalar is repeated)."""
    a = np.atleast_1d(np.asarray(value)).astype(np.int64)
    return tuple(int(v) for v in (np.repeat(a, n) if a.size == 1 else a))


def standard_op(kind: str, d: dict[str, Any], shape: tuple[int, ...], dt: float) -> O.Op:
    """A NIR synapse/pooling/structural node as one snncc op (``shape``: its input shape)."""
    if kind in ("Affine", "Linear"):
        w = arr(d["weight"])
        if w.ndim != 2:
            raise Refusal(f"weight of rank {w.ndim}", "a 2-D weight [out, in]")
        b = arr(d["bias"]) if kind == "Affine" else None
        return O.Linear(weight=w, bias=b)
    if kind in ("Conv1d", "Conv2d"):
        return _conv(kind, d)
    if kind in ("SumPool2d", "AvgPool2d"):
        k, s, p = (ints(d[key], 2) for key in ("kernel_size", "stride", "padding"))
        if kind == "AvgPool2d":
            return O.AvgPool2d(kernel=k, stride=s, padding=p, count_include_pad=True)
        c = shape[0]  # a sum pool is a depthwise convolution with unit weights
        return O.Conv2d(weight=np.ones((c, 1, *k)), stride=s, padding=p, groups=c)
    if kind == "Flatten":
        start, end = int(d.get("start_dim", 0)), int(d.get("end_dim", -1))
        rank = len(shape)
        start, end = start % rank if rank else 0, end % rank if rank else 0
        if not 0 <= start <= end < rank:
            raise Refusal(f"start_dim/end_dim do not fit input shape {list(shape)}",
                          "per-sample dims (without batch or time)")  # fmt: skip
        merged = int(np.prod(shape[start : end + 1]))
        return O.Reshape(shape[:start] + (merged,) + shape[end + 1 :])
    if kind == "Scale":
        factor = uniform(arr(d["scale"]))
        if factor is None:
            raise Refusal("a per-element scale: snncc's Scale is one constant",
                          "fold the scale into the preceding Affine/Conv")  # fmt: skip
        return O.Scale(factor)
    if kind == "Delay":
        delay = uniform(arr(d["delay"]))
        steps = -1 if delay is None else round(delay / dt)
        whole = steps > 0 and close(steps * dt, delay) or steps == 0 and delay == 0
        if not whole:
            raise Refusal(
                f"delay {d['delay']!r} is not one whole number of steps of dt = {dt:g} s",
                "equal delays that are multiples of dt",
            )
        return O.Delay(int(steps))
    raise refuse(kind)


def _conv(kind: str, d: dict[str, Any]) -> O.Op:
    w = arr(d["weight"])
    n = 1 if kind == "Conv1d" else 2
    stride, dilation = ints(d["stride"], n), ints(d["dilation"], n)
    pad = d["padding"]
    if isinstance(pad, str):
        if pad == "valid":
            padding = (0,) * n
        else:  # "same", stride 1: (d * (k - 1)) / 2 on each side, when that is whole
            total = [dl * (k - 1) for dl, k in zip(dilation, w.shape[2:], strict=True)]
            if any(t % 2 for t in total) or any(s != 1 for s in stride):
                raise Refusal("padding 'same' that is not symmetric",
                              "explicit integer padding")  # fmt: skip
            padding = tuple(t // 2 for t in total)
    else:
        padding = ints(pad, n)
    b = arr(d["bias"]) if d.get("bias") is not None else None
    bias = None if b is None or not np.any(b) else b
    groups = int(np.asarray(d.get("groups", 1)))
    if kind == "Conv1d":
        return O.Conv1d(weight=w, bias=bias, stride=stride[0], padding=padding[0],
                        dilation=dilation[0], groups=groups)  # fmt: skip
    return O.Conv2d(weight=w, bias=bias, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)  # fmt: skip


def same_fields(std: dict[str, Any], d: dict[str, Any]) -> bool:
    """The NIR fields of a freshly exported node equal those in the file (up to 1e-12)."""
    for key, value in std.items():
        if key in ("metadata", "type") or value is None:
            continue
        if key not in d:
            return False
        a, b = np.asarray(value), np.asarray(d[key])
        if a.dtype.kind in "fiub" and b.dtype.kind in "fiub":
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-12, atol=0):
                return False
        elif str(value) != str(d[key]):
            return False
    return True


def per_channel(value: Any, shape: tuple[int, ...], axis: int, default: float) -> Any:
    """``value`` (None, a float or an array of ``shape``) as one number per channel of ``axis``;
    None when it varies along another axis."""
    n = shape[axis]
    if value is None or isinstance(value, float):
        return np.full(n, default if value is None else value)
    a = np.broadcast_to(np.asarray(value, np.float64), shape)
    a = np.moveaxis(a, axis, 0).reshape(n, -1)
    return a[:, 0] if np.all(a == a[:, :1]) else None
