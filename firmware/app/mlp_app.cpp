// The generic application: any int8 model from model.hpp over the vectors in vectors.hpp.
// One record per inference; the prediction is the arg-max output (first maximum), compared with
// the label. The host's judge recomputes everything from the records.
#include <qmcu/qmcu.hpp>

#include "model.hpp"
#include "platform.hpp"
#include "records.hpp"
#include "text_line.hpp"
#include "vectors.hpp"

#define QMCU_STR2(x) #x
#define QMCU_STR(x) QMCU_STR2(x)
#ifndef QMCU_COUNTER_UNIT
#define QMCU_COUNTER_UNIT none
#endif

namespace qm = qmcu_model;
namespace qv = qmcu_vectors;

namespace {

struct ConsoleSink {
    static void write(const char* p, size_t n) { qmcu::platform::console_write(p, n); }
};
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
        w.begin("LAYER");
        w.field("name", qm::kLayerNames[k]);
        w.field("n", static_cast<int32_t>(t1 - t0));
        w.end();
    }
}

}  // namespace

// The measured unit: one whole inference. noinline/noipa so counters and the host plugin find it.
extern "C" __attribute__((noinline, noipa)) void qmcu_infer(const int8_t* in, int8_t* out) { qm::forward(in, out); }

extern "C" int app_main() {
    Writer w;
    w.begin("BEGIN");
    w.field("proto", 1);
    w.field("model", qv::kModelName);
    w.field("mode", qv::kMode);
    w.field("count", static_cast<int32_t>(qv::kCount));
    w.field("outputs", static_cast<int32_t>(qm::kOutputs));
    w.field("unit", QMCU_STR(QMCU_COUNTER_UNIT));
    w.end();
    int32_t correct = 0;
    for (size_t i = 0; i < qv::kCount; ++i) {
        int8_t in[qm::kInputs];
        int8_t out[qm::kOutputs];
        loadInput(i, in);
        const uint32_t t0 = qmcu::platform::counter_read();
        qmcu_infer(in, out);
        const uint32_t t1 = qmcu::platform::counter_read();
        w.begin("R");
        w.field("i", static_cast<int32_t>(i));
        w.field_list("in", in, qm::kInputs);
        w.field_list("out", out, qm::kOutputs);
        w.field("n", static_cast<int32_t>(t1 - t0));
        w.end();
        if (i < qv::kLabelledCount) {
            correct += argmax(out, qm::kOutputs) == qv::kLabels[i] ? 1 : 0;
        }
    }
    w.begin("SUM");
    w.field("correct", correct);
    w.field("total", static_cast<int32_t>(qv::kLabelledCount));
    w.end();
    qmcu::TextLine line;
    line.add("int8 ").add(qm::kName).add(" accuracy on the target: ").num(correct).add("/");
    line.num(static_cast<int32_t>(qv::kLabelledCount)).add("\n");
    ConsoleSink::write(line.data(), line.size());
    profileLayers(w);
    w.begin("END");
    w.field("status", int32_t{0});
    w.field("records", static_cast<int32_t>(qv::kCount));
    w.field("stack", static_cast<int32_t>(qmcu::platform::stack_used()));
    w.end();
    return 0;
}
