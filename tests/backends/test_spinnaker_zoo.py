"""Every registered zoo model compiles for SpiNNaker, or is refused with its documented reason.

Each registered name runs through the whole compile pipeline for ``spinnaker`` at test size
(:func:`tests.backends.test_zoo_compiles.small_config`: fewer channels and blocks, a smaller
image) with ``require_program``, and the ``-tiny`` configurations as registered. The outcome
per family is the table of docs/spinnaker.md ("What compiles"): a balanced SpiNNaker program,
or one refusal code naming why sPyNNaker's ``IF_curr_delta`` cannot run the model exactly.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import snncc.models as M
from snncc.backends.lower.passes import SPEC_KEY
from snncc.backends.spinnaker.spec import SpiNNakerProgram
from snncc.diagnostics import SnnccError
from snncc.loading import resolve_model, to_graph
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import COMPILE_PIPELINE

from .test_zoo_compiles import _small

#: Family -> refusal code at test size (None: compiles). Why, per code (docs/spinnaker.md):
#: QNT001 SDT max-pools currents (its last_pool="spikes" variant compiles); QNT002 ExpG-IF has no
#: IF_curr_delta form; QNT008 a non-leaky IF has no exact sPyNNaker form.
REFUSED = {"sdt": "QNT001", "ge2mst": "QNT002", "lsformer": "QNT008"}
#: Names refused for their own configuration: tau = 1.5 (exp_TC = 1/3) rounds in sPyNNaker's
#: s16.15 leak and Brian2's float64 does not (LOW020); the 32-pixel 384-wide tokenizer's
#: synapse lists exceed what snncc writes (LOW024).
REFUSED_NAMES = {
    "spikingformer-2-256-dvs": "LOW020",
    "elastic-spikingformer-2-256-dvs": "LOW020",
    "spikingformer-2-384": "LOW024",
    "spikingformer-4-384": "LOW024",
    "spikformer-4-384": "LOW024",
}


def _outcome(loaded) -> str | None:
    ctx = PassContext(config={"target": "spinnaker", "require_program": True})
    try:
        _, ctx = run_pipeline(to_graph(loaded), COMPILE_PIPELINE, ctx)
    except SnnccError as e:
        return e.code
    spec = ctx.config[SPEC_KEY]
    assert isinstance(spec, SpiNNakerProgram) and spec.balanced and spec.populations
    assert all(1 <= 1 + o.delay <= 63 for c in spec.connections for o in c.operands)
    return None


@pytest.mark.parametrize("name", M.names())
def test_every_registered_model_compiles_for_spinnaker_or_is_refused(name: str) -> None:
    want = REFUSED_NAMES.get(name, REFUSED.get(M.spec(name).family))
    assert _outcome(_small(name)) == want, name


def test_tiny_configurations_as_registered() -> None:
    for name in sorted(n for n in M.names() if n.endswith("-tiny")):
        assert _outcome(resolve_model(name)) == REFUSED.get(M.spec(name).family), name


@pytest.mark.parametrize("name", [n for n in M.names() if M.spec(n).family == "sdt"])
def test_sdt_pooling_spikes_compiles_for_spinnaker(name: str) -> None:
    """Every registered SDT layout at test size, with last_pool="spikes", compiles."""
    loaded = _small(name)
    cfg = {**loaded.config, "last_pool": "spikes"}
    torch.manual_seed(0)
    module = M.create(name, **{k: v for k, v in cfg.items() if M.spec(name).config[k] != v})
    assert _outcome(dataclasses.replace(loaded, module=module.eval(), config=cfg)) is None
