"""The seed's 2-4-1 XOR network, its data, and the textbook weights that solve it exactly."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

XOR_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
XOR_LABELS = np.array([0, 1, 1, 0], dtype=np.int64)
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

    def trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate tensor, for calibration."""
        fc1_pre = self.fc1(x)
        hidden = self.relu(fc1_pre)
        logit = self.fc2(hidden)
        return {"input": x, "fc1_pre": fc1_pre, "hidden": hidden, "logit": logit, "output": self.sigmoid(logit)}


def textbook_model() -> XORNet:
    model = XORNet()
    model.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in TEXTBOOK.items()})
    return model


def calibration_grid(points: int = 9) -> np.ndarray:
    """The seed's calibration set: a points x points grid on [0,1]^2 plus the four XOR corners."""
    pts = np.linspace(0.0, 1.0, points)
    grid = np.array([[x, y] for x in pts for y in pts], dtype=np.float32)
    return np.concatenate([grid, XOR_INPUTS], axis=0)


def surface_grid(points: int = 41) -> np.ndarray:
    """The decision-surface inputs: points x points over [0,1]^2, row-major (x0 outer)."""
    pts = np.linspace(0.0, 1.0, points)
    return np.array([[x, y] for x in pts for y in pts], dtype=np.float32)
