// No stack left for the fault handler's frame: the core locks up.
// -DSTACK_NOWHERE_TEXT='"0x..."': an address where the board has no memory.
#include "console_text.hpp"
extern "C" int app_main() {
    put("pulling the stack away\n");
    __asm__ volatile(".syntax unified\n\tldr r0, =" STACK_NOWHERE_TEXT "\n\tmsr msp, r0\n\tudf #1\n\t.ltorg" ::: "r0", "memory");
    return 0;
}
