// The platform layer on the build machine (board "host"): stdout, the process exit code, and no
// counter or stack measurement. POSIX is allowed here; the runtime headers stay freestanding.
#include "platform.hpp"

#include <unistd.h>

namespace qmcu {
namespace platform {

void console_write(const char* p, size_t n) {
    while (n > 0) {
        const ssize_t written = ::write(1, p, n);
        if (written <= 0) {
            return;
        }
        p += written;
        n -= static_cast<size_t>(written);
    }
}

void exit(int status) { detail::console_exit(status); }

void counter_start() {}

uint32_t counter_read() { return 0; }

size_t stack_used() { return 0; }

namespace detail {

void console_exit(int status) { ::_exit(status); }

bool stack_guard_intact() { return true; }

}  // namespace detail

}  // namespace platform
}  // namespace qmcu

int main() {
    qmcu::platform::counter_start();
    qmcu::platform::exit(app_main());
}
