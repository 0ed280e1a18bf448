"""A small CNN on scikit-learn's bundled 8x8 digits, as a model file: conv, depthwise, pooling, a residual
block, global average pooling and a linear head (issue 13's first example).

`scons model=examples/digits_cnn.py board=qemu-m4 run` trains it here (full-batch Adam, seed 42, 80 epochs,
about five seconds on a CPU), calibrates on the training split and judges the held-out 360 images on the target.
"""

import numpy as np
import torch
from torch import nn

name = "digits_cnn"
max_drop = 0.03


class Residual(nn.Module):
    """x + pointwise(relu(depthwise(x))): a MobileNet-style block with a skip connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.pw = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.pw(torch.relu(self.bn(self.dw(x)))))


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU())
        self.block = Residual(12)
        self.pool = nn.MaxPool2d(2)                       # 8x8 -> 4x4
        self.conv = nn.Sequential(nn.Conv2d(12, 24, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(self.pool(self.block(self.stem(x)))))


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return train_test_split(x, digits.target.astype(np.int64), test_size=0.2, random_state=0, stratify=digits.target)


def model() -> nn.Module:
    # No parameters named like qmcu's training options (seed, epochs, lr): their defaults are the XOR's.
    seed, epochs, lr = 42, 80, 0.01
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x_train, _, y_train, _ = _data()
    net = DigitsCNN()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return net.eval()


def calibration() -> np.ndarray:
    return _data()[0]


def test() -> tuple[np.ndarray, np.ndarray]:
    _, x_test, _, y_test = _data()
    return x_test, y_test
