"""Small graph-rewrite helpers shared by passes, built only on the Graph facade.

They exist so that every pass removes a node the same way: consumers and graph outputs are moved
to the node's driver first, then the node goes. Keeping this in one place keeps the "graph output
moved to another node" edge case handled once.
"""

from __future__ import annotations

from snncc.ir.graph import Graph


def sole_user(g: Graph, name: str) -> str | None:
    """The one consumer of ``name`` when it has exactly one and is not a graph output, else None.

    A value that anything else observes (a second consumer, the graph output) cannot be changed by
    a local rewrite without changing what that observer sees.
    """
    users = g.users(name)
    if len(users) != 1 or name in g.outputs:
        return None
    return users[0][0]


def bypass(g: Graph, name: str) -> bool:
    """Remove single-input node ``name``, wiring its consumers (and outputs) to its driver.

    Returns False, changing nothing, when the node has no single driver or when it and its driver
    are both graph outputs (the output list would name the driver twice).
    """
    drivers = g.inputs_of(name)
    if len(drivers) != 1:
        return False
    driver = drivers[0]
    if name in g.outputs and driver in g.outputs:
        return False
    g.replace_uses(name, driver)
    g.remove(name)
    return True
