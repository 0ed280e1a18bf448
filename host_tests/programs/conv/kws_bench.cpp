// MLPerf Tiny's keyword-spotting DS-CNN on the convolution kernels, for exact instruction counts per layer
// (host_tests/target/test_conv_kernels_qemu.py measures every kws_* function from call to return with the QEMU
// plugin). The generated header (included BEFORE this file) defines the layers with conv_layout.render_layer:
// namespaces layer_conv, layer_dw0..layer_dw3, layer_pw0..layer_pw3, layer_pool, layer_fc (each: kShape,
// kParams), the inputs
// kKwsInputs[KWS_RUNS][490], KWS_SCRATCH_BYTES, KwsPwParams and KwsDwParams (the layers' params types).
// Per run it prints
//   "H<run> <layer> <fnv1a-32 of the layer's output>"  and  "K<run> <hex of the 12 logits>"
// (from a layer-by-layer trace; kws_infer, the measured whole inference, must give the same logits, else
// "MISMATCH kws_infer") and "done" at the end. Layers: conv 10x4 stride 2 (49x10x1 -> 25x5x64), 4 x (depthwise 3x3 + pointwise 64),
// global average pool (25x5), fully connected 64 -> 12 (a one-pixel pointwise).
#include <stddef.h>
#include <stdint.h>

#include "platform.hpp"

#ifndef KWS_RUNS
#error "include the generated KWS header before kws_bench.cpp"
#endif

namespace {

void put(const char* s) {
    size_t n = 0;
    while (s[n] != '\0') {
        ++n;
    }
    qmcu::platform::console_write(s, n);
}

void putUint(uint32_t v) {
    char d[10];
    int k = 0;
    do {
        d[k++] = static_cast<char>('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    char out[10];
    for (int i = 0; i < k; ++i) {
        out[i] = d[k - 1 - i];
    }
    qmcu::platform::console_write(out, static_cast<size_t>(k));
}

void putHex(const int8_t* v, size_t n) {
    static const char kHex[] = "0123456789abcdef";
    char line[64];
    size_t p = 0;
    for (size_t i = 0; i < n; ++i) {
        line[p++] = kHex[static_cast<uint8_t>(v[i]) >> 4];
        line[p++] = kHex[static_cast<uint8_t>(v[i]) & 15u];
        if (p == sizeof line) {
            qmcu::platform::console_write(line, p);
            p = 0;
        }
    }
    qmcu::platform::console_write(line, p);
}

uint32_t fnv1a(const int8_t* v, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; ++i) {
        h = (h ^ static_cast<uint8_t>(v[i])) * 16777619u;
    }
    return h;
}

}  // namespace

// The activation buffers and the scratch: what a memory plan would place in the arena.
namespace kws_arena {
alignas(8) int8_t g_a[8000];
alignas(8) int8_t g_b[8000];
alignas(8) uint8_t g_scratch[KWS_SCRATCH_BYTES];
int8_t g_logits[12];
}  // namespace kws_arena
using namespace kws_arena;

// The parameters are copied into run-time objects (as an application's layer table holds them).
namespace kws_state {
qmcu::ConvParams g_conv;
KwsDwParams g_dw[4];  // int16 (DepthwiseParams) or int8 (DepthwiseParams8) weights
KwsPwParams g_pw[4];  // int16 (PointwiseParams) or int8 (PointwiseParams8) weights
qmcu::PoolParams g_pool;
qmcu::PointwiseParams g_fc;
}  // namespace kws_state
using namespace kws_state;

extern "C" __attribute__((noinline, noipa)) void kws_conv(const int8_t* in, int8_t* out) {
    qmcu::conv2d<layer_conv::kShape>(g_scratch, g_conv, in, out);
}
extern "C" __attribute__((noinline, noipa)) void kws_dw(const KwsDwParams* p, const int8_t* in, int8_t* out) {
    qmcu::depthwiseConv2d<layer_dw0::kShape>(g_scratch, *p, in, out);
}
extern "C" __attribute__((noinline, noipa)) void kws_pw(const KwsPwParams* p, const int8_t* in, int8_t* out) {
    qmcu::pointwise<layer_pw0::kShape>(g_scratch, *p, in, out);
}
extern "C" __attribute__((noinline, noipa)) void kws_pool(const int8_t* in, int8_t* out) {
    qmcu::avgPool2d<layer_pool::kShape>(nullptr, g_pool, in, out);
}
extern "C" __attribute__((noinline, noipa)) void kws_fc(const int8_t* in, int8_t* out) {
    qmcu::pointwise<layer_fc::kShape>(g_scratch, g_fc, in, out);
}

// One inference: what the whole-network count measures.
extern "C" __attribute__((noinline, noipa)) void kws_infer(const int8_t* in, int8_t* logits) {
    kws_conv(in, g_a);
    for (int i = 0; i < 4; ++i) {
        kws_dw(&g_dw[i], g_a, g_b);
        kws_pw(&g_pw[i], g_b, g_a);
    }
    kws_pool(g_a, g_b);
    kws_fc(g_b, logits);
    __asm__ volatile("" ::: "memory");  // no tail call: the plugin measures calls by their return address
}

// The same layers one by one, with a hash of every layer's output (not measured as a whole).
__attribute__((noinline)) void kwsTrace(const int8_t* in, int8_t* logits, uint32_t* hashes) {
    kws_conv(in, g_a);
    hashes[0] = fnv1a(g_a, layer_conv::kShape::kOutputBytes);
    for (int i = 0; i < 4; ++i) {
        kws_dw(&g_dw[i], g_a, g_b);
        hashes[1 + 2 * i] = fnv1a(g_b, layer_dw0::kShape::kOutputBytes);
        kws_pw(&g_pw[i], g_b, g_a);
        hashes[2 + 2 * i] = fnv1a(g_a, layer_pw0::kShape::kOutputBytes);
    }
    kws_pool(g_a, g_b);
    hashes[9] = fnv1a(g_b, layer_pool::kShape::kOutputBytes);
    kws_fc(g_b, logits);
    hashes[10] = fnv1a(logits, 12);
}

extern "C" int app_main() {
    g_conv = layer_conv::kParams;
    g_dw[0] = layer_dw0::kParams;
    g_dw[1] = layer_dw1::kParams;
    g_dw[2] = layer_dw2::kParams;
    g_dw[3] = layer_dw3::kParams;
    g_pw[0] = layer_pw0::kParams;
    g_pw[1] = layer_pw1::kParams;
    g_pw[2] = layer_pw2::kParams;
    g_pw[3] = layer_pw3::kParams;
    g_pool = layer_pool::kParams;
    g_fc = layer_fc::kParams;
    put("variant ");
    put(qmcu::kKernelsVariant);
    put("\n");
    for (uint32_t run = 0; run < KWS_RUNS; ++run) {
        uint32_t hashes[11];
        kwsTrace(kKwsInputs[run], g_logits, hashes);
        int8_t logits[12];
        kws_infer(kKwsInputs[run], logits);
        for (int k = 0; k < 12; ++k) {
            if (logits[k] != g_logits[k]) {
                put("MISMATCH kws_infer\n");
            }
        }
        for (uint32_t k = 0; k < 11; ++k) {
            put("H");
            putUint(run);
            put(" ");
            putUint(k);
            put(" ");
            putUint(hashes[k]);
            put("\n");
        }
        put("K");
        putUint(run);
        put(" ");
        putHex(g_logits, 12);
        put("\n");
    }
    put("done\n");
    return 0;
}
