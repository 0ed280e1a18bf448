"""The seed's 2-4-1 XOR network and the textbook weights that solve it exactly (needs torch)."""

from __future__ import annotations

import torch
from torch import nn

from qmcu.model.xor_data import XOR_INPUTS, XOR_LABELS, calibration_grid, surface_grid

HIDDEN_SIZE = 4

# The exact 2-4-1 ReLU+Sigmoid solution: h = relu(x0+x1), relu(x0+x1-1) (twice each); logit = 2h0-4h1+2h2-4h3-2.
TEXTBOOK = {
    "fc1.weight": [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]],
    "fc1.bias": [0.0, -1.0, 0.0, -1.0],
    "fc2.weight": [[2.0, -4.0, 2.0, -4.0]],
    "fc2.bias": [-2.0],
}


class XORNet(nn.Module):
    def __init__(self, hidden_size: int = HIDDEN_SIZE) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigmoid(self.fc2(self.relu(self.fc1(x))))


def textbook_model() -> XORNet:
    model = XORNet()
    model.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in TEXTBOOK.items()})
    return model


__all__ = ["XORNet", "textbook_model", "XOR_INPUTS", "XOR_LABELS", "calibration_grid", "surface_grid", "TEXTBOOK"]
