// The board's counter, chosen by the board's "counter" entry (tools/qmcu/build/toolchain.py turns it
// into the QMCU_COUNTER_* macros):
//
//   QMCU_COUNTER_STM32_TIM  an STM32 general-purpose 32-bit timer (e.g. TIM2) free-running at the
//                           core clock: prescaler 0, auto-reload 0xFFFFFFFF. Under QEMU with
//                           -icount shift=0 it advances exactly once per executed instruction.
//   QMCU_COUNTER_DWT        the DWT cycle counter (CYCCNT) of ARMv7-M/ARMv8-M cores.
//   neither                 counter_read() returns 0.
#include "mmio.hpp"
#include "platform.hpp"

namespace {

using qmcu::platform::reg32;

#if defined(QMCU_COUNTER_STM32_TIM) && QMCU_COUNTER_STM32_TIM
// STM32 general-purpose timer register offsets (TIM2..TIM5 layout).
constexpr uintptr_t kTimCr1 = 0x00;
constexpr uintptr_t kTimEgr = 0x14;
constexpr uintptr_t kTimCnt = 0x24;
constexpr uintptr_t kTimPsc = 0x28;
constexpr uintptr_t kTimArr = 0x2C;
constexpr uint32_t kCr1Cen = 1u << 0;
constexpr uint32_t kEgrUg = 1u << 0;

inline volatile uint32_t& tim(uintptr_t offset) { return reg32(static_cast<uintptr_t>(QMCU_TIM_BASE) + offset); }
#elif defined(QMCU_COUNTER_DWT) && QMCU_COUNTER_DWT
constexpr uintptr_t kCpuid = 0xE000ED00u;
constexpr uint32_t kPartnoCortexM7 = 0xC27u;  // CPUID.PARTNO, bits 15:4
constexpr uintptr_t kDemcr = 0xE000EDFCu;
constexpr uint32_t kDemcrTrcena = 1u << 24;
constexpr uintptr_t kDwtCtrl = 0xE0001000u;
constexpr uintptr_t kDwtCyccnt = 0xE0001004u;
constexpr uintptr_t kDwtLar = 0xE0001FB0u;  // lock access register: Cortex-M7 only
constexpr uint32_t kDwtUnlock = 0xC5ACCE55u;
constexpr uint32_t kDwtCyccntena = 1u << 0;

// Trace on (DEMCR.TRCENA), the DWT unlocked where it has a software lock (Cortex-M7: writes to a
// locked DWT are ignored; other cores have no lock-access register there, so it is not written),
// then the cycle counter on. Idempotent: setting bits that are set changes nothing.
void dwt_enable() {
    reg32(kDemcr) |= kDemcrTrcena;
    if (((reg32(kCpuid) >> 4) & 0xFFFu) == kPartnoCortexM7) {
        reg32(kDwtLar) = kDwtUnlock;
    }
    reg32(kDwtCtrl) |= kDwtCyccntena;
}
#endif

}  // namespace

namespace qmcu {
namespace platform {

void counter_start() {
#if defined(QMCU_COUNTER_STM32_TIM) && QMCU_COUNTER_STM32_TIM
    reg32(static_cast<uintptr_t>(QMCU_TIM_ENABLE_REG)) |= 1u << QMCU_TIM_ENABLE_BIT;
    // Read back: the clock enable must have taken effect before the timer's registers are written.
    const uint32_t enabled = reg32(static_cast<uintptr_t>(QMCU_TIM_ENABLE_REG));
    (void)enabled;
    tim(kTimCr1) = 0;
    tim(kTimPsc) = 0;
    tim(kTimArr) = 0xFFFFFFFFu;
    tim(kTimEgr) = kEgrUg;  // load the prescaler now
    tim(kTimCnt) = 0;
    tim(kTimCr1) = kCr1Cen;
#elif defined(QMCU_COUNTER_DWT) && QMCU_COUNTER_DWT
    dwt_enable();
    reg32(kDwtCyccnt) = 0;
#endif
}

#if defined(QMCU_COUNTER_DWT) && QMCU_COUNTER_DWT
// pyOCD writes DEMCR = 0 when it disconnects after flashing, which stops CYCCNT (and the session
// ends after the reset that started this image, so counter_start() alone is not enough).
void counter_resume() { dwt_enable(); }
#endif

uint32_t counter_read() {
#if defined(QMCU_COUNTER_STM32_TIM) && QMCU_COUNTER_STM32_TIM
    return tim(kTimCnt);
#elif defined(QMCU_COUNTER_DWT) && QMCU_COUNTER_DWT
    return reg32(kDwtCyccnt);
#else
    return 0;
#endif
}

}  // namespace platform
}  // namespace qmcu
