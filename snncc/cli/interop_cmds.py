"""The ``snncc export`` and ``snncc convert`` subcommands (wiring and display; the formats live in
:mod:`snncc.interop`).

:mod:`snncc.cli.main` adds them with ``register_export(subparsers)`` and
``register_convert(subparsers)``; each sets ``func`` to a ``run_*(args) -> int`` returning the exit
code: 0 written, 2 bad input (unknown model, a build for another target, an output snncc may not
write), 3 a construct the format cannot express (every node listed: ``NIR010``/``NX010`` on export
and import, ``CV010`` for an ONNX node the converter cannot turn into spikes).

Why the output is checked before the work and written atomically: a conversion calibrates on data
and an export quantizes, and learning only afterwards that ``-o`` names the checkpoint itself or
an existing file would waste that work or, worse, overwrite the input. Both commands use the same
rules as ``compile`` (:func:`snncc.reports.artifacts.check_output_file`): an existing file is
replaced only with ``--force``, never an input of the command.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from snncc.cli import args as A
from snncc.diagnostics import SnnccError
from snncc.ir.graph import Graph

FORMATS = ("nir", "netx")


def seconds(text: str) -> float:
    """``--dt``: a positive, finite number of seconds (``1e-4``, ``0.001``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds like 1e-4, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


# -- export ------------------------------------------------------------------------------------
def register_export(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``snncc export MODEL_OR_BUILD --format nir|netx -o FILE [--force] [--dt S]``."""
    p = subparsers.add_parser(
        "export",
        help="write a model or a compiled build as NIR or lava-dl netx HDF5",
        description="Export MODEL (checkpoint, zoo name, .nir, converted model) or a compile "
        "output directory as NIR (standard nodes where the semantics match, snncc.* extension "
        "nodes elsewhere) or as a lava-dl netx HDF5 file (Loihi fixed point, sequential "
        "input/conv/flatten/dense graphs only). docs/interop.md.",
    )
    A.add_model_args(p)
    p.add_argument("--format", required=True, choices=FORMATS, help="output format")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.add_argument(
        "--dt",
        type=seconds,
        default=None,
        help="NIR: seconds per step written with the graph (default 1e-4, snnTorch's)",
    )
    p.set_defaults(func=run_export)
    return p


def _build_graph(ref: Path) -> tuple[Graph, str]:
    """The quantized graph of a ``compile`` output directory and its target."""
    import snncc
    from snncc.reports.artifacts import read_output_manifest

    manifest = read_output_manifest(ref)
    if manifest is None or not (ref / "ir").is_dir():
        raise SnnccError(
            f"{ref}: a directory that is not an snncc build (no manifest.json and ir/)",
            code="EX001",
            hint="pass a model file or name, or a directory written by `snncc compile`",
        )
    return snncc.load(ref / "ir"), str(manifest.get("target"))


def _model_graph(args: argparse.Namespace, *, quantize: bool) -> Graph:
    """Load, trace and run the front passes (and for netx ``quantize`` for Loihi)."""
    from snncc.loading import resolve_model, to_graph
    from snncc.passes.manager import PassContext, run_pipeline
    from snncc.passes.pipeline import FRONT_PIPELINE

    g = to_graph(resolve_model(args.model, **A.model_kwargs(args)))
    passes = list(FRONT_PIPELINE)
    if quantize:
        from snncc.passes.quantize import quantize as quantize_pass

        passes.append(quantize_pass)
    out, _ = run_pipeline(g, passes, PassContext(config={"target": "loihi"}))
    return out


def export_bytes(args: argparse.Namespace) -> tuple[bytes, str]:
    """The exported file's bytes and a one-line summary of what it holds."""
    ref = Path(args.model)
    if ref.is_dir():
        graph, target = _build_graph(ref)
        from snncc import targets

        if args.format not in targets.get(target).export_formats:
            raise SnnccError(
                f"{ref}: a build for {target}; netx is Lava's format (Loihi fixed point)",
                code="NX001",
                hint="compile with --target loihi, or export the model itself",
            )
    else:
        graph = _model_graph(args, quantize=args.format == "netx")
    if args.format == "netx":
        from snncc.interop.netx import netx_bytes

        data = netx_bytes(graph)
        return data, _netx_summary(data)
    from snncc.interop.nir_common import DEFAULT_DT, write_bytes
    from snncc.interop.nir_export import to_nir

    doc = to_nir(graph, dt=args.dt if args.dt is not None else DEFAULT_DT)
    ext = [n for n, v in doc.nodes.items() if isinstance(v, dict)]
    kinds = doc.metadata["snncc.extensions"] or "none"
    line = (
        f"{len(doc.nodes)} NIR nodes ({len(doc.nodes) - len(ext)} standard, {len(ext)} "
        f"snncc extension: {kinds}), dt = {doc.metadata['dt']:g} s"
    )
    return write_bytes(doc), line


def _netx_summary(data: bytes) -> str:
    import io

    import h5py

    with h5py.File(io.BytesIO(data), "r") as f:
        kinds = [f[f"layer/{i}/type"][0].decode() for i in range(len(f["layer"]))]
        about = json.loads(f["snncc/about"][()])
    note = " (dense layers written as whole-input convolutions)" if about["dense_as_conv"] else ""
    return f"{len(kinds)} netx layers: {', '.join(kinds)}{note}"


def run_export(args: argparse.Namespace) -> int:
    """Entry point of ``snncc export``; returns the exit code."""
    from snncc.reports.artifacts import atomic_write_file, check_output_file

    inputs = [Path(args.model)] if Path(args.model).exists() else []
    check_output_file(args.output, force=args.force, inputs=inputs)
    data, summary = export_bytes(args)
    atomic_write_file(args.output, data, force=args.force, inputs=inputs)
    print(f"wrote {args.output}: {summary}")
    return 0


# -- convert -----------------------------------------------------------------------------------
#: Calibration samples taken from the data (the train split of digits, the first rows of a file).
CALIBRATION_SAMPLES = 256
#: Samples on which ``convert`` checks its own output against the quantized ANN before writing.
SELF_CHECK_SAMPLES = 16


def register_convert(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``snncc convert ANN.onnx --timesteps T [--bits K] --calibrate DATA -o FILE``."""
    p = subparsers.add_parser(
        "convert",
        help="convert an ONNX ANN into an ExpG-IF spiking model (lossless to its K-bit version)",
        description="Read an ONNX ANN (Conv, Gemm/MatMul, Relu, Clip, BatchNormalization, Add, "
        "AveragePool, GlobalAveragePool, Flatten, Reshape), calibrate one power-of-two "
        "threshold per activation on data (digits: its train split; FILE.npz: array x), and "
        "write a spiking model with ExpG-IF neurons whose outputs equal the K-bit quantized "
        "ANN's exactly. docs/interop.md.",
    )
    p.add_argument("model", metavar="ANN.onnx", help="the ONNX file")
    p.add_argument("--timesteps", type=A.timesteps, required=True, metavar="T",
                   help="steps per sample: at least levels x bits + 1")  # fmt: skip
    p.add_argument("--bits", type=A.int_in(1, 16, "bits"), default=None, metavar="K",
                   help="bits per activation (default: the most that fit T)")  # fmt: skip
    p.add_argument("--calibrate", required=True, metavar="DATA",
                   help="digits (train split) or FILE.npz with an array x")  # fmt: skip
    p.add_argument("--samples", type=A.samples, default=CALIBRATION_SAMPLES,
                   help=f"calibration samples (default {CALIBRATION_SAMPLES})")  # fmt: skip
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="model file to write")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=run_convert)
    return p


def calibration_data(spec: str, shape: tuple[int, ...], n: int) -> tuple[Any, str]:
    """``n`` calibration samples ``[n, *shape]`` and where they came from (never test data)."""
    if spec == "digits":
        from snncc import data

        if len(shape) != 3 or shape[0] != 1 or shape[1] != shape[2]:
            raise SnnccError(
                f"digits are [1, s, s] images; the ANN takes {list(shape)}",
                code="CV003",
                hint="calibrate with a FILE.npz in the ANN's input layout",
            )
        x, _ = data.digits("train", size=shape[-1])
        return x[:n], f"digits train split ({min(n, len(x))} samples)"
    from snncc.data.files import read_npz

    x = read_npz(spec, want=shape, option="--calibrate", code="CV003", require_labels=False).x
    return x[:n], f"{spec} (first {min(n, len(x))} rows)"


def _self_check(ann: Any, graph: Graph, conv: Any, x: Any) -> None:
    """The converted SNN must reproduce the quantized ANN exactly; a mismatch is a bug."""
    import numpy as np

    from snncc.interop.ann2snn import ann_forward
    from snncc.reference import run

    x = np.asarray(x[:SELF_CHECK_SAMPLES], np.float64)
    want, _ = ann_forward(ann, x, thetas=conv.thetas, bits=conv.bits)
    got = run(graph, {graph.inputs[0]: x}).outputs[graph.outputs[0]]
    if not np.array_equal(want, got):
        raise SnnccError(
            f"internal: the converted SNN differs from the quantized ANN by up to "
            f"{float(np.max(np.abs(want - got))):.3g}",
            code="CV900",
            exit_code=70,
        )


def run_convert(args: argparse.Namespace) -> int:
    """Entry point of ``snncc convert``; returns the exit code."""
    from snncc.interop.ann2snn import convert
    from snncc.interop.onnx_read import read_onnx
    from snncc.loading.graph_model import save_graph_model
    from snncc.reports.artifacts import atomic_write_file, check_output_file, sha256_file

    inputs = [Path(p) for p in (args.model, args.calibrate) if Path(p).exists()]
    check_output_file(args.output, force=args.force, inputs=inputs)
    ann = read_onnx(args.model)
    x, desc = calibration_data(args.calibrate, ann.input_shape, args.samples)
    graph, conv = convert(ann, x, bits=args.bits, timesteps=args.timesteps)
    _self_check(ann, graph, conv, x)
    config = {
        "format": "onnx-ann2snn",
        "source": Path(args.model).name,
        "source_sha256": sha256_file(args.model),
        "bits": conv.bits,
        "thetas": dict(conv.thetas),
        "levels": dict(conv.levels),
        "min_timesteps": conv.min_timesteps,
        "calibration": desc,
    }
    data = save_graph_model(args.output, graph, arch=f"ExpG-IF SNN of {Path(args.model).name}",
                            config=config)  # fmt: skip
    atomic_write_file(args.output, data, force=args.force, inputs=inputs)
    n = len(conv.thetas)
    print(
        f"wrote {args.output}: {n} ExpG-IF layer(s) in {conv.out_level - 1} level(s), "
        f"{conv.bits} bits, T = {args.timesteps} (needs >= {conv.min_timesteps}); thresholds "
        f"calibrated on {desc}; equal to the {conv.bits}-bit quantized ANN on "
        f"{min(SELF_CHECK_SAMPLES, len(x))} of them"
    )
    return 0
