"""Graph capture with torch.export: any nn.Module whose exported graph is a chain of supported ops.

``capture_chain`` exports the model on an example batch and walks the ATen graph, so it does not
matter how the user wrote the network (nn.Sequential, torch.relu in forward, nested modules). It
returns the same network as a flat nn.Sequential of a few canonical layers the quantizer knows:

  nn.Linear     aten.linear (a BatchNorm1d right after it is folded into its weights and bias)
  Clamp         relu, relu6, hardtanh: fused into the preceding layer's clamp by the quantizer
  Elementwise   any other elementwise activation (sigmoid, tanh, leaky_relu, elu, gelu, silu,
                hardswish, hardsigmoid, softplus, mish, ...): a 256-entry int8 table on the target

Dropped, and said so: dropout and clone (inference), flatten/view/reshape of a 2-D batch, and a
final softmax/log_softmax (arg-max is unchanged). Anything else, or a graph that is not a chain
(a skip connection), is refused with one line naming the op and the user's source line.
"""

from __future__ import annotations

import logging
import operator
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from qmcu.errors import QmcuError

logger = logging.getLogger(__name__)

aten = torch.ops.aten

# Elementwise activations by ATen op: (table name, float function given the op's extra arguments).
_ELEMENTWISE: dict[Any, tuple[str, Callable[..., Callable[[torch.Tensor], torch.Tensor]]]] = {
    aten.sigmoid.default: ("sigmoid", lambda: torch.sigmoid),
    aten.tanh.default: ("tanh", lambda: torch.tanh),
    aten.leaky_relu.default: ("leaky_relu", lambda slope=0.01: lambda x: torch.nn.functional.leaky_relu(x, slope)),
    aten.elu.default: ("elu", lambda alpha=1.0, *_: lambda x: torch.nn.functional.elu(x, alpha)),
    aten.gelu.default: ("gelu", lambda approximate="none": lambda x: torch.nn.functional.gelu(x, approximate=approximate)),
    aten.silu.default: ("silu", lambda: torch.nn.functional.silu),
    aten.hardswish.default: ("hardswish", lambda: torch.nn.functional.hardswish),
    aten.hardsigmoid.default: ("hardsigmoid", lambda: torch.nn.functional.hardsigmoid),
    aten.softplus.default: ("softplus", lambda beta=1.0, threshold=20.0: lambda x: torch.nn.functional.softplus(
        x, beta, threshold)),
    aten.mish.default: ("mish", lambda: torch.nn.functional.mish),
    aten.selu.default: ("selu", lambda: torch.nn.functional.selu),
    aten.celu.default: ("celu", lambda alpha=1.0: lambda x: torch.nn.functional.celu(x, alpha)),
}
_CLAMPS = {aten.relu.default: lambda: (0.0, None), aten.hardtanh.default: lambda lo=-1.0, hi=1.0: (float(lo), float(hi))}
_DROPPED = {aten.dropout.default, aten.clone.default, aten.flatten.using_ints, aten.view.default,
            aten.reshape.default, aten.alias.default, aten.contiguous.default, aten.detach.default,
            aten.feature_dropout.default, aten.alpha_dropout.default}
_FINAL = {aten.softmax.int, aten.log_softmax.int, aten._softmax.default, aten._log_softmax.default}
_BATCH_NORM = {aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default}
SUPPORTED_OPS = ("Linear, BatchNorm1d after Linear, ReLU, ReLU6, Hardtanh, Sigmoid, Tanh, LeakyReLU, ELU, GELU, SiLU, "
                 "Hardswish, Hardsigmoid, Softplus, Mish, SELU, CELU, Dropout, Identity, Flatten, "
                 "a final Softmax/LogSoftmax")


class Clamp(nn.Module):
    """min(max(x, lo), hi): ReLU (0, None), ReLU6 (0, 6), Hardtanh (lo, hi)."""

    def __init__(self, lo: float | None, hi: float | None, kind: str) -> None:
        super().__init__()
        self.lo, self.hi, self.kind = lo, hi, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, self.lo, self.hi)


