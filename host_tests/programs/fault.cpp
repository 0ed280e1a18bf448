// A HardFault: a trap instruction, or (-DFAULT_BY_CALL=1 -DNOWHERE=<address>) a call to an address that
// cannot execute.
#include "console_text.hpp"
extern "C" __attribute__((noinline)) void fault_here() { __builtin_trap(); }
extern "C" int app_main() {
    put("about to fault\n");
#if FAULT_BY_CALL
    void (*volatile nowhere)() = reinterpret_cast<void (*)()>(NOWHERE);
    nowhere();
#else
    fault_here();
#endif
    put("still alive\n");
    return 0;
}
