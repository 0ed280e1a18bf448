// The end of a run on a real board (board file "exit": "halt"): nothing can take an exit status,
// so the END record already carries it (end_status checks the stack guard before END is printed).
// Wait for the console to drain, then stop the core.
#include "console.hpp"

namespace qmcu {
namespace platform {

int32_t end_status(int32_t status) { return detail::stack_guard_intact() ? status : kStatusStackOverflow; }

namespace detail {

void console_exit(int status) {
    (void)status;
    console_flush();
    __asm__ volatile("cpsid i" ::: "memory");
    for (;;) {
        __asm__ volatile("wfi" ::: "memory");
    }
}

}  // namespace detail
}  // namespace platform
}  // namespace qmcu
