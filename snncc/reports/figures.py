"""The report's pictures as SVG text: memory per layer, the core map, SOPs per layer.

Why matplotlib's SVG backend with a fixed ``svg.hashsalt`` and ``metadata={"Date": None}``: the
HTML report embeds the SVG inline, and the artifact directory must be byte-identical for the same
inputs. Matplotlib otherwise stamps the date and salts element ids with random values. Fonts are
kept as text (``svg.fonttype = "none"``) so the pictures stay small and searchable.

The core map can have tens of thousands of cores (SpiNNaker's 256 neurons per core), so it is
drawn as one image (``imshow``: one pixel per core) rather than one rectangle per core.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: rcParams that make SVG output deterministic and compact.
SVG_RC: dict[str, Any] = {
    "svg.hashsalt": "snncc-report",
    "svg.fonttype": "none",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
#: At most this many bars are labelled; longer lists keep every bar but thin the tick labels.
MAX_LABELS = 60


def _pyplot() -> Any:
    """pyplot on the Agg backend (imported lazily: matplotlib is a compile-environment extra)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _to_svg(fig: Any) -> str:
    """The figure as SVG text without the XML prolog (ready to inline in HTML)."""
    plt = _pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _bars(names: Sequence[str], values: Sequence[float], xlabel: str, title: str) -> str:
    """A horizontal bar chart, one bar per layer, top to bottom in pipeline order."""
    import matplotlib

    plt = _pyplot()
    n = max(1, len(names))
    with matplotlib.rc_context(SVG_RC):
        fig, ax = plt.subplots(figsize=(7.0, min(2.0 + 0.16 * n, 24.0)))
        y = np.arange(len(names))
        ax.barh(y, list(values), color="#4C72B0")
        step = max(1, math.ceil(len(names) / MAX_LABELS))
        ax.set_yticks(y[::step], [names[i] for i in range(0, len(names), step)])
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        return _to_svg(fig)


def memory_per_layer(layers: Sequence[dict[str, Any]]) -> str:
    """Bytes per layer in KiB (``report["layers"]``)."""
    names = [str(r["name"]) for r in layers]
    kib = [float(r["memory_bytes"]) / 1024.0 for r in layers]
    return _bars(names, kib, "memory (KiB)", "Memory per layer")


def sops_per_layer(rows: Sequence[dict[str, Any]], what: str) -> str:
    """Synaptic operations per sample per layer (``report["sops"]["layers"]``)."""
    names = [str(r["name"]) for r in rows]
    return _bars(names, [float(r["sops"]) for r in rows], f"SOPs per sample ({what})", "SOPs")


#: Most pixels of the core-map picture: beyond it each pixel stands for several cores.
MAX_CORE_PIXELS = 250_000


def cores_per_pixel(core_map: Sequence[dict[str, Any]]) -> int:
    """How many cores one pixel of the core map shows (1 up to :data:`MAX_CORE_PIXELS` cores)."""
    n = sum(int(c.get("count", 1)) for c in core_map)
    return max(1, math.ceil(n / MAX_CORE_PIXELS))


def _core_grid(core_map: Sequence[dict[str, Any]], layers: list[str], capacity: int) -> np.ndarray:
    """RGBA image: one pixel per core, colour = layer, brightness = memory utilisation.

    Entries with ``count`` > 1 are runs of identical cores (the partitioner's compact form).
    Past :data:`MAX_CORE_PIXELS` cores a pixel shows the first of each group of
    :func:`cores_per_pixel` cores, so the picture's memory stays bounded (a model can need 10^8
    SpiNNaker cores).
    """
    import matplotlib

    counts = np.array([int(c.get("count", 1)) for c in core_map], dtype=np.int64)
    n = int(counts.sum())
    step = cores_per_pixel(core_map)
    pixels = math.ceil(n / step) if n else 0
    width = max(1, math.ceil(math.sqrt(pixels * 2)))
    height = max(1, math.ceil(pixels / width))
    img = np.ones((height * width, 4))
    cmap = matplotlib.colormaps["tab20"]
    index = {name: i for i, name in enumerate(layers)}
    rgb = np.array([cmap(index.get(str(c["layer"]), 0) % 20)[:3] for c in core_map]).reshape(-1, 3)
    util = np.array(
        [min(1.0, float(c.get("memory_bytes", 0)) / capacity) if capacity > 0 else 1.0
         for c in core_map]
    )  # fmt: skip
    shade = 1.0 - (1.0 - rgb) * (0.35 + 0.65 * util)[:, None]
    if pixels:
        first_core = np.arange(pixels, dtype=np.int64) * step
        run = np.searchsorted(np.cumsum(counts), first_core, side="right")
        img[:pixels, :3] = shade[run]
    return img.reshape(height, width, 4)


def core_map(core_map: Sequence[dict[str, Any]], layers: list[str], capacity: int) -> str:
    """The cores in order, coloured by layer; paler cores use less of their memory."""
    import matplotlib
    from matplotlib.patches import Patch

    plt = _pyplot()
    with matplotlib.rc_context(SVG_RC):
        fig, ax = plt.subplots(figsize=(7.0, 3.6))
        if core_map:
            ax.imshow(_core_grid(core_map, layers, capacity), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        n = sum(int(c.get("count", 1)) for c in core_map)
        step = cores_per_pixel(core_map)
        per = f"; 1 pixel = {step:,} cores" if step > 1 else ""
        ax.set_title(f"Core map: {n:,} cores (row-major; paler = less memory used{per})")
        cmap = matplotlib.colormaps["tab20"]
        shown = layers[:20]
        handles = [Patch(color=cmap(i % 20), label=name) for i, name in enumerate(shown)]
        if handles:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6)
        return _to_svg(fig)
