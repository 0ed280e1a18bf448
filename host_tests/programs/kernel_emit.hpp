// What the kernel-check programs print: "L<layer> <k> <hex bytes>" per output vector, and runLayer(), which runs
// one layer on its generated inputs at every alignment. The program defines emit() (the platform console on a
// target, stdout on the host).
#pragma once
#include <qmcu/qdense_fast.hpp>
#include <stddef.h>
#include <stdint.h>
#include "kernel_inputs.hpp"
namespace {
void emit(const char* s, size_t n);
void emitText(const char* s) { size_t n = 0; while (s[n] != '\0') { ++n; } emit(s, n); }
[[maybe_unused]] void emitUint(uint32_t v) {
    char digits[10];
    int d = 0;
    do { digits[d++] = static_cast<char>('0' + v % 10u); v /= 10u; } while (v != 0u);
    char out[10];
    for (int k = 0; k < d; ++k) { out[k] = digits[d - 1 - k]; }
    emit(out, static_cast<size_t>(d));
}
void emitLine(uint32_t layer, uint32_t k, const int8_t* out, size_t n) {
    static const char kHex[] = "0123456789abcdef";
    char line[24 + 2 * 256];
    size_t p = 0;
    line[p++] = 'L';
    uint32_t v = layer;
    char digits[10];
    int d = 0;
    do { digits[d++] = static_cast<char>('0' + v % 10u); v /= 10u; } while (v != 0u);
    while (d > 0) { line[p++] = digits[--d]; }
    line[p++] = ' ';
    v = k;
    do { digits[d++] = static_cast<char>('0' + v % 10u); v /= 10u; } while (v != 0u);
    while (d > 0) { line[p++] = digits[--d]; }
    line[p++] = ' ';
    for (size_t i = 0; i < n; ++i) {
        const uint8_t b = static_cast<uint8_t>(out[i]);
        line[p++] = kHex[b >> 4];
        line[p++] = kHex[b & 15u];
    }
    line[p++] = '\n';
    emit(line, p);
}
// noinline + noipa: the kernel runs on run-time weights, biases and requantizer, as in an application.
template <size_t NIn, size_t NOut>
__attribute__((noinline, noipa)) void runLayer(uint32_t index, const qmcu::QDenseFast<NIn, NOut>& kernel, uint32_t count) {
    InputGen gen(index);
    // Input and output at every alignment: the DSP path reads input words and stores output words unaligned.
    alignas(4) int8_t in_buf[NIn + 4];
    alignas(4) int8_t out_buf[NOut + 8];
    int8_t* in = in_buf + index % 4u;
    int8_t* out = out_buf + (index / 4u) % 4u;
    for (uint32_t k = 0; k < count; ++k) {
        gen.fill(index, k, in, NIn);
        out[NOut] = 0x5a;
        kernel.forward(in, out);
        if (out[NOut] != 0x5a) { emitText("OVERRUN\n"); }
        emitLine(index, k, out, NOut);
    }
}
}  // namespace
