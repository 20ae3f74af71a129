"""``snncc.trace``: PyTorch module → spike-graph IR, via ``torch.export`` with concrete shapes.

Why ``torch.export`` and not ``torch.fx.symbolic_trace``: real spiking-transformer code reads
shapes (``T, B, C, H, W = x.shape``) and computes with them (``int(H / 2)``), which symbolic
tracing cannot do. Exporting with a concrete example input runs that code with real numbers, and
neurons stay single nodes because their forward is swapped for a custom op while exporting (see
:mod:`snncc.frontend.neurons`). Each exported node's ``nn_module_stack`` gives the IR node name
(the module path) and its ``stack_trace`` the user's ``file:line``.

The batch size of the example is replaced by a small one distinct from ``timesteps`` so that
time and batch axes can never be confused when reshapes are translated (see
:mod:`snncc.frontend.values`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import fx, nn

from snncc.diagnostics import Diagnostic, Severity, SnnccError
from snncc.frontend.handlers import HANDLERS, HINTS, Unsupported
from snncc.frontend.neurons import neuron_op, neurons_as_ops, single_step_neurons
from snncc.frontend.values import Const, Roles, Value
from snncc.ir import ops as O
from snncc.ir.graph import Graph
from snncc.ir.types import Kind, TensorType

_TORCH_DIR = os.path.dirname(torch.__file__)
_FRONTEND_DIR = os.path.dirname(__file__)
#: Exported nodes that carry no data (shape assertions and the like).
_IGNORED = {"_assert_tensor_metadata", "sym_size", "_assert_scalar", "sym_constrain_range_for_size"}


def _location(node: fx.Node) -> str | None:
    """The deepest ``file:line`` of the user's code in the node's stack trace."""
    trace = node.meta.get("stack_trace") or ""
    best = None
    for line in trace.splitlines():
        line = line.strip()
        if not line.startswith('File "'):
            continue
        path = line[6 : line.index('"', 6)]
        if path.startswith(_TORCH_DIR) or path.startswith(_FRONTEND_DIR):
            continue
        lineno = line.split(", line ")[1].split(",")[0] if ", line " in line else "?"
        best = f"{path}:{lineno}"
    return best


def _module_path(node: fx.Node) -> tuple[str, bool]:
    """(innermost module path, whether that module is a library layer or neuron)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", False
    path, cls = list(stack.values())[-1]
    cls_name = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
    is_neuron = node.target is torch.ops.snncc.neuron.default
    library = cls_name.startswith("torch.nn.modules") or is_neuron
    return str(path), library


