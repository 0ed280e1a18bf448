"""Graph capture (model/graph_capture.py) and the memory plan (codegen/memory_plan.py), without a build.

The captured graph must compute what the model computes (BatchNorm folded, clamps fused, NCHW flatten
turned into NHWC columns); unsupported constructs are refused with one line naming the op and its line.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qmcu.codegen.memory_plan import check_plan, plan_memory
from qmcu.errors import QmcuError
from qmcu.model.graph_capture import capture_graph, is_graph_model, run_graph
from qmcu.quant.intmodel import Add, Dense, IntModel, Lut, Pool


class SkipMLP(nn.Module):
    """A skip connection between Linear layers: refused by the chain capture, a graph here."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.out(torch.relu(h + self.b(h)))


class FlattenCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 4 * 5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(torch.relu(self.bn(self.conv(x))), 1))


def _bn_stats(net: nn.Module) -> nn.Module:
    torch.manual_seed(3)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.mark.parametrize(("net", "shape"), [
    (SkipMLP(), (6,)),
    (FlattenCNN(), (2, 4, 5)),
    (nn.Sequential(nn.Conv1d(3, 4, 5, padding="same"), nn.BatchNorm1d(4), nn.ReLU6(), nn.MaxPool1d(2),
                   nn.Conv1d(4, 4, 3, groups=4), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2)), (3, 16)),
    (nn.Sequential(nn.Conv2d(1, 4, (3, 2), stride=2, padding=(1, 0)), nn.Hardtanh(-1.0, 2.0), nn.Conv2d(4, 8, 3,
                   padding=1, groups=4), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 2 * 2, 3), nn.Sigmoid()), (1, 9, 8)),
], ids=["skip-mlp", "conv-bn-flatten", "conv1d-same-depthwise-x2", "stride-hardtanh-avgpool-sigmoid"])
def test_the_captured_graph_computes_what_the_model_computes(net: nn.Module, shape: tuple[int, ...]) -> None:
    net = _bn_stats(net)
    x = torch.randn(7, *shape)
    assert is_graph_model(net, x)
    graph = capture_graph(net, x)
    with torch.no_grad():
        got, want = run_graph(graph, x), net(x)
    assert isinstance(got, torch.Tensor)
    assert torch.allclose(got, want, atol=1e-5), float((got - want).abs().max())
    assert not [n for n in graph.nodes if n.kind == "clamp" and n.inputs[0] != "input"]  # every clamp fused


def test_a_plain_mlp_keeps_the_chain_path() -> None:
    assert not is_graph_model(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval(), torch.randn(2, 4))


@pytest.mark.parametrize(("net", "shape", "message"), [
    (nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Flatten()), (4, 5, 5), r"^a grouped convolution \(groups=2"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2), nn.Flatten()), (1, 7, 7), r"^a dilated convolution"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2, padding=1), nn.Flatten()), (1, 7, 7),
     r"^average pooling with padding"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, ceil_mode=True), nn.Flatten()), (1, 7, 7), r"^ceil_mode=True"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2), nn.Flatten()), (1, 7, 7), r"^unsupported op"),
], ids=["groups", "dilation", "avgpool-padding", "ceil-mode", "upsample"])
def test_unsupported_constructs_are_refused_in_one_line(net: nn.Module, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(QmcuError, match=message) as err:
        capture_graph(net.eval(), torch.randn(2, *shape))
    assert "\n" not in str(err.value) and " at " in str(err.value)


def _tiny_graph() -> IntModel:
    """input (2x2x2=8) -> a: table -> b: table -> c: add(a, b) -> d: pool -> e: dense (the output)."""
    table = list(range(-128, 128))
    lut = {"function": "relu", "input_scale": 0.1, "input_zero_point": 0, "output_scale": 0.1,
           "output_zero_point": 0, "table": table}
    layers = [
        Lut(name="a", inputs=["input"], **lut), Lut(name="b", inputs=["a"], **lut),
        Add(name="c", inputs=["a", "b"], shape=[2, 2, 2], input_scales=[0.1, 0.1], input_zero_points=[0, 0],
            output_scale=0.2, output_zero_point=0, left_shift=20, input_multipliers=[1 << 30, 1 << 30],
            input_shifts=[0, 0], output_multiplier=1 << 30, output_shift=-19, act_min=-128, act_max=127),
        Pool(name="d", inputs=["c"], in_shape=[2, 2, 2], out_shape=[1, 1, 2], kind="max", kernel=[2, 2], stride=[2, 2],
             padding=[0, 0, 0, 0], scale=0.2, zero_point=0),
        Dense(name="e", inputs=["d"], in_features=2, out_features=1, weights=[1, 1], bias=[0], weight_scale=1.0,
              input_scale=0.2, input_zero_point=0, output_scale=0.2, output_zero_point=0, multiplier=1 << 30, shift=1,
              act_min=-128, act_max=127),
    ]
    return IntModel("tiny", 8, 0.1, 0, layers, input_shape=[2, 2, 2])


def test_the_memory_plan_shares_bytes_only_between_buffers_never_alive_together() -> None:
    model = _tiny_graph()
    plan = plan_memory(model, scratch={"d": 12})
    check_plan(model, plan)
    # a is read by b and c: b cannot reuse it; c (an add whose first input a dies at c) writes over a.
    assert plan.in_place == {"c": "a"}
    assert plan.offsets["c"] == plan.offsets["a"]
    assert plan.offsets["a"] != plan.offsets["b"]
    assert "e" not in plan.offsets  # the output goes to the caller's buffer
    # The most bytes alive at once: during d, c (8, on a's bytes) + d (2) + d's scratch (12) = 22; during b,
    # a + b = 16. The plan reaches that lower bound: b reuses the scratch's bytes.
    assert plan.arena_bytes == 22
    assert plan.offsets["b"] == plan.offsets["d.scratch"]


def test_a_bad_plan_is_caught() -> None:
    model = _tiny_graph()
    plan = plan_memory(model)
    plan.offsets["b"] = plan.offsets["a"]
    with pytest.raises(AssertionError, match="overlap"):
        check_plan(model, plan)
