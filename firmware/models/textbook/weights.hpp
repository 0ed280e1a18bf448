// qmcu int8 XOR model 'xor-textbook' (2-4-1 MLP, ReLU, sigmoid LUT): the seed tutorial's names
// GENERATED FILE - DO NOT EDIT. Regenerate with qmcu (see README).
//   generator: qmcu 0.1.0
//   source: model file xor_textbook.py
//   torch: 2.13.0
//   calibration: 85 rows from the model's data
//   inputs_sha256: a26306548a719780d1f56bcd4dda22dec74366841d6729d163652a62a9dc8208
//   model_file_sha256: 48f8ec5842c9d0ed279b67d0b8c9bc3558601b1e7ebf5038838d3acb5e2dc90e
//   float_test_accuracy: 1.0
//   dropped: []
//   max_drop: None
//   min_accuracy: 1.0
//   weights: per_tensor
//   seed_tutorial: True
//   weights_comparison: {'per_tensor': 1.0, 'per_channel': 1.0}
//   diagnosis: {'set': 'test set, 4 samples', 'int8_accuracy': 1.0, 'all_float_accuracy': 1.0, 'input_sqnr_db': None, 'layers': [{'layer': 'fc1', 'op': 'dense', 'from': 'Linear(2->4) + relu', 'sqnr_db': 51.81, 'max_err_lsb': 0.5, 'float_accuracy': 1.0}, {'layer': 'fc2', 'op': 'dense', 'from': 'Linear(4->1)', 'sqnr_db': 34.98, 'max_err_lsb': 4.5, 'float_accuracy': 1.0}, {'layer': 'sigmoid', 'op': 'table', 'from': 'sigmoid', 'sqnr_db': 53.8, 'max_err_lsb': 0.41, 'float_accuracy': 1.0}], 'worst': 'fc2'}
//   fake_quant: {'elements': 24, 'histogram': {'-1': 6, '0': 18}, 'per_layer': {'fc1': {'-1': 6, '0': 10}, 'fc2': {'0': 4}, 'sigmoid': {'0': 4}}, 'max_abs_diff': 1, 'within_1_lsb': True}
//   model_sha256: 38d617f3a6236a8d1f4a86c47b8e1021e637d432ab80c9286ead123b54815925
#pragma once

#include <stddef.h>
#include <stdint.h>

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

// The integer requantizers computed on the host (what buildRequantizer returns; model.hpp uses these).
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

}  // namespace pytorch_quant_xor