class Translator:
    """Walks the exported graph in order and builds the IR (state for the handlers)."""

    def __init__(self, ep: Any, roles: Roles, neurons: dict[int, nn.Module], name: str) -> None:
        self.ep = ep
        self.roles = roles
        self.neurons = neurons
        self.graph = Graph(name)
        self.env: dict[fx.Node, Any] = {}
        self.diagnostics: list[Diagnostic] = []
        self._node: fx.Node | None = None

    # -- helpers used by handlers ---------------------------------------------------------------
    def val(self, arg: Any) -> Any:
        """The translated value of an fx argument (Value, Const, tuple or Python scalar)."""
        if isinstance(arg, fx.Node):
            return self.env[arg]
        return arg

    def neuron_op(self, index: int) -> O.Op:
        """The IR op of neuron ``index`` (see frontend/neurons.py)."""
        path, module = self.neurons[index]
        op = module if isinstance(module, (O.Op, Diagnostic)) else neuron_op(module, path)
        if isinstance(op, Diagnostic):
            raise Unsupported(op.message, op.hint)
        return op

    def emit(
        self,
        op: O.Op,
        inputs: list[Value],
        node: fx.Node,
        roles: tuple[str, ...],
        *,
        static: bool | None = None,
        kind: Kind = Kind.CURRENT,
        shape: tuple[int, ...] | None = None,
    ) -> Value:
        """Add an IR node for ``op`` fed by ``inputs``; its name is the module path."""
        path, library = _module_path(node)
        short = node.target.__name__.split(".")[0] if hasattr(node.target, "__name__") else "op"
        if short == "neuron":
            short = "lif"
        base = path if (library and path) else (f"{path}.{short}" if path else short)
        name = self.graph.unique_name(base)
        full = shape if shape is not None else tuple(int(s) for s in node.meta["val"].shape)
        static = any(v.static for v in inputs) if static is None else static
        ttype = TensorType(full[len(roles) :], kind, None, temporal=not static)
        self.graph.add(name, op, ttype, src=path or name, loc=_location(node))
        for port, v in zip(op.in_ports, inputs, strict=True):
            self.graph.connect(v.name, name, port)
        return Value(name, roles, full, static)

    # -- driver ---------------------------------------------------------------------------------
    def constant(self, node: fx.Node) -> Const | None:
        sig = self.ep.graph_signature
        target = (
            sig.inputs_to_parameters.get(node.name)
            or sig.inputs_to_buffers.get(node.name)
            or sig.inputs_to_lifted_tensor_constants.get(node.name)
        )
        if target is None:
            return None
        tensor = self.ep.state_dict.get(target)
        if tensor is None:
            tensor = self.ep.constants[target]
        return Const(tensor, target)

    def diag(self, node: fx.Node, message: str, hint: str | None, code: str = "FE001") -> None:
        path, _ = _module_path(node)
        self.diagnostics.append(
            Diagnostic(
                code,
                Severity.ERROR,
                message,
                node=path or node.name,
                src=path or None,
                loc=_location(node),
                hint=hint,
            )
        )

    def run(self, input_roles: tuple[str, ...], input_kind: Kind, static_input: bool) -> Graph:
        g = self.graph
        for node in self.ep.graph.nodes:
            if node.op == "placeholder":
                const = self.constant(node)
                if const is not None:
                    self.env[node] = const
                    continue
                shape = tuple(int(s) for s in node.meta["val"].shape)
                data = shape[len(input_roles) :]
                name = g.unique_name("input" if not g.inputs else f"input{len(g.inputs)}")
                g.add(
                    name,
                    O.Input(shape=data, kind_in=input_kind, temporal=not static_input),
                    TensorType(data, input_kind),
                )
                g.inputs.append(name)
                self.env[node] = Value(name, input_roles, shape)
            elif node.op == "call_function":
                self._call(node)
            elif node.op == "output":
                outs = node.args[0]
                outs = outs if isinstance(outs, (tuple, list)) else [outs]
                for o in outs:
                    v = self.env.get(o)
                    if isinstance(v, Value) and v.name not in g.outputs:
                        g.outputs.append(v.name)
        return g

    def _call(self, node: fx.Node) -> None:
        target = node.target
        packet = getattr(target, "overloadpacket", target)
        short = getattr(packet, "__name__", str(target))
        if short in _IGNORED:
            return
        handler = HANDLERS.get(packet) or HANDLERS.get(target)
        if handler is None:  # reported even downstream of another failure: list them all
            op_name = str(target).replace("aten.", "").split(".")[0]
            self.diag(node, f"unsupported op {op_name}", HINTS.get(short))
            return
        if any(a not in self.env for a in node.all_input_nodes):
            return  # depends on a node already reported
        try:
            self.env[node] = handler(self, node)
        except Unsupported as e:
            self.diag(node, e.message, e.hint)


def _trace_batch(timesteps: int) -> int:
    return 3 if timesteps == 2 else 2


#: How each ``time_axis`` value lays out the leading axes of the traced input.
INPUT_ROLES: dict[int | None, tuple[str, ...]] = {None: ("B",), 0: ("T", "B"), 1: ("B", "T")}


def resolve_timesteps(module: nn.Module, timesteps: int | None) -> int:
    """``timesteps`` or ``module.T``; FE010 when neither says how many steps the model runs."""
    T = int(timesteps if timesteps is not None else getattr(module, "T", 0))
    if T < 1:
        raise SnnccError("timesteps unknown", code="FE010", hint="pass timesteps=T to trace()")
    return T


