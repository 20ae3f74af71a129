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

One connection delays at most :data:`MAX_DELAY` steps (a 6-bit field). A longer wait goes
through a *relay chain* (:func:`add_relays`): relay populations (OR neurons with one unit input,
role ``relay``: a spike in is a spike out, one hop later), each reached by a connection delayed
up to ``MAX_DELAY``, shared by every reader of the same source at the same depth. Only 1-bit
spikes relay this way; a programmable neuron's graded payload would need a graded relay
(``LOW010``).

Samples run back to back, one every ``T`` Lava steps (``ProgramSpec.period``): each population
resets u and v at the first step of each sample (Lava ``LIFReset``, ``reset_offset = (depth + 1)
mod T``), and since depths grow by at least one per hop, whatever a population computes before
its first reset reaches every reader before that reader's own first reset. A run of ``B``
samples therefore takes ``B·T + depth`` steps, and the readout window of a population for
sample ``b`` is Lava steps ``b·T + depth + 1 … b·T + depth + T``.
"""

from __future__ import annotations

import numpy as np

from snncc.backends.lava.constraints import LOIHI
from snncc.backends.lower.spec import Connection, Operand, Population, ProgramSpec
from snncc.backends.lower.structure import identity_index, narrow
from snncc.diagnostics import SnnccError

#: Largest delay one connection may add (Loihi 2 / DelayDense: 6 bits; netx clips at 62).
MAX_DELAY = LOIHI.max_delay
#: Largest relay population fed by a Dense identity (else a unit depthwise conv).
RELAY_DENSE_MAX = 1024
#: The relay neuron: delta current, nothing kept, fires on any input (the OR neuron).
RELAY_NEURON = {"du": LOIHI.decay_unity - 1, "dv": LOIHI.decay_unity - 1, "vth": 0}


def _depths(spec: ProgramSpec) -> dict[str, int]:
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
    return depth


def _relay_connection(source: Population, relay: str) -> Connection:
    """Unit one-to-one synapses from ``source`` into relay population ``relay``."""
    n = source.size
    ident = narrow(identity_index((n,)))
    if n <= RELAY_DENSE_MAX:
        params = {
            "weights": narrow(2 * np.eye(n, dtype=np.int64)),
            "weight_exp": -1,
            "sign_mode": "mixed",
            "num_message_bits": 0,
        }
        operand = Operand(source.name, ident)
        return Connection(f"{source.name}->{relay}", relay, relay, "dense", [operand], params)
    params = {
        "kernel": np.ones((n, 1, 1, 1), np.int16),
        "input_shape": (1, 1, n),
        "stride": (1, 1),
        "padding": (0, 0),
        "dilation": (1, 1),
        "groups": n,
        "weight_exp": 0,
    }
    operand = Operand(source.name, ident.reshape(n, 1, 1))
    return Connection(f"{source.name}->{relay}", relay, relay, "conv", [operand], params, ident)


def add_relays(spec: ProgramSpec, depth: dict[str, int]) -> None:
    """Reroute every operand waiting more than :data:`MAX_DELAY` steps through relays (in place).

    Ensures: relay ``j`` of source ``s`` (``"<s>.relay<j>"``) has depth ``depth(s) + j·(MAX_DELAY
    + 1)``; it is inserted after its source; the operand reads the last relay before its target.
    """
    made: dict[tuple[str, int], str] = {}
    order = [p.name for p in spec.populations]
    for c in list(spec.connections):
        for o in c.operands:
            wait = depth[c.target] - depth[o.source] - 1
            if wait <= MAX_DELAY:
                continue
            source = spec.population(o.source)
            if source.graded:
                raise SnnccError(
                    f"balance_latency: {c.name} needs a delay of {wait} steps from {o.source}, "
                    f"whose graded payload a 1-bit relay neuron cannot carry (one connection "
                    f"delays at most {MAX_DELAY})",
                    code="LOW010",
                    hint="graded relays are not implemented",
                )
            hops = -(-(wait - MAX_DELAY) // (MAX_DELAY + 1))  # relays needed
            prev = source
            for j in range(1, hops + 1):
                key = (source.name, j)
                if key not in made:
                    name = f"{source.name}.relay{j}"
                    bias = np.zeros(source.size, np.int16)
                    pop = Population(name, (source.size,), bias_mant=bias, bias_exp=0,
                                     role="relay", **RELAY_NEURON)  # fmt: skip
                    spec.populations.insert(order.index(prev.name) + 1, pop)
                    order.insert(order.index(prev.name) + 1, name)
                    spec.connections.append(_relay_connection(prev, name))
                    depth[name] = depth[source.name] + j * (MAX_DELAY + 1)
                    made[key] = name
                prev = spec.population(made[key])
            o.source = prev.name
    position = {name: i for i, name in enumerate(order)}
    spec.connections.sort(key=lambda c: position[c.target])


def balance(spec: ProgramSpec) -> ProgramSpec:
    """Set ``depth`` on every population and ``delay`` on every operand (in place).

    Requires: ``spec`` from ``lower_program`` (connections' sources precede their targets).
    Ensures:  for every connection ``c`` and operand ``o``: ``depth(o.source) + o.delay + 1 ==
              depth(c.target)``; every delay is in ``[0, MAX_DELAY]`` (relay chains where a
              wait is longer; ``SnnccError`` ``LOW010`` for a graded source);
              ``spec.balanced`` is True.
    """
    depth = _depths(spec)
    add_relays(spec, depth)
    for c in spec.connections:
        for o in c.operands:
            o.delay = depth[c.target] - depth[o.source] - 1
            if not 0 <= o.delay <= MAX_DELAY:  # add_relays guarantees it
                raise SnnccError(
                    f"balance_latency: {c.name} got delay {o.delay}", code="LOW011", exit_code=70
                )
    for p in spec.populations:
        p.depth = depth[p.name]
    spec.balanced = True
    return spec
