// The requantizer's two primitives, with gemmlowp's contract (spec: tools/qmcu/quant/fixedpoint.py).
//
// saturatingRoundingDoublingHighMul(a, b) = round(a * b / 2^31) to nearest, ties toward +infinity;
//   the single overflowing case a = b = INT32_MIN saturates to INT32_MAX.
// roundingDivideByPOT(x, e) = x / 2^e rounded to nearest, halves away from zero; e in [0, 31].
// multiplyByQuantizedMultiplier(x, m, shift): the project's one shift convention is
//   shift > 0: left shift by `shift` BEFORE the high multiply (saturating, never overflowing);
//   shift < 0: rounding right shift by `-shift` AFTER it.       Legal range: shift in [-31, 30].
// No signed overflow, no shift of a negative value to the left, no over-wide shift: no UB for
// any int32 input. (Right shift of a negative int is arithmetic on every compiler we target.)
#pragma once

#include "config.hpp"

namespace qmcu {

constexpr int32_t saturatingRoundingDoublingHighMul(int32_t a, int32_t b) {
    if (a == kInt32Min && b == kInt32Min) {
        return kInt32Max;
    }
    const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
    const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
    // Division (not >>) because the contract truncates toward zero, as gemmlowp does.
    return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
}

constexpr int32_t roundingDivideByPOT(int32_t x, int exponent) {
    const int32_t mask = static_cast<int32_t>((uint32_t{1} << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

constexpr int32_t saturatingLeftShift(int32_t x, int shift) {
    // Multiply in 64 bits: |x| * 2^30 < 2^61, and left-shifting a negative int is UB before C++20.
    const int64_t v = static_cast<int64_t>(x) * (int64_t{1} << shift);
    return v > kInt32Max ? kInt32Max : (v < kInt32Min ? kInt32Min : static_cast<int32_t>(v));
}

constexpr int32_t multiplyByQuantizedMultiplier(int32_t x, int32_t multiplier, int32_t shift) {
    const int left = shift > 0 ? static_cast<int>(shift) : 0;
    const int right = shift < 0 ? static_cast<int>(-shift) : 0;
    return roundingDivideByPOT(saturatingRoundingDoublingHighMul(saturatingLeftShift(x, left), multiplier), right);
}

}  // namespace qmcu
