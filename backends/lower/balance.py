"""``balance_latency``: pipeline depths and delays so that merging paths arrive together.

On Lava every connection process adds one timestep (Dense sends the sum it computed on the
previous step, hardware-semantics §2.4) and ``DelayDense(d)`` adds ``1 + d``. The reference
interpreter has no latency, so a population fed along paths of different lengths (a residual:
``proj_lif`` reads the patch embedding directly and, three hops later, through attention) would
add currents of different reference steps. Balancing gives every population a *depth*: it
computes reference step ``t`` of a sample at Lava step ``t + depth + 1``. Host-fed populations
(and populations nothing feeds) have depth 0; a connection's arrival is ``max(depth of its
sources) + 1``; a population's depth is the latest arrival among its connections, and every
earlier connection waits the difference (``Operand.delay``). A multi-operand connection (a spike
product) also delays each operand to its latest one, so the product reads one reference step.

Samples run back to back, one every ``T`` Lava steps (``ProgramSpec.period``): each population
resets u and v at the first step of each sample (Lava ``LIFReset``, ``reset_offset = (depth + 1)
mod T``), and since depths grow by at least one per hop, whatever a population computes before
its first reset reaches every reader before that reader's own first reset. A run of ``B``
samples therefore takes ``B·T + depth`` steps, and the readout window of a population for
sample ``b`` is Lava steps ``b·T + depth + 1 … b·T + depth + T``.
"""

from __future__ import annotations

from snncc.backends.lava.constraints import LOIHI
from snncc.backends.lower.spec import ProgramSpec
from snncc.diagnostics import SnnccError

#: Largest delay one connection may add (Loihi 2 / DelayDense: 6 bits; netx clips at 62).
MAX_DELAY = LOIHI.max_delay


def balance(spec: ProgramSpec) -> ProgramSpec:
    """Set ``depth`` on every population and ``delay`` on every operand (in place).

    Requires: ``spec`` from ``lower_program`` (connections' sources precede their targets).
    Ensures:  for every connection ``c`` and operand ``o``: ``depth(o.source) + o.delay + 1 ==
              depth(c.target)``; every delay is in ``[0, MAX_DELAY]``, else ``SnnccError``
              ``LOW010`` naming the connection; ``spec.balanced`` is True.
    """
    depth: dict[str, int] = {}
    for p in spec.populations:
        into = spec.into(p.name)
        if not into:
            depth[p.name] = 0
            continue
        missing = [s for c in into for s in c.sources() if s not in depth]
        if missing:
            raise SnnccError(
                f"balance_latency: {p.name} reads {missing[0]} before it is computed (a cycle?)",
                code="LOW011",
                exit_code=70,
            )
        depth[p.name] = max(max(depth[s] for s in c.sources()) + 1 for c in into)
    for c in spec.connections:
        for o in c.operands:
            o.delay = depth[c.target] - depth[o.source] - 1
            if o.delay > MAX_DELAY:
                raise SnnccError(
                    f"balance_latency: {c.name} needs a delay of {o.delay} steps; one Loihi "
                    f"connection delays at most {MAX_DELAY}",
                    code="LOW010",
                    hint="relay populations for longer delays are not implemented yet",
                )
    for p in spec.populations:
        p.depth = depth[p.name]
    spec.balanced = True
    return spec
