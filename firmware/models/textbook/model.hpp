// qmcu int8 model 'xor-textbook': 3 layers
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

#include <qmcu/qdense_fast.hpp>
#include <qmcu/qmcu.hpp>

#define QMCU_SEED_TUTORIAL 1  // the seed tutorial's layer (firmware/app/seed_tutorial.hpp, weights.hpp) is added

namespace qmcu_model {

constexpr const char* kName = "xor-textbook";
constexpr size_t kInputs = 2;
constexpr size_t kOutputs = 1;
constexpr float kInputScale = 0.00392156886f;
constexpr int32_t kInputZeroPoint = -128;
constexpr size_t kLayerCount = 3;
constexpr const char* kLayerNames[kLayerCount] = {"fc1", "fc2", "sigmoid"};
constexpr size_t kMaxWidth = 4;

// layer 0 'fc1': dense 2 -> 4, activation relu
// fc1: qmcu::QDenseFast<2, 4>; input zero point -128 folded into the biases;
// every partial sum stays in [-32385, 64770] for any int8 input.
// Weights widened to int16 in the kernel layout of qdense_fast.hpp (4 rows x 2 values).
alignas(4) constexpr int16_t kL0Weights[8] = {
    127, 127, 127, 127, 127, 127, 127, 127};
constexpr int32_t kL0FoldedBiases[4] = {
    32512, 127, 32512, 127};
// out = clamp(round(acc * 1082196480 * 2^-7 / 2^31) + -128, -128, 127); shift > 0 is a left shift
constexpr qmcu::Requantizer kL0Requantizer{1082196480, -7, -128, -128, 127};

// layer 1 'fc2': dense 4 -> 1, activation none
// fc2: qmcu::QDenseFast<4, 1>; input zero point -128 folded into the biases;
// every partial sum stays in [-72866, 24544] for any int8 input.
// Weights widened to int16 in the kernel layout of qdense_fast.hpp (1 rows x 4 values).
alignas(4) constexpr int16_t kL1Weights[4] = {
    64, 64, -127, -127};
constexpr int32_t kL1FoldedBiases[1] = {
    -24224};
// out = clamp(round(acc * 1082196480 * 2^-5 / 2^31) + -1, -128, 127); shift > 0 is a left shift
constexpr qmcu::Requantizer kL1Requantizer{1082196480, -5, -1, -128, 127};

// layer 2 'sigmoid': sigmoid lookup table, index q + 128
constexpr int8_t kL2Table[256] = {
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

struct Layers {
    qmcu::QDenseFast<2, 4> l0;
    qmcu::QDenseFast<4, 1> l1;
    const int8_t* l2;
};

// Mutable on purpose: see the file comment.
inline Layers g_layers = {
    {kL0Weights, kL0FoldedBiases, kL0Requantizer},
    {kL1Weights, kL1FoldedBiases, kL1Requantizer},
    kL2Table,
};

constexpr size_t kLayerWidths[kLayerCount] = {4, 1, 1};

// One layer: in has the previous layer's width, out this layer's (kLayerWidths[k]).
inline void forwardLayer(size_t k, const int8_t* in, int8_t* out) {
    switch (k) {
        case 0: g_layers.l0.forward(in, out); break;
        case 1: g_layers.l1.forward(in, out); break;
        case 2: for (size_t i = 0; i < 1; ++i) out[i] = qmcu::qApplyLUT(in[i], g_layers.l2); break;
        default: break;
    }
}

// The whole network, straight-line, ping-ponging between two activation buffers.
inline void forward(const int8_t* in, int8_t* out) {
    static int8_t buf[2][kMaxWidth];
    (void)buf;  // unused by a one-layer model
    g_layers.l0.forward(in, buf[0]);
    g_layers.l1.forward(buf[0], buf[1]);
    for (size_t i = 0; i < 1; ++i) out[i] = qmcu::qApplyLUT(buf[1][i], g_layers.l2);
}

}  // namespace qmcu_model
