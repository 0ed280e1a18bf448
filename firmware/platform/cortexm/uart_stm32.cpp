// Console over an STM32 USART with the SR/DR/BRR/CR1 register layout (STM32F1/F2/F4), polled and
// transmit-only; uart_stm32v2.cpp is the later CR1/BRR/ISR/TDR layout. Compiled when the console is
// "uart" and the board's uart.driver is "stm32-usart"; base address and BRR come from the generated
// board_config.hpp.
#include "board_config.hpp"
#include "console.hpp"

namespace {

constexpr uintptr_t kSr = 0x00;
constexpr uintptr_t kDr = 0x04;
constexpr uintptr_t kBrr = 0x08;
constexpr uintptr_t kCr1 = 0x0C;
constexpr uint32_t kSrTc = 1u << 6;   // transmission complete: the shift register is empty too
constexpr uint32_t kSrTxe = 1u << 7;  // DR may take the next byte
constexpr uint32_t kCr1Te = 1u << 3;
constexpr uint32_t kCr1Ue = 1u << 13;

inline volatile uint32_t& usart(uintptr_t offset) {
    return *reinterpret_cast<volatile uint32_t*>(qmcu::board_config::kUartBase + offset);
}

}  // namespace

namespace qmcu {
namespace platform {

void console_write(const char* p, size_t n) {
    for (size_t k = 0; k < n; ++k) {
        while ((usart(kSr) & kSrTxe) == 0u) {
        }
        usart(kDr) = static_cast<uint8_t>(p[k]);
    }
}

namespace detail {

void console_init() {
    // 8N1, 16x oversampling: the reset values of CR1's other bits, CR2 and CR3.
    usart(kCr1) = kCr1Ue;
    usart(kBrr) = board_config::kUartDivisor;
    usart(kCr1) = kCr1Ue | kCr1Te;
}

void console_flush() {
    while ((usart(kSr) & kSrTc) == 0u) {
    }
}

}  // namespace detail

}  // namespace platform
}  // namespace qmcu
