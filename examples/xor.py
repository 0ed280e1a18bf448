"""The seed tutorial's XOR model as a model file: a 2-4-1 ReLU MLP with a sigmoid output, trained here.

`scons board=qemu-m4 run` runs this file (model=trained is its built-in name): trained with PyTorch
(BCE + SGD, deterministic; a seed that leaves a dead ReLU is retried with the next one), calibrated on
the tutorial's 9x9 grid plus the four corners, judged on the four XOR points (all four must be right)
and on a 41x41 decision-surface grid (bit-exact only). `seed=`, `epochs=`, `lr=` and `max_tries=`
on the command line reach model() below.
"""

import numpy as np
from torch import nn

from qmcu.model.train import TrainConfig, train
from qmcu.model.xor_data import XOR_INPUTS, XOR_LABELS, calibration_grid, surface_grid

name = "xor-trained"
min_accuracy = 1.0  # the tutorial's "int8 XOR accuracy: 4/4"
# The seed tutorial's layer on top of the generic path: weights.hpp with its pytorch_quant_xor names,
# its QDense/buildRequantizer API in the STD=1 FLOAT=1 corner, and its per-point lines.
seed_tutorial = True


def model(seed: int = 42, epochs: int = 4000, lr: float = 0.1, max_tries: int = 8) -> nn.Module:
    net, _ = train(TrainConfig(seed=seed, epochs=epochs, lr=lr, max_tries=max_tries))
    return net


def calibration() -> np.ndarray:
    return calibration_grid()


def test() -> tuple[np.ndarray, np.ndarray]:
    return XOR_INPUTS, XOR_LABELS


def unlabelled() -> np.ndarray:
    return surface_grid(41)
