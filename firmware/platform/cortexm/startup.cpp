// Cortex-M start-up: vector table, reset, fault reporting and the stack guard.
//
// Works on every M-profile core the boards use (armv6-m M0 up to armv8-m M33). The memory layout
// comes from the linker script that tools/qmcu/codegen/linker_script.py generates from the board's JSON file:
//
//   RAM:  .data | .bss | (heap) ... | guard | stack (grows down) | top of RAM
//
// Reset paints the guard and the free stack with known words. At exit a damaged guard means the
// stack ran past its bottom ("FAULT stack overflow", status 4); stack_used() finds the deepest
// painted word that was overwritten.
#include "console.hpp"
#include "decimal.hpp"
#include "mmio.hpp"

// The loops below must stay loops: the compiler could otherwise turn them into calls to memset
// or memcpy, which is legal but needless this early and confusing in a disassembly.
#pragma GCC optimize("no-tree-loop-distribute-patterns")

#ifndef QMCU_IRQ_VECTORS
#define QMCU_IRQ_VECTORS 32
#endif

extern "C" {
// Defined by the generated linker script.
extern uint32_t __qmcu_data_load[];
extern uint32_t __qmcu_data_start[];
extern uint32_t __qmcu_data_end[];
extern uint32_t __qmcu_bss_start[];
extern uint32_t __qmcu_bss_end[];
extern uint32_t __qmcu_ram_start[];
extern uint32_t __qmcu_ram_end[];
extern uint32_t __qmcu_stack_guard[];  // lowest word of the guard
extern uint32_t __qmcu_stack_limit[];  // end of the guard = lowest word of the stack
extern uint32_t __qmcu_stack_top[];    // initial stack pointer

using InitFunction = void (*)();
extern InitFunction __preinit_array_start[];
extern InitFunction __preinit_array_end[];
extern InitFunction __init_array_start[];
extern InitFunction __init_array_end[];

[[noreturn]] void Reset_Handler();
void qmcu_fault_entry();
[[noreturn]] void qmcu_fault_report(const uint32_t* frame, uint32_t exc_return, uint32_t ipsr);
}

