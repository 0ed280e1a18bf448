// The seed tutorial's layer on top of the generic application (model_app.cpp), for a model quantized
// with `seed_tutorial = True` (examples/xor.py): a 2-H-1 ReLU MLP with a sigmoid table.
//   - weights.hpp with the tutorial's pytorch_quant_xor names (generated beside model.hpp);
//   - in the STD=1 FLOAT=1 corner, the tutorial's API: QDense layers whose requantizers and sigmoid
//     table are rebuilt at start-up from the float scales by buildRequantizer / buildQSigmoidLUT;
//   - its line per labelled point: in=(0.0000,1.0000)  q_input=(-128,127)  q_logit=98  prob=0.8828  ...
// Everything else (vectors, records, counts, the judge) is the generic path's.
#pragma once

#include <qmcu/qmcu.hpp>

#include "model.hpp"
#include "text_line.hpp"
#include "vectors.hpp"
#include "weights.hpp"

namespace qmcu_seed {

namespace pq = pytorch_quant_xor;
static_assert(pq::NumInputs == 2 && qmcu_model::kInputs == 2 && pq::NumOutputs == 1 && qmcu_model::kLayerCount == 3,
              "the seed tutorial's layer needs a 2-H-1 MLP with a sigmoid output");

#if QMCU_FLOAT && QMCU_STD
using QDenseFC1 = qmcu::QDense<int8_t, int8_t, int32_t, int8_t, pq::NumInputs, pq::HiddenSize>;
using QDenseFC2 = qmcu::QDense<int8_t, int8_t, int32_t, int8_t, pq::HiddenSize, pq::NumOutputs>;

struct Network {
    QDenseFC1 fc1;
    QDenseFC2 fc2;
    int8_t sigmoid_lut[qmcu::kQActivationLUTSize];
};
// Namespace-scope, so the image check finds what the tutorial's API built.
inline Network g_seed_net;

// The tutorial's way: rebuild the integer constants from the float scales at start-up.
inline void build() {
    Network& net = g_seed_net;
    net.fc1.weights = pq::kFc1Weights;
    net.fc1.biases = pq::kFc1Biases;
    net.fc1.input_zero_point = static_cast<int8_t>(pq::kInputZeroPoint);
    // ReLU fused into the clamp: qmin = the hidden zero point (same bits as qreluBuffer after).
    net.fc1.requantizer = qmcu::buildRequantizer<int8_t>(pq::kInputScale, pq::kFc1WeightScale, pq::kHiddenScale,
                                                         pq::kHiddenZeroPoint, pq::kHiddenZeroPoint, 127);
    net.fc2.weights = pq::kFc2Weights;
    net.fc2.biases = pq::kFc2Biases;
    net.fc2.input_zero_point = static_cast<int8_t>(pq::kHiddenZeroPoint);
    net.fc2.requantizer = qmcu::buildRequantizer<int8_t>(pq::kHiddenScale, pq::kFc2WeightScale, pq::kLogitScale,
                                                         pq::kLogitZeroPoint, -128, 127);
    qmcu::buildQSigmoidLUT(pq::kLogitScale, pq::kLogitZeroPoint, pq::kSigmoidOutScale, pq::kSigmoidOutZeroPoint,
                           net.sigmoid_lut);
}

inline void forward(const int8_t* in, int8_t* out) {
    static int8_t hidden[pq::HiddenSize];
    static int8_t logit[pq::NumOutputs];
    g_seed_net.fc1.forward(in, hidden);
    g_seed_net.fc2.forward(hidden, logit);
    out[0] = qmcu::qApplyLUT(logit[0], g_seed_net.sigmoid_lut);
}
#endif

// in=(0.0000,1.0000)  q_input=(-128,127)  q_logit=98  prob=0.8828  pred=1  label=1
inline void printLabelled(size_t i, const int8_t* in, int8_t out, int pred) {
    int8_t hidden[qmcu_model::kMaxWidth];
    int8_t logit[qmcu_model::kMaxWidth];
    qmcu_model::forwardLayer(0, in, hidden);  // q_logit: the input of the sigmoid table
    qmcu_model::forwardLayer(1, hidden, logit);
    qmcu::TextLine line;
    line.add("in=(").fixed4(qmcu_vectors::kDisplayE4[i][0]).add(",").fixed4(qmcu_vectors::kDisplayE4[i][1]);
    line.add(")  q_input=(").num(in[0]).add(",").num(in[1]);
    line.add(")  q_logit=").num(logit[0]);
    // prob = (q - zp) / 256 in 1e-4 units, rounded half up: exact integer arithmetic.
    const int32_t prob_e4 = ((static_cast<int32_t>(out) - pq::kSigmoidOutZeroPoint) * 10000 + 128) / 256;
    line.add("  prob=").fixed4(prob_e4).add("  pred=").num(pred).add("  label=").num(qmcu_vectors::kLabels[i]);
    line.add("\n");
    qmcu::platform::console_write(line.data(), line.size());
}

}  // namespace qmcu_seed
