// Text on the platform console without the C library: what every platform test program prints with.
#pragma once
#include "platform.hpp"
namespace {
[[maybe_unused]] size_t text_length(const char* s) { size_t n = 0; while (s[n] != '\0') { ++n; } return n; }
[[maybe_unused]] void put(const char* s) { qmcu::platform::console_write(s, text_length(s)); }
[[maybe_unused]] void put_uint(uint32_t v) {
    char digits[10];
    int n = 0;
    do { digits[n++] = static_cast<char>('0' + v % 10u); v /= 10u; } while (v != 0u);
    char out[11];
    for (int k = 0; k < n; ++k) { out[k] = digits[n - 1 - k]; }
    qmcu::platform::console_write(out, static_cast<size_t>(n));
}
}  // namespace
