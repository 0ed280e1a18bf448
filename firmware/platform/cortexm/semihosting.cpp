// Console and exit over Arm semihosting (BKPT 0xAB), as QEMU provides with
// -semihosting-config enable=on,target=native. Compiled when the build's console is semihosting
// (QMCU_CONSOLE_SEMIHOSTING) or the board's exit is (QMCU_EXIT_SEMIHOSTING): a UART console under
// QEMU still ends the run here.
//
// Output: SYS_WRITE to the handle of ":tt" opened for writing (the host's stdout); if the host
// refuses that, SYS_WRITE0 in short chunks. Exit: SYS_EXIT_EXTENDED with
// {ADP_Stopped_ApplicationExit, status}, which makes QEMU's exit code the firmware's status; a host
// without that call gets plain SYS_EXIT, which can only say "success" or "failure".
#include "console.hpp"

namespace {

enum : uint32_t {
    kSysOpen = 0x01,
    kSysWrite0 = 0x04,
    kSysWrite = 0x05,
    kSysExit = 0x18,
    kSysExitExtended = 0x20,
};

constexpr uint32_t kAdpStoppedApplicationExit = 0x20026u;
constexpr uint32_t kAdpStoppedRunTimeErrorUnknown = 0x20023u;
constexpr uint32_t kOpenModeWrite = 4;  // "w"

// One semihosting call: operation in r0, argument (usually a parameter block) in r1, result in r0.
int32_t semihost(uint32_t op, uintptr_t arg) {
    register uint32_t r0 __asm__("r0") = op;
    register uintptr_t r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return static_cast<int32_t>(r0);
}

uintptr_t block(const uint32_t* words) { return reinterpret_cast<uintptr_t>(words); }

#if defined(QMCU_CONSOLE_SEMIHOSTING) && QMCU_CONSOLE_SEMIHOSTING
// 0: not opened yet; 1 + handle once opened; kNoHandle when the host refused.
constexpr int32_t kNoHandle = -1;
int32_t g_stdout_state = 0;

int32_t stdout_handle() {
    if (g_stdout_state == 0) {
        static const char kName[] = ":tt";
        const uint32_t args[3] = {static_cast<uint32_t>(reinterpret_cast<uintptr_t>(kName)), kOpenModeWrite,
                                  sizeof(kName) - 1};
        const int32_t handle = semihost(kSysOpen, block(args));
        g_stdout_state = handle >= 0 ? handle + 1 : kNoHandle;
    }
    return g_stdout_state == kNoHandle ? kNoHandle : g_stdout_state - 1;
}

void write0_chunks(const char* p, size_t n) {
    char chunk[64];
    while (n > 0) {
        size_t k = 0;
        // A NUL byte would end SYS_WRITE0's string early; it is shown as '?'.
        while (k < sizeof(chunk) - 1 && k < n) {
            chunk[k] = p[k] == '\0' ? '?' : p[k];
            ++k;
        }
        chunk[k] = '\0';
        semihost(kSysWrite0, reinterpret_cast<uintptr_t>(chunk));
        p += k;
        n -= k;
    }
}
#endif  // QMCU_CONSOLE_SEMIHOSTING

}  // namespace

namespace qmcu {
namespace platform {

#if defined(QMCU_CONSOLE_SEMIHOSTING) && QMCU_CONSOLE_SEMIHOSTING
void console_write(const char* p, size_t n) {
    const int32_t handle = stdout_handle();
    if (handle != kNoHandle) {
        while (n > 0) {
            const uint32_t args[3] = {static_cast<uint32_t>(handle), static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p)),
                                      static_cast<uint32_t>(n)};
            // SYS_WRITE returns the number of bytes NOT written.
            const int32_t left = semihost(kSysWrite, block(args));
            if (left < 0 || static_cast<size_t>(left) >= n) {
                break;  // the host wrote nothing: fall back to SYS_WRITE0 for the rest
            }
            p += n - static_cast<size_t>(left);
            n = static_cast<size_t>(left);
        }
        if (n == 0) {
            return;
        }
    }
    write0_chunks(p, n);
}

namespace detail {

// The host's stdout needs no setting up, and every SYS_WRITE has completed when it returns.
void console_init() {}
void console_flush() {}

}  // namespace detail
#endif  // QMCU_CONSOLE_SEMIHOSTING

#if defined(QMCU_EXIT_SEMIHOSTING) && QMCU_EXIT_SEMIHOSTING
namespace detail {

void console_exit(int status) {
    console_flush();
    const uint32_t args[2] = {kAdpStoppedApplicationExit, static_cast<uint32_t>(status)};
    semihost(kSysExitExtended, block(args));
    // Still here: the host does not know SYS_EXIT_EXTENDED. 32-bit SYS_EXIT takes the reason itself.
    semihost(kSysExit, status == 0 ? kAdpStoppedApplicationExit : kAdpStoppedRunTimeErrorUnknown);
    for (;;) {
        __asm__ volatile("wfi" ::: "memory");
    }
}

}  // namespace detail
#endif  // QMCU_EXIT_SEMIHOSTING

}  // namespace platform
}  // namespace qmcu
