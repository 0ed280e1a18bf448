// The test inputs of layer `index` in the kernel-check programs (mirrors layer_inputs() in kernel_checks.py).
#pragma once
#include <stddef.h>
#include <stdint.h>
struct InputGen {
    uint32_t state;
    explicit InputGen(uint32_t index) : state(index * 2654435761u + 12345u) {}
    void fill(uint32_t index, uint32_t k, int8_t* x, size_t n) {
        for (size_t i = 0; i < n; ++i) {
            int32_t v;
            if (k < 256u) {
                v = static_cast<int32_t>((k + 73u * i + 11u * index) & 255u) - 128;
            } else if (k == 256u) {
                v = -128;
            } else if (k == 257u) {
                v = 127;
            } else if (k == 258u) {
                v = 0;
            } else if (k == 259u) {
                v = i % 2 == 0 ? -128 : 127;
            } else {
                state = state * 1664525u + 1013904223u;
                v = static_cast<int32_t>((state >> 24) & 255u) - 128;
            }
            x[i] = static_cast<int8_t>(v);
        }
    }
};
