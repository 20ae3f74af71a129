"""Rich tables for ``snncc verify`` and ``snncc energy`` (rendering only; the data is elsewhere).

Kept apart from the analyses so that they import without rich; the CLI is the only caller.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from snncc.analysis.energy import EnergyReport
from snncc.passes.verify_spike_driven import VerifyResult


def si(x: float, unit: str) -> str:
    """``1.23 G`` style formatting (``unit`` appended); joules get m/µ/n/p prefixes."""
    if x == 0:
        return f"0 {unit}".strip()
    prefixes = [(1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")]
    for scale, p in prefixes:
        if abs(x) >= scale:
            return f"{x / scale:.4g} {p}{unit}".strip()
    return f"{x / 1e-12:.4g} p{unit}"


def render_verify(result: VerifyResult, model: str, console: Console) -> None:
    """The violations table, then encoding / readout / dynamic ops and the verdict."""
    if result.violations:
        table = Table(title=f"{model}: synaptic ops that are not spike-driven")
        for col in ("node", "op", "input", "source", "why"):
            table.add_column(col, overflow="fold")
        for v in result.violations:
            src = v.source.rsplit("/", 1)[-1]
            table.add_row(
                *(escape(c) for c in (v.node, v.op, v.input_kind, src, v.reason.split(":")[0]))
            )
        console.print(table)
        fixes: dict[str, int] = {}
        for v in result.violations:
            fixes[v.fix] = fixes.get(v.fix, 0) + 1
        for fix, n in fixes.items():
            console.print(f"fix ({n} op(s)): {escape(fix)}")
    console.print(f"encoding layer: {', '.join(result.encoding) or '-'}")
    console.print(f"readout head:   {', '.join(result.readout) or '-'}")
    console.print(f"dynamic-operand ops (spike products): {len(result.dynamic_ops)}")
    if result.spike_driven:
        console.print(f"[green]{model}: spike-driven[/green] (every synaptic op reads 0/1 spikes)")
    else:
        worst = f", largest bound count<={result.max_count}" if result.max_count else ""
        console.print(
            f"[yellow]warning[/yellow]: {model}: {len(result.violations)} synaptic op(s) are "
            f"not spike-driven{worst}"
        )


def render_energy(report: EnergyReport, console: Console) -> None:
    """Per-layer table, attention terms, totals and the energy models with their sources."""
    t = Table(title=f"{report.model}: per-layer SOPs per sample (T = {report.timesteps})")
    for col in ("layer", "op", "input", "FLOPs/step", "fr_in", "class", "SOPs"):
        t.add_column(col, justify="right" if col in ("FLOPs/step", "fr_in", "SOPs") else "left")
    for r in report.layers:
        fr = "-" if r.fr_in is None else f"{r.fr_in:.4f}"
        t.add_row(r.node, r.op, r.input_kind, si(r.flops, ""), fr, r.klass, si(r.sops, ""))
    for a in report.attention:
        frs = f"q{a.fr_q:.3f} k{a.fr_k:.3f} v{a.fr_v:.3f}"
        t.add_row(a.matmuls[1], "SSA", a.order, "-", frs, a.klass, si(a.sops, ""))
    console.print(t)
    tot = report.totals
    console.print(
        f"data: {escape(report.data)}; per sample: MAC {si(tot.macs, '')} "
        f"(host {si(tot.host_macs, '')}), "
        f"AC {si(tot.acs, '')}, synaptic events {si(tot.events, '')}, "
        f"neuron updates {si(tot.neuron_updates, '')}, spikes {si(tot.spikes, '')}"
    )
    e = Table(title="energy per sample (models, not measurements)", show_lines=True)
    for col in ("model", "energy", "terms", "source"):
        e.add_column(col, overflow="fold")
    for m in report.energy:
        e.add_row(
            *(
                escape(str(c))
                for c in (m["label"], si(m["joules"], "J"), m["terms"], m["provenance"])
            )
        )
    console.print(e)
    for note in report.notes:
        console.print(f"note: {escape(note)}")
