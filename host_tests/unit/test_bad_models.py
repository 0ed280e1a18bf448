"""Issue 9, items 7 and 9: the quantizer checks the model and the calibration set it is given.

NaN/Inf weights name the layer; float64/float16 models are refused with the fix; one huge weight
that zeroes the rest of its layer is warned about with the share; absurd calibration ranges are
refused and degenerate ones warned about (naming the range as the cause); the sigmoid table no
longer overflows for a wide logit range.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from torch import nn

from qmcu.errors import QmcuError
from qmcu.model.xor_model import calibration_grid, textbook_model
from qmcu.quant.intmodel import Lut
from qmcu.quant.quantize import lut_table, quantize_sequential

CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)


def _xor_with(name: str, index: tuple[int, ...], value: float) -> nn.Module:
    model = textbook_model()
    with torch.no_grad():
        dict(model.named_parameters())[name][index] = value
    return model


@pytest.mark.parametrize(("param", "index", "value", "match"), [
    ("fc1.weight", (2, 1), math.nan, r"^layer fc1: weight\[2, 1\] is nan \(1 of 8 weight values are NaN or Inf\); "
                                     r"retrain or reload the model"),
    ("fc1.weight", (0, 0), math.inf, r"^layer fc1: weight\[0, 0\] is inf \(1 of 8 weight values"),
    ("fc2.weight", (0, 3), -math.inf, r"^layer fc2: weight\[0, 3\] is -inf"),
    ("fc2.bias", (0,), math.nan, r"^layer fc2: bias\[0\] is nan \(1 of 1 bias values"),
])
def test_non_finite_parameters_name_the_layer(param: str, index: tuple[int, ...], value: float, match: str) -> None:
    with pytest.raises(QmcuError, match=match):
        quantize_sequential(_xor_with(param, index, value), calibration_grid(), "x", {})


def test_inf_weight_in_a_sequential_names_the_layer_not_the_multiplier() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        model[2].weight[0, 1] = math.inf
    with pytest.raises(QmcuError, match=r"^layer linear2: weight\[0, 1\] is inf"):
        quantize_sequential(model, calibration_grid(), "x", {})


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_a_model_that_is_not_float32_is_refused_with_the_fix(dtype: torch.dtype) -> None:
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(QmcuError, match=rf"^parameter fc1\.weight of XORNet is {name}, qmcu quantizes float32 models; "
                                        r"convert the model with model\.float\(\) first$"):
        quantize_sequential(textbook_model().to(dtype), calibration_grid(), "x", {})


def test_one_huge_weight_that_zeroes_its_layer_is_warned_with_the_share(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    with torch.no_grad():
        model[0].weight[0, 0] = 1e9
    x = np.random.default_rng(0).uniform(0, 1, (50, 4)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="qmcu.quant.quantize"):
        m = quantize_sequential(model, x, "x", {})
    assert sum(q == 0 for q in m.layers[0].weights) == 31  # type: ignore[union-attr]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["layer linear0: 31 of its 32 nonzero weights (97%) quantize to 0, because the largest, 1e+09, "
                        "sets the int8 step to 7.87e+06; check that weight (retrain, or clip the weights) before "
                        "trusting the int8 model"]
    caplog.clear()  # ordinary models and calibration sets quantize without a word
    with caplog.at_level(logging.WARNING, logger="qmcu.quant.quantize"):
        quantize_sequential(textbook_model(), calibration_grid(), "x", {})
        quantize_sequential(textbook_model(), CORNERS, "x", {})
    assert not caplog.records


@pytest.mark.parametrize(("calibration", "expected"), [
    (np.array([[0.5, 0.5]], np.float32),
     ["calibration set: 1 row(s) but only 1 distinct sample, so every range is that of one point"]),
    (np.zeros((4, 2), np.float32),
     ["calibration set: 4 row(s) but only 1 distinct sample",
      "calibration range of the input is [0, 0] (all 8 values are 0): its scale falls back to 1.0"]),
    (np.vstack([calibration_grid(), [[1e6, 0.0]]]).astype(np.float32),
     ["calibration range of the input is [0, 1e+06]: 148 of its 149 nonzero values (99%) quantize to the zero point, "
      "so a few outlying values set the range"]),
])
def test_degenerate_calibration_sets_are_warned_about_naming_the_range(
        caplog: pytest.LogCaptureFixture, calibration: np.ndarray, expected: list[str]) -> None:
    with caplog.at_level(logging.WARNING, logger="qmcu.quant.quantize"):
        m = quantize_sequential(textbook_model(), calibration, "x", {})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(expected), warnings
    for got, want in zip(warnings, expected, strict=True):
        assert got.startswith(want), got
    # kept with the integer model, so a failing verdict can name the cause again
    assert m.provenance["quantizer_warnings"] == warnings
    assert "quantizer_warnings" not in quantize_sequential(textbook_model(), calibration_grid(), "x", {}).provenance


def test_an_absurd_calibration_value_is_refused() -> None:
    calibration = np.vstack([CORNERS, [[1e30, 0.0]]]).astype(np.float32)
    with pytest.raises(QmcuError, match=r"^calibration value 1e\+30 \(row 4, column 0\) is beyond \+-1e\+12: a range "
                                        r"that wide quantizes every ordinary input to one int8 value; remove the "
                                        r"outlier"):
        quantize_sequential(textbook_model(), calibration, "x", {})


def test_a_calibration_set_that_overflows_a_layer_is_refused_naming_it() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.fill_(1e30)
    with pytest.raises(QmcuError, match=r"^the calibration set \(values in \[0, 1e\+12\]\) drives the output of layer "
                                        r"linear0 to NaN or Inf"):
        quantize_sequential(model, np.array([[0.0, 0.0], [1e12, 1e12]], np.float32), "x", {})


def test_sigmoid_table_of_a_huge_logit_range_does_not_overflow() -> None:
    # 1 / (1 + exp(-x)) in double: exp overflows for x < -709, where C++ gives 1 / (1 + inf) = 0.
    table = lut_table("sigmoid", 1e4, 0, 1.0 / 256.0, -128)
    assert table[:128] == [-128] * 128 and table[128] == 0 and table[129:] == [127] * 127
    m = quantize_sequential(textbook_model(), np.array([[100000.0, 100000.0]], np.float32), "x", {})
    sigmoid = m.layers[-1]
    assert isinstance(sigmoid, Lut) and sigmoid.table[0] == -128
