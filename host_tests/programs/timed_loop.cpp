// Prints "loop <n> <counter difference>" for loops of n iterations of exactly two instructions each.
#include "console_text.hpp"
namespace {
// Exactly two instructions per iteration (subs, bne) between the two counter reads.
__attribute__((noinline)) uint32_t timed_loop(uint32_t n) {
    const uint32_t t0 = qmcu::platform::counter_read();
    if (n != 0u) {
        __asm__ volatile(".syntax unified\n1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+l"(n) : : "cc");
    }
    const uint32_t t1 = qmcu::platform::counter_read();
    return t1 - t0;
}
}  // namespace
extern "C" int app_main() {
    const uint32_t sizes[4] = {0u, 1000u, 2000u, 4000u};
    for (uint32_t n : sizes) {
        put("loop "); put_uint(n); put(" "); put_uint(timed_loop(n)); put("\n");
    }
    return 0;
}
