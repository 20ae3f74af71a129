"""Frontend tests: what the tracer keeps, names, rejects, and that it leaves the model untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snncc
from snncc.diagnostics import SnnccError
from snncc.ir import ops as O
from snncc.ir.verify import lint
from snncc.nn import LIF


class Attn(nn.Module):
    """Spikformer-style SSA written the way the authors write it (shapes read from x)."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.q_conv = nn.Conv1d(dim, dim, 1, bias=False)
        self.q_bn = nn.BatchNorm1d(dim)
        self.q_lif = LIF(tau=2.0, detach_reset=True)
        self.attn_lif = LIF(tau=2.0, v_threshold=0.5, detach_reset=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, N = x.shape
        q = self.q_lif(self.q_bn(self.q_conv(x.flatten(0, 1))).reshape(T, B, C, N))
        q = q.transpose(-1, -2).reshape(T, B, N, self.heads, C // self.heads)
        q = q.permute(0, 1, 3, 2, 4).contiguous()
        a = (q @ q.transpose(-2, -1)) @ q * 0.125
        a = a.transpose(3, 4).reshape(T, B, C, N)
        return self.attn_lif(a)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.T = 3
        self.proj_conv = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.proj_bn = nn.BatchNorm2d(16)
        self.proj_lif = LIF()
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.block = nn.ModuleList([Attn()])
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        T, B, C, H, W = x.shape
        x = self.proj_bn(self.proj_conv(x.flatten(0, 1)))
        x = self.proj_lif(x.reshape(T, B, -1, H, W)).flatten(0, 1)
        x = self.pool(x).reshape(T, B, -1, int(H / 2), W // 2).flatten(3)
        x = x + self.block[0](x)
        return self.head(x.mean(3).mean(0))


def test_trace_names_ops_types_and_lint() -> None:
    g = snncc.trace(Net(), torch.randn(1, 1, 8, 8))
    assert lint(g) == []
    assert g.meta == {"timesteps": 3, "time_axis": None, "input_shape": [1, 8, 8]}
    kinds = {n: g.op(n).kind for n in g.nodes()}
    # Module paths are node names; library layers and neurons keep the bare path.
    assert kinds["proj_conv"] == "Conv2d" and kinds["proj_bn"] == "BatchNorm"
    assert kinds["block.0.q_conv"] == "Conv1d" and kinds["block.0.q_lif"] == "LIF"
    assert g.op("block.0.attn_lif").v_threshold == 0.5
    assert kinds["pool"] == "MaxPool2d" and kinds["head"] == "Linear"
    # Functional ops inside a custom module are named after it.
    assert sum(k == "MatMul" for k in kinds.values()) == 2
    assert all(n.startswith("block.0.") for n in g.nodes() if kinds[n] == "MatMul")
    # Per-sample shapes: the 16-channel 4x4 map is 16 tokens of 16 channels.
    assert g.type("block.0.q_conv").shape == (16, 16)
    assert g.type("head").temporal is False and g.type("block.0.q_lif").temporal is True
    # The static image input is presented at every step (direct encoding).
    assert g.op("input").temporal is False and g.op("input").shape == (1, 8, 8)
    # Every neuron module became exactly one op.
    assert sum(1 for n in g.nodes() if g.op(n).NEURON) == 3
    assert g.loc("block.0.q_conv") is not None and "test_trace.py" in g.loc("block.0.q_conv")


def test_trace_event_input_batch_first() -> None:
    class Events(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.T = 4
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.lif = LIF(tau=1.5)
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.permute(1, 0, 2, 3, 4)  # [B, T, ...] -> [T, B, ...]
            T, B = x.shape[:2]
            x = self.conv(x.flatten(0, 1)).reshape(T, B, 4, 6, 6)
            return self.fc(self.lif(x).flatten(3).mean(3).mean(0))

    g = snncc.trace(Events(), torch.rand(1, 4, 2, 6, 6), time_axis=1, input_kind="spike")
    assert lint(g) == []
    assert g.op("input").temporal is True and g.type("input").kind.value == "spike"
    assert g.op("lif").tau == 1.5
    assert g.meta["input_shape"] == [4, 2, 6, 6]


def test_unsupported_ops_are_all_reported_with_locations() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.T = 2
            self.norm = nn.LayerNorm(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.unsqueeze(0).repeat(self.T, 1, 1)
            x = torch.softmax(x, -1)
            return torch.nn.functional.gelu(self.norm(x))

    with pytest.raises(SnnccError) as exc:
        snncc.trace(Bad(), torch.randn(1, 4))
    err = exc.value
    assert err.exit_code == 3
    messages = [d.message for d in err.diagnostics]
    ops = ["softmax", "layer_norm", "gelu"]
    assert messages == [f"unsupported op {op}" for op in ops]
    assert err.diagnostics[1].node == "norm"
    assert all("test_trace.py" in (d.loc or "") for d in err.diagnostics)
    assert all(d.hint for d in err.diagnostics)


def test_mixing_time_and_data_axes_is_rejected() -> None:
    class Mix(nn.Module):
        T = 2

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.unsqueeze(0).repeat(self.T, 1, 1)
            return x.permute(2, 1, 0)

    with pytest.raises(SnnccError) as exc:
        snncc.trace(Mix(), torch.randn(1, 5))
    assert "time/batch" in exc.value.diagnostics[0].message


def test_spikingjelly_neurons_recognised_by_class_name() -> None:
    class MultiStepLIFNode(nn.Module):  # same attribute names as SpikingJelly's class
        def __init__(self) -> None:
            super().__init__()
            self.tau, self.v_threshold, self.v_reset, self.decay_input = 3.0, 0.7, None, False

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x > 0).float()

    class Net2(nn.Module):
        T = 2

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.sn = MultiStepLIFNode()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.sn(self.fc(x.unsqueeze(0).repeat(self.T, 1, 1)))

    g = snncc.trace(Net2(), torch.randn(1, 3))
    op = g.op("sn")
    assert isinstance(op, O.LIF)
    assert (op.tau, op.v_threshold, op.v_reset, op.decay_input) == (3.0, 0.7, None, False)


def test_model_is_left_unchanged() -> None:
    net = Net().train()
    x = torch.randn(2, 1, 8, 8)
    before = net.eval()(x)
    net.train()
    snncc.trace(net, x[:1])
    assert net.training is True
    assert "forward" not in vars(net.proj_lif)  # the tracing patch was removed
    torch.testing.assert_close(net.eval()(x), before, rtol=0, atol=0)


def test_timesteps_must_be_known() -> None:
    with pytest.raises(SnnccError, match="timesteps"):
        snncc.trace(nn.Linear(2, 2), torch.randn(1, 2))


class DropPath(nn.Module):
    """timm's stochastic depth, as spiking-transformer code uses it (identity at inference)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.ndim - 1))) >= self.p
        return x * keep / (1 - self.p)


class Regularised(nn.Module):
    """Two LIF layers with Identity, Dropout and DropPath between them."""

    def __init__(self) -> None:
        super().__init__()
        self.T = 2
        self.fc1 = nn.Linear(6, 5)
        self.lif1 = LIF()
        self.ident = nn.Identity()
        self.drop = nn.Dropout(0.3)
        self.drop_path = DropPath(0.2)
        self.fc2 = nn.Linear(5, 3)
        self.lif2 = LIF()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0).repeat(self.T, 1, 1)
        x = self.drop_path(self.drop(self.ident(self.lif1(self.fc1(x)))))
        return self.lif2(self.fc2(x)).mean(0)


def test_identity_dropout_and_droppath_are_removed() -> None:
    g = snncc.trace(Regularised().eval(), torch.randn(1, 6))
    kinds = {n: g.op(n).kind for n in g.nodes()}
    assert kinds == {"input": "Input", "fc1": "Linear", "lif1": "LIF", "fc2": "Linear",
                     "lif2": "LIF", "mean": "TimeMean"}  # fmt: skip
    # fc2 reads lif1's spikes directly
    assert [u for u, _ in g.users("lif1")] == ["fc2"]


def test_single_step_spikingjelly_neurons_are_refused_with_the_fix() -> None:
    class LIFNode(nn.Module):  # SpikingJelly clock_driven: one step per call, no step_mode
        def __init__(self) -> None:
            super().__init__()
            self.tau, self.v_threshold, self.v_reset, self.decay_input = 2.0, 1.0, 0.0, True

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x > 1.0).float()

    class StepLoop(nn.Module):
        T = 2

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.sn = LIFNode()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([self.sn(self.fc(x)) for _ in range(self.T)])

    with pytest.raises(SnnccError) as e:
        snncc.trace(StepLoop(), torch.randn(1, 3))
    assert e.value.exit_code == 3 and e.value.code == "FE004"
    text = e.value.format()
    assert "sn" in text and "step_mode='m'" in text and "MultiStepLIFNode" in text
    # the same class switched to multi-step is kept as one LIF op
    m = StepLoop()
    m.sn.step_mode = "m"

    class Multi(nn.Module):
        T = 2

        def __init__(self) -> None:
            super().__init__()
            self.fc, self.sn = m.fc, m.sn

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.sn(self.fc(x.unsqueeze(0).repeat(self.T, 1, 1)))

    assert isinstance(snncc.trace(Multi(), torch.randn(1, 3)).op("sn"), O.LIF)
