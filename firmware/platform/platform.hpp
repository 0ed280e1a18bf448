// The platform layer: everything the application needs from the board, and nothing more.
//
// Freestanding C++17: only <stdint.h> and <stddef.h>, no standard library, no heap, no float.
// One implementation per kind of board: firmware/platform/cortexm/*.cpp for the Cortex-M boards
// (start-up, semihosting console, instruction counter) and firmware/platform/host/platform.cpp
// for the build machine. Which files are compiled, and every board fact they read (QMCU_* macros),
// comes from tools/qmcu/build/toolchain.py, which reads the board's JSON file.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace qmcu {
namespace platform {

// Write n bytes to the board's console (semihosting stdout under QEMU, stdout on the host).
void console_write(const char* p, size_t n);

// End the run with this status; under QEMU it becomes the emulator's exit code. Before it ends a
// target run it checks the stack guard: a damaged guard prints "FAULT stack overflow" and ends
// with status 4 instead.
[[noreturn]] void exit(int status);

// The board's instruction/cycle counter (see the board's "counter" entry). counter_start() is
// called once by the start-up code before app_main(); counter_read() returns 0 on boards
// without a counter. Differences of two reads are exact modulo 2^32.
void counter_start();
uint32_t counter_read();

// Make sure the counter counts; call it before each measurement, outside the timed window. The DWT
// cycle counter stops whenever a debugger clears DEMCR, and pyOCD does exactly that when it closes
// its session after flashing, which is after the reset that started this image: so the counter is
// enabled again before every measurement, not only at start-up. Nothing to do for other counters.
#if defined(QMCU_COUNTER_DWT) && QMCU_COUNTER_DWT
void counter_resume();
#else
inline void counter_resume() {}
#endif

// Deepest stack use so far in bytes, from the pattern painted at reset (0 on the host).
size_t stack_used();

// The status the END record should carry for the application's status. Where the run ends in a
// halt (a real board: no exit status reaches the host, only the END record does), a damaged stack
// guard turns it into kStatusStackOverflow, so an overflow cannot pass as status 0. Elsewhere the
// exit status carries the overflow (exit() checks the guard) and END keeps the application's status.
#if defined(QMCU_EXIT_HALT) && QMCU_EXIT_HALT
int32_t end_status(int32_t status);
#else
inline int32_t end_status(int32_t status) { return status; }
#endif

// Exit statuses the platform itself produces (the application's own statuses are 0..2).
constexpr int kStatusFault = 3;
constexpr int kStatusStackOverflow = 4;

namespace detail {
// Platform internals shared between the platform's own files; not for the application.

// Ends the run through the console's channel (semihosting exit), without any checks.
[[noreturn]] void console_exit(int status);

// True while the guard words below the stack still hold their painted pattern.
bool stack_guard_intact();
}  // namespace detail

}  // namespace platform
}  // namespace qmcu

// The application's entry point, defined by the application; its return value is the exit status.
extern "C" int app_main();
