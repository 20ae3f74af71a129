"""Elastic slices under a budget: enumerate every granularity combination, pick the one to deploy.

An elastic model (``snncc.models.elastic``) has one granularity index per dimension —
``feature`` (tokenizer bottleneck channels), ``attention`` (heads), ``mlp`` (hidden width).
Every combination is a static network of its own (``export_slice``). For each, this module
traces the exported slice, runs the front pipeline and partitions it for the target
(:func:`snncc.passes.partition.plan_partition`): the memory and cores are those of the real
partition, not an estimate from parameter counts.

Which slice is "the largest that fits": among the combinations whose partition fits the
budget, the one with the most partition memory (ties: more parameters, then the larger
indices). Memory is what the budget constrains, and choosing by it makes the choice monotone:
a larger budget admits a superset of slices, so it never picks a smaller one.

Why the cache: memory depends only on the slice's shapes, and tracing is the expensive step
(about a second per slice for the tiny models); ``compile`` and ``slices`` of the same model in
one process share the traced graphs. Combinations whose levels are equal (e.g. heads
``[1, 1, 2, 4]``: indices 0 and 1 are both one head) are traced once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.resources.budget import Budget, fits

DIMS = ("feature", "attention", "mlp")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SliceInfo:
    """One granularity combination on one target (``snncc slices`` prints one row of these).

    ``granularity`` holds indices (what ``--slice`` takes), ``levels`` the widths they select.
    ``sops`` is the synaptic-operation bound (every input spiking at every step), per sample.
    ``accuracy`` is what the checkpoint recorded for this combination (the training script
    evaluates the uniform levels ``(g, g, g)``), else None. ``fits`` is None without a budget.
    """

    granularity: tuple[int, int, int]
    levels: dict[str, int]
    params: int
    memory_bytes: int
    cores: int
    cores_lower_bound: int
    sops: float
    accuracy: float | None
    fits: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        d = dataclasses.asdict(self)
        d["granularity"] = list(self.granularity)
        return d


@dataclass(frozen=True)
class _Traced:
    graph: Graph
    params: int
    sops: float


_CACHE: dict[tuple[str, tuple[int, ...]], _Traced] = {}


def _model_key(loaded: Any) -> str:
    """Identity of a model's weights and shapes (the cache key; cheap next to one trace)."""
    h = hashlib.sha256(repr((loaded.arch, loaded.config, loaded.input_shape)).encode())
    h.update(str(loaded.timesteps).encode())
    for name, t in sorted(loaded.module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _levels(loaded: Any) -> dict[str, list[int]]:
    levels = loaded.module.granularities()
    missing = [d for d in DIMS if d not in levels]
    if missing:
        raise SnnccError(
            f"{loaded.arch}: elastic model without the {', '.join(missing)} dimension(s)",
            code="CO041",
            hint="snncc slices needs feature, attention and mlp granularities",
        )
    return levels


def combinations(loaded: Any) -> list[tuple[int, int, int]]:
    """Every ``(feature, attention, mlp)`` index triple, one per distinct set of widths."""
    levels = _levels(loaded)
    out: dict[tuple[int, ...], tuple[int, int, int]] = {}
    for combo in itertools.product(*(range(len(levels[d])) for d in DIMS)):
        widths = tuple(levels[d][i] for d, i in zip(DIMS, combo, strict=True))
        out[widths] = combo  # the largest index of equal widths wins (1 head: index 1, not 0)
    return sorted(out.values())


def check_granularity(loaded: Any, gran: tuple[Any, ...]) -> tuple[int, int, int]:
    """``--slice`` as an index triple, each within its dimension's range (else exit 2)."""
    levels = _levels(loaded)
    out = []
    for d, g in zip(DIMS, gran, strict=True):
        n = len(levels[d])
        if not isinstance(g, int) or not 0 <= g < n:
            raise SnnccError(
                f"{loaded.arch}: --slice {d} index {g} is out of range",
                code="CO042",
                hint=f"{d} indices are 0..{n - 1} (widths {levels[d]}); see `snncc slices`",
            )
        out.append(g)
    return out[0], out[1], out[2]


def _trace(loaded: Any, key: str, gran: tuple[int, int, int]) -> _Traced:
    from snncc.loading import to_graph
    from snncc.models.elastic import export_slice, static_param_count
    from snncc.passes.manager import run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE
    from snncc.reports.measure import measure_sops

    if (key, gran) not in _CACHE:
        feature, attention, mlp = gran
        module = export_slice(loaded.module, feature=feature, attention=attention, mlp=mlp)
        traced = to_graph(dataclasses.replace(loaded, module=module))
        sops = sum(r["sops"] for r in measure_sops(traced, None)["layers"])
        graph, _ = run_pipeline(traced, FRONT_PIPELINE)
        _CACHE[(key, gran)] = _Traced(graph, static_param_count(module), float(sops))
    return _CACHE[(key, gran)]


def _accuracy(loaded: Any, gran: tuple[int, int, int]) -> float | None:
    per = (loaded.metrics or {}).get("test_accuracy_per_granularity")
    if not isinstance(per, list) or len(set(gran)) != 1 or gran[0] >= len(per):
        return None
    return float(per[gran[0]])


def slice_info(
    loaded: Any,
    target: str,
    gran: tuple[int, int, int],
    budget: Budget | None = None,
    *,
    core_memory: int | None = None,
    conv_synapses: str | None = None,
    key: str | None = None,
) -> SliceInfo:
    """Partition one combination for ``target`` and report it."""
    from snncc.passes.partition import plan_partition

    gran = check_granularity(loaded, gran)
    t = _trace(loaded, key or _model_key(loaded), gran)
    plan = plan_partition(t.graph, target, core_memory, conv_synapses)
    levels = _levels(loaded)
    return SliceInfo(
        granularity=gran,
        levels={d: int(levels[d][i]) for d, i in zip(DIMS, gran, strict=True)},
        params=t.params,
        memory_bytes=int(plan.memory_bytes),
        cores=int(plan.cores),
        cores_lower_bound=max(plan.cores_lower_bound.values(), default=0),
        sops=t.sops,
        accuracy=_accuracy(loaded, gran),
        fits=None if budget is None else fits(plan, budget),
    )


def enumerate_slices(
    loaded: Any,
    target: str,
    budget: Budget | None = None,
    *,
    core_memory: int | None = None,
    conv_synapses: str | None = None,
    progress: Progress | None = None,
) -> list[SliceInfo]:
    """Every combination on ``target``, in index order (``snncc slices``)."""
    key = _model_key(loaded)
    combos = combinations(loaded)
    out = []
    for i, gran in enumerate(combos):
        if progress is not None:
            progress(i, len(combos))
        out.append(slice_info(loaded, target, gran, budget, core_memory=core_memory,
                              conv_synapses=conv_synapses, key=key))  # fmt: skip
    return out


def _size_key(s: SliceInfo) -> tuple[int, int, tuple[int, int, int]]:
    return s.memory_bytes, s.params, s.granularity


def select_slice(
    loaded: Any,
    target: str,
    budget: Budget | None,
    *,
    explicit: tuple[Any, ...] | None = None,
    core_memory: int | None = None,
    conv_synapses: str | None = None,
    progress: Progress | None = None,
) -> SliceInfo:
    """The slice to compile: ``explicit`` if given (checked, fit or not: the compile's fit
    check reports it), else the largest that fits (module docstring). When none fits: exit 4
    naming the smallest slice's requirement and a budget that would admit it."""
    if explicit is not None:
        return slice_info(loaded, target, tuple(explicit), budget, core_memory=core_memory,
                          conv_synapses=conv_synapses)  # fmt: skip
    infos = enumerate_slices(loaded, target, budget, core_memory=core_memory,
                             conv_synapses=conv_synapses, progress=progress)  # fmt: skip
    fitting = [s for s in infos if s.fits is not False]
    if fitting:
        return max(fitting, key=_size_key)
    from snncc.resources.budget import suggest_budget

    assert budget is not None  # without a budget every slice fits
    small = min(infos, key=_size_key)
    need = f"{small.memory_bytes:,} bytes in {small.cores} cores"
    raise SnnccError(
        f"{loaded.arch}: no slice fits {target} under budget {budget.text}; the smallest, "
        f"{small.granularity} (widths {small.levels}), needs {need}",
        code="CO004",
        hint=f"a budget of --budget {suggest_budget(small.memory_bytes, small.cores, budget)} "
        "would fit the smallest slice",
        exit_code=4,
    )
