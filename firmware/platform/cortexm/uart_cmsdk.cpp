// Console over an Arm CMSDK APB UART (the MPS2/MPS2+ FPGA images), polled and transmit-only.
// Compiled when the console is "uart" and the board's uart.driver is "cmsdk-uart"; base address and
// BAUDDIV come from the generated board_config.hpp.
#include "board_config.hpp"
#include "console.hpp"
#include "mmio.hpp"

namespace {

constexpr uintptr_t kData = 0x00;
constexpr uintptr_t kState = 0x04;
constexpr uintptr_t kCtrl = 0x08;
constexpr uintptr_t kBaudDiv = 0x10;
constexpr uint32_t kStateTxFull = 1u << 0;
constexpr uint32_t kCtrlTxEnable = 1u << 0;

static_assert(qmcu::board_config::kUartDivisor >= 16u, "the CMSDK UART needs BAUDDIV >= 16");

inline volatile uint32_t& uart(uintptr_t offset) {
    return qmcu::platform::reg32(qmcu::board_config::kUartBase + offset);
}

inline void wait_not_full() {
    while ((uart(kState) & kStateTxFull) != 0u) {
    }
}

}  // namespace

namespace qmcu {
namespace platform {

void console_write(const char* p, size_t n) {
    for (size_t k = 0; k < n; ++k) {
        wait_not_full();
        uart(kData) = static_cast<uint8_t>(p[k]);
    }
}

namespace detail {

void console_init() {
    uart(kBaudDiv) = board_config::kUartDivisor;
    uart(kCtrl) = kCtrlTxEnable;
}

// The CMSDK UART has no "shift register empty" flag: an empty buffer is as far as software can see.
void console_flush() { wait_not_full(); }

}  // namespace detail

}  // namespace platform
}  // namespace qmcu
