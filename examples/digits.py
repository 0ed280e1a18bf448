"""The digits example as a model file: a 64-32-10 ReLU MLP on scikit-learn's bundled 8x8 digits.

`scons model=digits board=qemu-m4 run` runs this file (the same as model=examples/digits.py): trained here
(full-batch Adam, seed 42, about a second), calibrated on the training split, judged on the held-out 360.
"""

import numpy as np
from torch import nn

from qmcu.model import digits as _digits

name = "digits"


def model() -> nn.Module:
    return _digits.train(_digits.load_data(), seed=42)


def calibration() -> np.ndarray:
    return _digits.load_data().x_train


def test() -> tuple[np.ndarray, np.ndarray]:
    data = _digits.load_data()
    return data.x_test, data.y_test
