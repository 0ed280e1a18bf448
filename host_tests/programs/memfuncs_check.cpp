// memcpy/memmove/memset/memcmp (the STD=0 platform's own) against byte-wise references, at every
// alignment and overlap direction; prints "mem ok <cases>".
#include "console_text.hpp"
extern "C" void* memcpy(void* d, const void* s, size_t n);
extern "C" void* memmove(void* d, const void* s, size_t n);
extern "C" void* memset(void* d, int v, size_t n);
extern "C" int memcmp(const void* a, const void* b, size_t n);
// Called through volatile pointers so the compiler cannot expand them inline.
void* (*volatile g_memcpy)(void*, const void*, size_t) = memcpy;
void* (*volatile g_memmove)(void*, const void*, size_t) = memmove;
void* (*volatile g_memset)(void*, int, size_t) = memset;
int (*volatile g_memcmp)(const void*, const void*, size_t) = memcmp;
namespace {
volatile uint8_t g_buf[96];
uint8_t g_work[96];
uint8_t g_ref[96];
void fill(uint8_t* p, size_t n, uint32_t seed) {
    for (size_t k = 0; k < n; ++k) { seed = seed * 1103515245u + 12345u; p[k] = static_cast<uint8_t>(seed >> 16); }
}
bool same(const uint8_t* a, const uint8_t* b, size_t n) {
    for (size_t k = 0; k < n; ++k) { if (static_cast<const volatile uint8_t*>(a)[k] != b[k]) { return false; } }
    return true;
}
// Reference copy through volatile bytes: the compiler cannot turn it into a memmove call.
void ref_move(uint8_t* base, size_t dst, size_t src, size_t n) {
    for (size_t k = 0; k < n; ++k) { g_buf[k] = base[src + k]; }
    for (size_t k = 0; k < n; ++k) { base[dst + k] = g_buf[k]; }
}
const size_t kSizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40};
}  // namespace
extern "C" int app_main() {
    uint32_t cases = 0;
    for (size_t dst = 0; dst < 8; ++dst) {
        for (size_t src = 0; src < 8; ++src) {
            for (size_t n : kSizes) {
                // memcpy between distinct areas, memmove within one buffer (either overlap direction).
                fill(g_work, sizeof(g_work), static_cast<uint32_t>(dst * 64 + src * 8 + n));
                for (size_t k = 0; k < sizeof(g_work); ++k) { g_ref[k] = g_work[k]; }
                g_memcpy(g_work + dst, g_work + 48 + src, n);
                ref_move(g_ref, dst, 48 + src, n);
                if (!same(g_work, g_ref, sizeof(g_work))) { put("memcpy FAIL\n"); return 1; }
                g_memmove(g_work + dst + 4, g_work + src, n);
                ref_move(g_ref, dst + 4, src, n);
                if (!same(g_work, g_ref, sizeof(g_work))) { put("memmove forward-overlap FAIL\n"); return 1; }
                g_memmove(g_work + dst, g_work + src + 4, n);
                ref_move(g_ref, dst, src + 4, n);
                if (!same(g_work, g_ref, sizeof(g_work))) { put("memmove backward-overlap FAIL\n"); return 1; }
                g_memset(g_work + dst, 0x1A5, n);
                for (size_t k = 0; k < n; ++k) { static_cast<volatile uint8_t*>(g_ref)[dst + k] = 0xA5; }
                if (!same(g_work, g_ref, sizeof(g_work))) { put("memset FAIL\n"); return 1; }
                if (g_memcmp(g_work, g_ref, sizeof(g_work)) != 0) { put("memcmp equal FAIL\n"); return 1; }
                if (n > 0) {
                    // Bytes compare as unsigned char: 0x90 is greater than 0x10.
                    g_work[src + n - 1] = 0x10;
                    g_ref[src + n - 1] = 0x90;
                    if (g_memcmp(g_work + src, g_ref + src, n) >= 0 || g_memcmp(g_ref + src, g_work + src, n) <= 0) {
                        put("memcmp order FAIL\n");
                        return 1;
                    }
                }
                ++cases;
            }
        }
    }
    put("mem ok "); put_uint(cases); put("\n");
    return 0;
}
