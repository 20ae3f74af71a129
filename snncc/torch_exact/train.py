"""Training through the exact program: the deployed integers as trainable parameters.

This module holds the Loihi table and the target dispatch; the SpiNNaker table is in
:mod:`snncc.torch_exact.train_spinnaker` (same mechanism: latent weights on the stored grid,
the integer neuron update with straight-through gradients, a sigmoid surrogate).

:class:`TrainableProgram` is an :class:`~snncc.torch_exact.ExactProgram` whose forward is the
same integer program, bit for bit, and whose backward is defined:

- every deployed ``Linear``/``Conv`` of a Loihi graph holds a latent float parameter ``theta``
  (initialised to its integer mantissas ``W_q``); the forward uses
  ``clamp(round(theta), -128, 127)`` (a straight-through estimator), so the weights stay on the
  compile's grid (``weight_exp`` and the stream scale are frozen);
- ``LoihiLIF`` runs Lava's integer update in float64 (magnitudes stay below 2^26 and the decay
  factors have 12 bits, so float64 is exact; see :func:`_lif_f64`) with straight-through
  gradients through the truncations, the wrap and the saturation, and SpikingJelly's sigmoid
  surrogate (``alpha = 4``) for the spike, taken in the float model's membrane units
  ``v / (64 · s)``; the reset is detached, as the zoo's ``detach_reset=True``;
- ``LoihiExpGIF`` (the programmable neuron of ge2mst models and converted SNNs) runs its integer
  program in float64 with the same surrogate per bit on ``(v - th[k]) / th[k]`` and a graded,
  payload-weighted output (:mod:`snncc.torch_exact.train_expgif`).

The straight-through pieces the tables share are in :mod:`snncc.torch_exact.straight_through`.

Host ops (encoding, readout) stay frozen float. :func:`finetune` trains on labelled samples and
returns the graph with the new integer weights; that graph runs in the target's reference (and
``snncc.torch_exact``) with exactly the spikes the trainable forward produced;
:mod:`snncc.torch_exact.finetune` writes it back into a checkpoint (docs/fidelity.md §4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.reference.loihi_kernels import (
    ACT_SHIFT,
    DECAY_UNITY,
    MAX_UV,
    VTH_SHIFT,
    WEIGHT_MAX,
    WEIGHT_MIN,
    effective_bias,
)
from snncc.torch_exact import float_spatial as S
from snncc.torch_exact import loihi_ops
from snncc.torch_exact.base import UNSUPPORTED, Builder, Kernel, NodeInfo, RunCtx, f64
from snncc.torch_exact.program import ExactProgram
from snncc.torch_exact.straight_through import (
    SURROGATE_ALPHA,
    RoundClamp,
    Spike,
    loihi_a_in,
    ste,
)
from snncc.torch_exact.train_expgif import build_expgif

__all__ = [
    "SURROGATE_ALPHA", "KERNELS", "RoundClamp", "Spike", "TrainableProgram", "finetune",
    "ste", "trainable",
]  # fmt: skip


def _lif_f64(k: Kernel, a: torch.Tensor) -> torch.Tensor:
    """Lava's LIF over float64 ``a_in`` (exact integers) with straight-through gradients.

    Exactness: ``|u|, |v| < 2^24`` and the decay factors ``f/4096`` have at most 12 significant
    bits, so ``u · f/4096`` is an exact dyadic number and ``trunc`` of it is Lava's
    ``sign(p)·(|p| >> 12)``; wrap and clip add or select integers. Spikes are float64 0/1.
    """
    op = k.op
    uf = (DECAY_UNITY - (int(op.du) + 1)) / DECAY_UNITY
    vf = (DECAY_UNITY - int(op.dv)) / DECAY_UNITY
    threshold = float(int(op.vth) << VTH_SHIFT)
    unit = k.params["unit"]
    bias = k.t("bias")
    u = torch.zeros_like(a[0] + bias)
    v = torch.zeros_like(u)
    out = []
    for t in range(a.shape[0]):
        y = u * uf
        u = ste(y, torch.trunc(y)) + a[t] * float(1 << ACT_SHIFT)
        u = ste(u, loihi_ops.wrap_current(u.detach()))
        y = v * vf
        v = ste(y, torch.trunc(y)) + u + bias
        v = ste(v, torch.clamp(v.detach(), -(MAX_UV - 1), MAX_UV - 1))
        s = Spike.apply(v, threshold, unit)
        v = v * (1.0 - s.detach())
        out.append(s)
    return torch.stack(out)


def _build_lif(op: O.LoihiLIF, info: NodeInfo) -> Kernel:
    def fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
        if k.info.lead != 2:
            raise k.info.fail(k.op, "needs a per-step (temporal) input, got a static value")
        x = xs[0]
        a = loihi_a_in(k, x)
        return torch.broadcast_to(_lif_f64(k, a), x.shape)

    s = float((info.meta.get("quant") or {}).get("s", 0.0))
    unit = 64.0 * s if s > 0 else float(max(int(op.vth), 1) << VTH_SHIFT)
    bias = f64(effective_bias(np.asarray(op.bias_mant), int(op.bias_exp)))
    return Kernel(op, info, fn, {"bias": bias}, unit=unit)


def _weights(k: Kernel) -> torch.Tensor:
    """The integer mantissas the forward uses: ``clamp(round(theta))``, straight through."""
    return RoundClamp.apply(k.get_parameter("theta"), WEIGHT_MIN, WEIGHT_MAX)


def _linear_fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
    e = k.params["weight_exp"]
    S.guard_exact(k, xs[0].detach(), k.params["bound"])
    acc = S.linear_fn(xs[0], _weights(k), None)
    y = acc * float(2.0**e)
    return y if e >= 0 else ste(y, torch.floor(y))


def _conv_fn(k: Kernel, xs: list[torch.Tensor], run: RunCtx) -> torch.Tensor:
    S.guard_exact(k, xs[0].detach(), k.params["bound"])
    w = _weights(k) * float(2 ** k.params["weight_exp"])
    return S.conv_fn(k.op, xs[0], k.info.lead, w, None)


def _deployed(float_builder: Builder, conv: bool) -> Builder:
    """A deployed synaptic op with a trainable latent weight; host ops stay frozen float."""

    def build(op: O.Op, info: NodeInfo) -> Kernel:
        quant = info.meta.get("quant") or {}
        if "weight_exp" not in quant:
            return float_builder(op, info)
        loihi_ops.KERNELS[type(op)](op, info)  # the exact builder's checks, same messages
        e = int(quant["weight_exp"])
        bound = float(WEIGHT_MAX * np.prod(op.weight.shape[1:])) * 2.0 ** max(e, 0)
        k = Kernel(op, info, _conv_fn if conv else _linear_fn, weight_exp=e, bound=bound)
        k.register_parameter("theta", nn.Parameter(f64(op.weight)))
        return k

    return build


#: The loihi table with trainable deployed weights, LIF and ExpG-IF neurons.
KERNELS: dict[type[O.Op], Builder] = {
    **loihi_ops.KERNELS,
    O.LoihiLIF: _build_lif,
    O.LoihiExpGIF: build_expgif,
    O.Linear: _deployed(loihi_ops.KERNELS[O.Linear], conv=False),
    O.Conv1d: _deployed(loihi_ops.KERNELS[O.Conv1d], conv=True),
    O.Conv2d: _deployed(loihi_ops.KERNELS[O.Conv2d], conv=True),
}


class TrainableProgram(ExactProgram):
    """The exact program with trainable deployed weights (see the module docstring).

    Requires: a graph quantized for Loihi (``LoihiLIF``/``LoihiExpGIF`` neurons) or for
              SpiNNaker (:mod:`snncc.torch_exact.train_spinnaker`); the table follows
              ``graph.meta["quant"]["target"]``.
    Ensures:  ``forward`` equals :class:`ExactProgram`'s spike for spike; ``parameters()`` are
              the latent weights; :meth:`to_graph` gives the graph with the current integers.
    """

    def __init__(self, graph: Graph) -> None:
        target = (graph.meta.get("quant") or {}).get("target")
        tables = _tables()
        if target not in tables:
            raise SnnccError(
                f"TrainableProgram trains programs quantized for {sorted(tables)}; this graph "
                f"is quantized for {target}",
                code=UNSUPPORTED,
            )
        table, self.weight_range = tables[target]
        super().__init__(graph, str(target), table=table)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Adam parameter groups, one per deployed weight, with ``lr`` in 8-bit mantissa steps.

        Why: Adam moves every parameter by about ``lr`` per step whatever its scale. Loihi's
        weights are 8-bit mantissas on every layer (each layer's largest uses 65-126 of 127
        steps), so ``lr`` is in mantissa units as is. SpiNNaker's stored weights are 16-bit with
        a per-layer range (the digits program's layers peak between 164 and 4768), so one
        ``lr`` would be a large step for one layer and nothing for another; there ``lr`` is
        scaled by the layer's largest stored weight at the start over 127, the same relative
        step as on Loihi.
        """
        groups = []
        for kernel in self.kernels:
            theta = dict(kernel.named_parameters(recurse=False)).get("theta")
            if theta is None:
                continue
            scale = 1.0
            if self.mode == "spinnaker":
                scale = max(float(theta.detach().abs().max()), 1.0) / WEIGHT_MAX
            groups.append({"params": [theta], "lr": lr * scale})
        return groups

    def to_graph(self) -> Graph:
        """A copy of the graph whose deployed weights are the current integers."""
        g = self.graph.copy()
        lo, hi = self.weight_range
        for name, kernel in zip(self.order, self.kernels, strict=True):
            theta = dict(kernel.named_parameters(recurse=False)).get("theta")
            if theta is not None:
                w = RoundClamp.apply(theta.detach(), lo, hi)
                g.set_op(name, g.op(name).replace(weight=w.cpu().numpy().astype(np.int64)))
        return g


