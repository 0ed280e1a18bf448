"""A model file: scikit-learn's bundled breast-cancer set (569 samples, 30 features, 2 classes).

Run it on an emulated Cortex-M4 with:  scons model=examples/breast_cancer.py board=qemu-m4 run
"""

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from torch import nn

name = "breast-cancer"
max_drop = 0.02        # FAIL if the target is more than 2 points below the float model
min_accuracy = 0.9     # FAIL below 90 %


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)  # standardize with the training split's statistics
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32), y_train, y_test


def model() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(30, 16), nn.BatchNorm1d(16), nn.LeakyReLU(0.1), nn.Dropout(0.1),
                        nn.Linear(16, 8), nn.GELU(), nn.Linear(8, 2), nn.Softmax(dim=1))
    x_train, _, y_train, _ = _data()
    x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(200):
        opt.zero_grad()
        loss = nn.functional.nll_loss(torch.log(net(x) + 1e-9), y)
        loss.backward()
        opt.step()
    return net.eval()


def calibration() -> np.ndarray:
    return _data()[0]


def test() -> tuple[np.ndarray, np.ndarray]:
    _, x_test, _, y_test = _data()
    return x_test, y_test
