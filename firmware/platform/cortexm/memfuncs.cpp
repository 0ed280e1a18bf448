// memcpy, memmove, memset and memcmp for images without a C library (STD=0 corners).
//
// GCC may emit calls to these four even in freestanding code (struct copies, zeroing arrays), so a
// libc-free image must define them. Word-at-a-time when both pointers allow it, bytes otherwise.
#include <stddef.h>
#include <stdint.h>

#if !defined(QMCU_STD) || !QMCU_STD

// Without this the compiler may recognise the loops below as memset/memcpy and call them: itself.
#pragma GCC optimize("no-tree-loop-distribute-patterns")

namespace {

typedef uint32_t __attribute__((may_alias)) Word;
constexpr uintptr_t kWordMask = sizeof(Word) - 1;

inline bool word_aligned(const void* a, const void* b) {
    return ((reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b)) & kWordMask) == 0;
}

}  // namespace

extern "C" {

void* memcpy(void* dst, const void* src, size_t n) {
    unsigned char* d = static_cast<unsigned char*>(dst);
    const unsigned char* s = static_cast<const unsigned char*>(src);
    if (word_aligned(d, s)) {
        for (; n >= sizeof(Word); n -= sizeof(Word), d += sizeof(Word), s += sizeof(Word)) {
            *reinterpret_cast<Word*>(d) = *reinterpret_cast<const Word*>(s);
        }
    }
    for (; n > 0; --n) {
        *d++ = *s++;
    }
    return dst;
}

void* memmove(void* dst, const void* src, size_t n) {
    unsigned char* d = static_cast<unsigned char*>(dst);
    const unsigned char* s = static_cast<const unsigned char*>(src);
    if (reinterpret_cast<uintptr_t>(d) - reinterpret_cast<uintptr_t>(s) >= n) {
        // dst is below src or the two do not overlap: a forward copy is safe.
        return memcpy(dst, src, n);
    }
    // dst overlaps the end of src: copy backwards.
    d += n;
    s += n;
    if (word_aligned(d, s)) {
        for (; n >= sizeof(Word); n -= sizeof(Word)) {
            d -= sizeof(Word);
            s -= sizeof(Word);
            *reinterpret_cast<Word*>(d) = *reinterpret_cast<const Word*>(s);
        }
    }
    for (; n > 0; --n) {
        *--d = *--s;
    }
    return dst;
}

void* memset(void* dst, int value, size_t n) {
    unsigned char* d = static_cast<unsigned char*>(dst);
    const unsigned char byte = static_cast<unsigned char>(value);
    for (; n > 0 && (reinterpret_cast<uintptr_t>(d) & kWordMask) != 0; --n) {
        *d++ = byte;
    }
    const Word word = byte * 0x01010101u;
    for (; n >= sizeof(Word); n -= sizeof(Word), d += sizeof(Word)) {
        *reinterpret_cast<Word*>(d) = word;
    }
    for (; n > 0; --n) {
        *d++ = byte;
    }
    return dst;
}

int memcmp(const void* a, const void* b, size_t n) {
    const unsigned char* p = static_cast<const unsigned char*>(a);
    const unsigned char* q = static_cast<const unsigned char*>(b);
    for (; n > 0; --n, ++p, ++q) {
        if (*p != *q) {
            return *p < *q ? -1 : 1;
        }
    }
    return 0;
}

}  // extern "C"

#endif  // !QMCU_STD
