// The result protocol, firmware side: one ASCII line per record, the same on every console.
//
//   QM <seq> <TYPE> <key>=<value> ... *<crc>\n
//
// crc is the CRC-32 (IEEE 802.3, as zlib) of the bytes from 'Q' up to but excluding " *", in 8
// lowercase hex digits. The host parser (tools/qmcu/run/records.py) rejects any stream that is not
// complete and intact, so a lost, doubled or garbled line can never pass as a result.
//
// Freestanding on purpose: no standard library, no heap, no float, no printf, so it runs on the
// smallest Cortex-M image and costs the same in every build corner.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "decimal.hpp"

namespace qmcu {
namespace records {

// The protocol version every BEGIN record carries (proto=). The host reads the same number from
// here (tools/qmcu/run/records.py PROTOCOL_VERSION parses this line): change the format, raise it.
constexpr int32_t kProtocolVersion = 1;

namespace detail {

struct CrcTable {
    uint32_t entry[256];
};

constexpr CrcTable make_crc_table() {
    CrcTable t{};
    for (uint32_t i = 0; i < 256u; ++i) {
        uint32_t c = i;
        for (int bit = 0; bit < 8; ++bit) {
            c = (c & 1u) != 0u ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        }
        t.entry[i] = c;
    }
    return t;
}

// Built by the compiler, so it lands in flash as constant data and start-up does no work.
inline constexpr CrcTable kCrcTable = make_crc_table();

}  // namespace detail

// Same convention as zlib's crc32(): start with 0, feed the previous result back in to continue.
constexpr uint32_t crc32_update(uint32_t crc, const char* p, size_t n) {
    crc = ~crc;
    for (size_t k = 0; k < n; ++k) {
        crc = detail::kCrcTable.entry[(crc ^ static_cast<uint8_t>(p[k])) & 0xFFu] ^ (crc >> 8);
    }
    return ~crc;
}

static_assert(crc32_update(0, "123456789", 9) == 0xCBF43926u, "CRC-32 check value");
static_assert(crc32_update(crc32_update(0, "1234", 4), "56789", 5) == 0xCBF43926u, "CRC-32 is resumable");

// Builds one record in a fixed buffer and hands the finished line to Sink::write(p, n) in one call,
// so a console that interleaves writers never splits a record. Sink::write may be static or not.
//
//   w.begin("R"); w.field("i", 3); w.field_list("out", out, 1); w.end();
//
// Keys and tokens must be [A-Za-z0-9_.-]+; the host rejects anything else. A record longer than
// the buffer is not cut (a cut line could still look plausible): end() prints "QM <seq> OVERFLOW"
// in its place, which the host reports as such.
template <typename Sink, size_t N = 256>
class RecordWriter {
public:
    RecordWriter() = default;
    explicit RecordWriter(const Sink& sink) : sink_(sink) {}

    // Starts a record; a record begun but never ended is simply dropped.
    void begin(const char* type) {
        len_ = 0;
        overflow_ = false;
        open_ = true;
        put_str("QM ");
        put_uint(seq_);
        put(' ');
        put_str(type);
    }

    void field(const char* key, int32_t v) {
        if (key_eq(key)) {
            put_int(v);
        }
    }

    void field(const char* key, const char* token) {
        if (key_eq(key)) {
            put_str(token);
        }
    }

    void field_list(const char* key, const int8_t* v, size_t n) {
        if (!key_eq(key)) {
            return;
        }
        for (size_t k = 0; k < n; ++k) {
            if (k != 0) {
                put(',');
            }
            put_int(v[k]);
        }
    }

    void end() {
        if (!open_) {
            return;
        }
        if (overflow_) {
            len_ = 0;
            put_str("QM ");
            put_uint(seq_);
            put_str(" OVERFLOW");
        }
        // The CRC covers exactly what is in the buffer now; the trailer has reserved room.
        const uint32_t crc = crc32_update(0, buf_, len_);
        buf_[len_++] = ' ';
        buf_[len_++] = '*';
        for (int shift = 28; shift >= 0; shift -= 4) {
            buf_[len_++] = "0123456789abcdef"[(crc >> shift) & 0xFu];
        }
        buf_[len_++] = '\n';
        sink_.write(buf_, len_);
        ++seq_;
        open_ = false;
    }

    // A human-readable line between records. One that would start with "QM " gets a '#' in front,
    // so the host never mistakes it for a (corrupt) record. Embedded newlines are the caller's business.
    void text(const char* line) {
        if (line[0] == 'Q' && line[1] == 'M' && line[2] == ' ') {
            sink_.write("#", 1);
        }
        size_t n = 0;
        while (line[n] != '\0') {
            ++n;
        }
        sink_.write(line, n);
        sink_.write("\n", 1);
    }

    uint32_t seq() const { return seq_; }

private:
    static constexpr size_t kTrailer = 11;  // " *" + 8 hex digits + "\n"
    static_assert(N >= 64, "a record line needs room for at least a short record and its trailer");

    bool key_eq(const char* key) {
        if (!open_) {
            return false;
        }
        put(' ');
        put_str(key);
        put('=');
        return true;
    }

    void put(char c) {
        if (len_ < N - kTrailer) {
            buf_[len_++] = c;
        } else {
            overflow_ = true;
        }
    }

    void put_str(const char* s) {
        while (*s != '\0') {
            put(*s++);
        }
    }

    void put_uint(uint32_t v) {
        decimal::put_unsigned(v, [this](char c) { put(c); });
    }

    void put_int(int32_t v) {
        decimal::put_signed(v, [this](char c) { put(c); });
    }

    Sink sink_{};
    char buf_[N] = {};
    size_t len_ = 0;
    uint32_t seq_ = 0;
    bool open_ = false;
    bool overflow_ = false;
};

}  // namespace records
}  // namespace qmcu
