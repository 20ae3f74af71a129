"""Pinned quantization decisions (``snncc.quant.pins``): what ``snncc finetune`` relies on.

A graph carrying its own pin record re-quantizes to the same program; a pinned grid is honoured
where the free choice would move (smaller weights would get a finer exponent); a pin the weights
no longer fit, or one for the other target, is refused with ``QNT030``; a malformed record in a
checkpoint is refused when the file loads (``E026``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snncc.diagnostics import SnnccError
from snncc.ir.ops import op_equal
from snncc.loading import resolve_model, to_graph
from snncc.loading.checkpoint import load_checkpoint
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import FRONT_PIPELINE
from snncc.passes.quantize import quantize
from snncc.quant.pins import KEY, check_record, record_of

MODEL = "spikingformer-tiny"


@pytest.fixture(scope="module")
def front():  # noqa: ANN201
    g, _ = run_pipeline(to_graph(resolve_model(MODEL)), FRONT_PIPELINE)
    return g


def _quantize(g, target: str = "loihi"):  # noqa: ANN001, ANN202
    q, _ = run_pipeline(g, [quantize], PassContext(config={"target": target}))
    return q


def _conv(q) -> str:  # noqa: ANN001
    return next(n for n in q.topo_order() if "weight_exp" in (q.node_meta(n).get("quant") or {}))


@pytest.mark.parametrize("target", ["loihi", "spinnaker"])
def test_own_record_reproduces_the_program(front, target: str) -> None:  # noqa: ANN001
    q = _quantize(front, target)
    rec = record_of(q)
    assert rec["target"] == target and rec["streams"]
    if target == "loihi":
        exps = [v["weight_exp"] for v in rec["weights"].values()]
        assert exps and all(isinstance(e, int) for e in exps)
    else:
        assert all(len(v["shifts"]) == 2 for v in rec["streams"].values())
    pinned = front.copy()
    pinned.meta[KEY] = rec
    q2 = _quantize(pinned, target)
    for n in q.topo_order():
        assert op_equal(q.op(n), q2.op(n)), n


def test_pinned_grid_holds_when_the_weights_shrink(front) -> None:  # noqa: ANN001
    q = _quantize(front)
    node = _conv(q)
    grid = {k: q.node_meta(node)["quant"][k] for k in ("weight_exp", "scale")}
    shrunk = front.copy()
    op = shrunk.op(node)
    shrunk.set_op(node, op.replace(weight=np.asarray(op.weight) * 0.25))
    free = _quantize(shrunk)
    # The free choice moves the grid (a larger stream scale or a finer exponent).
    assert {k: free.node_meta(node)["quant"][k] for k in grid} != grid
    shrunk.meta[KEY] = record_of(q)
    held = _quantize(shrunk)
    assert {k: held.node_meta(node)["quant"][k] for k in grid} == grid
    # The same float weights on the old grid: a quarter of the mantissas, rounded.
    want = np.rint(np.asarray(q.op(node).weight) / 4.0)
    assert np.max(np.abs(np.asarray(held.op(node).weight) - want)) <= 1


def test_weights_grown_past_the_pinned_grid_are_refused(front) -> None:  # noqa: ANN001
    q = _quantize(front)
    node = _conv(q)
    grown = front.copy()
    op = grown.op(node)
    grown.set_op(node, op.replace(weight=np.asarray(op.weight) * 4.0))
    grown.meta[KEY] = record_of(q)
    with pytest.raises(SnnccError) as e:
        _quantize(grown)
    assert e.value.code == "QNT030" and e.value.exit_code == 2


def test_record_for_the_other_target_is_refused(front) -> None:  # noqa: ANN001
    other = front.copy()
    other.meta[KEY] = record_of(_quantize(front, "spinnaker"))
    with pytest.raises(SnnccError) as e:
        _quantize(other, "loihi")
    assert e.value.code == "QNT030" and "'spinnaker'" in e.value.message


@pytest.mark.parametrize(
    "bad",
    [
        {"target": "gpu", "streams": {}, "weights": {}},
        {"target": "loihi", "streams": {"a": {"scale": -1.0}}, "weights": {}},
        {"target": "loihi", "streams": {}, "weights": {"b": {"weight_exp": 0.5}}},
        {"target": "spinnaker", "streams": {"a": {"scale": 2.0, "shifts": [3, 40]}}},
        "loihi",
    ],
)
def test_malformed_records_are_refused(bad) -> None:  # noqa: ANN001
    with pytest.raises(SnnccError) as e:
        check_record(bad, "model_ft.pt")
    assert e.value.code == "E026" and "model_ft.pt" in e.value.message


def test_checkpoint_with_a_malformed_record_fails_to_load(tmp_path) -> None:  # noqa: ANN001
    from snncc.loading.checkpoint import save_checkpoint

    loaded = resolve_model(MODEL)
    path = save_checkpoint(
        tmp_path / "m.pt", loaded.module, MODEL, loaded.config, loaded.input_shape,
        loaded.timesteps,
    )  # fmt: skip
    doc = torch.load(path, weights_only=True)
    doc["quantization"] = {"target": "loihi", "streams": {"x": {"scale": "big"}}}
    torch.save(doc, path)
    with pytest.raises(SnnccError) as e:
        load_checkpoint(path)
    assert e.value.code == "E026"
