"""Graph capture for convolutional networks and any DAG of supported ops (skip connections included).

``capture_graph`` exports the model with torch.export and returns its ops as a list of GraphNode in
execution order, each naming the nodes it reads. Every tensor is kept 4-D (N, C, H, W): a 1-D network's
(N, C, L) is (N, C, 1, L), so Conv1d/pool1d are their 2-D forms with a height of 1. Folded and fused here:

  BatchNorm after a conv or linear    folded into its weights and bias (float64)
  ReLU / ReLU6 / Hardtanh             fused into the clamp of the conv, linear or add it follows, when it
                                      is that op's only reader; otherwise an exact int8 table
  Dropout, Identity, clone, ...       dropped; Flatten (or a view to (N, -1)) feeds the next Linear, whose
                                      weight columns are permuted so it reads channels-last (NHWC) data

The float evaluation of the returned graph (run_graph) is checked against the model itself on the
calibration set, so what is quantized is what the user wrote.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from qmcu.errors import QmcuError
from qmcu.model.capture import (
    _BATCH_NORM,
    _CLAMPS,
    _DROPPED,
    _ELEMENTWISE,
    _FINAL,
    Clamp,
    Elementwise,
    _layer_name,
    _op_name,
    _source,
    export,
    parameters_of,
)

logger = logging.getLogger(__name__)
aten = torch.ops.aten

GRAPH_OPS = ("Conv1d, Conv2d (groups 1 or depthwise), Linear, BatchNorm after a conv or linear, MaxPool1d/2d, "
             "AvgPool1d/2d (no padding), AdaptiveAvgPool to 1, mean over the spatial axes, residual add, Flatten, "
             "ReLU, ReLU6, Hardtanh, the elementwise activations, Dropout, Identity, a final Softmax")
_CONV = {aten.conv2d.default, aten.conv1d.default, aten.conv2d.padding, aten.conv1d.padding}
_MAXPOOL = {aten.max_pool2d.default, aten.max_pool1d.default}
_AVGPOOL = {aten.avg_pool2d.default, aten.avg_pool1d.default}
_GLOBAL = {aten.adaptive_avg_pool2d.default, aten.adaptive_avg_pool1d.default, aten.mean.dim}
_ADD = {aten.add.Tensor}
# Ops whose presence makes a model a graph model (a chain of Linear layers keeps the MLP path).
GRAPH_TARGETS = _CONV | _MAXPOOL | _AVGPOOL | _GLOBAL | _ADD


@dataclass
class GraphNode:
    name: str
    kind: str                    # conv, linear, clamp, elementwise, maxpool, avgpool, add
    inputs: list[str]            # names of earlier nodes, or "input"
    shape: tuple[int, ...]       # output shape without the batch: (C, H, W), or (F,) after a flatten
    module: nn.Module | None = None  # conv/linear: the float layer (BatchNorm folded); clamp/elementwise: the op
    attrs: dict[str, Any] = field(default_factory=dict)  # stride, padding (t, b, l, r), kernel, groups
    act: Clamp | None = None     # a clamp fused into this conv, linear or add
    source: str = ""


@dataclass
class CapturedGraph:
    nodes: list[GraphNode]
    input_shape: tuple[int, ...]  # the model's own per-sample input shape: (C, L) or (C, H, W)
    dropped: list[str] = field(default_factory=list)
    final: str | None = None


def _refuse(node: torch.fx.Node, what: str) -> QmcuError:
    return QmcuError(f"{what} at {_source(node)}", f"qmcu supports graphs of: {GRAPH_OPS}")


def _pair(v: Any, one_d: bool, default: int | None = None) -> tuple[int, int]:
    vals = [int(x) for x in (v if isinstance(v, list | tuple) else [v])] if v not in (None, []) else []
    if not vals:
        assert default is not None
        vals = [default]
    if one_d:
        return 1 if default != 0 else 0, vals[0]
    return (vals[0], vals[0]) if len(vals) == 1 else (vals[0], vals[1])


def _same_padding(kernel: tuple[int, int]) -> tuple[int, int, int, int]:
    # PyTorch's padding="same" (stride 1): the extra pixel of an even kernel goes after (bottom/right).
    th, tw = kernel[0] - 1, kernel[1] - 1
    return th // 2, th - th // 2, tw // 2, tw - tw // 2


def _fold_bn_conv(conv: nn.Conv2d, mean: torch.Tensor, var: torch.Tensor, gamma: torch.Tensor | None,
                  beta: torch.Tensor | None, eps: float) -> nn.Conv2d:
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    g = gamma.detach().double() if gamma is not None else torch.ones_like(b)
    s = g / torch.sqrt(var.detach().double() + eps)
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, groups=conv.groups, bias=True)
    with torch.no_grad():
        folded.weight.copy_((w * s[:, None, None, None]).float())
        folded.bias.copy_(((b - mean.detach().double()) * s + (beta.detach().double() if beta is not None else 0.0)).float())
    return folded


def _bn_args(node: torch.fx.Node, tensor: Callable[[object], torch.Tensor | None]) -> tuple:
    eps_at = 7 if node.target == aten.batch_norm.default else 6
    return (tensor(node.args[3]), tensor(node.args[4]), tensor(node.args[1]), tensor(node.args[2]),
            float(node.args[eps_at]))


def _shape4(val: Any, one_d: bool) -> tuple[int, ...]:
    shape = tuple(int(s) for s in val.shape[1:])
    if len(shape) == 2 and one_d:
        return shape[0], 1, shape[1]
    return shape


def capture_graph(model: nn.Module | torch.export.ExportedProgram, example: torch.Tensor) -> CapturedGraph:
    """Export `model` on `example` (N x C x H x W, or N x C x L, or N x features) into a GraphNode list."""
    program = export(model, example)
    spec, tensor = parameters_of(program)

    graph = program.graph_module.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder" and n.name not in spec]
    if len(placeholders) != 1:
        raise QmcuError(f"{type(model).__name__}.forward takes {len(placeholders)} tensors", "qmcu models take one input")
    one_d = example.dim() == 3
    alias: dict[str, str] = {placeholders[0].name: "input"}  # fx node name -> the GraphNode (or "input") it is
    shapes: dict[str, tuple[int, ...]] = {"input": _shape4(example, one_d)}
    nodes: list[GraphNode] = []
    used: set[str] = {"input"}
    by_name: dict[str, GraphNode] = {}
    captured = CapturedGraph(nodes, tuple(int(s) for s in example.shape[1:]))
    calls = [n for n in graph.nodes if n.op == "call_function"]

    def src(n: torch.fx.Node, i: int = 0) -> str:
        a = n.args[i]
        if not isinstance(a, torch.fx.Node) or a.name not in alias:
            raise _refuse(n, f"{_op_name(n)} reads something that is not a computed tensor")
        return alias[a.name]

    def add(node: GraphNode, fx: torch.fx.Node) -> None:
        node.source = _source(fx)
        nodes.append(node)
        by_name[node.name] = node
        alias[fx.name] = node.name
        shapes[node.name] = node.shape

    for k, n in enumerate(calls):
        t = n.target
        if t is operator.getitem:
            alias[n.name] = alias[n.args[0].name]  # type: ignore[union-attr]
            continue
        if t in _CONV:
            x = src(n)
            w, b = tensor(n.args[1]), tensor(n.args[2] if len(n.args) > 2 else None)
            assert w is not None
            c1d = t in (aten.conv1d.default, aten.conv1d.padding)
            stride = _pair(n.args[3] if len(n.args) > 3 else 1, c1d, 1)
            pad_arg = n.args[4] if len(n.args) > 4 else 0
            dil = n.args[5] if len(n.args) > 5 else 1
            groups = int(n.args[6]) if len(n.args) > 6 else 1
            if any(int(d) != 1 for d in (dil if isinstance(dil, list | tuple) else [dil])):
                raise _refuse(n, "a dilated convolution is not supported")
            w4 = w.detach().unsqueeze(2) if c1d else w.detach()
            kernel = (int(w4.shape[2]), int(w4.shape[3]))
            if isinstance(pad_arg, str):
                if pad_arg == "valid":
                    padding = (0, 0, 0, 0)
                elif stride == (1, 1):
                    padding = _same_padding(kernel)
                else:
                    raise _refuse(n, "padding='same' with a stride above 1")
            else:
                ph, pw = _pair(pad_arg, c1d, 0)
                padding = (ph, ph, pw, pw)
            c_in = shapes[x][0]
            if groups not in (1, c_in):
                raise _refuse(n, f"a grouped convolution (groups={groups}, {c_in} channels): only groups=1 or depthwise")
            conv = nn.Conv2d(c_in, int(w4.shape[0]), kernel, groups=groups, bias=b is not None)
            with torch.no_grad():
                conv.weight.copy_(w4)
                if b is not None:
                    conv.bias.copy_(b)
            out = _shape4(n.meta["val"], c1d)
            add(GraphNode(_layer_name(n, used), "conv", [x], out, conv, {"stride": stride, "padding": padding, "groups": groups,
                                                          "kernel": kernel}), n)
        elif t == aten.linear.default:
            x = src(n)
            w, b = tensor(n.args[1]), tensor(n.args[2] if len(n.args) > 2 else None)
            assert w is not None
            lin = nn.Linear(int(w.shape[1]), int(w.shape[0]), bias=b is not None)
            with torch.no_grad():
                lin.weight.copy_(w)
                if b is not None:
                    lin.bias.copy_(b)
            prev = by_name.get(x)
            if prev is not None and prev.kind == "flatten" and len(prev.attrs["from"]) == 3:
                c, h, wd = prev.attrs["from"]
                if h * wd > 1:  # NCHW feature order -> the NHWC order the target's tensors have
                    order = torch.arange(c * h * wd).reshape(c, h, wd).permute(1, 2, 0).reshape(-1)
                    with torch.no_grad():
                        lin.weight.copy_(lin.weight[:, order])
            if shapes[x] != (lin.in_features,):
                raise _refuse(n, f"a Linear on a {shapes[x]} tensor: flatten it first")
            add(GraphNode(_layer_name(n, used), "linear", [x], (lin.out_features,), lin), n)
        elif t in _BATCH_NORM:
            x = src(n)
            prev = by_name.get(x)
            if prev is None or prev.kind not in ("conv", "linear") or prev.act is not None or len(
                    [u for u in n.args[0].users]) != 1:  # type: ignore[union-attr]
                raise _refuse(n, "a BatchNorm that does not directly follow a conv or linear cannot be folded")
            mean, var, gamma, beta, eps = _bn_args(n, tensor)
            assert mean is not None and var is not None
            if prev.kind == "conv":
                assert isinstance(prev.module, nn.Conv2d)
                prev.module = _fold_bn_conv(prev.module, mean, var, gamma, beta, eps)
            else:
                from qmcu.model.capture import _fold_batch_norm

                assert isinstance(prev.module, nn.Linear)
                prev.module = _fold_batch_norm(prev.module, mean, var, gamma, beta, eps)
            captured.dropped.append(f"{n.name} (BatchNorm folded into {prev.name})")
            alias[n.name] = prev.name
        elif t in _CLAMPS:
            x = src(n)
            extra = [a for a in n.args[1:] if not isinstance(a, torch.fx.Node)]
            lo, hi = _CLAMPS[t](*extra)
            kind = "relu" if t == aten.relu.default else ("relu6" if (lo, hi) == (0.0, 6.0) else "hardtanh")
            prev = by_name.get(x)
            producer = n.args[0]
            assert isinstance(producer, torch.fx.Node)
            if prev is not None and prev.kind in ("conv", "linear", "add") and prev.act is None \
                    and len(producer.users) == 1 and alias.get(producer.name) == prev.name:
                prev.act = Clamp(lo, hi, kind)
                alias[n.name] = prev.name
            else:
                add(GraphNode(_layer_name(n, used), "clamp", [x], shapes[x], Clamp(lo, hi, kind)), n)
        elif t in _ELEMENTWISE:
            x = src(n)
            extra = [a for a in n.args[1:] if not isinstance(a, torch.fx.Node)]
            function, make = _ELEMENTWISE[t]
            fn = Elementwise(function, make(*extra, *n.kwargs.values()))
            add(GraphNode(_layer_name(n, used), "elementwise", [x], shapes[x], fn), n)
        elif t in _MAXPOOL or t in _AVGPOOL:
            x = src(n)
            p1d = t in (aten.max_pool1d.default, aten.avg_pool1d.default)
            kernel = _pair(n.args[1], p1d)
            stride = _pair(n.args[2] if len(n.args) > 2 and n.args[2] else n.args[1], p1d)
            ph, pw = _pair(n.args[3] if len(n.args) > 3 else 0, p1d, 0)
            ceil = n.args[5] if t in _MAXPOOL and len(n.args) > 5 else (n.args[4] if t in _AVGPOOL and len(n.args) > 4
                                                                           else False)
            if ceil:
                raise _refuse(n, "ceil_mode=True pooling")
            if t in _MAXPOOL and len(n.args) > 4 and any(int(d) != 1 for d in n.args[4]):  # type: ignore[union-attr]
                raise _refuse(n, "dilated max pooling")
            if t in _AVGPOOL and (ph or pw):
                raise _refuse(n, "average pooling with padding (set padding=0)")
            out = _shape4(n.meta["val"], p1d)
            add(GraphNode(_layer_name(n, used), "maxpool" if t in _MAXPOOL else "avgpool", [x], out, None,
                          {"kernel": kernel, "stride": stride, "padding": (ph, ph, pw, pw)}), n)
        elif t in _GLOBAL:
            x = src(n)
            c, h, wd = shapes[x]
            if t == aten.mean.dim:
                dims = sorted(int(d) % 4 for d in n.args[1])  # type: ignore[union-attr]
                keep = bool(n.args[2]) if len(n.args) > 2 else False
                if dims != ([3] if n.args[0].meta["val"].dim() == 3 else [2, 3]) and dims != [2, 3]:  # type: ignore
                    raise _refuse(n, f"mean over dims {dims}: only the spatial mean (global average) is supported")
                shape: tuple[int, ...] = (c, 1, 1) if keep else (c,)
            else:
                if [int(s) for s in n.args[1]] not in ([1], [1, 1]):  # type: ignore[union-attr]
                    raise _refuse(n, "adaptive average pooling to a size other than 1")
                shape = (c, 1, 1)
            add(GraphNode(_layer_name(n, used), "avgpool", [x], (c, 1, 1), None,
                          {"kernel": (h, wd), "stride": (h, wd), "padding": (0, 0, 0, 0)}), n)
            if shape == (c,):
                flat = GraphNode(_layer_name(n, used) + "_flat", "flatten", [n.name], (c,), None, {"from": (c, 1, 1)})
                nodes.append(flat)
                by_name[flat.name] = flat
                alias[n.name] = flat.name
                shapes[flat.name] = (c,)
        elif t in _ADD:
            a, b_ = n.args[0], n.args[1]
            if not (isinstance(a, torch.fx.Node) and isinstance(b_, torch.fx.Node)) or n.kwargs.get("alpha", 1) != 1:
                raise _refuse(n, "an add of a tensor and a constant (or with alpha)")
            xa, xb = src(n, 0), src(n, 1)
            if shapes[xa] != shapes[xb]:
                raise _refuse(n, f"an add of shapes {shapes[xa]} and {shapes[xb]} (broadcasting)")
            add(GraphNode(_layer_name(n, used), "add", [xa, xb], shapes[xa]), n)
        elif t in _DROPPED:
            x = src(n)
            if t in (aten.view.default, aten.reshape.default, aten.flatten.using_ints):
                val = n.meta.get("val")
                if val is None or val.dim() != 2:
                    raise _refuse(n, f"{_op_name(n)} to a shape other than (batch, features)")
                if len(shapes[x]) == 3:
                    flat = GraphNode(_layer_name(n, used), "flatten", [x], (int(val.shape[1]),), None, {"from": shapes[x]})
                    nodes.append(flat)
                    by_name[flat.name] = flat
                    alias[n.name] = flat.name
                    shapes[flat.name] = flat.shape
                    continue
            alias[n.name] = x
            captured.dropped.append(f"{_op_name(n)} ({_source(n)})")
        elif t in _FINAL and all(m.target is operator.getitem for m in calls[k + 1:]):
            captured.final = _op_name(n).lstrip("_")
            captured.dropped.append(f"final {captured.final} (arg-max unchanged)")
            alias[n.name] = src(n)
        else:
            raise _refuse(n, f"unsupported op {_op_name(n)}")
    out_node = next(n for n in graph.nodes if n.op == "output")
    outs = out_node.args[0]
    outs = outs if isinstance(outs, list | tuple) else [outs]
    if len(outs) != 1 or alias.get(outs[0].name) != (nodes[-1].name if nodes else None):
        raise QmcuError(f"{type(model).__name__} does not end in one tensor computed last",
                        "return one tensor from forward()")
    if shapes[nodes[-1].name] != (nodes[-1].shape[0],) or len(nodes[-1].shape) != 1:
        raise QmcuError(f"{type(model).__name__}'s output has shape {nodes[-1].shape}, not (batch, classes)",
                        "end the network with a Linear (after a global average pool or a flatten)")
    return captured


def run_graph(g: CapturedGraph, x: torch.Tensor, every: bool = False) -> torch.Tensor | dict[str, torch.Tensor]:
    """The captured graph in float on x (the model's own input layout); every: all node outputs by name."""
    x4 = x.unsqueeze(2) if len(g.input_shape) == 2 else x
    values: dict[str, torch.Tensor] = {"input": x4}
    for node in g.nodes:
        ins = [values[i] for i in node.inputs]
        values[node.name] = _eval(node, ins)
    return values if every else values[g.nodes[-1].name]


def _eval(node: GraphNode, ins: list[torch.Tensor]) -> torch.Tensor:
    a = node.attrs
    if node.kind == "conv":
        conv = node.module
        assert isinstance(conv, nn.Conv2d)
        t, b, left, r = a["padding"]
        y = F.conv2d(F.pad(ins[0], (left, r, t, b)), conv.weight, conv.bias, a["stride"], 0, 1, a["groups"])
    elif node.kind == "linear":
        assert node.module is not None
        y = node.module(ins[0])
    elif node.kind == "add":
        y = ins[0] + ins[1]
    elif node.kind == "maxpool":
        t, b, left, r = a["padding"]
        y = F.max_pool2d(F.pad(ins[0], (left, r, t, b), value=float("-inf")), a["kernel"], a["stride"])
    elif node.kind == "avgpool":
        y = F.avg_pool2d(ins[0], a["kernel"], a["stride"])
    elif node.kind == "flatten":
        y = ins[0].permute(0, 2, 3, 1).reshape(ins[0].shape[0], -1)  # channels last, as on the target
    else:
        assert node.module is not None
        y = node.module(ins[0])
    return node.act(y) if node.act is not None else y


def is_graph_model(model: nn.Module | torch.export.ExportedProgram, example: torch.Tensor) -> bool:
    """A model of more than 2-D inputs, or one whose export holds a conv, pool or add, takes the graph path."""
    if example.dim() > 2:
        return True
    try:
        program = export(model, example)
    except QmcuError:
        return False  # the chain capture reports the export error
    return any(n.op == "call_function" and n.target in GRAPH_TARGETS for n in program.graph.nodes)
