"""The second built-in example: a 64-32-10 ReLU MLP on scikit-learn's bundled 8x8 digits.

The data set ships inside scikit-learn (no download). Pixels 0..16 are scaled to [0, 1]; a fixed,
stratified split keeps 20 % (360 images) for the held-out evaluation that runs on the target.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from qmcu.model.train import epoch_bar

logger = logging.getLogger(__name__)

SPLIT_SEED = 0
TEST_FRACTION = 0.2
HIDDEN = 32


@dataclass(frozen=True)
class DigitsData:
    x_train: np.ndarray  # float32 [N, 64] in [0, 1]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_data() -> DigitsData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target.astype(np.int64), test_size=TEST_FRACTION,
                                                        random_state=SPLIT_SEED, stratify=digits.target)
    return DigitsData(x_train, y_train, x_test, y_test)


def make_model(hidden: int = HIDDEN) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def train(data: DigitsData, seed: int = 42, epochs: int = 300, lr: float = 0.01) -> nn.Sequential:
    """Full-batch Adam with cross-entropy: deterministic on the CPU, about a second."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = make_model()
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for _ in epoch_bar(epochs, "training digits"):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    logger.info("digits: trained %d epochs, loss %.4f, float test accuracy %.4f", epochs, float(loss.detach()),
                float_accuracy(model, data))
    return model


def float_accuracy(model: nn.Module, data: DigitsData) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(data.x_test)).argmax(dim=1).numpy()
    return float((pred == data.y_test).mean())
