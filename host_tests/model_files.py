"""Model files the tests write for a user's own model (shared by the unit and target tiers)."""

# A binary 2-input model of the user's own (not the tutorial's network: 2-6-6-1, Tanh), with a 7x7 grid of
# unlabelled rows: the circle x0^2 + x1^2 < 0.5, trained in a few hundred steps.
CIRCLE = '''
import numpy as np
import torch
from torch import nn

name = "circle"


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    return x, (x[:, 0] ** 2 + x[:, 1] ** 2 < 0.5).astype(np.int64)


def model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 1), nn.Sigmoid())
    x, y = _data(400, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y).float()[:, None])
        loss.backward()
        opt.step()
    return net


def calibration():
    return _data(200, 2)[0]


def test():
    return _data(30, 3)


def unlabelled():
    g = np.linspace(-1, 1, 7, dtype=np.float32)
    return np.array([[a, b] for a in g for b in g], dtype=np.float32)
'''
