// Internals the Cortex-M platform files share to assemble a console and an exit from board data.
//
// tools/qmcu/build/toolchain.py compiles exactly one console file (semihosting.cpp, uart_stm32.cpp or
// uart_cmsdk.cpp) and exactly one exit (semihosting.cpp or halt.cpp), as the board file and the
// chosen console say; each defines the functions below that belong to it.
#pragma once

#include "platform.hpp"

namespace qmcu {
namespace platform {
namespace detail {

// Clock steps, peripheral clock enables and console pins from board_config.hpp, then
// console_init(). board_init.cpp; called by the start-up code when QMCU_BOARD_INIT is set.
void board_init();

// Prepare the console for console_write() (UART: baud rate, transmitter on). The console's file.
void console_init();

// Return once every byte written so far has left the console. The console's file; the exit calls
// it first, so the END record is not cut off when the run ends.
void console_flush();

}  // namespace detail
}  // namespace platform
}  // namespace qmcu
