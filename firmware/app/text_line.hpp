// A fixed-size, heap-free line builder for the human-readable console lines (no printf here).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "decimal.hpp"

namespace qmcu {

class TextLine {
public:
    TextLine& add(const char* s) {
        while (*s != '\0') {
            put(*s++);
        }
        return *this;
    }

    TextLine& num(int32_t v) {
        decimal::put_signed(v, [this](char c) { put(c); });
        return *this;
    }

    // A value given in 1e-4 units, printed with exactly four decimals: 8828 -> "0.8828".
    TextLine& fixed4(int32_t e4) {
        if (e4 < 0) {
            put('-');
            e4 = -e4;
        }
        num(e4 / 10000);
        put('.');
        const int32_t frac = e4 % 10000;
        for (int32_t div = 1000; div > 0; div /= 10) {
            put(static_cast<char>('0' + (frac / div) % 10));
        }
        return *this;
    }

    const char* data() const { return buf_; }
    size_t size() const { return len_; }

private:
    void put(char c) {
        if (len_ < sizeof(buf_)) {  // a too-long line is cut, never overflowed
            buf_[len_++] = c;
        }
    }

    char buf_[160] = {};
    size_t len_ = 0;
};

}  // namespace qmcu
