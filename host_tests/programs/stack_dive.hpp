// dive(0) recurses until its frames reach a little way into the guard below the stack, then comes back:
// nothing crashes, but the guard words are overwritten (the exit reports a stack overflow).
#pragma once
#include <stdint.h>
extern "C" uint32_t __qmcu_stack_limit[];
namespace {
uintptr_t stack_pointer() { uintptr_t sp; __asm__ volatile("mov %0, sp" : "=r"(sp)); return sp; }
}  // namespace
extern "C" __attribute__((noinline)) uint32_t dive(uint32_t depth) {
    volatile uint32_t pad[4] = {depth, depth, depth, depth};
    if (stack_pointer() + 32u > reinterpret_cast<uintptr_t>(__qmcu_stack_limit)) {
        return dive(depth + 1u) + pad[0];
    }
    return pad[1];
}