class Elementwise(nn.Module):
    """An elementwise activation the target evaluates as a 256-entry int8 table."""

    def __init__(self, function: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.function, self.fn = function, fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


@dataclass
class Captured:
    chain: nn.Sequential
    dropped: list[str] = field(default_factory=list)  # what was dropped, for the report
    final: str | None = None                           # "softmax" / "log_softmax" dropped at the end


def _source(node: torch.fx.Node) -> str:
    """The user's source line of a node (the last frame of its stack trace that is not torch's own)."""
    trace = str(node.meta.get("stack_trace") or "")
    frames = re.findall(r'File "([^"]+)", line (\d+), in \w+\n\s*(.*)', trace)
    user = [f for f in frames if "/torch/" not in f[0]]
    stack = node.meta.get("nn_module_stack") or {}
    module = list(stack.values())[-1] if stack else None
    where = f" (module {module[0] or 'root'}: {str(module[1]).rsplit('.', 1)[-1]})" if module else ""
    if not user:
        return f"{where.strip(' ()') or 'source line unknown'}"
    path, line, code = user[-1]
    return f"{path}:{line}: {code.strip()}"


def _refuse(node: torch.fx.Node, what: str) -> QmcuError:
    return QmcuError(f"{what} at {_source(node)}", f"qmcu supports a chain of: {SUPPORTED_OPS}")


def _op_name(node: torch.fx.Node) -> str:
    return str(getattr(node.target, "__name__", node.target)).split(".")[0]


def _layer_name(node: torch.fx.Node, used: set[str]) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    path = list(stack.values())[-1][0] if stack else ""
    base = re.sub(r"\W", "_", path).strip("_") or node.name
    if base[0].isdigit():
        base = f"layer{base}"
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def _fold_batch_norm(lin: nn.Linear, mean: torch.Tensor, var: torch.Tensor, gamma: torch.Tensor | None,
                     beta: torch.Tensor | None, eps: float) -> nn.Linear:
    """y = gamma * (W x + b - mean) / sqrt(var + eps) + beta as one Linear (computed in float64)."""
    w = lin.weight.detach().double()
    b = lin.bias.detach().double() if lin.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    g = gamma.detach().double() if gamma is not None else torch.ones_like(b)
    s = g / torch.sqrt(var.detach().double() + eps)
    folded = nn.Linear(lin.in_features, lin.out_features, bias=True)
    with torch.no_grad():
        folded.weight.copy_((w * s[:, None]).float())
        folded.bias.copy_(((b - mean.detach().double()) * s + (beta.detach().double() if beta is not None else 0.0)).float())
    return folded


def export(model: nn.Module | torch.export.ExportedProgram, example: torch.Tensor) -> torch.export.ExportedProgram:
    """torch.export of the model in eval mode on the example batch (a saved .pt2 is already captured)."""
    if isinstance(model, torch.export.ExportedProgram):
        return model
    try:
        return torch.export.export(model.eval(), (example,))
    except Exception as err:  # export's own errors name the construct it cannot trace
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise QmcuError(f"torch.export cannot capture {type(model).__name__}: {first}", "write forward() as plain "
                        "tensor operations on its input (no data-dependent control flow)") from err


def parameters_of(program: torch.export.ExportedProgram) -> tuple[dict[str, str], Callable[[object], torch.Tensor | None]]:
    """The program's parameter and buffer inputs by placeholder name, and a lookup from a node to its tensor."""
    params = {**dict(program.named_parameters()), **dict(program.named_buffers())}
    spec = {s.arg.name: s.target for s in program.graph_signature.input_specs if s.target is not None}

    def tensor(arg: object) -> torch.Tensor | None:
        if arg is None:
            return None
        assert isinstance(arg, torch.fx.Node)
        return params[spec[arg.name]]

    return spec, tensor


def capture_chain(model: nn.Module | torch.export.ExportedProgram, example: torch.Tensor) -> Captured:
    """Export `model` on `example` (N x features float32) and return its canonical chain."""
    program = export(model, example)
    spec, tensor = parameters_of(program)

    graph = program.graph_module.graph
    nodes = [n for n in graph.nodes if n.op == "call_function"]
    user_input = [n for n in graph.nodes if n.op == "placeholder" and n.name not in spec]
    if len(user_input) != 1:
        raise QmcuError(f"{type(model).__name__}.forward takes {len(user_input)} tensors", "qmcu models take one input")
    current: torch.fx.Node = user_input[0]
    layers: list[nn.Module] = []
    names: list[str] = []
    used: set[str] = set()
    captured = Captured(nn.Sequential())
    for k, node in enumerate(nodes):
        if node.target is operator.getitem:
            continue  # the first output of a decomposed batch norm
        known = (node.target == aten.linear.default or node.target in _BATCH_NORM or node.target in _CLAMPS
                 or node.target in _ELEMENTWISE or node.target in _DROPPED or node.target in _FINAL)
        data_args = [a for a in node.args if isinstance(a, torch.fx.Node) and a.name not in spec]
        if not known and len(data_args) < 2:
            raise _refuse(node, f"unsupported op {_op_name(node)}")
        if data_args != [current]:
            raise _refuse(node, f"the graph is not a chain: {_op_name(node)} reads "
                          f"{', '.join(a.name for a in data_args) or 'no earlier result'} (a skip connection or a "
                          "second input)")
        if len(current.users) > 1 and current.op != "placeholder":
            raise _refuse(node, f"the graph is not a chain: {current.name} feeds {len(current.users)} ops")
        extra = [a for a in node.args[1:] if not isinstance(a, torch.fx.Node)]
        target = node.target
        if target == aten.linear.default:
            w, b = tensor(node.args[1]), tensor(node.args[2] if len(node.args) > 2 else None)
            assert w is not None
            lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
            with torch.no_grad():
                lin.weight.copy_(w)
                if b is not None:
                    lin.bias.copy_(b)
            layers.append(lin)
            names.append(_layer_name(node, used))
        elif target in _BATCH_NORM:
            if not layers or not isinstance(layers[-1], nn.Linear):
                raise _refuse(node, "a BatchNorm that does not follow a Linear cannot be folded")
            if target == aten.batch_norm.default:
                gamma, beta, mean, var, eps = (tensor(node.args[1]), tensor(node.args[2]), tensor(node.args[3]),
                                               tensor(node.args[4]), float(node.args[7]))
            else:
                gamma, beta, mean, var, eps = (tensor(node.args[1]), tensor(node.args[2]), tensor(node.args[3]),
                                               tensor(node.args[4]), float(node.args[6]))
            assert mean is not None and var is not None
            previous = layers[-1]
            assert isinstance(previous, nn.Linear)
            layers[-1] = _fold_batch_norm(previous, mean, var, gamma, beta, eps)
            captured.dropped.append(f"{_layer_name(node, used)} (BatchNorm folded into {names[-1]})")
        elif target in _CLAMPS:
            lo, hi = _CLAMPS[target](*extra)
            kind = "relu" if target == aten.relu.default else ("relu6" if (lo, hi) == (0.0, 6.0) else "hardtanh")
            layers.append(Clamp(lo, hi, kind))
            names.append(_layer_name(node, used))
        elif target in _ELEMENTWISE:
            function, make = _ELEMENTWISE[target]
            layers.append(Elementwise(function, make(*extra, *node.kwargs.values())))
            names.append(_layer_name(node, used))
        elif target in _DROPPED:
            if target in (aten.view.default, aten.reshape.default, aten.flatten.using_ints):
                shape = node.meta.get("val")
                if shape is None or len(shape.shape) != 2:
                    raise _refuse(node, f"{_op_name(node)} to a shape other than (batch, features)")
            captured.dropped.append(f"{_op_name(node)} ({_source(node)})")
        elif target in _FINAL and all(n.target is operator.getitem for n in nodes[k + 1:]):
            captured.final = _op_name(node).lstrip("_")
            captured.dropped.append(f"final {captured.final} (arg-max unchanged)")
        else:
            raise _refuse(node, f"unsupported op {_op_name(node)}")
        current = node
    if not any(isinstance(m, nn.Linear) for m in layers):
        raise QmcuError(f"{type(model).__name__} has no Linear layer", f"qmcu supports a chain of: {SUPPORTED_OPS}")
    captured.chain = nn.Sequential(OrderedDict(zip(names, layers, strict=True)))
    return captured
