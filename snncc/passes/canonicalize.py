"""``canonicalize``: remove structure that computes nothing, so later passes see one form.

Tracing leaves no-op structure behind (``x.reshape(x.shape)``, ``flatten`` then ``reshape``, a
``* 1.0`` from a disabled scale, a ``Delay(0)``), and nodes whose value no output reads. Pattern
passes such as ``fold_bn`` look for adjacent ops; removing the noise first means they match.

The rules are tables (code-style §2.6): ``NOOP_RULES`` say when an op is the identity,
``MERGE_RULES`` say how an op absorbs an identical-class op that feeds only it.
"""

from __future__ import annotations

from collections.abc import Callable

from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.passes.manager import PassContext
from snncc.passes.rewrite import bypass, sole_user


def _in_shape(g: Graph, name: str) -> tuple[int, ...]:
    return g.type(g.inputs_of(name)[0]).shape


NOOP_RULES: dict[type[O.Op], Callable[[Graph, str], bool]] = {
    O.Reshape: lambda g, n: g.op(n).shape == _in_shape(g, n),  # reshape to own shape = identity
    O.Permute: lambda g, n: g.op(n).dims == tuple(range(len(g.op(n).dims))),  # (0, 1, …) = id
    O.Scale: lambda g, n: g.op(n).factor == 1.0,  # 1 * x = x
    O.Delay: lambda g, n: g.op(n).steps == 0,  # x[t - 0] = x[t]
}


def _compose_permutes(first: O.Permute, second: O.Permute) -> O.Permute:
    # second's output axis i is first's output axis second[i], which is input axis first[second[i]]
    return O.Permute(tuple(first.dims[j] for j in second.dims))


MERGE_RULES: dict[type[O.Op], Callable[[O.Op, O.Op], O.Op]] = {
    O.Reshape: lambda first, second: second,  # reshape(reshape(x, a), b) = reshape(x, b)
    O.Permute: _compose_permutes,  # permute(permute(x, p), q) = permute(x, p∘q)
}


def _merge_into_driver(g: Graph, name: str, ctx: PassContext) -> str:
    """Merge ``name`` into its driver when both have the same mergeable class; return the survivor.

    The driver survives (it keeps its name and provenance) and takes the composed op and the
    output type of ``name``; this needs the driver to feed only ``name``.
    """
    rule = MERGE_RULES.get(type(g.op(name)))
    if rule is None:
        return name
    driver = g.inputs_of(name)[0]
    if type(g.op(driver)) is not type(g.op(name)) or sole_user(g, driver) != name:
        return name
    g.set_op(driver, rule(g.op(driver), g.op(name)))
    g.set_type(driver, g.type(name))
    bypass(g, name)
    ctx.count(f"merged_{g.op(driver).kind}")
    ctx.decide(f"merged {g.op(driver).kind} {name} into {driver}")
    return driver


def _remove_noops(g: Graph, ctx: PassContext) -> None:
    for name in g.topo_order():
        if name not in g:
            continue
        name = _merge_into_driver(g, name, ctx)
        rule = NOOP_RULES.get(type(g.op(name)))
        if rule is not None and rule(g, name):
            kind = g.op(name).kind
            if bypass(g, name):
                ctx.count(f"removed_noop_{kind}")
                ctx.decide(f"removed no-op {kind} {name}")


def _remove_dead(g: Graph, ctx: PassContext) -> None:
    live: set[str] = set()
    stack = [o for o in g.outputs if o in g]
    while stack:
        n = stack.pop()
        if n not in live:
            live.add(n)
            stack.extend(g.inputs_of(n))
    for name in reversed(g.topo_order()):
        if name in live:
            continue
        if isinstance(g.op(name), O.Input):
            ctx.decide(f"kept unused graph input {name} (part of the model's signature)")
            continue
        kind = g.op(name).kind
        g.remove(name)
        ctx.count("removed_dead")
        ctx.decide(f"removed dead {kind} {name}")


def canonicalize(g: Graph, ctx: PassContext) -> Graph:
    """Remove no-op structure, merge chains of reshapes/permutes and delete dead nodes.

    Requires: lint-clean graph with types on every node (shapes are read from types).
    Ensures:  no identity Reshape/Permute, Scale(1.0) or Delay(0); no Reshape (Permute) feeding
              only another Reshape (Permute); every non-Input node reaches a graph output; the
              outputs compute the same values (kinds may need ``infer_types`` again).
    """
    _remove_noops(g, ctx)
    _remove_dead(g, ctx)
    return g
