// Host-side constant builders (need float AND the standard library): the integers they produce
// are the ones the Python package computes (tools/qmcu/quant/qmath.py, quantize.py); MCU images embed
// those integers instead of calling these.
#pragma once

#include "config.hpp"

#if QMCU_FLOAT && QMCU_STD

#include <cmath>

#include "qactivations.hpp"
#include "qaffine.hpp"

namespace qmcu {

// real = in_scale * weight_scale / out_scale = mantissa * 2^shift, mantissa in [0.5, 1) as Q0.31.
template <typename T>
Requantizer buildRequantizer(float in_scale, float weight_scale, float out_scale, int32_t out_zero_point,
                             int32_t qmin = Limits<T>::min, int32_t qmax = Limits<T>::max) {
    const double real = static_cast<double>(in_scale) * static_cast<double>(weight_scale) / static_cast<double>(out_scale);
    int32_t multiplier = 0;
    int32_t shift = 0;
    if (real > 0.0) {
        int exponent = 0;
        const double mantissa = std::frexp(real, &exponent);
        long long q = std::llround(mantissa * 2147483648.0);
        if (q == 2147483648LL) {
            q /= 2;
            ++exponent;
        }
        if (exponent >= -31) {
            multiplier = static_cast<int32_t>(q);
            shift = exponent;
        }
    }
    return Requantizer{multiplier, shift, out_zero_point, qmin, qmax};
}

// lut[q + 128] = clamp(lround(sigmoid((q - in_zp) * in_scale) / out_scale) + out_zp), in double.
inline void buildQSigmoidLUT(float in_scale, int32_t in_zero_point, float out_scale, int32_t out_zero_point,
                             int8_t* lut) {
    for (int32_t q = -128; q <= 127; ++q) {
        const double x = static_cast<double>(q - in_zero_point) * static_cast<double>(in_scale);
        const double y = 1.0 / (1.0 + std::exp(-x));
        const long r = std::lround(y / static_cast<double>(out_scale)) + out_zero_point;
        lut[q + 128] = clampTo<int8_t>(static_cast<int32_t>(r), -128, 127);
    }
}

}  // namespace qmcu

#endif  // QMCU_FLOAT && QMCU_STD
