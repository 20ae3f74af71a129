"""One frozen dataclass per IR op type: parameters only, math in the docstring.

Every op computes once per timestep on one sample; shapes are per-sample, per-timestep (no T or B
axis). Neurons are the only stateful ops; their state is reset at the start of each sample. Ops hold
weights as numpy arrays and nothing else: simulation lives in :mod:`snncc.reference`, lowering in
the backends. Validation happens in ``_validate`` (called from ``__post_init__``) and raises
:class:`~snncc.diagnostics.IRError` naming the op and the field, never ``assert``.

Ports follow Lava's naming idea: a synaptic op reads ``in`` and writes ``out``; binary ops read
``a`` and ``b``; ``Add`` reads ``in0 … in{n-1}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from snncc.diagnostics import IRError
from snncc.ir.types import Kind


def _freeze(value: Any) -> Any:
    """Lists become tuples and arrays become read-only contiguous copies, so ops stay immutable."""
    if isinstance(value, np.ndarray):
        arr = np.array(value, copy=True, order="C")
        arr.setflags(write=False)
        return arr
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True, eq=False)
class Op:
    """Base class: ports, immutability and validation shared by every op."""

    IN_PORTS: ClassVar[tuple[str, ...]] = ("in",)
    OUT_PORTS: ClassVar[tuple[str, ...]] = ("out",)
    #: Synaptic ops carry weights and are what the spike-driven rule constrains.
    SYNAPTIC: ClassVar[bool] = False
    #: Neuron ops are stateful over time and emit spikes.
    NEURON: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _freeze(getattr(self, f.name)))
        self._validate()

    def _validate(self) -> None:
        """Raise IRError when a parameter is invalid; subclasses override."""

    @property
    def in_ports(self) -> tuple[str, ...]:
        """Input port names of this op instance."""
        return self.IN_PORTS

    @property
    def kind(self) -> str:
        """The op's type name as used in printers, JSON and diagnostics."""
        return type(self).__name__

    def arrays(self) -> dict[str, np.ndarray]:
        """The op's array-valued parameters (weights, biases, BN statistics)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }

    def n_params(self) -> int:
        """Number of scalar parameters stored in arrays."""
        return int(sum(a.size for a in self.arrays().values()))

    def replace(self, **changes: Any) -> Op:
        """A copy with some fields changed (ops are immutable)."""
        return dataclasses.replace(self, **changes)

    def _fail(self, field: str, problem: str) -> None:
        raise IRError(f"{self.kind}.{field}: {problem}")


def op_equal(a: Op, b: Op) -> bool:
    """Structural equality of two ops, comparing arrays element-wise (dtype included)."""
    if type(a) is not type(b):
        return False
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (
                isinstance(x, np.ndarray)
                and isinstance(y, np.ndarray)
                and x.dtype == y.dtype
                and np.array_equal(x, y)
            ):
                return False
        elif x != y:
            return False
    return True


def _check_pair(op: Op, name: str, value: tuple[int, ...], minimum: int) -> None:
    if len(value) != 2 or any(v < minimum for v in value):
        op._fail(name, f"expected two integers >= {minimum}, got {value}")


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Input(Op):
    """Graph input. ``temporal=False``: a static sample (e.g. an image) presented at every step.

    ``kind`` says what the host feeds: real pixels (``current``) or event frames (``spike``).
    """

    IN_PORTS: ClassVar[tuple[str, ...]] = ()
    shape: tuple[int, ...] = ()
    kind_in: Kind = Kind.CURRENT
    temporal: bool = True

    def _validate(self) -> None:
        if any(int(s) <= 0 for s in self.shape):
            self._fail("shape", f"dimensions must be positive, got {self.shape}")
        object.__setattr__(self, "kind_in", Kind(self.kind_in))


# ---------------------------------------------------------------------------------------------
# Synaptic ops
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Linear(Op):
    """``y = W x + b`` over the last axis; ``weight`` is ``[out, in]``, ``bias`` ``[out]``/None."""

    SYNAPTIC: ClassVar[bool] = True
    weight: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((1, 1)))
    bias: np.ndarray | None = None

    def _validate(self) -> None:
        if self.weight.ndim != 2:
            self._fail("weight", f"expected [out, in], got shape {self.weight.shape}")
        if self.bias is not None and self.bias.shape != (self.weight.shape[0],):
            self._fail("bias", f"expected [{self.weight.shape[0]}], got {self.bias.shape}")


@dataclass(frozen=True, eq=False)
class Conv1d(Op):
    """Cross-correlation over ``[C, L]``, as ``torch.nn.Conv1d``: weight ``[out, in/groups, k]``."""

    SYNAPTIC: ClassVar[bool] = True
    weight: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((1, 1, 1)))
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1

    def _validate(self) -> None:
        if self.weight.ndim != 3:
            self._fail("weight", f"expected [out, in/groups, k], got {self.weight.shape}")
        if self.stride < 1 or self.dilation < 1 or self.padding < 0 or self.groups < 1:
            self._fail("stride", "stride/dilation/groups must be >= 1 and padding >= 0")
        if self.bias is not None and self.bias.shape != (self.weight.shape[0],):
            self._fail("bias", f"expected [{self.weight.shape[0]}], got {self.bias.shape}")


@dataclass(frozen=True, eq=False)
class Conv2d(Op):
    """Cross-correlation over ``[C, H, W]`` like ``nn.Conv2d``; weight ``[out, in/g, kh, kw]``."""

    SYNAPTIC: ClassVar[bool] = True
    weight: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((1, 1, 1, 1)))
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def _validate(self) -> None:
        if self.weight.ndim != 4:
            self._fail("weight", f"expected [out, in/groups, kh, kw], got {self.weight.shape}")
        _check_pair(self, "stride", self.stride, 1)
        _check_pair(self, "padding", self.padding, 0)
        _check_pair(self, "dilation", self.dilation, 1)
        if self.groups < 1:
            self._fail("groups", f"must be >= 1, got {self.groups}")
        if self.bias is not None and self.bias.shape != (self.weight.shape[0],):
            self._fail("bias", f"expected [{self.weight.shape[0]}], got {self.bias.shape}")


@dataclass(frozen=True, eq=False)
class BatchNorm(Op):
    """Inference batch norm along ``axis``: ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    ``fold_bn`` folds it into the preceding synaptic op; one left standing is an affine current op.
    """

    weight: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(1))
    bias: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(1))
    running_mean: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(1))
    running_var: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(1))
    eps: float = 1e-5
    axis: int = 0

    def _validate(self) -> None:
        n = self.weight.shape
        for name in ("bias", "running_mean", "running_var"):
            if getattr(self, name).shape != n:
                self._fail(name, f"expected shape {n}, got {getattr(self, name).shape}")
        if self.eps <= 0:
            self._fail("eps", f"must be positive, got {self.eps}")
        bad = int(np.count_nonzero(~(np.asarray(self.running_var) + self.eps > 0)))
        if bad:  # sqrt of a negative variance: every later number would be NaN
            self._fail(
                "running_var", f"{bad} channel(s) have running_var + eps <= 0 (a corrupt BatchNorm)"
            )


@dataclass(frozen=True, eq=False)
class AvgPool2d(Op):
    """Average pooling over ``[C, H, W]`` (a unit-weight convolution times ``1/k²``).

    Over spikes it is accumulate-only: a sum pool followed by a constant scale.
    """

    SYNAPTIC: ClassVar[bool] = True
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int] = (0, 0)
    count_include_pad: bool = True

    def _validate(self) -> None:
        _check_pair(self, "kernel", self.kernel, 1)
        _check_pair(self, "stride", self.stride, 1)
        _check_pair(self, "padding", self.padding, 0)


@dataclass(frozen=True, eq=False)
class MaxPool2d(Op):
    """Max pooling over ``[C, H, W]``; over spikes it is a logical OR (``SpikeOr``).

    Padding counts as ``-inf`` (never selected), as in PyTorch.
    """

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    def _validate(self) -> None:
        _check_pair(self, "kernel", self.kernel, 1)
        _check_pair(self, "stride", self.stride, 1)
        _check_pair(self, "padding", self.padding, 0)
        _check_pair(self, "dilation", self.dilation, 1)


# ---------------------------------------------------------------------------------------------
# Neurons (SpikingJelly multi-step semantics; state reset per sample)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LIF(Op):
    """Leaky integrate-and-fire neuron, SpikingJelly ``LIFNode`` semantics.

    Per step, with ``V[-1] = v_reset`` (0 for soft reset), written as the exact float operations
    SpikingJelly (and :mod:`snncc.nn.neurons`) perform, since spikes must match bit for bit::

        decay_input, v_reset in {None, 0}:      H = V + (X - V) / tau
        decay_input, v_reset = r:               H = V + (X - (V - r)) / tau
        not decay_input, v_reset in {None, 0}:  H = V * (1 - 1 / tau) + X
        not decay_input, v_reset = r:           H = V - (V - r) / tau + X
        S = (H - v_threshold >= 0)
        hard reset:  V = (1 - S) * H + S * v_reset
        soft reset:  V = H - S * v_threshold        (v_reset is None)
    """

    NEURON: ClassVar[bool] = True
    tau: float = 2.0
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    decay_input: bool = True

    def _validate(self) -> None:
        if not self.tau > 1.0:
            self._fail("tau", f"must be > 1 (leak 1 - 1/tau in (0, 1)), got {self.tau}")
        if not self.v_threshold > 0:
            self._fail("v_threshold", f"must be positive, got {self.v_threshold}")


@dataclass(frozen=True, eq=False)
class IF(Op):
    """Integrate-and-fire neuron (no leak): ``H = V + X``; threshold and reset as :class:`LIF`."""

    NEURON: ClassVar[bool] = True
    v_threshold: float = 1.0
    v_reset: float | None = 0.0

    def _validate(self) -> None:
        if not self.v_threshold > 0:
            self._fail("v_threshold", f"must be positive, got {self.v_threshold}")


@dataclass(frozen=True, eq=False)
class ExpGIF(Op):
    """Grouped exponential-coding IF neuron (snncc's interpretation of Ge²mS-T's ExpG-IF).

    ``snncc.nn.ExpGIF`` semantics: time is cut into groups of ``K = bits`` steps and step ``t``
    is bit ``k = t mod K`` (``k = 0`` most significant). Per step, with ``v = 0`` at the start of
    every sample and no reset at group boundaries, in exactly this float order::

        th = theta * 2 ** -(k + 1)
        v  = v + X
        S  = (v - th >= 0)
        v  = v - S * th                 (soft reset)
        Y  = S * th                     (the event, carrying its bit weight)

    The output is a *graded* spike: a 1-bit event whose payload is the integer ``2**(K-1-k)`` in
    units of ``theta * 2**-K`` (``K`` bits), so a synapse reading it accumulates a weight shifted
    by the step's bit position and never multiplies. The reference records ``S = (Y != 0)`` as the
    neuron's spike train.

    ``start`` (None by default) makes it a *one-group* neuron, what ANN conversion deploys: it
    integrates ``X`` only at steps ``t <= start`` (no spike before ``start``), fires only at
    steps ``start … start + K - 1`` with ``k = t - start``, and is silent and deaf afterwards
    (:func:`expgif_schedule`). Its K events are then the K-bit code of the sum of its inputs up
    to ``start``, however they were spread over those steps, with no gate on the input.
    """

    NEURON: ClassVar[bool] = True
    theta: float = 1.0
    bits: int = 4
    start: int | None = None

    def _validate(self) -> None:
        if not self.theta > 0:
            self._fail("theta", f"must be positive, got {self.theta}")
        if int(self.bits) != self.bits or self.bits < 1:
            self._fail("bits", f"must be a positive integer, got {self.bits}")
        _check_start(self)


def _check_start(op: Op) -> None:
    start = getattr(op, "start", None)
    if start is not None and (int(start) != start or start < 0):
        op._fail("start", f"must be None or an integer >= 0, got {start}")


def expgif_schedule(t: int, bits: int, start: int | None) -> tuple[bool, int | None]:
    """``(integrates, bit)`` of an ExpG-IF neuron (float or Loihi) at step ``t`` of a sample.

    ``start`` None: integrate every step, bit ``t mod K`` (periodic groups). Otherwise one group:
    integrate at ``t <= start``, bit ``t - start`` during ``start … start + K - 1`` and no bit
    (no spike) outside it. The one definition every kernel and the Lava process use.
    """
    if start is None:
        return True, t % bits
    k = t - start
    return t <= start, (k if 0 <= k < bits else None)


# ---------------------------------------------------------------------------------------------
# Spike algebra and currents
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Add(Op):
    """Element-wise sum of ``n`` inputs ``in0 … in{n-1}`` (a residual join)."""

    n: int = 2

    def _validate(self) -> None:
        if self.n < 2:
            self._fail("n", f"needs at least 2 inputs, got {self.n}")

    @property
    def in_ports(self) -> tuple[str, ...]:
        return tuple(f"in{i}" for i in range(self.n))


@dataclass(frozen=True, eq=False)
class Scale(Op):
    """Multiplication by a constant: ``y = factor * x`` (e.g. the attention scale 0.125)."""

    factor: float = 1.0


@dataclass(frozen=True, eq=False)
class Mul(Op):
    """Element-wise product ``y = a * b`` with numpy broadcasting; over spikes it is an AND."""

    IN_PORTS: ClassVar[tuple[str, ...]] = ("a", "b")


@dataclass(frozen=True, eq=False)
class MatMul(Op):
    """Matrix product ``y = a @ b`` over the last two axes (batched over leading axes).

    Both operands are dynamic (e.g. ``Q @ Kᵀ`` in attention); over spikes each product is an AND
    and each sum an accumulate, so the result is a COUNT.
    """

    IN_PORTS: ClassVar[tuple[str, ...]] = ("a", "b")


# ---------------------------------------------------------------------------------------------
# Structure (folded into connectivity by lowering)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """Row-major reshape to ``shape`` (same number of elements)."""

    shape: tuple[int, ...] = ()


@dataclass(frozen=True, eq=False)
class Permute(Op):
    """Axis permutation: output axis i is input axis ``dims[i]``."""

    dims: tuple[int, ...] = ()

    def _validate(self) -> None:
        if sorted(self.dims) != list(range(len(self.dims))):
            self._fail("dims", f"not a permutation: {self.dims}")


@dataclass(frozen=True, eq=False)
class Repeat(Op):
    """Tile the input ``repeats[i]`` times along axis i (``torch.Tensor.repeat``)."""

    repeats: tuple[int, ...] = ()


@dataclass(frozen=True, eq=False)
class Slice(Op):
    """``y = x[..., start:stop:step, ...]`` along ``axis`` (elastic first-k channel selection)."""

    axis: int = 0
    start: int = 0
    stop: int = 1
    step: int = 1


@dataclass(frozen=True, eq=False)
class Pad(Op):
    """Zero padding along ``axis``: ``before`` zeros, the input, ``after`` zeros (dropped heads)."""

    axis: int = 0
    before: int = 0
    after: int = 0


@dataclass(frozen=True, eq=False)
class Mean(Op):
    """Mean over per-sample ``axes`` (e.g. the global average over tokens before the head)."""

    axes: tuple[int, ...] = ()
    keepdim: bool = False


@dataclass(frozen=True, eq=False)
class Sum(Op):
    """Sum over per-sample ``axes`` (e.g. SDSA's column sum of ``K ⊙ V`` over tokens)."""

    axes: tuple[int, ...] = ()
    keepdim: bool = False


@dataclass(frozen=True, eq=False)
class TimeMean(Op):
    """Readout: mean of the input over all timesteps; the output is static (once per sample)."""


@dataclass(frozen=True, eq=False)
class Delay(Op):
    """``y[t] = x[t - steps]`` (zero before); inserted by latency balancing."""

    steps: int = 1

    def _validate(self) -> None:
        if self.steps < 0:
            self._fail("steps", f"must be >= 0, got {self.steps}")


# ---------------------------------------------------------------------------------------------
# Target neurons (created by the ``quantize`` pass; integer state, see docs/quantization.md)
# ---------------------------------------------------------------------------------------------
def _check_int_array(op: Op, name: str, lo: int, hi: int) -> None:
    arr = getattr(op, name)
    if not np.issubdtype(arr.dtype, np.integer):
        op._fail(name, f"must be an integer array, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        op._fail(name, f"values must lie in [{lo}, {hi}], got [{arr.min()}, {arr.max()}]")


@dataclass(frozen=True, eq=False)
class LoihiLIF(Op):
    """Lava ``LIF`` under ``Loihi2SimCfg(select_tag="fixed_pt")`` (``PyLifModelBitAcc``).

    Integer state u, v (24-bit), per step, with ``a`` the input (integer ``a_in`` units; a host
    current ``x`` arrives as ``a = rint(x * host_scale)`` when ``host_scale > 0``)::

        u = wrap24(trunc0(u * (4096 - (du + 1)) / 4096) + (a << 6))
        v = clip(trunc0(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp), ±(2^23 - 1))
        s = v > (vth << 6);   v[s] = 0          (u is not reset; no refractory period)

    ``trunc0`` truncates toward zero; ``wrap24`` is Lava's single wrap into (-2^23, 2^23].
    """

    NEURON: ClassVar[bool] = True
    du: int = 4095
    dv: int = 0
    vth: int = 0
    bias_mant: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(1, np.int64))
    bias_exp: int = 6
    host_scale: float = 0.0

    def _validate(self) -> None:
        if not -1 <= self.du <= 4095 or not 0 <= self.dv <= 4095:
            self._fail("du", f"du in [-1, 4095], dv in [0, 4095]; got {self.du}, {self.dv}")
        if not 0 <= self.vth <= 2**17 - 1:
            self._fail("vth", f"must fit 17 unsigned bits, got {self.vth}")
        if not -8 <= self.bias_exp <= 7:
            self._fail("bias_exp", f"must be in [-8, 7], got {self.bias_exp}")
        _check_int_array(self, "bias_mant", -4096, 4095)
        if self.host_scale < 0:
            self._fail("host_scale", f"must be >= 0, got {self.host_scale}")


#: Largest magnitude of a programmable neuron's 24-bit state (Loihi 2 neuron state width).
PROGRAMMABLE_STATE_MAX = 2**23 - 1


@dataclass(frozen=True, eq=False)
class LoihiExpGIF(Op):
    """A programmable Loihi 2 neuron: IF with a threshold schedule, soft reset, graded payload.

    snncc's ExpG-IF (:class:`ExpGIF`) as integers; with ``bits = 1`` it is also the soft-reset
    IF neuron. Integer state v (24 bits, saturating like Lava's v), per step ``t`` of a sample
    (``k = t mod bits``), with ``a`` the input in integer ``a_in`` units (a host current ``x``
    arrives as ``a = rint(x * host_scale)`` when ``host_scale > 0``)::

        v = clip(v + a + bias, ±(2^23 - 1))
        s = v >= thresholds[k]
        v = v - s * thresholds[k]                (soft reset)
        y = s * 2^(bits - 1 - k)                 (graded payload: bit k's weight)

    The payload is what a synapse reading this neuron multiplies its weight by (Lava ``Dense``
    with ``num_message_bits > 0``); the reference records ``s = (y != 0)`` as the spike train.
    No leak and no reset at group boundaries: the residual carries on (as in the float model).
    On Loihi 2 this is a neuron microcode program; on Lava a custom fixed-point process.

    ``start`` as in :class:`ExpGIF` (:func:`expgif_schedule`): when set, ``a + bias`` is added
    only at steps ``t <= start`` and the neuron fires only at ``start … start + K - 1``
    (``k = t - start``); ``t`` counts the steps of a sample.
    """

    NEURON: ClassVar[bool] = True
    bits: int = 1
    thresholds: tuple[int, ...] = (1,)
    bias: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(1, np.int64))
    host_scale: float = 0.0
    start: int | None = None

    def _validate(self) -> None:
        if int(self.bits) != self.bits or not 1 <= self.bits <= 16:
            self._fail("bits", f"must be an integer in [1, 16], got {self.bits}")
        if len(self.thresholds) != self.bits:
            self._fail("thresholds", f"needs one per bit ({self.bits}), got {self.thresholds}")
        for th in self.thresholds:
            if int(th) != th or not 1 <= th <= PROGRAMMABLE_STATE_MAX:
                self._fail("thresholds", f"must be integers in [1, 2^23 - 1], got {th}")
        m = PROGRAMMABLE_STATE_MAX
        _check_int_array(self, "bias", -m, m)
        if self.host_scale < 0:
            self._fail("host_scale", f"must be >= 0, got {self.host_scale}")
        _check_start(self)

    @property
    def payloads(self) -> tuple[int, ...]:
        """The payload of a spike at each step of a group: ``2^(bits - 1 - k)``."""
        return tuple(1 << (self.bits - 1 - k) for k in range(self.bits))


