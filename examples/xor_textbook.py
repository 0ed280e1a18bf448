"""The seed tutorial's exact XOR solution as a model file: the source of the committed model=textbook.

firmware/models/textbook/ is this file quantized and frozen (`qmcu freeze examples/xor_textbook.py
firmware/models/textbook`), so model=textbook builds and runs without PyTorch. Same data as xor.py.
"""

import numpy as np
from torch import nn

from qmcu.model.xor_data import XOR_INPUTS, XOR_LABELS, calibration_grid, surface_grid
from qmcu.model.xor_model import textbook_model

name = "xor-textbook"
min_accuracy = 1.0
seed_tutorial = True


def model() -> nn.Module:
    return textbook_model()


def calibration() -> np.ndarray:
    return calibration_grid()


def test() -> tuple[np.ndarray, np.ndarray]:
    return XOR_INPUTS, XOR_LABELS


def unlabelled() -> np.ndarray:
    return surface_grid(41)
