"""torch.export capture: any way of writing a supported chain gives the same canonical chain; the rest
is refused with the op and the user's source line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qmcu.errors import QmcuError
from qmcu.model.capture import Clamp, Elementwise, capture_chain


class _Written(nn.Module):
    """BatchNorm, LeakyReLU, Dropout in a Sequential; torch.relu and GELU in forward; flatten; a final softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.1), nn.Dropout(0.2), nn.Linear(8, 8))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.body(x))
        x = nn.functional.gelu(x)
        return torch.softmax(self.head(x.flatten(1)), dim=1)


def _model() -> _Written:
    torch.manual_seed(0)
    m = _Written()
    with torch.no_grad():
        m.body[1].running_mean.uniform_(-1, 1)
        m.body[1].running_var.uniform_(0.5, 2)
        m.body[1].weight.uniform_(0.5, 1.5)
        m.body[1].bias.uniform_(-0.5, 0.5)
    return m.eval()


def test_capture_folds_drops_and_keeps_the_function() -> None:
    m, x = _model(), torch.randn(32, 4)
    cap = capture_chain(m, x)
    kinds = [type(layer).__name__ for layer in cap.chain]
    assert kinds == ["Linear", "Elementwise", "Linear", "Clamp", "Elementwise", "Linear"]
    assert [layer.function for layer in cap.chain if isinstance(layer, Elementwise)] == ["leaky_relu", "gelu"]
    assert cap.final == "softmax"
    assert any("BatchNorm folded into body_0" in d for d in cap.dropped)
    with torch.no_grad():
        assert torch.allclose(torch.softmax(cap.chain(x), dim=1), m(x), atol=1e-5)


@pytest.mark.parametrize("module,kind,bounds", [(nn.ReLU(), "relu", (0.0, None)), (nn.ReLU6(), "relu6", (0.0, 6.0)),
                                                (nn.Hardtanh(-2.0, 3.0), "hardtanh", (-2.0, 3.0))])
def test_clamps(module: nn.Module, kind: str, bounds: tuple[float, float | None]) -> None:
    cap = capture_chain(nn.Sequential(nn.Linear(2, 3), module), torch.randn(4, 2))
    clamp = cap.chain[1]
    assert isinstance(clamp, Clamp) and clamp.kind == kind and (clamp.lo, clamp.hi) == bounds


class _Skip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return torch.relu(y) + y


class _Exp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.a(x))


def test_skip_connection_is_refused_with_its_source_line() -> None:
    with pytest.raises(QmcuError, match=r"not a chain: .*test_capture.py:\d+: return torch.relu\(y\) \+ y"):
        capture_chain(_Skip(), torch.randn(4, 4))


def test_unsupported_op_is_refused_with_its_source_line() -> None:
    with pytest.raises(QmcuError, match=r"unsupported op exp at .*test_capture.py:\d+: return torch.exp\(self.a\(x\)\); "
                                        "qmcu supports a chain of: Linear"):
        capture_chain(_Exp(), torch.randn(4, 4))
