// qmcu int8 XOR model 'xor-textbook' (2-4-1 MLP, ReLU, sigmoid LUT)
// GENERATED FILE - DO NOT EDIT. Regenerate with qmcu (see README).
//   generator: qmcu 0.1.0
//   source: textbook
//   torch: 2.13.0
//   seed: None
//   calibration: 9x9 grid + 4 XOR corners
//   inputs_sha256: 83083e79f2d393f0d93ebc806bdd9962ff97284a61710f7f5f8143cb28d33588
//   model_sha256: 38d617f3a6236a8d1f4a86c47b8e1021e637d432ab80c9286ead123b54815925
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <qmcu/qdense_fast.hpp>

namespace pytorch_quant_xor {

constexpr size_t NumInputs = 2;
constexpr size_t HiddenSize = 4;
constexpr size_t NumOutputs = 1;

// Affine activation parameters: real = (q - zero_point) * scale.
constexpr float kInputScale = 0.00392156886f;
constexpr int32_t kInputZeroPoint = -128;
constexpr float kHiddenScale = 0.00784313772f;
constexpr int32_t kHiddenZeroPoint = -128;
constexpr float kLogitScale = 0.0156862754f;
constexpr int32_t kLogitZeroPoint = -1;
constexpr float kSigmoidOutScale = 0.00390625f;  // 1/256
constexpr int32_t kSigmoidOutZeroPoint = -128;  // covers (0, 1)

// Symmetric per-tensor weights (zero point 0, values in [-127, 127]), row-major [out][in].
constexpr float kFc1WeightScale = 0.00787401572f;
constexpr float kFc2WeightScale = 0.0314960629f;
constexpr int8_t kFc1Weights[8] = {
    127, 127, 127, 127, 127, 127, 127, 127};
// int32 biases at input_scale * weight_scale.
constexpr int32_t kFc1Biases[4] = {
    0, -32385, 0, -32385};
constexpr int8_t kFc2Weights[4] = {
    64, -127, 64, -127};
constexpr int32_t kFc2Biases[1] = {
    -8096};

// Integer requantizers computed on the host (what buildRequantizer would return).
// fc1: out = clamp(round(acc * kFc1Multiplier * 2^kFc1Shift / 2^31) + zp, kFc1ActMin, kFc1ActMax); shift > 0 is a left shift
constexpr int32_t kFc1Multiplier = 1082196480;
constexpr int32_t kFc1Shift = -7;
constexpr int32_t kFc1OutputZeroPoint = -128;
constexpr int32_t kFc1ActMin = -128;  // fused ReLU: the output zero point
constexpr int32_t kFc1ActMax = 127;
// fc2: out = clamp(round(acc * kFc2Multiplier * 2^kFc2Shift / 2^31) + zp, kFc2ActMin, kFc2ActMax); shift > 0 is a left shift
constexpr int32_t kFc2Multiplier = 1082196480;
constexpr int32_t kFc2Shift = -5;
constexpr int32_t kFc2OutputZeroPoint = -1;
constexpr int32_t kFc2ActMin = -128;  // int8 min
constexpr int32_t kFc2ActMax = 127;

// Sigmoid lookup table computed on the host (what buildQSigmoidLUT would fill): index q + 128.
constexpr int8_t kSigmoidLUT[256] = {
    -97, -97, -96, -96, -96, -95, -95, -94, -94, -93, -93, -92, -92, -91, -91, -90,
    -90, -89, -89, -88, -88, -87, -87, -86, -86, -85, -84, -84, -83, -83, -82, -82,
    -81, -80, -80, -79, -78, -78, -77, -77, -76, -75, -75, -74, -73, -73, -72, -71,
    -71, -70, -69, -68, -68, -67, -66, -65, -65, -64, -63, -62, -62, -61, -60, -59,
    -59, -58, -57, -56, -55, -55, -54, -53, -52, -51, -50, -49, -49, -48, -47, -46,
    -45, -44, -43, -42, -42, -41, -40, -39, -38, -37, -36, -35, -34, -33, -32, -31,
    -31, -30, -29, -28, -27, -26, -25, -24, -23, -22, -21, -20, -19, -18, -17, -16,
    -15, -14, -13, -12, -11, -10, -9, -8, -7, -6, -5, -4, -3, -2, -1, 0,
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 42, 43, 44, 45, 46,
    47, 48, 49, 49, 50, 51, 52, 53, 54, 55, 55, 56, 57, 58, 59, 59,
    60, 61, 62, 62, 63, 64, 65, 65, 66, 67, 68, 68, 69, 70, 71, 71,
    72, 73, 73, 74, 75, 75, 76, 77, 77, 78, 78, 79, 80, 80, 81, 82,
    82, 83, 83, 84, 84, 85, 86, 86, 87, 87, 88, 88, 89, 89, 90, 90,
    91, 91, 92, 92, 93, 93, 94, 94, 95, 95, 96, 96, 96, 97, 97, 98};

// The same layers prepared for qmcu::QDenseFast (zero point folded, weights in the kernel layout).
// fc1: qmcu::QDenseFast<2, 4>; input zero point -128 folded into the biases;
// every partial sum stays in [-32385, 64770] for any int8 input.
// Weights widened to int16 in the kernel layout of qdense_fast.hpp (4 rows x 2 values).
alignas(4) constexpr int16_t kFc1FastWeights[8] = {
    127, 127, 127, 127, 127, 127, 127, 127};
constexpr int32_t kFc1FastFoldedBiases[4] = {
    32512, 127, 32512, 127};
// out = clamp(round(acc * 1082196480 * 2^-7 / 2^31) + -128, -128, 127); shift > 0 is a left shift
constexpr qmcu::Requantizer kFc1FastRequantizer{1082196480, -7, -128, -128, 127};

// fc2: qmcu::QDenseFast<4, 1>; input zero point -128 folded into the biases;
// every partial sum stays in [-72866, 24544] for any int8 input.
// Weights widened to int16 in the kernel layout of qdense_fast.hpp (1 rows x 4 values).
alignas(4) constexpr int16_t kFc2FastWeights[4] = {
    64, 64, -127, -127};
constexpr int32_t kFc2FastFoldedBiases[1] = {
    -24224};
// out = clamp(round(acc * 1082196480 * 2^-5 / 2^31) + -1, -128, 127); shift > 0 is a left shift
constexpr qmcu::Requantizer kFc2FastRequantizer{1082196480, -5, -1, -128, 127};

}  // namespace pytorch_quant_xor
