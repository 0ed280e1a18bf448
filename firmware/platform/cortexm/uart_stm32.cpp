// Console over an STM32 USART, polled and transmit-only. Two register layouts share this driver:
// SR/DR/BRR/CR1 (STM32F1/F2/F4, uart.driver "stm32-usart") and CR1/BRR/ISR/TDR (STM32F0/F3/F7/L0/L4/G4,
// "stm32-usart-v2", QMCU_UART_STM32_USART_V2). Compiled when the console is "uart"; base address and
// BRR come from the generated board_config.hpp.
#include "board_config.hpp"
#include "console.hpp"
#include "mmio.hpp"

namespace {

#if defined(QMCU_UART_STM32_USART_V2)
constexpr uintptr_t kCr1 = 0x00;
constexpr uintptr_t kBrr = 0x0C;
constexpr uintptr_t kStatus = 0x1C;  // ISR
constexpr uintptr_t kData = 0x28;    // TDR
constexpr uint32_t kCr1Ue = 1u << 0;
#else
constexpr uintptr_t kStatus = 0x00;  // SR
constexpr uintptr_t kData = 0x04;    // DR
constexpr uintptr_t kBrr = 0x08;
constexpr uintptr_t kCr1 = 0x0C;
constexpr uint32_t kCr1Ue = 1u << 13;
#endif
constexpr uint32_t kCr1Te = 1u << 3;
constexpr uint32_t kStatusTc = 1u << 6;   // transmission complete: the shift register is empty too
constexpr uint32_t kStatusTxe = 1u << 7;  // the data register may take the next byte

inline volatile uint32_t& usart(uintptr_t offset) {
    return qmcu::platform::reg32(qmcu::board_config::kUartBase + offset);
}

}  // namespace

namespace qmcu {
namespace platform {

void console_write(const char* p, size_t n) {
    for (size_t k = 0; k < n; ++k) {
        while ((usart(kStatus) & kStatusTxe) == 0u) {
        }
        usart(kData) = static_cast<uint8_t>(p[k]);
    }
}

namespace detail {

void console_init() {
    // Runs before the TX pin is switched to the USART (board_init), so the pin meets a USART that
    // already drives the idle level. BRR is written with the USART disabled (the v2 layout requires it); 8N1 and 16x oversampling
    // are the reset values of CR1's other bits, CR2 and CR3.
    usart(kCr1) = 0;
    usart(kBrr) = board_config::kUartDivisor;
    usart(kCr1) = kCr1Ue;
    usart(kCr1) = kCr1Ue | kCr1Te;
}

void console_flush() {
    while ((usart(kStatus) & kStatusTc) == 0u) {
    }
}

}  // namespace detail

}  // namespace platform
}  // namespace qmcu
