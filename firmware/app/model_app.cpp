// The one application every model runs in: the int8 network of model.hpp over the vectors of
// vectors.hpp, one record per inference on the board's console. The prediction is the arg-max output
// (first maximum), or for one output the probability above 0.5. It judges nothing: the host's judge
// recomputes everything from the records.
//
// A model quantized with `seed_tutorial = True` (examples/xor.py) adds the seed tutorial's layer on
// top (seed_tutorial.hpp): its weights.hpp names, its API in the STD=1 FLOAT=1 corner and its lines.
// model.hpp first: a graph model's header sets the kernels' compile-time switches before any kernel header.
#include "model.hpp"
#include <qmcu/qmcu.hpp>

#include "app_records.hpp"
#include "text_line.hpp"
#include "vectors.hpp"
#if QMCU_SEED_TUTORIAL
#include "seed_tutorial.hpp"
#endif

namespace qm = qmcu_model;
namespace qv = qmcu_vectors;

namespace {

using qmcu::app::ConsoleSink;
// Records carry every input value: wide inputs need more than the default 256-byte line.
using Writer = qmcu::records::RecordWriter<ConsoleSink, 160 + 5 * (qm::kInputs + qm::kOutputs)>;

void loadInput(size_t i, int8_t* in) {
#if defined(QMCU_VECTORS_EXHAUSTIVE)
    // Every int8 input combination, the first input outermost (the host's order).
    for (size_t k = 0; k < qm::kInputs; ++k) {
        const size_t digit = (i >> (8 * (qm::kInputs - 1 - k))) & 0xFF;
        in[k] = static_cast<int8_t>(static_cast<int32_t>(digit) - 128);
    }
#else
    for (size_t k = 0; k < qm::kInputs; ++k) {
#if QMCU_FLOAT
        in[k] = qmcu::quantize<int8_t>(qv::kInputsF[i][k], qm::kInputScale, qm::kInputZeroPoint, -128, 127);
#else
        in[k] = qv::kInputsQ[i][k];
#endif
    }
#endif
}

int predict(const int8_t* out) {
    if (qm::kOutputs == 1) {
        return out[0] >= qv::kPositiveMinQ ? 1 : 0;
    }
    size_t best = 0;
    for (size_t k = 1; k < qm::kOutputs; ++k) {
        if (out[k] > out[best]) {
            best = k;
        }
    }
    return static_cast<int>(best);
}

// Per-layer counts for one input: a separate pass, so the per-inference counts are not disturbed by
// the extra counter reads.
void profileLayers(Writer& w) {
    static int8_t a[qm::kMaxWidth];
    static int8_t b[qm::kMaxWidth];
    loadInput(0, a);
    qmcu::platform::counter_resume();  // a flasher may have stopped the cycle counter (issue 11)
    for (size_t k = 0; k < qm::kLayerCount; ++k) {
        int8_t* in = k % 2 == 0 ? a : b;
        int8_t* out = k % 2 == 0 ? b : a;
        const uint32_t t0 = qmcu::platform::counter_read();
        qm::forwardLayer(k, in, out);
        const uint32_t t1 = qmcu::platform::counter_read();
        qmcu::app::writeLayer(w, qm::kLayerNames[k], t1 - t0);
    }
}

void printAccuracy(int32_t correct) {
    qmcu::TextLine line;
#if QMCU_SEED_TUTORIAL
    line.add("int8 XOR accuracy: ");  // the seed's line
#else
    line.add("int8 ").add(qm::kName).add(" accuracy on the target: ");
#endif
    line.num(correct).add("/").num(static_cast<int32_t>(qv::kLabelledCount)).add("\n");
    ConsoleSink::write(line.data(), line.size());
}

}  // namespace

// The measured unit: one whole inference. noinline/noipa so counters and the host plugin find it.
extern "C" __attribute__((noinline, noipa)) void qmcu_infer(const int8_t* in, int8_t* out) {
#if QMCU_SEED_TUTORIAL && QMCU_FLOAT && QMCU_STD
    qmcu_seed::forward(in, out);
#else
    qm::forward(in, out);
#endif
}

extern "C" int app_main() {
#if QMCU_SEED_TUTORIAL && QMCU_FLOAT && QMCU_STD
    qmcu_seed::build();
#endif
#if QMCU_MODEL_ARENA
    qm::arenaGuardFill();
#endif
    Writer w;
    qmcu::app::writeBegin(w, qv::kModelName, qv::kMode, qv::kCount, qm::kOutputs);
    int32_t correct = 0;
    for (size_t i = 0; i < qv::kCount; ++i) {
        int8_t in[qm::kInputs];
        int8_t out[qm::kOutputs];
        loadInput(i, in);
        // Through a lambda, not a function pointer: the call to qmcu_infer stays a direct `bl`, which the
        // instruction-count plugin needs (a pointer may become `blx r3`, as GCC does on Cortex-M0).
        qmcu::app::inferAndRecord(w, i, in, qm::kInputs, out, qm::kOutputs,
                                  [](const int8_t* x, int8_t* y) { qmcu_infer(x, y); });
        if (i < qv::kLabelledCount) {
            const int pred = predict(out);
            correct += pred == qv::kLabels[i] ? 1 : 0;
#if QMCU_SEED_TUTORIAL
            qmcu_seed::printLabelled(i, in, out[0], pred);
#endif
        }
    }
    if (qv::kLabelledCount > 0) {
        qmcu::app::writeSummary(w, correct, qv::kLabelledCount);
        printAccuracy(correct);
    }
    profileLayers(w);
#if QMCU_MODEL_ARENA
    // The guard after the activation arena must be as filled before the first inference.
    const int32_t status = qm::arenaGuardIntact() ? 0 : qmcu::app::kStatusArenaOverrun;
    qmcu::app::writeEnd(w, status, qv::kCount);
    return status;
#else
    qmcu::app::writeEnd(w, 0, qv::kCount);
    return 0;
#endif
}
