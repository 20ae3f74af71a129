"""Small hand models shared by the interop tests, and a plain-numpy simulator of NIR semantics.

The simulator is written from NIR's definitions (docs of ``nir.LIF`` etc.) under the convention
snncc states (forward Euler with ``dt``, spike on ``v > v_threshold``, reset to ``v_reset``), on
purpose without any snncc code, so the importer is checked against an independent reading.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from snncc.nn import IF, LIF


class HandNet(nn.Module):
    """conv -> LIF -> conv -> LIF(no decay_input) -> flatten -> fc -> IF, rate readout."""

    def __init__(self, T: int = 4) -> None:
        super().__init__()
        self.T = T
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.lif1 = LIF(tau=1.5)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.lif2 = LIF(tau=2.0, decay_input=False)
        self.fc = nn.Linear(4 * 8 * 8, 10)
        self.out = IF(v_threshold=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        T, B = x.shape[:2]
        y = self.lif1(self.conv(x.flatten(0, 1)).reshape(T, B, 4, 8, 8))
        y = self.lif2(self.conv2(y.flatten(0, 1)).reshape(T, B, 4, 8, 8))
        return self.out(self.fc(y.flatten(2))).mean(0)


@pytest.fixture(scope="session")
def hand_graph():
    import snncc

    torch.manual_seed(0)
    model = HandNet().eval()
    with torch.no_grad():
        model.conv.weight.mul_(3.0)  # enough input current that every layer spikes
        model.fc.weight.mul_(3.0)
    return snncc.trace(model, torch.zeros(1, 1, 8, 8), timesteps=4)


# -- an ONNX ANN (tests of `snncc convert`) --------------------------------------------------
class ResCNN(torch.nn.Module):
    """Conv-ReLU, a residual Conv-ReLU, average pool, Gemm-Clip(0, 6), Gemm."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.pool = torch.nn.AvgPool2d(2)
        self.l1 = torch.nn.Linear(8 * 4 * 4, 32)
        self.l2 = torch.nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.c1(x))
        b = torch.relu(self.c2(a)) + a
        h = torch.clamp(self.l1(torch.flatten(self.pool(b), 1)), 0, 6)
        return self.l2(h)


@pytest.fixture(scope="session")
def rescnn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:class:`ResCNN` (seed 0, untrained) exported by torch's TorchScript ONNX exporter."""
    tmp_path = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    model = ResCNN().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter (onnxscript is not installed)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), buf, dynamo=False)
    path = tmp_path / "rescnn.onnx"
    path.write_bytes(buf.getvalue())
    return path


# -- numpy NIR simulator --------------------------------------------------------------------------
def _conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride, padding) -> np.ndarray:
    """Cross-correlation ``[B, C, H, W]`` with weight ``[O, C, kh, kw]`` (groups 1)."""
    ph, pw = (int(p) for p in padding)
    sh, sw = (int(s) for s in stride)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1
    y = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]
            y += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
    return y + np.asarray(b).reshape(1, -1, 1, 1)


def _sumpool(x: np.ndarray, k, s) -> np.ndarray:
    kh, kw = (int(v) for v in k)
    sh, sw = (int(v) for v in s)
    oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    y = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(kh):
        for j in range(kw):
            y += x[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]
    return y


def simulate_nir(graph, x: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """Run a feed-forward ``nir.NIRGraph`` on ``x`` ``[T, B, *shape]``: every node's output."""
    import networkx as nx

    nodes = graph.nodes
    preds = {n: [a for a, b in graph.edges if b == n] for n in nodes}
    order = list(nx.topological_sort(nx.DiGraph(list(graph.edges))))
    T = x.shape[0]
    out: dict[str, np.ndarray] = {}
    for name in order:
        node = nodes[name]
        kind = type(node).__name__
        if kind == "Input":
            out[name] = x
            continue
        i = sum(out[p] for p in preds[name])
        if kind in ("Affine", "Linear"):
            w = np.asarray(node.weight, np.float64)
            y = i @ w.T + (np.asarray(node.bias) if kind == "Affine" else 0)
        elif kind == "Conv2d":
            w, b = np.asarray(node.weight, np.float64), np.asarray(node.bias, np.float64)
            flat = i.reshape((-1,) + i.shape[2:])
            y = _conv2d(flat, w, b, node.stride, node.padding)
            y = y.reshape(i.shape[:2] + y.shape[1:])
        elif kind == "SumPool2d":
            flat = i.reshape((-1,) + i.shape[2:])
            y = _sumpool(flat, node.kernel_size, node.stride)
            y = y.reshape(i.shape[:2] + y.shape[1:])
        elif kind == "Flatten":
            y = i.reshape(i.shape[:2] + (-1,))
        elif kind in ("LIF", "IF"):
            shape = i.shape[1:]
            vth = np.broadcast_to(np.asarray(node.v_threshold, np.float64), shape)
            vr = np.broadcast_to(np.asarray(node.v_reset, np.float64), shape)
            r = np.broadcast_to(np.asarray(node.r, np.float64), shape)
            v = vr.copy()
            y = np.zeros_like(i)
            for t in range(T):
                if kind == "LIF":  # Euler: v += dt/tau * (v_leak - v + r I)
                    tau = np.asarray(node.tau, np.float64)
                    v = v + dt / tau * (np.asarray(node.v_leak, np.float64) - v + r * i[t])
                else:  # IF: v += dt * r * I
                    v = v + dt * r * i[t]
                z = v > vth
                v = np.where(z, vr, v)
                y[t] = z
        elif kind == "Output":
            y = i
        else:
            raise NotImplementedError(kind)
        out[name] = y
    return out
