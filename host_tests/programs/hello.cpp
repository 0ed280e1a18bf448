// Start-up end to end: constructors, .data, .bss, the counter, float (FLOAT=1), the stack measure.
// -DAPP_STATUS=<n>: the exit status.
#include "console_text.hpp"
#if QMCU_STD
#include <string.h>
#endif
namespace {
struct Constructed { Constructed() : value(42) {} int value; };
Constructed g_constructed;   // needs .init_array to run
int g_data = 7;              // needs .data copied from flash
int g_bss;                   // needs .bss zeroed
#if QMCU_FLOAT
volatile float g_a = 1.5f;
volatile float g_b = 2.25f;
#endif
}  // namespace

extern "C" __attribute__((noinline)) int integer_kernel(int a) { return a * 3 + 1; }

extern "C" int app_main() {
    const uint32_t c0 = qmcu::platform::counter_read();
    const uint32_t c1 = qmcu::platform::counter_read();
#if QMCU_STD
    const char* greeting = "qmcu platform ok\n";
    qmcu::platform::console_write(greeting, strlen(greeting));
#else
    put("qmcu platform ok\n");
#endif
    put("counter "); put_uint(c0); put(" "); put_uint(c1); put("\n");
    put("init "); put_uint(static_cast<uint32_t>(g_constructed.value)); put(" ");
    put_uint(static_cast<uint32_t>(g_data)); put(" "); put_uint(static_cast<uint32_t>(g_bss)); put("\n");
#if QMCU_FLOAT
    put("float "); put_uint(static_cast<uint32_t>(g_a * g_b * 100.0f)); put("\n");
#endif
    put("kernel "); put_uint(static_cast<uint32_t>(integer_kernel(g_data))); put("\n");
    put("stack "); put_uint(static_cast<uint32_t>(qmcu::platform::stack_used())); put("\n");
    return APP_STATUS;
}
