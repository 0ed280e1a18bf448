// The XOR application: runs the test vectors through the int8 network and reports one record per
// inference on the board's console. It judges nothing beyond printing the labelled accuracy; the
// host's judge recomputes everything from the records.
#include <qmcu/qmcu.hpp>

#include "app_records.hpp"
#include "text_line.hpp"
#include "vectors.hpp"
#include "weights.hpp"

namespace pq = pytorch_quant_xor;
namespace qv = qmcu_vectors;

namespace {

#if QMCU_FLOAT && QMCU_STD
// The seed's API (QDense built by buildRequantizer) in the corner where it can exist.
using QDenseFC1 = qmcu::QDense<int8_t, int8_t, int32_t, int8_t, pq::NumInputs, pq::HiddenSize>;
using QDenseFC2 = qmcu::QDense<int8_t, int8_t, int32_t, int8_t, pq::HiddenSize, pq::NumOutputs>;
#else
// The fast kernels on the host-prepared constants (same bits, see qdense_fast.hpp).
using QDenseFC1 = qmcu::QDenseFast<pq::NumInputs, pq::HiddenSize>;
using QDenseFC2 = qmcu::QDenseFast<pq::HiddenSize, pq::NumOutputs>;
#endif

struct Network {
    QDenseFC1 fc1;
    QDenseFC2 fc2;
    const int8_t* sigmoid_lut;
};

#if QMCU_FLOAT && QMCU_STD
// The seed's way: rebuild the integer constants from the float scales at start-up.
int8_t g_sigmoid_lut[qmcu::kQActivationLUTSize];

Network buildNetwork() {
    Network net{};
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
                           g_sigmoid_lut);
    net.sigmoid_lut = g_sigmoid_lut;
    return net;
}
#endif

}  // namespace

// The forward path's state, in a named namespace so the size report and the image check find it in
// the ELF. Mutable, not constexpr: the compiler must read the weights from memory, as it would for
// any real model, instead of folding them into the code. Statically initialised where the host
// computed every integer (the MCU way), so the image itself holds the whole model and the build
// proves it byte for byte (qmcu/image_model.py); the seed's API corner fills it at start-up.
namespace fwd {
#if QMCU_FLOAT && QMCU_STD
Network g_net;
#else
Network g_net = {{pq::kFc1FastWeights, pq::kFc1FastFoldedBiases, pq::kFc1FastRequantizer},
                 {pq::kFc2FastWeights, pq::kFc2FastFoldedBiases, pq::kFc2FastRequantizer},
                 pq::kSigmoidLUT};
#endif
int8_t g_hidden[pq::HiddenSize];
int8_t g_logit[pq::NumOutputs];
}  // namespace fwd
using fwd::g_hidden;
using fwd::g_logit;
using fwd::g_net;

namespace {

using qmcu::app::ConsoleSink;
using Writer = qmcu::records::RecordWriter<ConsoleSink>;

}  // namespace

// The measured unit: one whole inference. noinline so counters and the host plugin can find it.
extern "C" __attribute__((noinline, noipa)) void qmcu_infer(const int8_t* in, int8_t* out) {
    g_net.fc1.forward(in, g_hidden);
    g_net.fc2.forward(g_hidden, g_logit);
    for (size_t k = 0; k < pq::NumOutputs; ++k) {
        out[k] = qmcu::qApplyLUT(g_logit[k], g_net.sigmoid_lut);
    }
}

