"""Analyses of a typed spike graph: SOP counts and energy estimates (``snncc energy``).

- :mod:`snncc.analysis.sops`: ANN-equivalent FLOPs per layer and the SSA attention term;
- :mod:`snncc.analysis.stats`: firing statistics from the reference interpreter;
- :mod:`snncc.analysis.energy`: MAC/AC classification, totals and energy models with sources;

The spike-driven verifier itself is a pass (:mod:`snncc.passes.verify_spike_driven`); the
``verify`` and ``energy`` subcommands live in :mod:`snncc.cli.analysis_cmds`. Everything here
imports with numpy and networkx only.
"""

from __future__ import annotations

from snncc.analysis.energy import MODELS, EnergyReport, analyze, estimate, prepare
from snncc.analysis.sops import attention_blocks, costed_layers, layer_flops

__all__ = [
    "MODELS",
    "EnergyReport",
    "analyze",
    "attention_blocks",
    "costed_layers",
    "estimate",
    "layer_flops",
    "prepare",
]
