// Board bring-up before the application runs: the clock, the console's peripheral clocks, the
// console itself, then its pins (pulled up, switched to the USART) and, on a real pin, a "\r\n". Every address comes from the generated board_config.hpp
// (tools/qmcu/codegen/board_config.py, from the board's JSON file); this file names no board.
//
// Compiled when the board needs any of it (a UART console, or clock steps at reset).
#include "board_config.hpp"
#include "console.hpp"
#include "mmio.hpp"

namespace {

using qmcu::platform::reg32;

// STM32 GPIO port registers (every family with MODER/AFR): 2 mode bits per pin, 2 pull bits per
// pin, 4 AF bits per pin.
constexpr uintptr_t kGpioModer = 0x00;
constexpr uintptr_t kGpioPupdr = 0x0C;
constexpr uintptr_t kGpioAfrl = 0x20;
constexpr uint32_t kModeAlternate = 0x2u;
constexpr uint32_t kPullUp = 0x1u;

void run_clock_steps() {
    for (const auto& step : qmcu::board_config::kClockInit) {
        if (step.reg == 0u) {
            break;
        }
        reg32(step.reg) |= step.set;
        // An oscillator or PLL is usable only once its ready flag says so (a step without a flag has mask 0).
        while (step.wait_mask != 0u && (reg32(step.wait_reg) & step.wait_mask) != step.wait_mask) {
        }
    }
}

void enable_clocks() {
    for (const auto& e : qmcu::board_config::kEnable) {
        if (e.reg == 0u) {
            break;
        }
        reg32(e.reg) |= 1u << e.bit;
        // Read back: the enable must have reached the peripheral before its registers are written.
        const uint32_t enabled = reg32(e.reg);
        (void)enabled;
    }
}

// Returns whether any pin was routed (a real board's console; QEMU's UARTs need no pins).
bool route_pins() {
    bool routed = false;
    for (const auto& p : qmcu::board_config::kPins) {
        if (p.gpio_base == 0u) {
            break;
        }
        // The pull-up first: a UART line idles high, and a floating TX pin (input, or analog on some
        // families, until it is switched) must not read as a start bit at the other end.
        volatile uint32_t& pupdr = reg32(p.gpio_base + kGpioPupdr);
        const uint32_t pull_shift = 2u * p.pin;
        pupdr = (pupdr & ~(0x3u << pull_shift)) | (kPullUp << pull_shift);
        // AF number next, then the mode, so the pin never drives a stray function in between.
        volatile uint32_t& afr = reg32(p.gpio_base + kGpioAfrl + 4u * (p.pin / 8u));
        const uint32_t af_shift = 4u * (p.pin % 8u);
        afr = (afr & ~(0xFu << af_shift)) | (p.af << af_shift);
        volatile uint32_t& moder = reg32(p.gpio_base + kGpioModer);
        const uint32_t mode_shift = 2u * p.pin;
        moder = (moder & ~(0x3u << mode_shift)) | (kModeAlternate << mode_shift);
        routed = true;
    }
    return routed;
}

}  // namespace

namespace qmcu {
namespace platform {
namespace detail {

void board_init() {
    run_clock_steps();
    enable_clocks();
    // The console before its pins: with its baud rate set and the transmitter on, the USART drives
    // its TX output high (idle) by the time the pin is switched to it. The other way round, the pin
    // would carry a disabled USART's output for a moment, and the host would read a stray 0x00 or
    // 0xFF in front of the first record.
    console_init();
    if (route_pins()) {
        // On a real pin, end whatever line a glitch might still have started, so the first record
        // starts a line of its own (the host also skips non-printable bytes before the first record).
        static const char kNewline[] = "\r\n";
        console_write(kNewline, sizeof(kNewline) - 1);
    }
}

}  // namespace detail
}  // namespace platform
}  // namespace qmcu
