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

}  // namespace pytorch_quant_xor
