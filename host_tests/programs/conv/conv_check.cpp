// The convolution-kernel check program (host g++ and Cortex-M): runs every case of a generated data header
// (written by host_tests/conv_cases.py into a temporary folder and included BEFORE this file) and prints
//   "variant <name>"                    the kernels' variant (kKernelsVariant)
//   "C<case> <hex bytes>"               the case's output tensor
//   "OVERRUN <case> output|scratch"     a kernel wrote past its output or its scratch
//   "done"
// The data header defines, per case, a namespace with the layer (conv_layout.render_layer with name "k":
// kShape, kParams), kInput / kInput2 (the second input of an add, else nullptr), kInPlace (1: the output
// overwrites the first input), kInOffset / kOutOffset (0..3: the tensors' byte alignment), and the list
// QMCU_CONV_CASES(X) of X(index, op, namespace), plus QMCU_CONV_MAX_BYTES (the largest tensor) and
// QMCU_CONV_MAX_SCRATCH (the largest scratch). Define QMCU_CONV_TARGET=1 for a Cortex-M application.
#include <stddef.h>
#include <stdint.h>

#if defined(QMCU_CONV_TARGET) && QMCU_CONV_TARGET
#include "platform.hpp"
#else
#include <stdio.h>
#endif

#ifndef QMCU_CONV_CASES
#error "include the generated case header before conv_check.cpp"
#endif

namespace {

void emit(const char* s, size_t n) {
#if defined(QMCU_CONV_TARGET) && QMCU_CONV_TARGET
    qmcu::platform::console_write(s, n);
#else
    fwrite(s, 1, n, stdout);
#endif
}

void emitText(const char* s) {
    size_t n = 0;
    while (s[n] != '\0') {
        ++n;
    }
    emit(s, n);
}

void emitUint(uint32_t v) {
    char digits[10];
    int d = 0;
    do {
        digits[d++] = static_cast<char>('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    char out[10];
    for (int k = 0; k < d; ++k) {
        out[k] = digits[d - 1 - k];
    }
    emit(out, static_cast<size_t>(d));
}

void emitHex(const int8_t* v, size_t n) {
    static const char kHex[] = "0123456789abcdef";
    char line[128];
    size_t p = 0;
    for (size_t i = 0; i < n; ++i) {
        const uint8_t b = static_cast<uint8_t>(v[i]);
        line[p++] = kHex[b >> 4];
        line[p++] = kHex[b & 15u];
        if (p == sizeof line) {
            emit(line, p);
            p = 0;
        }
    }
    emit(line, p);
}

constexpr size_t kSlack = 8;  // canary bytes after every buffer
constexpr uint8_t kCanary = 0xA5;
alignas(8) int8_t g_in[QMCU_CONV_MAX_BYTES + 4 + kSlack];
alignas(8) int8_t g_in2[QMCU_CONV_MAX_BYTES + 4 + kSlack];
alignas(8) int8_t g_out[QMCU_CONV_MAX_BYTES + 4 + kSlack];
alignas(8) uint8_t g_scratch[QMCU_CONV_MAX_SCRATCH + kSlack];

void fill(int8_t* p, size_t n, uint8_t v) {
    for (size_t i = 0; i < n; ++i) {
        p[i] = static_cast<int8_t>(v);
    }
}
bool intact(const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        if (p[i] != kCanary) {
            return false;
        }
    }
    return true;
}

// One kernel call per op (the op tag picks the entry point and the number of inputs).
struct OpPointwise {
    template <class S, class P>
    static void call(void* s, const P& p, const int8_t* a, const int8_t*, int8_t* o) { qmcu::pointwise<S>(s, p, a, o); }
};
struct OpConv2d {
    template <class S, class P>
    static void call(void* s, const P& p, const int8_t* a, const int8_t*, int8_t* o) { qmcu::conv2d<S>(s, p, a, o); }
};
struct OpDepthwise {
    template <class S, class P>
    static void call(void* s, const P& p, const int8_t* a, const int8_t*, int8_t* o) {
        qmcu::depthwiseConv2d<S>(s, p, a, o);
    }
};
struct OpMaxPool {
    template <class S, class P>
    static void call(void* s, const P& p, const int8_t* a, const int8_t*, int8_t* o) { qmcu::maxPool2d<S>(s, p, a, o); }
};
struct OpAvgPool {
    template <class S, class P>
    static void call(void* s, const P& p, const int8_t* a, const int8_t*, int8_t* o) { qmcu::avgPool2d<S>(s, p, a, o); }
};
struct OpAdd {
    template <class S, class P>
    static void call(void* s, const P& p, const int8_t* a, const int8_t* b, int8_t* o) { qmcu::add<S>(s, p, a, b, o); }
};

// noinline + noipa: the kernel runs on run-time parameters, as in an application.
template <class Op, class S, class P>
__attribute__((noinline, noipa)) void runCase(uint32_t index, const P& params, const int8_t* input,
                                              const int8_t* input2, int in_place, int in_offset, int out_offset) {
    constexpr size_t kIn = S::kInputBytes;
    constexpr size_t kOut = S::kOutputBytes;
    int8_t* in = g_in + in_offset;
    int8_t* in2 = g_in2 + in_offset;
    int8_t* out = in_place ? in : g_out + out_offset;
    fill(g_in, sizeof g_in, kCanary);
    fill(g_in2, sizeof g_in2, kCanary);
    fill(g_out, sizeof g_out, kCanary);
    fill(reinterpret_cast<int8_t*>(g_scratch), sizeof g_scratch, kCanary);
    for (size_t i = 0; i < kIn; ++i) {
        in[i] = input[i];
        in2[i] = input2 != nullptr ? input2[i] : 0;
    }
    Op::template call<S>(S::kScratchBytes != 0 ? g_scratch : nullptr, params, in, input2 != nullptr ? in2 : nullptr,
                         out);
    const size_t end = kOut > kIn || !in_place ? kOut : kIn;  // in place: the input bytes after the output stay
    if (!intact(reinterpret_cast<const uint8_t*>(out + end), kSlack)) {
        emitText("OVERRUN ");
        emitUint(index);
        emitText(" output\n");
    }
    if (!intact(g_scratch + S::kScratchBytes, kSlack)) {
        emitText("OVERRUN ");
        emitUint(index);
        emitText(" scratch\n");
    }
    emitText("C");
    emitUint(index);
    emitText(" ");
    emitHex(out, kOut);
    emitText("\n");
}

#define QMCU_CONV_RUN_CASE(index, op, ns)                                                                    \
    runCase<op, ns::kShape>(index, ns::kParams, ns::kInput, ns::kInput2, ns::kInPlace, ns::kInOffset, \
                            ns::kOutOffset);

void runAll() {
    emitText("variant ");
    emitText(qmcu::kKernelsVariant);
    emitText("\n");
    QMCU_CONV_CASES(QMCU_CONV_RUN_CASE)
    emitText("done\n");
}

}  // namespace

#if defined(QMCU_CONV_TARGET) && QMCU_CONV_TARGET
extern "C" int app_main() {
    runAll();
    return 0;
}
#else
int main() {
    runAll();
    return 0;
}
#endif
