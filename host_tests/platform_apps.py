"""The platform test applications (C++ sources), shared by the target and host builds."""

from __future__ import annotations

import subprocess

import pytest

from qmcu import boards
from qmcu.build import toolchain

ALL_BOARDS = boards.load_all()
QEMU_BOARDS = [b for b in ALL_BOARDS if b.kind == "qemu"]
HOST_BOARDS = [b for b in ALL_BOARDS if b.kind == "host"]
PLATFORM_INCLUDE = toolchain.PLATFORM_DIR


def _board_params() -> list:
    """Every corner of every QEMU board."""
    return [pytest.param(b, c, id=f"{b.id}-{c.name}") for b in QEMU_BOARDS for c in b.corners]


# --- test applications -------------------------------------------------------------------------

COMMON = r"""
#include "platform.hpp"
namespace {
[[maybe_unused]] size_t text_length(const char* s) { size_t n = 0; while (s[n] != '\0') { ++n; } return n; }
[[maybe_unused]] void put(const char* s) { qmcu::platform::console_write(s, text_length(s)); }
[[maybe_unused]] void put_uint(uint32_t v) {
    char digits[10];
    int n = 0;
    do { digits[n++] = static_cast<char>('0' + v % 10u); v /= 10u; } while (v != 0u);
    char out[11];
    for (int k = 0; k < n; ++k) { out[k] = digits[n - 1 - k]; }
    qmcu::platform::console_write(out, static_cast<size_t>(n));
}
}  // namespace
"""

HELLO_APP = COMMON + r"""
#if QMCU_STD
#include <string.h>
#endif
namespace {
struct Constructed { Constructed() : value(42) {} int value; };
Constructed g_constructed;   // needs .init_array to run
int g_data = 7;              // needs .data copied from flash
int g_bss;                   // needs .bss zeroed
#if QMCU_FLOAT
volatile float g_a = 1.5f;
volatile float g_b = 2.25f;
#endif
}  // namespace

extern "C" __attribute__((noinline)) int integer_kernel(int a) { return a * 3 + 1; }

extern "C" int app_main() {
    const uint32_t c0 = qmcu::platform::counter_read();
    const uint32_t c1 = qmcu::platform::counter_read();
#if QMCU_STD
    const char* greeting = "qmcu platform ok\n";
    qmcu::platform::console_write(greeting, strlen(greeting));
#else
    put("qmcu platform ok\n");
#endif
    put("counter "); put_uint(c0); put(" "); put_uint(c1); put("\n");
    put("init "); put_uint(static_cast<uint32_t>(g_constructed.value)); put(" ");
    put_uint(static_cast<uint32_t>(g_data)); put(" "); put_uint(static_cast<uint32_t>(g_bss)); put("\n");
#if QMCU_FLOAT
    put("float "); put_uint(static_cast<uint32_t>(g_a * g_b * 100.0f)); put("\n");
#endif
    put("kernel "); put_uint(static_cast<uint32_t>(integer_kernel(g_data))); put("\n");
    put("stack "); put_uint(static_cast<uint32_t>(qmcu::platform::stack_used())); put("\n");
    return APP_STATUS;
}
"""


# --- building ----------------------------------------------------------------------------------

def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"command failed: {' '.join(cmd)}\n{proc.stderr}"
