"""One description per hardware target, looked up by every stage instead of branching on a name.

A target is everything snncc knows about one chip: its constraints (with their sources), how
to quantize for it, its memory model, the reference-interpreter mode that is bit-exact with it,
how to lower and emit a program, and how to run one. Stages ask :func:`get` for the target and
take what they need from it, so adding a target (or a simulator of one) is one entry here plus
its ``backends/<name>/`` package, not another ``if target == ...`` in every module.

Every part is named by an import path (``"module:attribute"``) and imported on first use: the
snncc core must import with numpy alone (torch and the SDKs are optional per environment), and a
compile for SpiNNaker must not import Lava code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from snncc.diagnostics import SnnccError


@dataclass(frozen=True)
class Target:
    """What a stage needs to know about one target (see the module docstring).

    ``emitter``, ``runner`` and ``run_module`` are None for a target without a backend that
    runs programs yet; ``simulators`` names what ``snncc run`` can execute the program on (the
    first is the default). ``program`` is the class that reads a build's ``spec.json``;
    ``encode`` and ``readout`` are the host's part of a run (inputs to the machine, outputs
    from its spikes).
    """

    name: str
    title: str
    constraints: str
    memory_model: str
    quantizer: str
    reference_mode: str
    lowering: str | None = None
    emitter: str | None = None
    runner: str | None = None
    simulators: tuple[str, ...] = ()
    program: str = "snncc.backends.lower.spec:ProgramSpec"
    encode: str = "snncc.backends.lower.host:encode"
    readout: str = "snncc.backends.lower.host:readout"
    #: ``for_report(spec, plan, budget, log_path) -> (section, files, note)``: the program mapped
    #: by the vendor's own tools (SpiNNaker: sPyNNaker on a virtual board); None: not mapped.
    mapper: str | None = None
    #: Per-core cost models by ``--conv-synapses`` costing (the first is the default).
    cost_models: tuple[tuple[str, str], ...] = ()
    #: Runs exact fixed-point processes beside the neurocores (spike products, a max of
    #: currents): Lava ProcessModels, Loihi 2's embedded cores. Without them spike products are
    #: AND-expanded and a max of currents is refused.
    custom_processes: bool = False
    #: Neurons are programmable and spikes graded (Loihi 2 microcode, integer payloads): ExpG-IF
    #: runs as a programmable neuron and a too-wide fan-in is summed in graded partial-sum relays.
    programmable_neurons: bool = False
    #: Units ``--budget`` accepts besides bytes and cores.
    budget_units: tuple[str, ...] = ("chips",)
    #: ``snncc export --format`` values a build of this target can be written as.
    export_formats: tuple[str, ...] = ("nir",)

    def cost_model(self, conv_synapses: str | None) -> Any:
        """The per-core cost model class for a ``--conv-synapses`` costing (None: the default).

        A costing the target does not have is bad input (``MM003``).
        """
        models = dict(self.cost_models)
        key = conv_synapses if conv_synapses is not None else self.cost_models[0][0]
        if key not in models:
            raise SnnccError(
                f"--conv-synapses {key} is not a costing of {self.name}: {self.title} has "
                f"{', '.join(models)}",
                code="MM003",
                hint=f"drop --conv-synapses for --target {self.name}",
                exit_code=2,
            )
        module, _, attr = models[key].partition(":")
        return getattr(importlib.import_module(module), attr)

    def load(self, part: str) -> Any:
        """Import and return the object a part names (``"pkg.module:attr"``)."""
        ref = getattr(self, part)
        if ref is None:
            having = ", ".join(t.name for t in TARGETS.values() if getattr(t, part))
            raise SnnccError(
                f"target {self.name!r} has no {part.replace('_', ' ')} yet",
                code="TG002",
                hint=f"targets with one: {having or 'none yet'}",
            )
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)


TARGETS: dict[str, Target] = {
    "loihi": Target(
        name="loihi",
        title="Intel Loihi 2 (Lava 0.10 fixed_pt simulation)",
        constraints="snncc.backends.lava.constraints:LOIHI",
        memory_model="snncc.backends.lava.memory:LoihiMemoryModel",
        quantizer="snncc.quant.loihi:quantize_stream",
        reference_mode="loihi",
        lowering="snncc.backends.lower.lower:lower_program",
        emitter="snncc.backends.lava.emit:emit",
        runner="snncc.backends.lava.runner:run_on_lava",
        simulators=("lava", "lava-fused"),
        cost_models=(
            ("shared", "snncc.backends.lava.calibrated:LoihiCalibratedModel"),
            ("per-connection", "snncc.backends.lava.memory:LoihiMemoryModel"),
        ),
        custom_processes=True,
        programmable_neurons=True,
        export_formats=("nir", "netx"),
    ),
    "spinnaker": Target(
        name="spinnaker",
        title="SpiNNaker 1 (sPyNNaker 7.4 / PyNN)",
        constraints="snncc.backends.spinnaker.constraints:SPINNAKER",
        memory_model="snncc.backends.spinnaker.memory:SpiNNakerMemoryModel",
        quantizer="snncc.quant.spinnaker:quantize_stream",
        reference_mode="spinnaker",
        lowering="snncc.backends.spinnaker.lower:lower_program",
        emitter="snncc.backends.spinnaker.emit:emit",
        runner="snncc.backends.spinnaker.runner:run_on_pynn",
        simulators=("brian2", "spinnaker"),
        program="snncc.backends.spinnaker.spec:SpiNNakerProgram",
        encode="snncc.backends.spinnaker.host:encode",
        readout="snncc.backends.spinnaker.host:readout",
        mapper="snncc.backends.spinnaker.mapping:for_report",
        cost_models=(("per-connection", "snncc.backends.spinnaker.memory:SpiNNakerMemoryModel"),),
        budget_units=("chips", "boards"),
    ),
}
NAMES: tuple[str, ...] = tuple(TARGETS)


def get(name: str) -> Target:
    """The target called ``name``; an unknown name is bad input (exit 2) listing the known."""
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        raise SnnccError(
            f"unknown target {name!r}", code="TG001", hint=f"use one of: {', '.join(NAMES)}"
        ) from None