namespace {

void loadInput(size_t i, int8_t* in) {
#if defined(QMCU_VECTORS_EXHAUSTIVE)
    in[0] = static_cast<int8_t>(static_cast<int32_t>(i >> 8) - 128);
    in[1] = static_cast<int8_t>(static_cast<int32_t>(i & 0xFF) - 128);
#elif QMCU_FLOAT
    for (size_t k = 0; k < pq::NumInputs; ++k) {
        in[k] = qmcu::quantize<int8_t>(qv::kInputsF[i][k], pq::kInputScale, pq::kInputZeroPoint, -128, 127);
    }
#else
    for (size_t k = 0; k < pq::NumInputs; ++k) {
        in[k] = qv::kInputsQ[i][k];
    }
#endif
}

#if !defined(QMCU_VECTORS_EXHAUSTIVE)
// in=(0.0000,1.0000)  q_input=(-128,127)  q_logit=98  prob=0.8828  pred=1  label=1
void printLabelled(size_t i, const int8_t* in, int8_t out, int pred) {
    qmcu::TextLine line;
    line.add("in=(").fixed4(qv::kDisplayE4[i][0]).add(",").fixed4(qv::kDisplayE4[i][1]);
    line.add(")  q_input=(").num(in[0]).add(",").num(in[1]);
    line.add(")  q_logit=").num(g_logit[0]);
    // prob = (q - zp) / 256 in 1e-4 units, rounded half up: exact integer arithmetic.
    const int32_t prob_e4 = ((static_cast<int32_t>(out) - pq::kSigmoidOutZeroPoint) * 10000 + 128) / 256;
    line.add("  prob=").fixed4(prob_e4).add("  pred=").num(pred).add("  label=").num(qv::kLabels[i]);
    line.add("\n");
    ConsoleSink::write(line.data(), line.size());
}
#endif

// Per-layer instruction counts for one input (a separate pass, so the per-inference counts
// above are not disturbed by the extra counter reads).
void profileLayers(Writer& w) {
    int8_t in[pq::NumInputs];
    int8_t out[pq::NumOutputs];
    loadInput(0, in);
    const uint32_t t0 = qmcu::platform::counter_read();
    g_net.fc1.forward(in, g_hidden);
    const uint32_t t1 = qmcu::platform::counter_read();
    g_net.fc2.forward(g_hidden, g_logit);
    const uint32_t t2 = qmcu::platform::counter_read();
    out[0] = qmcu::qApplyLUT(g_logit[0], g_net.sigmoid_lut);
    const uint32_t t3 = qmcu::platform::counter_read();
    (void)out;
    const char* names[3] = {"fc1", "fc2", "sigmoid"};
    const uint32_t counts[3] = {t1 - t0, t2 - t1, t3 - t2};
    for (int k = 0; k < 3; ++k) {
        qmcu::app::writeLayer(w, names[k], counts[k]);
    }
}

}  // namespace

extern "C" int app_main() {
#if QMCU_FLOAT && QMCU_STD
    g_net = buildNetwork();
#endif
    Writer w;
    qmcu::app::writeBegin(w, qv::kModelName, qv::kMode, qv::kCount, pq::NumOutputs);

    int32_t correct = 0;
    for (size_t i = 0; i < qv::kCount; ++i) {
        int8_t in[pq::NumInputs];
        int8_t out[pq::NumOutputs];
        loadInput(i, in);
        qmcu::app::inferAndRecord(w, i, in, pq::NumInputs, out, pq::NumOutputs, qmcu_infer);
#if !defined(QMCU_VECTORS_EXHAUSTIVE)
        if (i < qv::kLabelledCount) {
            const int pred = out[0] >= qv::kPositiveMinQ ? 1 : 0;
            correct += pred == qv::kLabels[i] ? 1 : 0;
            printLabelled(i, in, out[0], pred);
        }
#endif
    }
    int status = 0;
    if (qv::kLabelledCount > 0) {
        qmcu::app::writeSummary(w, correct, qv::kLabelledCount);
        qmcu::TextLine line;
        line.add("int8 XOR accuracy: ").num(correct).add("/").num(static_cast<int32_t>(qv::kLabelledCount)).add("\n");
        ConsoleSink::write(line.data(), line.size());
        status = correct == static_cast<int32_t>(qv::kLabelledCount) ? 0 : 1;
    }
    profileLayers(w);
    qmcu::app::writeEnd(w, status, qv::kCount);
    return status;
}
