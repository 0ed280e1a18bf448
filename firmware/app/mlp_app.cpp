// The generic application: any int8 model from model.hpp over the vectors in vectors.hpp.
// One record per inference; the prediction is the arg-max output (first maximum), compared with
// the label. The host's judge recomputes everything from the records.
#include <qmcu/qmcu.hpp>

#include "model.hpp"
#include "app_records.hpp"
#include "text_line.hpp"
#include "vectors.hpp"

namespace qm = qmcu_model;
namespace qv = qmcu_vectors;

namespace {

using qmcu::app::ConsoleSink;
// Records carry every input value: 64 int8 values need more than the default 256-byte line.
using Writer = qmcu::records::RecordWriter<ConsoleSink, 160 + 5 * (qm::kInputs + qm::kOutputs)>;

void loadInput(size_t i, int8_t* in) {
    for (size_t k = 0; k < qm::kInputs; ++k) {
#if QMCU_FLOAT
        in[k] = qmcu::quantize<int8_t>(qv::kInputsF[i][k], qm::kInputScale, qm::kInputZeroPoint, -128, 127);
#else
        in[k] = qv::kInputsQ[i][k];
#endif
    }
}

size_t argmax(const int8_t* v, size_t n) {
    size_t best = 0;
    for (size_t k = 1; k < n; ++k) {
        if (v[k] > v[best]) {
            best = k;
        }
    }
    return best;
}

void profileLayers(Writer& w) {
    static int8_t a[qm::kMaxWidth];
    static int8_t b[qm::kMaxWidth];
    loadInput(0, a);
    for (size_t k = 0; k < qm::kLayerCount; ++k) {
        int8_t* in = k % 2 == 0 ? a : b;
        int8_t* out = k % 2 == 0 ? b : a;
        const uint32_t t0 = qmcu::platform::counter_read();
        qm::forwardLayer(k, in, out);
        const uint32_t t1 = qmcu::platform::counter_read();
        qmcu::app::writeLayer(w, qm::kLayerNames[k], t1 - t0);
    }
}

}  // namespace

// The measured unit: one whole inference. noinline/noipa so counters and the host plugin find it.
extern "C" __attribute__((noinline, noipa)) void qmcu_infer(const int8_t* in, int8_t* out) { qm::forward(in, out); }

extern "C" int app_main() {
    Writer w;
    qmcu::app::writeBegin(w, qv::kModelName, qv::kMode, qv::kCount, qm::kOutputs);
    int32_t correct = 0;
    for (size_t i = 0; i < qv::kCount; ++i) {
        int8_t in[qm::kInputs];
        int8_t out[qm::kOutputs];
        loadInput(i, in);
        qmcu::app::inferAndRecord(w, i, in, qm::kInputs, out, qm::kOutputs, qmcu_infer);
        if (i < qv::kLabelledCount) {
            correct += argmax(out, qm::kOutputs) == qv::kLabels[i] ? 1 : 0;
        }
    }
    qmcu::app::writeSummary(w, correct, qv::kLabelledCount);
    qmcu::TextLine line;
    line.add("int8 ").add(qm::kName).add(" accuracy on the target: ").num(correct).add("/");
    line.num(static_cast<int32_t>(qv::kLabelledCount)).add("\n");
    ConsoleSink::write(line.data(), line.size());
    profileLayers(w);
    qmcu::app::writeEnd(w, 0, qv::kCount);
    return 0;
}
