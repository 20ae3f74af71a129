"""Faster, bit-identical CPU ProcessModels for Lava's own processes, and the run configuration
that selects them.

Why: Lava 0.10's ``PyDelayDenseModelBitAcc`` rebuilds its delay-weight matrix on every step
(``np.vstack`` of ``max_delay + 1`` masked copies of the weights, then an elementwise product
with the spikes and a sum), so one ``DelayDense`` of 2048 x 512 with a delay of 5 costs
20–50 ms of CPU per step: profiled on the emitted spikingformer-tiny program, the six
``DelayDense`` processes took ~85 % of all ProcessModel compute (``benchmarks/lava_throughput.py``,
docs/lava-backend.md "Throughput"). :class:`PyDelayDenseModelFast` does the same arithmetic with
the per-delay weight matrices built once: a column sum of the active inputs per delay present
(binary spikes, as ``Dense`` does) or an exact product (graded payloads), added into the same
``int32`` delay buffer, shifted by ``weight_exp`` the same way.

The network still consists of Lava's ``DelayDense`` processes (what maps to a Loihi 2
neurocore); only the CPU simulation of them changes, through Lava's documented
``exception_proc_model_map`` of the run configuration (:func:`sim_config`). The runtime test
``tests/backends/lava/test_fast_models.py`` checks the model against Lava's own, output for
output, and the parity tests run every program through it.

Imports Lava: only the runtime environment (Python 3.10, lava-nc 0.10.0) loads this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.models import PyDelayDenseModelBitAcc
from lava.proc.dense.process import DelayDense
from lava.utils.weightutils import SignMode, clip_weights, determine_sign_mode, truncate_weights

#: Largest sum a float64 product represents exactly.
_EXACT = 1 << 53


@implements(proc=DelayDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt_fast")
class PyDelayDenseModelFast(PyDelayDenseModelBitAcc):
    """``PyDelayDenseModelBitAcc`` with its delay-weight matrices precomputed.

    Per step, like the stock model: send buffer column 0, receive, shift the buffer one column
    left (the stock model zeroes column 0 and rolls the flattened buffer by one, which is the
    same shift with a zero entering the last column), add ``W_k · s`` shifted by ``weight_exp``
    into column ``k`` for every delay ``k`` present.
    """

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        self._by_delay: list[tuple[int, np.ndarray, np.ndarray]] = []

    def _prepare(self) -> None:
        """Clip and truncate the weights as the stock model does; split them by delay once."""
        num_weight_bits: int = self.proc_params.get("num_weight_bits", 8)
        sign_mode: SignMode = self.proc_params.get("sign_mode") or determine_sign_mode(self.weights)
        self.weights = clip_weights(self.weights, sign_mode, num_bits=8)
        self.weights = truncate_weights(self.weights, sign_mode, num_weight_bits)
        self.weights_set = True
        if np.max(self.delays) > 63:
            raise ValueError(f"DelayDense Process 'delays' expects values between 0 and 63 for "
                             f"Loihi, got {self.delays}.")  # fmt: skip
        delays = np.broadcast_to(self.delays, self.weights.shape)
        for k in np.unique(delays):
            w = np.where(delays == k, self.weights, 0).astype(np.int64)
            self._by_delay.append((int(k), w, w.astype(np.float64)))

    def _act(self, w: np.ndarray, wf: np.ndarray, s_in: np.ndarray) -> np.ndarray:
        """``w @ s_in`` as int64 (the stock ``sum(delay_wgts * s_in, axis=1)`` of one delay)."""
        if s_in.dtype == np.bool_:
            return w[:, s_in].sum(axis=1)
        s = np.asarray(s_in, np.int64)
        bound = int(np.abs(w).sum(axis=1).max(initial=0)) * int(np.abs(s).max(initial=0))
        if bound < _EXACT:  # every partial sum an exact float64 integer
            return np.rint(wf @ s.astype(np.float64)).astype(np.int64)
        return w @ s

    def run_spk(self) -> None:
        """One step: send, receive, shift the buffer, add this step's sums per delay."""
        self.weight_exp = int(self.proc_params.get("weight_exp", 0))
        if not self.weights_set:
            self._prepare()
        self.a_out.send(self.a_buff[:, 0])
        if self.num_message_bits.item() > 0:
            s_in = self.s_in.recv()
        else:
            s_in = self.s_in.recv().astype(bool)
        buf = self.a_buff
        buf[:, :-1] = buf[:, 1:]
        buf[:, -1] = 0
        e = self.weight_exp
        for k, w, wf in self._by_delay:
            acc = self._act(w, wf, s_in)
            buf[:, k] += np.left_shift(acc, e) if e > 0 else np.right_shift(acc, -e)


#: Lava process class -> the ProcessModel :func:`sim_config` selects for it.
SIM_MODELS: dict[type, type] = {DelayDense: PyDelayDenseModelFast}


def sim_config(**kwargs: Any) -> Loihi2SimCfg:
    """``Loihi2SimCfg(select_tag="fixed_pt")`` with :data:`SIM_MODELS` as its exceptions.

    Every other process gets the model Lava's own ``fixed_pt`` selection gives it.
    """
    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=dict(SIM_MODELS), **kwargs)
