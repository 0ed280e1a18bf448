// Console over an STM32 USART with the CR1/BRR/ISR/TDR register layout (STM32F0/F3/F7/L0/L4/G4),
// polled and transmit-only. Compiled when the console is "uart" and the board's uart.driver is
// "stm32-usart-v2"; base address and BRR come from the generated board_config.hpp.
#include "board_config.hpp"
#include "console.hpp"

namespace {

constexpr uintptr_t kCr1 = 0x00;
constexpr uintptr_t kBrr = 0x0C;
constexpr uintptr_t kIsr = 0x1C;
constexpr uintptr_t kTdr = 0x28;
constexpr uint32_t kCr1Ue = 1u << 0;
constexpr uint32_t kCr1Te = 1u << 3;
constexpr uint32_t kIsrTc = 1u << 6;   // transmission complete: the shift register is empty too
constexpr uint32_t kIsrTxe = 1u << 7;  // TDR may take the next byte

inline volatile uint32_t& usart(uintptr_t offset) {
    return *reinterpret_cast<volatile uint32_t*>(qmcu::board_config::kUartBase + offset);
}

}  // namespace

namespace qmcu {
namespace platform {

void console_write(const char* p, size_t n) {
    for (size_t k = 0; k < n; ++k) {
        while ((usart(kIsr) & kIsrTxe) == 0u) {
        }
        usart(kTdr) = static_cast<uint8_t>(p[k]);
    }
}

namespace detail {

void console_init() {
    // BRR may only change while the USART is disabled; 8N1 and 16x oversampling are the reset values.
    usart(kCr1) = 0;
    usart(kBrr) = board_config::kUartDivisor;
    usart(kCr1) = kCr1Ue;
    usart(kCr1) = kCr1Ue | kCr1Te;
}

void console_flush() {
    while ((usart(kIsr) & kIsrTc) == 0u) {
    }
}

}  // namespace detail

}  // namespace platform
}  // namespace qmcu