def prepare_input(
    example_input: torch.Tensor, timesteps: int, time_axis: int | None
) -> tuple[torch.Tensor, tuple[str, ...], int]:
    """The tracing input (batch replaced by ``B`` != T), the axis roles and ``B``.

    Why a batch of 2 or 3 and not the user's: a batch equal to T would make the time and batch
    axes indistinguishable when reshapes are translated (:mod:`snncc.frontend.values`).
    """
    input_roles = INPUT_ROLES.get(time_axis)
    if input_roles is None:
        raise SnnccError(f"time_axis must be None, 0 or 1, got {time_axis}", code="FE012")
    batch_axis = 1 if time_axis == 0 else 0
    B = _trace_batch(timesteps)
    x = example_input.detach().select(batch_axis, 0).unsqueeze(batch_axis)
    reps = [1] * x.dim()
    reps[batch_axis] = B
    x = x.repeat(*reps)
    if time_axis is not None and x.shape[time_axis] != timesteps:
        raise SnnccError(
            f"input has {x.shape[time_axis]} steps on axis {time_axis} but timesteps={timesteps}",
            code="FE011",
            hint="pass matching timesteps",
            exit_code=2,
        )
    return x, input_roles, B


def export_with_neurons(module: nn.Module, x: torch.Tensor) -> tuple[Any, dict[int, Any]]:
    """``torch.export`` with every neuron as one ``snncc::neuron`` node.

    Returns the exported program and ``{index: (module path, neuron module)}`` for the neuron
    nodes' ``index`` argument. The module's train/eval mode is restored afterwards.
    """
    single = single_step_neurons(module)
    if single:
        raise SnnccError.from_diagnostics(
            f"{len(single)} single-step neuron(s) in {type(module).__name__}",
            single,
            code="FE004",
            exit_code=3,
        )
    was_training = module.training
    module.eval()
    try:
        with neurons_as_ops(module) as paths:
            modules = dict(module.named_modules())
            neurons = {i: (p, modules[p]) for i, p in paths.items()}
            try:
                ep = torch.export.export(module, (x,), strict=False)
            except Exception as e:  # noqa: BLE001 - any export failure is an untraceable model
                raise SnnccError(
                    f"torch.export could not trace the model: {type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''}",
                    code="FE003",
                    exit_code=3,
                    hint="check that the example input fits the model and forward has no "
                    "data-dependent Python control flow",
                ) from e
    finally:
        module.train(was_training)
    return ep, neurons


def translate(
    ep: Any,
    neurons: dict[int, Any],
    *,
    timesteps: int,
    batch: int,
    time_axis: int | None,
    input_shape: list[int],
    input_kind: str | Kind = Kind.CURRENT,
    name: str = "model",
) -> Graph:
    """Translate an exported program (neurons as ``snncc::neuron`` nodes) into a spike graph.

    ``neurons`` maps each neuron node's index to ``(path, module)`` or ``(path, op)`` (an IR op
    already extracted, as stored in a ``.pt2`` written by :func:`snncc.export_program`).
    Raises :class:`SnnccError` (exit code 3) listing every unsupported op.
    """
    tr = Translator(ep, Roles(timesteps, batch), neurons, name)
    g = tr.run(INPUT_ROLES[time_axis], Kind(input_kind), static_input=time_axis is None)
    if tr.diagnostics:
        raise SnnccError.from_diagnostics(
            f"{len(tr.diagnostics)} unsupported op(s) in {g.name}",
            tr.diagnostics,
            code="FE001",
            exit_code=3,
        )
    g.meta = {"timesteps": timesteps, "time_axis": time_axis, "input_shape": list(input_shape)}
    return g


def trace(
    module: nn.Module,
    example_input: torch.Tensor,
    *,
    timesteps: int | None = None,
    time_axis: int | None = None,
    input_kind: str | Kind = Kind.CURRENT,
    name: str | None = None,
) -> Graph:
    """Trace ``module`` on ``example_input`` (batch axis included) into a spike graph.

    ``timesteps`` defaults to ``module.T``. ``time_axis`` is None for a static sample the model
    repeats over time itself (``[B, C, H, W]``), 1 for ``[B, T, ...]`` and 0 for ``[T, B, ...]``.
    Raises :class:`SnnccError` (exit code 3) listing every unsupported op with its module path and
    source location. The module is left unchanged (its train/eval mode is restored).
    """
    T = resolve_timesteps(module, timesteps)
    x, _, B = prepare_input(example_input, T, time_axis)
    ep, neurons = export_with_neurons(module, x)
    in_shape = list(example_input.shape)
    del in_shape[1 if time_axis == 0 else 0]
    return translate(
        ep,
        neurons,
        timesteps=T,
        batch=B,
        time_axis=time_axis,
        input_shape=in_shape,
        input_kind=input_kind,
        name=name or type(module).__name__,
    )
