"""The generic quantizer: any chain of supported layers, exact against the reference; bad models refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qmcu.errors import QmcuError
from qmcu.quant import reference
from qmcu.quant.fakequant import compare_with_fake_quant
from qmcu.quant.intmodel import Dense, Lut
from qmcu.quant.quantize import quantize_sequential
from qmcu.quant.reference import quantize_rows


def _model(*layers: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*layers)


def test_every_supported_layer_quantizes_and_agrees_with_pytorch() -> None:
    model = _model(nn.Flatten(), nn.Linear(6, 8), nn.ReLU6(), nn.Identity(), nn.Linear(8, 5), nn.Tanh(),
                   nn.Linear(5, 3), nn.Sigmoid(), nn.ReLU())
    x = np.random.default_rng(1).uniform(-2, 2, (300, 6)).astype(np.float32)
    m = quantize_sequential(model, x, "mixed", {})
    kinds = [(type(lay).__name__, getattr(lay, "activation", None) or getattr(lay, "function", None)) for lay in m.layers]
    assert kinds == [("Dense", "relu6"), ("Dense", "none"), ("Lut", "tanh"), ("Dense", "none"), ("Lut", "sigmoid"),
                     ("Lut", "relu")]
    tanh = m.layers[2]
    assert isinstance(tanh, Lut) and (tanh.output_scale, tanh.output_zero_point) == (1 / 128, 0)
    check = compare_with_fake_quant(model, m, x)
    assert check["within_1_lsb"], check
    # the int8 outputs track the float model: probabilities within a few LSB of sigmoid's 1/256 steps
    out = reference.forward(m, quantize_rows(m, x))
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert np.abs((out - m.layers[-1].output_zero_point) * m.layers[-1].output_scale - want).max() < 0.05


def test_relu6_clamp_is_fused_at_six() -> None:
    model = _model(nn.Linear(1, 1), nn.ReLU6())
    with torch.no_grad():
        model[0].weight.fill_(10.0)
        model[0].bias.zero_()
    x = np.linspace(-1, 1, 50, dtype=np.float32).reshape(-1, 1)
    dense = quantize_sequential(model, x, "r6", {}).layers[0]
    assert isinstance(dense, Dense) and dense.activation == "relu6"
    assert abs((dense.act_max - dense.output_zero_point) * dense.output_scale - 6.0) < dense.output_scale


def test_unsupported_layer_is_refused_by_name_with_the_list() -> None:
    model = _model(nn.Linear(2, 2), nn.Dropout(), nn.Linear(2, 1))
    with pytest.raises(QmcuError, match=r"layer '1' is a Dropout, which qmcu cannot quantize; use only Linear, ReLU, "
                                        r"ReLU6, Sigmoid, Tanh, Identity, Flatten"):
        quantize_sequential(model, np.zeros((4, 2), np.float32), "bad", {})


class NotAChain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 2)
        self.b = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(x) + self.a(x)  # not b(a(x))


def test_a_forward_that_is_not_the_chain_is_refused() -> None:
    with pytest.raises(QmcuError, match="forward is not the chain of its children"):
        quantize_sequential(NotAChain(), np.random.default_rng(0).uniform(0, 1, (10, 2)).astype(np.float32), "x", {})
