"""Render ``report.json`` as Markdown and as one self-contained HTML page.

Both renderings read only the report dictionary (never the graph), so they show exactly what the
JSON says. The HTML page inlines its SVG pictures and its CSS: it can be mailed or attached to a
CI run and opened anywhere, with no network access. Output is deterministic (no dates).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

#: Figures, in display order: (file stem, caption).
FIGURES = (
    ("memory", "Memory per layer"),
    ("core_map", "Core map"),
    ("sops", "Synaptic operations per layer"),
)


def fmt_bytes(n: int | float | None) -> str:
    """``1536`` -> ``1.5 KiB`` (binary units; the exact byte count is always in the JSON)."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - loop always returns


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def summary_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline facts as (label, value) pairs, shared by both renderings."""
    acc = r.get("accuracy")
    budget = r.get("budget") or {}
    rows = [
        ("model", str(r["model"].get("ref"))),
        ("target", r["target"]),
        ("budget", f"{budget.get('text', '-')} ({fmt_bytes(r.get('budget_bytes'))})"
         if r.get("budget_bytes") is not None else str(budget.get("text", "-"))),
        ("slice (feature, attention, mlp)", "-" if r["slice"] is None else str(tuple(r["slice"]))),
        ("fits", "yes" if r["fits"] else "NO"),
        ("cores", f"{r['cores']} (lower bound {r['cores_lower_bound']}, "
         f"utilisation {_pct(r.get('core_utilisation'))})"),
        ("chips", "-" if r.get("chips") is None else str(r["chips"])),
        ("cost model", str(r.get("cost_model") or "-")),
        ("memory", f"{fmt_bytes(r['memory_bytes'])} ({r['memory_bytes']} B)"),
        ("per-core memory", fmt_bytes(r.get("core_memory_bytes"))),
        ("timesteps", str(r["timesteps"])),
        ("spike-driven", "yes" if r["spike_driven"] else "no (see verification)"),
    ]  # fmt: skip
    if acc:
        rows.append(
            ("accuracy float / quantized", f"{_pct(acc['float'])} / {_pct(acc['quantized'])}")
        )
    m = r.get("mapping")
    if m:
        rows.append(
            ("mapping (" + str(m.get("source", "simulator")) + ")",
             f"{m['cores']} application cores on {m['chips']} chips, router entries up to "
             f"{m['router_entries_max']}, SDRAM per core up to "
             f"{fmt_bytes(m['sdram_bytes_per_core'])}"
             + ("" if m.get("agrees", True) else " — differs from the estimate (see layers)"))
        )  # fmt: skip
    return rows


def _tile(x: dict[str, Any]) -> str:
    t = x.get("tile")
    return "x".join(str(v) for v in t) if t else "-"


def layer_rows(r: dict[str, Any]) -> list[list[str]]:
    """One row per deployed layer: name, cores (and the layer's own lower bound), memory,
    neurons, synapses, the resource that binds its cores, and its tile (channels x rows x
    cols) when the layer is cut into convolution output tiles."""
    return [
        [str(x["name"]), _cores(x), fmt_bytes(x["memory_bytes"]), str(x["neurons"]),
         str(x["synapses"]), str(x.get("binding", "-")), _tile(x)]
        for x in r["layers"]
    ]  # fmt: skip


def _cores(x: dict[str, Any]) -> str:
    lb = x.get("cores_lower_bound")
    return f"{x['cores']}" if lb is None else f"{x['cores']} (≥{lb})"


LAYER_HEAD = ["layer", "cores (≥ bound)", "memory", "neurons", "synapses", "binds", "tile c×h×w"]


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    esc = [[c.replace("|", "\\|") for c in row] for row in rows]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return out + ["| " + " | ".join(row) + " |" for row in esc]


def _md_passes(r: dict[str, Any]) -> list[str]:
    lines = ["## Passes", "", "Wall-clock times are in `timings.json` (not deterministic).", ""]
    for p in r["passes"]:
        lines.append(f"- **{p['name']}** ({'changed' if p['changed'] else 'unchanged'})")
        lines.extend(f"  - {d}" for d in p["decisions"])
    return lines + [""]


def program_rows(r: dict[str, Any]) -> list[list[str]]:
    """The emitted program's facts as (what, value) rows; empty when none was emitted."""
    p = r.get("program")
    if not p:
        return []
    conns = ", ".join(f"{n} {k}" for k, n in sorted(p["connections"].items()))
    rows = [
        ["populations / neurons", f"{p['populations']} / {p['neurons']:,}"],
        ["connections", conns or "-"],
        ["processes", str(p["processes"])],
        ["pipeline depth", f"{p['pipeline_depth']} steps (max delay {p['max_delay']})"],
        ["run length", str(p["run_steps"])],
    ]
    rows += [[f"not neurocore-native: {x['connection']}", x["why"]]
             for x in p["not_neurocore_native"]]  # fmt: skip
    rows += [
        [f"simulated: {k}", why] for k, why in sorted(p["simulated_by_custom_process"].items())
    ]
    att = p.get("attention")
    if att:
        rows.append([f"spike products: {att['chosen']}", f"--attention {att['requested']}: "
                     f"{att['why']}"])  # fmt: skip
        for choice, c in sorted(att["costs"].items()):
            cost = (f"{c['cores']} cores, {c['memory_bytes']:,} B, {c['and_neurons']:,} AND "
                    f"neurons, fits: {'yes' if c['fits'] else 'no'}" if c.get("buildable")
                    else f"{c['and_neurons']:,} AND neurons: not built")  # fmt: skip
            rows.append([f"cost with {choice}", cost])
    return rows


def render_markdown(r: dict[str, Any]) -> str:
    """``report.md``: summary, pictures (``figures/*.svg``), layers, verification, passes."""
    lines = [f"# snncc compile report: {r['model'].get('ref')} → {r['target']}", ""]
    lines += _md_table(["", ""], summary_rows(r)) + [""]
    if not r["fits"]:
        lines += ["**The model does not fit the budget.**", ""]
    lines += ["## Pictures", ""]
    lines += [f"![{cap}](figures/{stem}.svg)" for stem, cap in FIGURES] + [""]
    lines += ["## Layers", ""] + _md_table(LAYER_HEAD, layer_rows(r)) + [""]
    if program_rows(r):
        lines += ["## Program", ""] + _md_table(["", ""], program_rows(r)) + [""]
    acc = r.get("accuracy")
    if acc and acc.get("per_layer_drift"):
        lines += ["## Spike-count drift per layer (quantized vs float)", ""]
        drift = sorted(acc["per_layer_drift"].items())
        lines += _md_table(["layer", "drift"], [[k, f"{v:.4g}"] for k, v in drift]) + [""]
    ver = r["verification"]
    lines += ["## Verification", "", f"spike-driven: **{ver['spike_driven']}**", ""]
    lines += [f"- {v.get('node')}: {v.get('message')} (fix: {v.get('hint')})"
              for v in ver["violations"]] + [""]  # fmt: skip
    lines += _md_passes(r)
    if r.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in r["notes"]] + [""]
    return "\n".join(lines)


CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px}
th{background:#f0f0f0;text-align:left}td.num{text-align:right}.bad{color:#b00;font-weight:bold}
figure{margin:1em 0}figcaption{font-weight:bold}svg{max-width:100%;height:auto}
"""


def _h_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _h_passes(r: dict[str, Any]) -> str:
    items = []
    for p in r["passes"]:
        dec = "".join(f"<li>{html.escape(d)}</li>" for d in p["decisions"])
        state = "changed" if p["changed"] else "unchanged"
        items.append(f"<li><b>{html.escape(p['name'])}</b> ({state})<ul>{dec}</ul></li>")
    return "<ul>" + "".join(items) + "</ul>"


def render_html(r: dict[str, Any], figures: dict[str, str]) -> str:
    """``report.html``: one page, CSS and SVG inline, no scripts, no external references."""
    title = f"snncc compile report: {r['model'].get('ref')} → {r['target']}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _h_table(["", ""], summary_rows(r)),
    ]
    if not r["fits"]:
        parts.append('<p class="bad">The model does not fit the budget.</p>')
    for stem, cap in FIGURES:
        if stem in figures:
            parts.append(f"<figure><figcaption>{cap}</figcaption>{figures[stem]}</figure>")
    parts += ["<h2>Layers</h2>", _h_table(LAYER_HEAD, layer_rows(r))]
    if program_rows(r):
        parts += ["<h2>Program</h2>", _h_table(["", ""], program_rows(r))]
    ver = r["verification"]
    parts.append(f"<h2>Verification</h2><p>spike-driven: <b>{ver['spike_driven']}</b></p>")
    viol = [[str(v.get("node")), str(v.get("message")), str(v.get("hint"))]
            for v in ver["violations"]]  # fmt: skip
    if viol:
        parts.append(_h_table(["node", "finding", "fix"], viol))
    parts += ["<h2>Passes</h2>", "<p>Wall-clock times are in <code>timings.json</code>.</p>"]
    parts.append(_h_passes(r))
    if r.get("notes"):
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in r["notes"]]
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