namespace {

constexpr uint32_t kStackPaint = 0x5A7AC4E1u;
constexpr uint32_t kGuardPaint = 0x6A4DF00Du;

inline uintptr_t current_sp() {
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

using qmcu::platform::reg32;

void enable_fpu() {
#if defined(QMCU_HAS_FPU) && QMCU_HAS_FPU
    // CPACR: full access to CP10 and CP11 (the FPU), then make sure it is in effect.
    reg32(0xE000ED88u) |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
}

[[noreturn]] __attribute__((noinline)) void reset_continue() {
    // Initialised data from its load image in flash, then zeroed data.
    const uint32_t* src = __qmcu_data_load;
    for (uint32_t* dst = __qmcu_data_start; dst != __qmcu_data_end; ++dst, ++src) {
        *dst = *src;
    }
    for (uint32_t* dst = __qmcu_bss_start; dst != __qmcu_bss_end; ++dst) {
        *dst = 0;
    }
    // Paint the guard, and the stack below the frames live now: the AAPCS allows no use of memory
    // below the stack pointer, and these loops call nothing.
    for (volatile uint32_t* p = __qmcu_stack_guard; p != __qmcu_stack_limit; ++p) {
        *p = kGuardPaint;
    }
    const uintptr_t paint_end = current_sp();
    for (volatile uint32_t* p = __qmcu_stack_limit; reinterpret_cast<uintptr_t>(p) < paint_end; ++p) {
        *p = kStackPaint;
    }
#if defined(QMCU_BOARD_INIT) && QMCU_BOARD_INIT
    // Clock, console clocks and pins, console: before anything that might print.
    qmcu::platform::detail::board_init();
#endif
    // Static constructors (none in the application today, but the C++ rules allow them).
    for (InitFunction* f = __preinit_array_start; f != __preinit_array_end; ++f) {
        (*f)();
    }
    for (InitFunction* f = __init_array_start; f != __init_array_end; ++f) {
        (*f)();
    }
    qmcu::platform::counter_start();
    qmcu::platform::exit(app_main());
}

// Fixed-size text line for the fault report (no printf in a freestanding image).
struct Line {
    char text[80];
    size_t size = 0;

    Line& add(const char* s) {
        while (*s != '\0' && size < sizeof(text)) {
            text[size++] = *s++;
        }
        return *this;
    }
    Line& hex(uint32_t v) {
        add("0x");
        for (int shift = 28; shift >= 0 && size < sizeof(text); shift -= 4) {
            text[size++] = "0123456789abcdef"[(v >> shift) & 0xFu];
        }
        return *this;
    }
    Line& dec(uint32_t v) {
        qmcu::decimal::put_unsigned(v, [this](char c) {
            if (size < sizeof(text)) {
                text[size++] = c;
            }
        });
        return *this;
    }
};

const char* exception_name(uint32_t number) {
    switch (number) {
        case 2: return "NMI";
        case 3: return "HardFault";
        case 4: return "MemManage";
        case 5: return "BusFault";
        case 6: return "UsageFault";
        case 7: return "SecureFault";
        case 11: return "SVCall";
        case 12: return "DebugMonitor";
        case 14: return "PendSV";
        case 15: return "SysTick";
        default: return nullptr;
    }
}

}  // namespace

// The reset vector. Only the FPU is switched on here, before any code that the compiler might
// give a floating-point register; everything else happens in reset_continue().
extern "C" [[noreturn]] void Reset_Handler() {
    enable_fpu();
    reset_continue();
}

// Every other exception lands here. EXC_RETURN bit 2 says which stack holds the exception frame
// (0: MSP, 1: PSP); the frame is r0, r1, r2, r3, r12, lr, pc, xPSR. Written in Thumb-1 only
// (low registers, no cbz, no IT) so that the same code runs on armv6-m.
extern "C" __attribute__((naked)) void qmcu_fault_entry() {
    // GCC hands Thumb-1 inline assembly over in divided syntax; this code is written in unified.
    __asm__ volatile(
        ".syntax unified\n\t"
        "movs r0, #4\n\t"
        "mov r1, lr\n\t"
        "tst r0, r1\n\t"
        "beq 1f\n\t"
        "mrs r0, psp\n\t"
        "b 2f\n"
        "1:\n\t"
        "mrs r0, msp\n"
        "2:\n\t"
        "mrs r2, ipsr\n\t"
        "bl qmcu_fault_report\n\t");
}

extern "C" [[noreturn]] void qmcu_fault_report(const uint32_t* frame, uint32_t exc_return, uint32_t ipsr) {
    (void)exc_return;
    const uintptr_t at = reinterpret_cast<uintptr_t>(frame);
    const uintptr_t ram_start = reinterpret_cast<uintptr_t>(__qmcu_ram_start);
    const uintptr_t ram_end = reinterpret_cast<uintptr_t>(__qmcu_ram_end);
    // A frame outside RAM (the stack pointer itself was wrong) is not read: reading it would fault again.
    const bool readable = at % 4u == 0u && at >= ram_start && at + 32u <= ram_end;
    const uint32_t pc = readable ? frame[6] : 0u;
    const uint32_t lr = readable ? frame[5] : 0u;
    const uint32_t number = ipsr & 0x1FFu;

    Line line;
    line.add("FAULT ");
    if (const char* name = exception_name(number)) {
        line.add(name);
    } else if (number >= 16u) {
        line.add("IRQ").dec(number - 16u);
    } else {
        line.add("Exception").dec(number);
    }
    line.add(" pc=").hex(pc).add(" lr=").hex(lr).add("\n");
    qmcu::platform::console_write(line.text, line.size);
    qmcu::platform::detail::console_exit(qmcu::platform::kStatusFault);
}

namespace {

using Handler = void (*)();

struct VectorTable {
    const void* initial_sp;
    Handler system[15];
    Handler irq[QMCU_IRQ_VECTORS];
};

constexpr VectorTable make_vector_table() {
    VectorTable t{__qmcu_stack_top, {}, {}};
    for (Handler& h : t.system) {
        h = qmcu_fault_entry;
    }
    t.system[0] = Reset_Handler;
    // Reserved entries (exception numbers 8, 9, 10 and 13) stay zero.
    t.system[7] = t.system[8] = t.system[9] = t.system[12] = nullptr;
    for (Handler& h : t.irq) {
        h = qmcu_fault_entry;
    }
    return t;
}

}  // namespace

// Placed first in flash by the linker script; the core reads the initial stack pointer and the
// reset vector from it.
extern "C" __attribute__((section(".isr_vector"), used)) constexpr VectorTable qmcu_vector_table = make_vector_table();

namespace qmcu {
namespace platform {

namespace detail {

bool stack_guard_intact() {
    for (const volatile uint32_t* p = __qmcu_stack_guard; p != __qmcu_stack_limit; ++p) {
        if (*p != kGuardPaint) {
            return false;
        }
    }
    return true;
}

}  // namespace detail

size_t stack_used() {
    const volatile uint32_t* p = __qmcu_stack_limit;
    const volatile uint32_t* const top = __qmcu_stack_top;
    while (p != top && *p == kStackPaint) {
        ++p;
    }
    return static_cast<size_t>(reinterpret_cast<uintptr_t>(top) - reinterpret_cast<uintptr_t>(p));
}

void exit(int status) {
    if (!detail::stack_guard_intact()) {
        static const char kMessage[] = "FAULT stack overflow\n";
        console_write(kMessage, sizeof(kMessage) - 1);
        detail::console_exit(kStatusStackOverflow);
    }
    detail::console_exit(status);
}

}  // namespace platform
}  // namespace qmcu
