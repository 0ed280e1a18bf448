// Compile-time corners of the int8 runtime.
//   QMCU_STD   = 1: the C++ standard library may be used (<cstdint>, <cmath>, ...); 0: freestanding.
//   QMCU_FLOAT = 1: float helpers (quantize/dequantize) exist; 0: not one float operation is compiled.
// buildRequantizer/buildQSigmoidLUT need both (they use <cmath>); an MCU image embeds their integer
// results instead, computed on the host by the qmcu Python package.
#pragma once

#ifndef QMCU_STD
#define QMCU_STD 0
#endif
#ifndef QMCU_FLOAT
#define QMCU_FLOAT 0
#endif

#if QMCU_STD
#include <cstddef>
#include <cstdint>
#else
#include <stddef.h>  // freestanding compiler headers, not libc
#include <stdint.h>
#endif

namespace qmcu {

template <typename T>
struct Limits;
template <>
struct Limits<int8_t> {
    static constexpr int32_t min = -128;
    static constexpr int32_t max = 127;
};
template <>
struct Limits<int16_t> {
    static constexpr int32_t min = -32768;
    static constexpr int32_t max = 32767;
};

constexpr int32_t kInt32Min = -2147483647 - 1;
constexpr int32_t kInt32Max = 2147483647;

template <typename T>
constexpr T clampTo(int32_t v, int32_t lo, int32_t hi) {
    return static_cast<T>(v < lo ? lo : (v > hi ? hi : v));
}

}  // namespace qmcu
