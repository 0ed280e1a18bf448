"""Scalar quantization math against hand-computed cases from the seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qmcu.errors import QmcuError
from qmcu.quant.qmath import (
    affine_asymmetric,
    f32,
    lround,
    quantize_bias,
    quantize_multiplier,
    quantize_value,
    quantize_weights,
    symmetric_weight_scale,
)


@pytest.mark.parametrize(("x", "want", "banker"), [
    (0.5, 1, 0), (1.5, 2, 2), (2.5, 3, 2), (-0.5, -1, 0), (-1.5, -2, -2), (-2.5, -3, -2),
    (0.49999999999999994, 0, 0), (-0.49999999999999994, 0, 0), (127.5, 128, 128), (-128.5, -129, -128),
])
def test_lround_ties_away_from_zero_unlike_python_round(x: float, want: int, banker: int) -> None:
    assert lround(x) == want
    assert round(x) == banker  # Python's banker's rounding: the bias the seed warns about


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_lround_matches_exact_definition(x: float) -> None:
    exact = math.floor(abs(x) + 0.5) if abs(x) < 2**52 else abs(x)
    # floor(|x| + 0.5) in double can round up for 0.49999999999999994; compare via exact fractions.
    from fractions import Fraction

    fx = Fraction(x)
    exact = math.floor(abs(fx) + Fraction(1, 2))
    assert lround(x) == (exact if x >= 0 else -exact)


def test_lround_rejects_nan() -> None:
    with pytest.raises(QmcuError, match="NaN/Inf"):
        lround(float("nan"))


def test_affine_params_of_the_seed_textbook_ranges() -> None:
    # input [0, 1] -> 1/255, zp lround(-128 - 0) = -128
    assert affine_asymmetric(0.0, 1.0) == (1 / 255, -128)
    # hidden [0, 2] -> 2/255, zp -128
    assert affine_asymmetric(0.0, 2.0) == (2 / 255, -128)
    # logit [-2, 2] -> 4/255; zp = lround(-128 + 127.5) = lround(-0.5) = -1 (ties away from zero)
    scale, zp = affine_asymmetric(-2.0, 2.0)
    assert scale == 4 / 255 and zp == -1


def test_affine_widens_to_zero_and_handles_degenerate_range() -> None:
    assert affine_asymmetric(0.5, 1.0) == affine_asymmetric(0.0, 1.0)  # min widened to 0
    assert affine_asymmetric(-1.0, -0.5) == (1 / 255, 127)  # max widened to 0: zp = lround(-128 + 255) = 127
    assert affine_asymmetric(0.0, 0.0) == (1.0, -128)
    assert affine_asymmetric(3.0, 3.0)[1] == -128  # widened to [0, 3]: a real range


def test_symmetric_weights_qmax_127_and_all_zero() -> None:
    w = np.array([[1.0, -2.0], [0.5, 0.25]])
    assert symmetric_weight_scale(w) == 2.0 / 127
    assert quantize_weights(w, 2.0 / 127) == [64, -127, 32, 16]  # 63.5 -> 64, ties away from zero
    zeros = np.zeros((2, 2))
    assert symmetric_weight_scale(zeros) == 1.0
    assert quantize_weights(zeros, 1.0) == [0, 0, 0, 0]


def test_bias_at_input_times_weight_scale() -> None:
    # textbook fc1: bias -1 at (1/255)*(1/127) -> -32385 (computed from the float32 constants)
    s_in, s_w = f32(1 / 255), f32(1 / 127)
    assert quantize_bias(np.array([0.0, -1.0]), s_in, s_w) == [0, lround(-1.0 / (s_in * s_w))]
    assert quantize_bias(np.array([-1.0]), s_in, s_w) == [-32385]


def test_bias_that_does_not_fit_int32_is_refused() -> None:
    with pytest.raises(QmcuError, match="does not fit int32"):
        quantize_bias(np.array([1e6]), 1e-4, 1e-4)


def test_quantize_multiplier_mantissa_and_shift() -> None:
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(0.25) == (1 << 30, -1)
    assert quantize_multiplier(3.0) == (3 << 29, 2)
    m, s = quantize_multiplier(1 / 254)
    assert 2**30 <= m < 2**31 and abs(m * 2.0**s / 2**31 - 1 / 254) < 1e-12
    assert quantize_multiplier(1 - 2**-40) == (1 << 30, 1)  # mantissa rounds up to 2^31: renormalised
    assert quantize_multiplier(2.0**-40) == (0, 0)  # below 2^-31: every output is the zero point
    with pytest.raises(QmcuError):
        quantize_multiplier(2.0**40)


def test_quantize_value_float32_division() -> None:
    assert quantize_value(0.0, 1 / 255, -128) == -128
    assert quantize_value(1.0, 1 / 255, -128) == 127
    # In double 0.5 / (1/255) = 127.5 would round to 128 (q = 0); the float32 scale is slightly
    # larger than 1/255, so the float32 quotient is 127.49999 and q = -1, as the C++ computes it.
    assert float(np.float32(0.5) / np.float32(1 / 255)) < 127.5
    assert quantize_value(0.5, 1 / 255, -128) == -1
    assert quantize_value(5.0, 1 / 255, -128) == 127  # clamped


def test_quantize_multiplier_underflow_boundary_is_exponent_minus_31() -> None:
    """Shift -31 is the smallest legal one: 2^-32 = 2^30 * 2^-31 / 2^31 is representable, 2^-33 is not."""
    assert quantize_multiplier(2.0**-32) == (1 << 30, -31)
    assert quantize_multiplier(2.0**-32 * 1.5) == (3 << 29, -31)
    assert quantize_multiplier(2.0**-31 * (1 - 2**-30)) == ((1 << 31) - 2, -31)  # largest mantissa at shift -31
    # Just below 2^-32 the mantissa rounds up to 2^31 and is renormalised into shift -31, not dropped.
    assert quantize_multiplier(2.0**-32 * (1 - 2**-40)) == (1 << 30, -31)
    assert quantize_multiplier(2.0**-33) == (0, 0)
    assert quantize_multiplier(2.0**-32 * (1 - 2**-20)) == (0, 0)  # exponent -32 after rounding: underflows
    assert quantize_multiplier(5e-324) == (0, 0)  # the smallest double
    # Every result is a legal requantizer: multiplier 0 or a Q0.31 mantissa in [2^30, 2^31), shift in [-31, 30].
    for e in range(-40, 30):
        for f in (1.0, 1.5, 1 - 2**-40, 1 + 2**-40):
            m, s = quantize_multiplier(2.0**e * f)
            assert (m, s) == (0, 0) or (1 << 30 <= m < 1 << 31 and -31 <= s <= 30), (e, f, m, s)



def test_the_vectorised_input_quantization_is_the_scalar_one() -> None:
    """reference.quantize_array (every test set, calibration row and diagnosis) equals quantize_value element by
    element: exact ties (k + 0.5 steps) round away from zero, huge values clamp, -0.0 is 0."""
    import numpy as np

    from qmcu.quant.reference import quantize_array

    rng = np.random.default_rng(5)
    for scale, zp in ((0.0078125, 0), (0.0123, -7), (3.3e-5, 100), (17.0, -128)):
        ties = (np.arange(-300, 300) + 0.5) * np.float32(scale)
        values = np.concatenate([rng.normal(0, 200 * scale, 4000), ties, [0.0, -0.0, 1e30, -1e30]])
        values = values.astype(np.float32)
        assert quantize_array(values, scale, zp).tolist() == [quantize_value(float(v), scale, zp) for v in values]
