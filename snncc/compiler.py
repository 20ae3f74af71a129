"""``compile_model``: model + target + budget -> a quantized, partitioned, reported artifact DIR.

The steps, in order (each is a stage of the progress display):

1. resolve the model (checkpoint or zoo name, ``snncc.loading``);
2. for an elastic model, choose the slice (the largest that fits, or ``--slice``) and export it;
3. trace it to the IR;
4. run ``FRONT_PIPELINE`` (which ends with ``verify_spike_driven``), ``quantize`` and
   ``partition`` in one :func:`~snncc.passes.manager.run_pipeline` call, so every pass has a
   timed :class:`~snncc.passes.manager.PassRecord`;
5. stop with exit code 4 when the partition does not fit the budget;
6. optionally measure float vs quantized accuracy (``--eval``);
7. count synaptic operations per layer;
8. write the artifact directory atomically (:mod:`snncc.reports.artifacts`).

Why the checks come before any writing: a failed compile must leave no directory behind and must
not touch an existing one. Why ``timings.json`` is separate: wall time is the one
non-deterministic fact; every other file is byte-identical for the same inputs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snncc import targets
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext, PassFn, run_pipeline
from snncc.reports import facts as F
from snncc.reports.artifacts import check_output_dir
from snncc.reports.measure import calibration_feeds, eval_data, measure_sops
from snncc.reports.output import write_artifacts
from snncc.reports.report import build_report, timings_json

Progress = Callable[[str], None]


@dataclass
class CompileResult:
    """What :func:`compile_model` produced; ``out_dir`` holds the same data as files."""

    out_dir: Path
    report: dict[str, Any]
    manifest: dict[str, Any]
    graph: Graph
    plan: Any
    slice: tuple[Any, ...] | None
    timings: dict[str, Any] = field(default_factory=dict)


def _bad(message: str, hint: str | None = None, code: str = "CO010") -> SnnccError:
    return SnnccError(message, code=code, hint=hint, exit_code=2)


def fits_budget(plan: Any, budget: Any) -> bool:
    """The partitioner's verdict: does ``plan`` fit ``budget`` (bytes or cores)?"""
    from snncc.resources.budget import fits

    return bool(fits(plan, budget))


def slice_granularity(choice: Any) -> tuple[Any, ...]:
    """The ``(feature, attention, mlp)`` tuple of a :class:`snncc.resources.slices.SliceChoice`."""
    return tuple(choice.granularity)


def parse_slice(text: str | tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    """``"4,2,1"`` -> ``(4, 2, 1)`` (ints, or floats for fractional widths); None stays None."""
    if text is None or isinstance(text, tuple):
        return text
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) if "." in p else int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise _bad(f"bad --slice {text!r}", hint="write it as feature,attention,mlp, e.g. 4,2,4")
    return values


def _observed(fn: PassFn, progress: Progress) -> PassFn:
    """``fn`` reporting its start to ``progress``; keeps ``__name__`` (the record's name)."""

    def run(g: Graph, ctx: PassContext) -> Graph:
        progress(f"pass {fn.__name__}")
        return fn(g, ctx)

    run.__name__, run.__doc__ = fn.__name__, fn.__doc__
    return run


def _passes() -> list[PassFn]:
    from snncc.passes.pipeline import COMPILE_PIPELINE

    return list(COMPILE_PIPELINE)


