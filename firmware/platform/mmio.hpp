// Memory-mapped register access, the one helper every Cortex-M platform file uses.
#pragma once

#include <stdint.h>

namespace qmcu {
namespace platform {

// The 32-bit peripheral register at address, read and written as volatile (never cached or elided).
inline volatile uint32_t& reg32(uintptr_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }

}  // namespace platform
}  // namespace qmcu
