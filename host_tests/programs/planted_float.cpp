// A deliberately planted floating-point operation beside an integer-only kernel, for the image checks.
#include "console_text.hpp"
volatile float g_x = 1.5f;
volatile float g_y = 2.0f;
volatile int g_out;
extern "C" __attribute__((noinline)) void planted_kernel() { g_out = static_cast<int>(g_x * g_y); }
extern "C" __attribute__((noinline)) int integer_kernel(int a) { return a * 3 + 1; }
extern "C" int app_main() {
    planted_kernel();
    put("float app\n");
    return integer_kernel(g_out) == 10 ? 0 : 1;
}
