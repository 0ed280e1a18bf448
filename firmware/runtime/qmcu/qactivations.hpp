// Element-wise int8 activations: ReLU in the quantized domain, and 256-entry lookup tables.
#pragma once

#include "config.hpp"

namespace qmcu {

constexpr size_t kQActivationLUTSize = 256;

// ReLU on an affine tensor: real 0 is the zero point, so clamp below at it.
template <typename T>
void qreluBuffer(T* buf, size_t n, T zero_point) {
    for (size_t i = 0; i < n; ++i) {
        if (buf[i] < zero_point) {
            buf[i] = zero_point;
        }
    }
}

// lut[x + 128]: entry 0 is the output for input -128.
inline int8_t qApplyLUT(int8_t x, const int8_t* lut) {
    return lut[static_cast<int32_t>(x) + 128];
}

}  // namespace qmcu