def _tables() -> dict[str, tuple[dict[type[O.Op], Builder], tuple[int, int]]]:
    """Per target: the trainable kernel table and the deployed weights' integer range.

    The SpiNNaker table is imported here, not at module level: it reuses this module's
    straight-through helpers.
    """
    from snncc.torch_exact import train_spinnaker

    return {
        "loihi": (KERNELS, (WEIGHT_MIN, WEIGHT_MAX)),
        "spinnaker": (
            train_spinnaker.KERNELS,
            (train_spinnaker.WEIGHT_MIN, train_spinnaker.WEIGHT_MAX),
        ),
    }


def trainable(graph: Graph) -> TrainableProgram:
    """The trainable program of a graph quantized for Loihi or SpiNNaker."""
    return TrainableProgram(graph)


def finetune(
    graph: Graph,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 1,
    lr: float = 0.05,
    batch: int = 64,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> Graph:
    """Train a quantized graph's integer weights on samples ``x`` (model layout), labels ``y``.

    The target (Loihi or SpiNNaker) is the graph's ``meta["quant"]["target"]``. Cross-entropy on
    the graph's first output; Adam on the latent weights, ``lr`` in 8-bit mantissa steps on
    either target (:meth:`TrainableProgram.param_groups`). ``progress(epoch, mean loss)`` after
    each epoch. Returns the fine-tuned graph.
    """
    prog = TrainableProgram(graph)
    opt = torch.optim.Adam(prog.param_groups(lr))
    gen = torch.Generator().manual_seed(seed)
    out_name = graph.outputs[0]
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen).numpy()
        losses = []
        for lo in range(0, len(x), batch):
            idx = order[lo : lo + batch]
            logits = prog(prog.feeds(x[idx])).outputs[out_name].reshape(len(idx), -1)
            loss = nn.functional.cross_entropy(logits, torch.as_tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        if progress is not None:
            progress(epoch, float(np.mean(losses)))
    return prog.to_graph()
