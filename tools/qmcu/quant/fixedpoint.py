"""The requantizer's integer arithmetic: gemmlowp's two primitives, on Python ints (exact).

This is the specification that firmware/runtime/qmcu/fixedpoint.hpp implements; the tests fuzz
one against the other and against exact rational arithmetic.
"""

from __future__ import annotations

from qmcu.quant.qmath import INT32_MAX, INT32_MIN, clamp


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """round(a*b / 2^31) to nearest, ties toward +infinity (gemmlowp); MIN*MIN saturates to MAX."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    # C integer division truncates toward zero.
    q = abs(total) >> 31
    return q if total >= 0 else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """x / 2^exponent rounded to nearest, halves away from zero; exponent in [0, 31]."""
    assert 0 <= exponent <= 31
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(acc: int, multiplier: int, shift: int) -> int:
    """acc * multiplier * 2^shift / 2^31 with the project's shift convention (shift > 0: left).

    The left shift saturates to int32 instead of overflowing (no UB in C++ for any input).
    """
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    shifted = clamp(acc << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def requantize(acc: int, multiplier: int, shift: int, zero_point: int, qmin: int, qmax: int) -> int:
    """Requantizer.apply: scale the int32 accumulator, add the output zero point, clamp."""
    scaled = multiply_by_quantized_multiplier(acc, multiplier, shift)
    return clamp(scaled + zero_point, qmin, qmax)
