"""Scalar quantization math, mirrored exactly by the C++ runtime.

Floats here are IEEE float32 values (the scales a header stores as `float`) widened to double;
integer results must equal what the C++ code computes from the same float constants.
"""

from __future__ import annotations

import math

import numpy as np

from qmcu.errors import QmcuError

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
WEIGHT_QMAX = 127  # symmetric weights leave -128 unused so any weight can be negated


def lround(x: float) -> int:
    """C++ std::lround: round half away from zero, computed exactly (no x + 0.5 rounding error)."""
    if not math.isfinite(x):
        raise QmcuError(f"cannot round {x} to an integer", "check the model for NaN/Inf values")
    whole = math.trunc(x)
    frac = x - whole  # exact for any double
    if abs(frac) >= 0.5:
        whole += 1 if x > 0 else -1
    return int(whole)


def f32(x: float) -> float:
    """Round to the nearest float32, as a `constexpr float` in the header would."""
    return float(np.float32(x))


def clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


def affine_asymmetric(fmin: float, fmax: float, qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[float, int]:
    """Per-tensor asymmetric (scale, zero_point), exactly as the seed's affine_asymmetric."""
    fmin = min(fmin, 0.0)
    fmax = max(fmax, 0.0)
    qrange = float(qmax - qmin)
    if fmax == fmin or qrange == 0.0:
        return 1.0, qmin
    scale = (fmax - fmin) / qrange
    zp = lround(qmin - fmin / scale)
    return scale, clamp(zp, qmin, qmax)


def symmetric_weight_scale(w: np.ndarray, qmax: int = WEIGHT_QMAX) -> float:
    """max|w| / qmax; an all-zero tensor gets scale 1.0 so it quantizes to zeros without dividing by 0."""
    peak = float(np.max(np.abs(w))) if w.size else 0.0
    return 1.0 if peak == 0.0 else peak / qmax


def symmetric_row_scales(w: np.ndarray, qmax: int = WEIGHT_QMAX) -> list[float]:
    """Per-channel weights: symmetric_weight_scale of every output row of w [out][in] (all-zero row: 1.0)."""
    rows = np.asarray(w, dtype=np.float64)
    return [symmetric_weight_scale(row, qmax) for row in rows.reshape(rows.shape[0], -1)]


def quantize_weights(w: np.ndarray, scale: float, qmax: int = WEIGHT_QMAX) -> list[int]:
    s = f32(scale)
    return [clamp(lround(float(v) / s), -qmax, qmax) for v in np.asarray(w, dtype=np.float64).ravel()]


def quantize_bias(b: np.ndarray, input_scale: float, weight_scale: float) -> list[int]:
    """int32 biases at bias_scale = input_scale * weight_scale (both as stored float32 constants)."""
    bias_scale = f32(input_scale) * f32(weight_scale)
    out = []
    for v in np.asarray(b, dtype=np.float64).ravel():
        q = lround(float(v) / bias_scale)
        if not INT32_MIN <= q <= INT32_MAX:
            raise QmcuError(f"bias {float(v)!r} is {q} at bias scale {bias_scale:.3g}, which does not fit int32",
                            "retrain with weight decay or widen the input range so the bias scale grows")
        out.append(q)
    return out


def quantize_value(x: float, scale: float, zero_point: int, qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> int:
    """quantize<T>: float32 division x / scale, lround, + zero point, clamp (as the C++ does it in float)."""
    q = np.float32(x) / np.float32(scale)
    return clamp(lround(float(q)) + zero_point, qmin, qmax)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Split a positive real multiplier into (Q0.31 multiplier, shift) with real ~= m * 2^shift / 2^31.

    Shift convention (one for the whole project): shift > 0 is a left shift applied before the
    high multiply, shift < 0 a rounding right shift after it (TFLite's convention). Multipliers too
    small to represent become (0, 0): every output is then the zero point.
    """
    if not math.isfinite(real) or real < 0.0:
        raise QmcuError(f"requantizer multiplier {real!r} is not a finite non-negative number",
                        "check the calibration ranges and weight scales")
    if real == 0.0:
        return 0, 0
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2^exponent, mantissa in [0.5, 1)
    q = lround(mantissa * (1 << 31))
    if q == 1 << 31:
        q //= 2
        exponent += 1
    if exponent < -31:
        return 0, 0
    if exponent > 30:
        raise QmcuError(f"requantizer multiplier {real!r} is too large (2^{exponent})",
                        "the output scale is far smaller than input_scale*weight_scale; recalibrate")
    return q, exponent


def requant_multiplier(input_scale: float, weight_scale: float, output_scale: float) -> tuple[int, int]:
    """(multiplier, shift) from the three stored float32 scales, computed in double like buildRequantizer."""
    return quantize_multiplier(f32(input_scale) * f32(weight_scale) / f32(output_scale))
