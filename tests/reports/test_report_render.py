"""Report rendering from a hand-written report dict: Markdown, HTML and deterministic SVG."""

from __future__ import annotations

from typing import Any

from snncc.reports import figures as F
from snncc.reports.render import fmt_bytes, render_html, render_markdown


def _report(fits: bool = True) -> dict[str, Any]:
    layers = [
        {"name": "block.0.attn.q_lif", "cores": 2, "memory_bytes": 3000, "neurons": 9000,
         "synapses": 1000},
        {"name": "head<&>", "cores": 1, "memory_bytes": 1024, "neurons": 10, "synapses": 40},
    ]  # fmt: skip
    return {
        "model": {"ref": "m.pt"},
        "target": "loihi",
        "budget": {"text": "2MiB", "bytes": 2097152, "cores": None},
        "budget_bytes": 2097152,
        "slice": [4, 2, 4],
        "fits": fits,
        "cores": 3,
        "cores_lower_bound": 2,
        "core_utilisation": 2 / 3,
        "core_memory_bytes": 131072,
        "memory_bytes": 4024,
        "timesteps": 4,
        "spike_driven": False,
        "accuracy": {"float": 0.9, "quantized": 0.885, "per_layer_drift": {"l1": 0.25}},
        "layers": layers,
        "core_map": [
            {"core": 0, "layer": "block.0.attn.q_lif", "neurons": 4500, "memory_bytes": 1500},
            {"core": 1, "layer": "block.0.attn.q_lif", "neurons": 4500, "memory_bytes": 1500},
            {"core": 2, "layer": "head<&>", "neurons": 10, "memory_bytes": 1024},
        ],
        "verification": {
            "spike_driven": False,
            "violations": [{"node": "fc", "message": "Linear reads count<=2", "hint": "add LIF"}],
        },
        "passes": [{"name": "quantize", "changed": True, "decisions": ["exp -3 for fc"]}],
        "notes": ["a note"],
    }


def test_fmt_bytes() -> None:
    assert fmt_bytes(512) == "512 B"
    assert fmt_bytes(1536) == "1.5 KiB"
    assert fmt_bytes(3 * 2**20) == "3.0 MiB"
    assert fmt_bytes(None) == "-"


def test_markdown_has_summary_layers_accuracy_and_violations() -> None:
    md = render_markdown(_report())
    assert "| fits | yes |" in md
    assert "| block.0.attn.q_lif | 2 | 2.9 KiB | 9000 | 1000 |" in md
    assert "90.0% / 88.5%" in md
    assert "fc: Linear reads count<=2 (fix: add LIF)" in md
    assert "exp -3 for fc" in md and "(4, 2, 4)" in md
    assert "does not fit" in render_markdown(_report(fits=False))


def test_html_is_self_contained_and_escaped() -> None:
    figs = {"memory": "<svg>m</svg>", "core_map": "<svg>c</svg>"}
    page = render_html(_report(), figs)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<svg>m</svg>" in page and "<svg>c</svg>" in page
    assert "head&lt;&amp;&gt;" in page and "head<&>" not in page
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_figures_are_deterministic_svg() -> None:
    r = _report()
    names = [x["name"] for x in r["layers"]]
    for make in (
        lambda: F.memory_per_layer(r["layers"]),
        lambda: F.core_map(r["core_map"], names, r["core_memory_bytes"]),
        lambda: F.sops_per_layer([{"name": "fc", "sops": 10.0}], "bound"),
    ):
        a, b = make(), make()
        assert a == b and a.startswith("<svg") and a.rstrip().endswith("</svg>")
        assert "dc:date" not in a


def test_core_grid_colours_by_layer_and_pales_unused_memory() -> None:
    r = _report()
    names = [x["name"] for x in r["layers"]]
    img = F._core_grid(r["core_map"], names, 3000)
    flat = img.reshape(-1, 4)
    assert (flat[0, :3] == flat[1, :3]).all()  # same layer, same use: same colour
    assert not (flat[0, :3] == flat[2, :3]).all()  # another layer: another colour
    full = F._core_grid([{"layer": names[0], "memory_bytes": 3000}], names, 3000)[0, 0, :3]
    half = F._core_grid([{"layer": names[0], "memory_bytes": 1500}], names, 3000)[0, 0, :3]
    assert (half >= full).all() and (half > full).any()  # paler = closer to white
