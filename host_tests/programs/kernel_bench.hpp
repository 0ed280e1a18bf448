// The bench program (64-32-10 MLP and 2-4-1 XOR on the fast kernels) after its generated part: the layer
// namespaces mlp1, mlp2, xor1, xor2 (kernel_layout.render_prepared), xorlut::kTable, and MLP_RUNS/XOR_RUNS.
// It prints every input and output as hex lines for the reference check; the plugin counts mlp_infer/xor_infer.
#pragma once
#include <qmcu/qdense_fast.hpp>
#include "platform.hpp"
namespace {
void put(const char* s) { size_t n = 0; while (s[n] != '\0') { ++n; } qmcu::platform::console_write(s, n); }
void putLine(const char* tag, uint32_t k, const int8_t* v, size_t n) {
    static const char kHex[] = "0123456789abcdef";
    char line[160];
    size_t p = 0;
    for (; tag[p] != '\0'; ++p) { line[p] = tag[p]; }
    line[p++] = ' ';
    line[p++] = static_cast<char>('0' + k / 10u);
    line[p++] = static_cast<char>('0' + k % 10u);
    line[p++] = ' ';
    for (size_t i = 0; i < n; ++i) {
        line[p++] = kHex[static_cast<uint8_t>(v[i]) >> 4];
        line[p++] = kHex[static_cast<uint8_t>(v[i]) & 15u];
    }
    line[p++] = '\n';
    qmcu::platform::console_write(line, p);
}
struct Mlp {
    qmcu::QDenseFast<64, 32> fc1;
    qmcu::QDenseFast<32, 10> fc2;
};
struct XorNet {
    qmcu::QDenseFast<2, 4> fc1;
    qmcu::QDenseFast<4, 1> fc2;
    const int8_t* sigmoid_lut;
};
}  // namespace
// Filled at start-up (not constexpr), as the application does: the weights stay data in flash.
namespace fwd {
Mlp g_mlp;
XorNet g_xor;
int8_t g_hidden[32];
int8_t g_xor_hidden[4];
int8_t g_xor_logit[1];
}  // namespace fwd
using namespace fwd;

extern "C" __attribute__((noinline, noipa)) void mlp_infer(const int8_t* in, int8_t* out) {
    g_mlp.fc1.forward(in, g_hidden);
    g_mlp.fc2.forward(g_hidden, out);
}

// The XOR application's qmcu_infer with the fast kernels.
extern "C" __attribute__((noinline, noipa)) void xor_infer(const int8_t* in, int8_t* out) {
    g_xor.fc1.forward(in, g_xor_hidden);
    g_xor.fc2.forward(g_xor_hidden, g_xor_logit);
    out[0] = g_xor.sigmoid_lut[static_cast<int32_t>(g_xor_logit[0]) + 128];
}

extern "C" int app_main() {
    g_mlp = Mlp{{mlp1::kWeights, mlp1::kFoldedBiases, mlp1::kRequantizer},
                {mlp2::kWeights, mlp2::kFoldedBiases, mlp2::kRequantizer}};
    g_xor = XorNet{{xor1::kWeights, xor1::kFoldedBiases, xor1::kRequantizer},
                   {xor2::kWeights, xor2::kFoldedBiases, xor2::kRequantizer}, xorlut::kTable};
    put("variant "); put(qmcu::kDenseFastVariant); put("\n");
    uint32_t state = 99u;
    for (uint32_t k = 0; k < MLP_RUNS; ++k) {
        int8_t in[64];
        int8_t out[10];
        for (int i = 0; i < 64; ++i) {
            state = state * 1664525u + 1013904223u;
            in[i] = static_cast<int8_t>(static_cast<int32_t>(state >> 24) - 128);
        }
        mlp_infer(in, out);
        putLine("M", k, in, 64);
        putLine("m", k, out, 10);
    }
    for (uint32_t k = 0; k < XOR_RUNS; ++k) {
        int8_t in[2];
        int8_t out[1];
        state = state * 1664525u + 1013904223u;
        in[0] = static_cast<int8_t>(k < 4u ? ((k & 1u) ? 127 : -128) : static_cast<int32_t>(state >> 24) - 128);
        in[1] = static_cast<int8_t>(k < 4u ? ((k & 2u) ? 127 : -128) : static_cast<int32_t>((state >> 16) & 255u) - 128);
        xor_infer(in, out);
        putLine("X", k, in, 2);
        putLine("x", k, out, 1);
    }
    put("done\n");
    return 0;
}
