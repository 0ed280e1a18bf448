"""MLPerf Tiny's keyword-spotting DS-CNN architecture, as a model file (issue 13's benchmark network).

Input 49x10x1 (MFCC frames x coefficients); conv 10x4 stride 2 to 64 channels; four blocks of depthwise
3x3 + pointwise 64 (each with BatchNorm and ReLU); average pool; linear to 12 classes: 2,656,768 MACs
counting padded taps. There is no speech data set here, so the weights are seeded random and the inputs
synthetic: the point is speed, RAM and bit-exactness. The labels are the float model's own predictions,
so the accuracy lines say how often int8 agrees with float.
"""

import numpy as np
import torch
from torch import nn

name = "kws_dscnn"
TEST_ROWS = 8


def _block() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.Conv2d(64, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())


def model() -> nn.Module:
    torch.manual_seed(7)
    net = nn.Sequential(
        nn.Conv2d(1, 64, (10, 4), stride=2, padding=(5, 1), bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        *(_block() for _ in range(4)),
        nn.AvgPool2d((25, 5)), nn.Flatten(), nn.Linear(64, 12))
    with torch.no_grad():  # running statistics of a trained net, so activations keep a useful range
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.8, 1.2)
                m.bias.uniform_(0.0, 0.2)
    return net.eval()


def _inputs(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 1, 49, 10)).astype(np.float32)


def calibration() -> np.ndarray:
    return _inputs(64, 1)


def test() -> tuple[np.ndarray, np.ndarray]:
    x = _inputs(TEST_ROWS, 2)
    with torch.no_grad():
        labels = model()(torch.from_numpy(x)).argmax(dim=1).numpy()
    return x, labels.astype(np.int64)