class _Stages:
    """Wall time per compile stage, and the progress callback called at each stage's start."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress or (lambda _s: None)
        self.seconds: dict[str, float] = {}
        self._name: str | None = None
        self._t0 = 0.0

    def start(self, name: str) -> None:
        self.stop()
        self._name, self._t0 = name, time.perf_counter()
        self.progress(name)

    def stop(self) -> None:
        if self._name is not None:
            self.seconds[self._name] = time.perf_counter() - self._t0
            self._name = None


def _resolve(
    ref: str, target: str, budget: Any, slice_: Any, load: dict[str, Any], core_memory: int | None,
    conv_synapses: str, st: _Stages,
):  # fmt: skip
    """Load the model, pick and export the slice of an elastic one; (loaded, granularity).

    ``load`` holds :func:`~snncc.loading.resolve_model`'s options (``trust_pickle``,
    ``input_shape``, ``timesteps``).
    """
    from snncc.loading import resolve_model

    st.start("resolve model")
    loaded = resolve_model(ref, **load)
    explicit = parse_slice(slice_)
    if not hasattr(loaded.module, "granularities"):
        if explicit is not None:
            raise _bad(f"--slice given but {ref} is not an elastic model", hint="drop --slice")
        return loaded, None
    from snncc.models.elastic import export_slice
    from snncc.resources.slices import select_slice

    st.start("select slice")
    choice = select_slice(loaded, target, budget, explicit=explicit, core_memory=core_memory,
                          conv_synapses=conv_synapses)  # fmt: skip
    gran = slice_granularity(choice)
    feature, attention, mlp = gran
    module = export_slice(loaded.module, feature=feature, attention=attention, mlp=mlp)
    return dataclasses.replace(loaded, module=module), gran


def _pipeline(g: Graph, cfg: dict[str, Any], st: _Stages) -> tuple[Graph, PassContext, Any]:
    """Front passes + quantize + partition in one run; returns (graph, ctx, plan)."""
    passes = [_observed(p, st.start) for p in _passes()]
    out, ctx = run_pipeline(g, passes, PassContext(config=cfg))
    st.stop()
    plan = ctx.config.get("partition_plan")
    if plan is None:
        raise SnnccError("partition left no plan in ctx.config", code="CO020", exit_code=70)
    return out, ctx, plan


def compile_model(
    ref: str,
    *,
    target: str,
    budget: Any,
    out_dir: str | Path,
    force: bool = False,
    slice: str | tuple[Any, ...] | None = None,  # noqa: A002 - the CLI option's name
    eval: str | None = None,  # noqa: A002 - the CLI option's name
    core_memory: int | None = None,
    conv_synapses: str | None = None,
    attention: str = "auto",
    trust_pickle: bool = False,
    input_shape: tuple[int, ...] | None = None,
    timesteps: int | None = None,
    progress: Progress | None = None,
    virtual_board: bool | None = None,
) -> CompileResult:
    """Compile ``ref`` for ``target`` under ``budget`` into ``out_dir`` (see module docstring).

    Raises :class:`SnnccError`: exit 2 bad input (unknown target, bad budget, an output DIR
    refused by :func:`~snncc.reports.artifacts.check_output_dir`, an OS error while writing),
    3 untraceable model, 4 does not fit. On any error ``out_dir`` is
    untouched and no temporary directory remains. ``virtual_board``: map the program with the
    target's own tools (SpiNNaker: sPyNNaker on a virtual board, :func:`_map_program`); None
    means yes unless ``SNNCC_VIRTUAL_BOARD=0``. ``attention``: how Loihi runs spike products
    (``auto``, ``and``, ``process``; :mod:`snncc.backends.lower.choice`).
    """
    from snncc.resources.budget import parse_budget

    if target not in targets.NAMES:
        raise _bad(f"unknown target {target!r}", hint=f"use one of: {', '.join(targets.NAMES)}")
    out_dir = Path(out_dir)
    input_paths = _input_paths(ref, eval)
    check_output_dir(out_dir, force=force, inputs=input_paths)  # before the minute of work
    budget_obj = parse_budget(budget) if isinstance(budget, str) else budget
    if getattr(budget_obj, "boards", None) is not None and "boards" not in (
        targets.get(target).budget_units
    ):
        raise SnnccError(
            f"bad --budget {budget_obj.text!r}: boards are SpiNN-5 boards (48 SpiNNaker chips)",
            code="BU001",
            hint="use --target spinnaker, or give the Loihi budget in chips, cores or bytes",
            exit_code=2,
        )
    st = _Stages(progress)
    from snncc.resources.core_fit import conv_synapses_for, target_model

    conv_synapses = conv_synapses_for(target, conv_synapses)
    target_model(target, core_memory, conv_synapses)  # refuses bad options before any work
    check_attention(target, attention)
    load = {"trust_pickle": trust_pickle, "input_shape": input_shape, "timesteps": timesteps}
    loaded, gran = _resolve(ref, target, budget_obj, slice, load, core_memory, conv_synapses, st)
    st.start("trace")
    from snncc.loading import to_graph

    traced = to_graph(loaded)
    cfg = {"target": target, "budget": budget_obj, "core_memory": core_memory,
           "conv_synapses": conv_synapses, "attention": attention}  # fmt: skip
    data = None
    if eval is not None:
        st.start("load eval data")
        data = eval_data(eval, loaded, traced)
        cfg["calibration"] = calibration_feeds(eval, loaded, traced)
    graph, ctx, plan = _pipeline(traced, cfg, st)
    spec = ctx.config.get("program_spec")
    if spec is not None and hasattr(spec, "apply_partition"):
        spec.apply_partition(plan)  # SpiNNaker: the partition's neurons per core
    if not fits_budget(plan, budget_obj):
        raise F.no_fit_error(ref, target, plan, budget_obj, gran)
    what = f"{ref}" + (f" at slice {gran}" if gran is not None else "")
    mapping, map_note = _map_program(
        target, spec, plan, budget_obj, out_dir, st, virtual_board, what
    )
    facts = F.facts(ref, loaded, target, budget_obj, gran, plan, ctx, core_memory)
    facts.mapping = mapping
    if map_note:
        facts.notes.append(map_note)
    facts.notes.append(F.conv_note(target, conv_synapses))
    facts.program = F.program_section(target, spec, facts.notes)
    if data is not None:
        st.start("evaluate accuracy")
        facts.accuracy = F.accuracy(data, traced, graph, target)
        if eval not in ("digits", "gestures"):
            facts.notes.append(f"quantize was calibrated on the first rows of {eval}.")
    st.start("count SOPs")
    facts.sops = measure_sops(traced, data[0] if data is not None else None)
    st.start("write artifacts")
    report = build_report(facts)
    timings = timings_json(ctx.records, dict(st.seconds))
    inputs = F.manifest_inputs(ref, eval, loaded)
    manifest = write_artifacts(out_dir, force, graph, report, timings, inputs,
                               input_paths=input_paths, program=spec)  # fmt: skip
    st.stop()
    timings["stages"] = dict(st.seconds)
    timings["total_seconds"] = sum(st.seconds.values())
    return CompileResult(out_dir, report, manifest, graph, plan, gran, timings)


def check_attention(target: str, attention: str) -> None:
    """Refuse a bad ``--attention`` before any work (``LOW032``, exit 2)."""
    from snncc.backends.lower.choice import ATTENTION_CHOICES

    if attention not in ATTENTION_CHOICES:
        raise SnnccError(
            f"bad --attention {attention!r}",
            code="LOW032",
            hint=f"use one of: {', '.join(ATTENTION_CHOICES)}",
            exit_code=2,
        )
    if attention == "process" and not targets.get(target).custom_processes:
        raise SnnccError(
            "--attention process on spinnaker: PyNN has no dynamic synapses, so SpiNNaker "
            "always expands spike products into AND neurons",
            code="LOW032",
            hint="drop --attention (or use auto or and) for spinnaker",
            exit_code=2,
        )


def _map_program(
    target: str, spec: Any, plan: Any, budget: Any, out_dir: Path, st: _Stages,
    enabled: bool | None, what: str,
) -> tuple[dict[str, Any] | None, str | None]:  # fmt: skip
    """The target's own mapping of the emitted program (``targets``: ``mapper``), its report
    files attached to the program for the emitter; ``(section, note)``.

    Why at compile: the partitioner's plan is an estimate; the vendor's placer is the truth
    the budget is finally held against (the mapper raises ``CO004``, exit 4, when its mapping
    exceeds the budget). A failure of the vendor's tools is an ``RT002`` error with its log
    saved next to the build; a missing runtime environment only skips it (note).
    """
    import os

    mapper = targets.get(target).mapper
    if enabled is None:
        enabled = os.environ.get("SNNCC_VIRTUAL_BOARD", "1") != "0"
    if spec is None or mapper is None or not enabled:
        return None, None
    st.start("map on a virtual board")
    log = out_dir.parent / f"{out_dir.name}.mapping.log"
    section, files, note = targets.get(target).load("mapper")(spec, plan, budget, log, what)
    spec.attachments = files
    return section, note


def _input_paths(ref: str, eval_spec: str | None) -> list[Path]:
    """The paths the compile reads (a checkpoint, an ``--eval`` file), which no output may hold.

    A zoo name or ``digits`` that is not also an existing path is not a file to protect.
    """
    return [Path(p) for p in (ref, eval_spec) if p is not None and Path(p).exists()]
