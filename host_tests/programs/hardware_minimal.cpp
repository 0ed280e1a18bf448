// The smallest image that uses everything a real board's platform brings up: console, counter, .data, .bss.
#include "platform.hpp"
namespace {
const char kHello[] = "qmcu hardware image\n";
int g_data = 7;
int g_bss;
}  // namespace
extern "C" __attribute__((noinline)) int integer_kernel(int a) { return a * 3 + 1; }
extern "C" int app_main() {
    const uint32_t t0 = qmcu::platform::counter_read();
    qmcu::platform::console_write(kHello, sizeof(kHello) - 1);
    const int k = integer_kernel(g_data + g_bss);
    const uint32_t t1 = qmcu::platform::counter_read();
    return (k == 22 && t1 - t0 < 0x80000000u) ? 0 : 1;
}