@dataclass(frozen=True, eq=False)
class SpiNNakerLIF(Op):
    """sPyNNaker 7.4.1 ``IF_curr_delta`` (LIF, delta synapses), s16.15 raw integers (2^-15 units).

    The input carries the two 16-bit ring buffers as ``exc + 1j * inh`` (unsigned sums of stored
    weight magnitudes; a host current ``x`` arrives as ``I_host = rint(x * host_scale)``). Per
    step (``tau_refrac = 0``, dt = 1 ms, ``mul(a, b) = (a * b + 2^14) >> 15``)::

        I     = (min(exc, 65535) << exc_shift) - (min(inh, 65535) << inh_shift) + i_offset
        alpha = mul(I, r) + v_rest
        V     = alpha - mul(exp_tc, alpha - V)
        s     = V >= v_thresh;   V[s] = v_reset
    """

    NEURON: ClassVar[bool] = True
    v_thresh: int = 2**15
    v_reset: int = 0
    v_rest: int = 0
    exp_tc: int = 2**14
    r: int = 2**15
    i_offset: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(1, np.int64))
    exc_shift: int = 0
    inh_shift: int = 0
    host_scale: float = 0.0

    def _validate(self) -> None:
        for name in ("v_thresh", "v_reset", "v_rest", "r"):
            if not -(2**31) <= getattr(self, name) < 2**31:
                self._fail(name, "must fit a signed 32-bit s16.15 word")
        if not 0 <= self.exp_tc <= 2**15:
            self._fail("exp_tc", f"must be in [0, 2^15], got {self.exp_tc}")
        if not (0 <= self.exc_shift <= 16 and 0 <= self.inh_shift <= 16):
            self._fail("exc_shift", "ring-buffer shifts must be in [0, 16]")
        _check_int_array(self, "i_offset", -(2**31), 2**31 - 1)
        if self.host_scale < 0:
            self._fail("host_scale", f"must be >= 0, got {self.host_scale}")


#: Every op class by name: the registry used by (de)serialisation and round-trip tests.
OPS: dict[str, type[Op]] = {
    cls.__name__: cls
    for cls in (
        Input,
        Linear,
        Conv1d,
        Conv2d,
        BatchNorm,
        AvgPool2d,
        MaxPool2d,
        LIF,
        IF,
        ExpGIF,
        Add,
        Scale,
        Mul,
        MatMul,
        Reshape,
        Permute,
        Repeat,
        Slice,
        Pad,
        Mean,
        Sum,
        TimeMean,
        Delay,
        LoihiLIF,
        LoihiExpGIF,
        SpiNNakerLIF,
    )
}
