// Affine int8 quantization: the Requantizer (int32 accumulator -> int8) and, in FLOAT builds,
// quantize/dequantize between float and the quantized domain.
#pragma once

#include "config.hpp"
#include "fixedpoint.hpp"

#if QMCU_FLOAT && QMCU_STD
#include <cmath>
#endif

namespace qmcu {

// out = clamp(multiplyByQuantizedMultiplier(acc, multiplier, shift) + zero_point, qmin, qmax)
struct Requantizer {
    int32_t multiplier;  // Q0.31, in [0, 2^31): the real multiplier's mantissa
    int32_t shift;       // > 0: left shift before the multiply, < 0: right shift after; in [-31, 30]
    int32_t zero_point;  // output zero point, added after scaling
    int32_t qmin;        // clamp bounds; a fused ReLU sets qmin = zero_point
    int32_t qmax;

    constexpr int32_t apply(int32_t acc) const {
        // 64-bit sum: scaled may be INT32_MAX, and adding the zero point must not overflow.
        const int64_t v = static_cast<int64_t>(multiplyByQuantizedMultiplier(acc, multiplier, shift)) + zero_point;
        return static_cast<int32_t>(v < qmin ? qmin : (v > qmax ? qmax : v));
    }
};

#if QMCU_FLOAT

// std::lround semantics (half away from zero) without libm: v - trunc(v) is exact in float.
inline long roundHalfAway(float v) {
#if QMCU_STD
    return std::lround(v);
#else
    const long t = static_cast<long>(v);
    const float frac = v - static_cast<float>(t);
    return frac >= 0.5f ? t + 1 : (frac <= -0.5f ? t - 1 : t);
#endif
}

// q = clamp(lround(x / scale) + zero_point, qmin, qmax), the division done in float like the host.
template <typename T>
T quantize(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax) {
    float q = x / scale;
    // Keep the conversion to long defined: anything this large clamps anyway (NaN goes low).
    constexpr float kLimit = 1.0e9f;
    if (!(q > -kLimit)) {
        q = -kLimit;
    } else if (q > kLimit) {
        q = kLimit;
    }
    const long r = roundHalfAway(q) + zero_point;
    return static_cast<T>(r < qmin ? qmin : (r > qmax ? qmax : r));
}

template <typename T>
float dequantize(T q, float scale, int32_t zero_point) {
    return static_cast<float>(static_cast<int32_t>(q) - zero_point) * scale;
}

#endif  // QMCU_FLOAT

}  // namespace qmcu
