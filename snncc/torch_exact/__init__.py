"""Target-exact PyTorch: the deployed integer program as a ``torch.nn.Module``.

``snncc.reference`` is the numpy oracle of a quantized graph; this package is the same program in
torch, vectorised over batch and time, on CPU or CUDA, with spikes equal to the reference's
``loihi`` / ``spinnaker`` mode neuron by neuron and step by step (tests/torch_exact)::

    from snncc.torch_exact import from_build, from_model

    prog = from_build("out/digits")                    # a compiled build directory
    prog = from_model("spikingformer-tiny", "loihi")   # or compile in-process
    res = prog(prog.feeds(x))                          # x: [B, *input_shape], model layout
    res.spikes["block.0.mlp.mlp1_lif"]                 # uint8 [T, B, *shape]
    res.spike_counts(), res.outputs

Integers are held exactly: neuron state in int64 (Loihi's 24-bit u/v with wrap and saturation,
sPyNNaker's s16.15 words), synaptic sums in float64, where every value is an integer whose
partial sums are checked to stay below 2^53 on every call, so every order of summation gives the
same integer. Why float64 for the sums: torch has no integer convolution and no integer matmul
on CUDA, and float64 integer arithmetic below 2^53 is exact.

Structure: :mod:`~snncc.torch_exact.program` walks the graph; the per-op torch kernels form
tables mirroring the reference's (:mod:`~snncc.torch_exact.float_ops`,
:mod:`~snncc.torch_exact.loihi_ops`, :mod:`~snncc.torch_exact.spinnaker_ops`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snncc.ir.graph import Graph
from snncc.torch_exact.program import MODES, ExactProgram, ExactResult, mode_of

__all__ = [
    "MODES",
    "ExactProgram",
    "ExactResult",
    "from_build",
    "from_graph",
    "from_model",
    "mode_of",
    "quantized_graph",
]


def from_graph(graph: Graph, mode: str | None = None) -> ExactProgram:
    """The exact program of ``graph`` (mode: its quantize target's reference mode by default)."""
    return ExactProgram(graph, mode)


def _build_graph(path: Path) -> tuple[Graph, str]:
    """The verified IR of a build and its target; every IR file's SHA-256 is checked."""
    from snncc import targets
    from snncc.runtime.build import open_build, read_manifest

    manifest = read_manifest(path)
    target = targets.get(str(manifest.get("target")))
    if target.runner is not None:
        return open_build(path).graph, target.reference_mode
    # A target without a runner yet (open_build refuses it): check the IR files ourselves.
    from snncc.diagnostics import SnnccError
    from snncc.ir.serialize import load
    from snncc.reports.artifacts import sha256_file

    for rel, want in sorted(manifest.get("artifacts", {}).items()):
        if rel.startswith("ir/") and sha256_file(path / rel) != want:
            raise SnnccError(
                f"{path / rel}: does not match the manifest (truncated or edited after compile)",
                code="RUN003",
                hint="compile the model again (with --force to replace the build)",
                exit_code=2,
            )
    return load(path / "ir"), target.reference_mode


def from_build(path: str | Path) -> ExactProgram:
    """The exact program of a build written by ``snncc compile -o DIR`` (any target)."""
    graph, mode = _build_graph(Path(path))
    return ExactProgram(graph, mode)


def quantized_graph(model: str, target: str, **load: Any) -> Graph:
    """``model`` (zoo name or checkpoint) traced, front passes, quantized for ``target``.

    ``load`` goes to :func:`snncc.loading.resolve_model` (``trust_pickle``, ``input_shape``,
    ``timesteps``). An elastic model is taken whole (``snncc compile`` would pick a slice).
    """
    from snncc.loading import resolve_model, to_graph
    from snncc.passes.manager import PassContext, run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE
    from snncc.passes.quantize import quantize

    g, _ = run_pipeline(to_graph(resolve_model(model, **load)), FRONT_PIPELINE)
    q, _ = run_pipeline(g, [quantize], PassContext(config={"target": target}))
    return q


def from_model(model: str, target: str, **load: Any) -> ExactProgram:
    """Compile ``model`` for ``target`` in-process and return its exact program."""
    return ExactProgram(quantized_graph(model, target, **load))
