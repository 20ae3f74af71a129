"""Every registered zoo model compiles for Loihi to a runnable, balanced program.

Each registered name is built at test size (:func:`small_config`: fewer channels and blocks, a
smaller image), keeping what distinguishes it (tokenizer layout and pooling, tau 1.5 of the DVS
models, event input, matmul order, Ge²mS-T's bits and scales, Elastic's granularities), and run
through the whole compile pipeline with ``require_program``: a construct without a lowering is
an error, not a warning. The ``-tiny`` configurations compile as registered. Parity of the
programs is in test_lower.py (numpy executor) and test_lava_parity.py (Lava).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import snncc.models as M
from snncc.backends.lower.passes import SPEC_KEY
from snncc.loading import resolve_model, to_graph
from snncc.loading.checkpoint import LoadedModel
from snncc.passes.manager import PassContext, run_pipeline
from snncc.passes.pipeline import COMPILE_PIPELINE


def small_config(name: str) -> dict[str, Any]:
    """The registered configuration of ``name`` shrunk to test size (see the module docstring)."""
    cfg = dict(M.spec(name).config)
    heads = int(cfg.get("num_heads", 4))
    if "embed_dims" in cfg:
        cfg["embed_dims"] = heads * (max(1, 32 // heads) if heads <= 8 else 4)
    if "depths" in cfg:
        cfg["depths"] = min(int(cfg["depths"]), 2)
    if cfg.get("img_size", 0) > 32:
        cfg["img_size"] = 32  # 224/160/128-pixel layouts pool 4 times: 2x2 tokens
    if cfg.get("T", 0) > 8:
        cfg["T"] = 4
    return cfg


def _small(name: str) -> LoadedModel:
    spec = M.spec(name)
    cfg = small_config(name)
    torch.manual_seed(0)
    module = M.create(name, **{k: v for k, v in cfg.items() if spec.config[k] != v}).eval()
    img, channels, steps = cfg["img_size"], cfg["in_channels"], cfg.get("T", spec.timesteps)
    shape = (steps, channels, img, img) if spec.time_axis == 1 else (channels, img, img)
    return LoadedModel(
        module=module, arch=name, config=cfg, input_shape=shape, timesteps=steps,
        time_axis=spec.time_axis, source="zoo",
    )  # fmt: skip


def _compile(loaded: LoadedModel) -> PassContext:
    ctx = PassContext(config={"target": "loihi", "require_program": True})
    _, ctx = run_pipeline(to_graph(loaded), COMPILE_PIPELINE, ctx)
    return ctx


@pytest.mark.parametrize("name", M.names())
def test_every_registered_model_compiles_for_loihi(name: str) -> None:
    spec = _compile(_small(name)).config[SPEC_KEY]
    assert spec is not None and spec.balanced and spec.populations
    assert max(o.delay for c in spec.connections for o in c.operands) <= 62


def test_every_family_has_a_tiny_configuration_that_compiles_as_registered() -> None:
    families = {M.spec(n).family for n in M.names()}
    tiny = {M.spec(n).family: n for n in M.names() if n.endswith("-tiny")}
    assert families == set(tiny)
    for name in sorted(tiny.values()):
        assert _compile(resolve_model(name)).config[SPEC_KEY].balanced, name
