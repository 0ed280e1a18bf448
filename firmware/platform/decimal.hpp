// Integers as decimal text, the one formatter of the firmware's records and console lines.
//
// Freestanding: no standard library, no heap, no division by a variable. Each digit goes to
// put(char), so every caller keeps its own rule for a full buffer (cut, or mark it overflowed).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace qmcu {
namespace decimal {

// The most digits a uint32_t needs: 4294967295.
constexpr size_t kMaxDigits = 10;

// put(c) for each decimal digit of v, most significant first ("0" for 0).
template <typename Put>
constexpr void put_unsigned(uint32_t v, Put&& put) {
    char digits[kMaxDigits] = {};
    size_t n = 0;
    do {
        digits[n++] = static_cast<char>('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (n > 0) {
        put(digits[--n]);
    }
}

// The same for a signed value, '-' first when negative. The magnitude is taken in uint32_t, where
// INT32_MIN's 2147483648 fits; negating in int32_t would overflow.
template <typename Put>
constexpr void put_signed(int32_t v, Put&& put) {
    if (v < 0) {
        put('-');
        put_unsigned(0u - static_cast<uint32_t>(v), put);
    } else {
        put_unsigned(static_cast<uint32_t>(v), put);
    }
}

namespace detail {

// Compile-time checks of both formatters: the text they produce, in a fixed buffer.
struct Text {
    char c[12] = {};
    size_t n = 0;
};

constexpr bool same(const Text& t, const char* s) {
    size_t k = 0;
    for (; s[k] != '\0'; ++k) {
        if (k >= t.n || t.c[k] != s[k]) {
            return false;
        }
    }
    return k == t.n;
}

constexpr Text signed_text(int32_t v) {
    Text t{};
    put_signed(v, [&t](char c) { t.c[t.n++] = c; });
    return t;
}

constexpr Text unsigned_text(uint32_t v) {
    Text t{};
    put_unsigned(v, [&t](char c) { t.c[t.n++] = c; });
    return t;
}

static_assert(same(signed_text(0), "0"), "zero");
static_assert(same(signed_text(-7), "-7"), "negative");
static_assert(same(signed_text(2147483647), "2147483647"), "INT32_MAX");
static_assert(same(signed_text(-2147483647 - 1), "-2147483648"), "INT32_MIN");
static_assert(same(unsigned_text(0u), "0"), "unsigned zero");
static_assert(same(unsigned_text(4294967295u), "4294967295"), "UINT32_MAX");

}  // namespace detail

}  // namespace decimal
}  // namespace qmcu
