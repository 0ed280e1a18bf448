"""The bare-metal platform layer, end to end: real cross builds, real QEMU runs, real ELF checks.
(Flags, linker script and QEMU argv: unit/test_platform_flags.py; the host platform: host_cpp/test_host_platform.py.)

Every QEMU board in boards/ is exercised (no board is named here: boards are data). Skipped only
when the cross toolchain or QEMU is not installed (tools/setup.sh installs them).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from platform_apps import COMMON, HELLO_APP, PLATFORM_INCLUDE, QEMU_BOARDS, _board_params, _run
from qmcu.boards import Board, Corner, Counter, Region
from qmcu.build import elfcheck, toolchain
from qmcu.codegen import linker_script
from qmcu.errors import QmcuError
from qmcu.run.qemu import run_qemu
from qmcu.run.result import RunResult

CROSS_TOOLS = ("arm-none-eabi-g++", "arm-none-eabi-nm", "arm-none-eabi-objdump", "arm-none-eabi-size", "qemu-system-arm")
RUN_TIMEOUT_S = 20.0
# The System region (0xE0000000 and up) is Execute Never on every M-profile core, whatever the board.
NOWHERE = 0xEEEEEEE1
# A stack pointer in the architecture's "external device" region, where no emulated board has memory.
STACK_NOWHERE = 0xD0000000


def _first_corner(board: Board, std: int | None = None, flt: int | None = None) -> Corner | None:
    for c in board.corners:
        if (std is None or c.std == std) and (flt is None or c.float == flt):
            return c
    return None


def _each_board(std: int | None = None, flt: int | None = None) -> list:
    """Every QEMU board, each in its first corner with the given std/float (boards without one are left out)."""
    params = []
    for b in QEMU_BOARDS:
        c = _first_corner(b, std, flt)
        if c is not None:
            params.append(pytest.param(b, c, id=f"{b.id}-{c.name}"))
    return params


# --- test applications -------------------------------------------------------------------------


FAULT_APP = COMMON + r"""
extern "C" __attribute__((noinline)) void fault_here() { __builtin_trap(); }
extern "C" int app_main() {
    put("about to fault\n");
#if FAULT_BY_CALL
    void (*volatile nowhere)() = reinterpret_cast<void (*)()>(NOWHERE);
    nowhere();
#else
    fault_here();
#endif
    put("still alive\n");
    return 0;
}
"""

OVERFLOW_APP = COMMON + r"""
extern "C" uint32_t __qmcu_stack_limit[];
namespace {
uintptr_t stack_pointer() { uintptr_t sp; __asm__ volatile("mov %0, sp" : "=r"(sp)); return sp; }
}  // namespace
// Recurse until the frames reach a little way into the guard below the stack, then come back:
// nothing crashes, but the guard words are overwritten.
extern "C" __attribute__((noinline)) uint32_t dive(uint32_t depth) {
    volatile uint32_t pad[4] = {depth, depth, depth, depth};
    if (stack_pointer() + 32u > reinterpret_cast<uintptr_t>(__qmcu_stack_limit)) {
        return dive(depth + 1u) + pad[0];
    }
    return pad[1];
}
extern "C" int app_main() {
    put("diving\n");
    return dive(0) == 0xFFFFFFFFu ? 1 : 0;
}
"""

HANG_APP = COMMON + r"""
extern "C" int app_main() {
    put("hanging\n");
    for (;;) {
        __asm__ volatile("" ::: "memory");
    }
}
"""

LOCKUP_APP = COMMON + r"""
extern "C" int app_main() {
    put("pulling the stack away\n");
    // No stack left for the fault handler's frame: the core locks up.
    __asm__ volatile(".syntax unified\n\tldr r0, =" STACK_NOWHERE_TEXT "\n\tmsr msp, r0\n\tudf #1\n\t.ltorg" ::: "r0", "memory");
    return 0;
}
"""

COUNTER_APP = COMMON + r"""
namespace {
// Exactly two instructions per iteration (subs, bne) between the two counter reads.
__attribute__((noinline)) uint32_t timed_loop(uint32_t n) {
    const uint32_t t0 = qmcu::platform::counter_read();
    if (n != 0u) {
        __asm__ volatile(".syntax unified\n1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+l"(n) : : "cc");
    }
    const uint32_t t1 = qmcu::platform::counter_read();
    return t1 - t0;
}
}  // namespace
extern "C" int app_main() {
    const uint32_t sizes[4] = {0u, 1000u, 2000u, 4000u};
    for (uint32_t n : sizes) {
        put("loop "); put_uint(n); put(" "); put_uint(timed_loop(n)); put("\n");
    }
    return 0;
}
"""

FLOAT_APP = COMMON + r"""
volatile float g_x = 1.5f;
volatile float g_y = 2.0f;
volatile int g_out;
// A deliberately planted floating-point operation.
extern "C" __attribute__((noinline)) void planted_kernel() { g_out = static_cast<int>(g_x * g_y); }
extern "C" __attribute__((noinline)) int integer_kernel(int a) { return a * 3 + 1; }
extern "C" int app_main() {
    planted_kernel();
    put("float app\n");
    return integer_kernel(g_out) == 10 ? 0 : 1;
}
"""

MEM_APP = COMMON + r"""
extern "C" void* memcpy(void* d, const void* s, size_t n);
extern "C" void* memmove(void* d, const void* s, size_t n);
extern "C" void* memset(void* d, int v, size_t n);
extern "C" int memcmp(const void* a, const void* b, size_t n);
// Called through volatile pointers so the compiler cannot expand them inline.
void* (*volatile g_memcpy)(void*, const void*, size_t) = memcpy;
void* (*volatile g_memmove)(void*, const void*, size_t) = memmove;
void* (*volatile g_memset)(void*, int, size_t) = memset;
int (*volatile g_memcmp)(const void*, const void*, size_t) = memcmp;
namespace {
volatile uint8_t g_buf[96];
uint8_t g_work[96];
uint8_t g_ref[96];
void fill(uint8_t* p, size_t n, uint32_t seed) {
    for (size_t k = 0; k < n; ++k) { seed = seed * 1103515245u + 12345u; p[k] = static_cast<uint8_t>(seed >> 16); }
}
bool same(const uint8_t* a, const uint8_t* b, size_t n) {
    for (size_t k = 0; k < n; ++k) { if (static_cast<const volatile uint8_t*>(a)[k] != b[k]) { return false; } }
    return true;
}
// Reference copy through volatile bytes: the compiler cannot turn it into a memmove call.
void ref_move(uint8_t* base, size_t dst, size_t src, size_t n) {
    for (size_t k = 0; k < n; ++k) { g_buf[k] = base[src + k]; }
    for (size_t k = 0; k < n; ++k) { base[dst + k] = g_buf[k]; }
}
const size_t kSizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40};
}  // namespace
extern "C" int app_main() {
    uint32_t cases = 0;
    for (size_t dst = 0; dst < 8; ++dst) {
        for (size_t src = 0; src < 8; ++src) {
            for (size_t n : kSizes) {
                // memcpy between distinct areas, memmove within one buffer (either overlap direction).
                fill(g_work, sizeof(g_work), static_cast<uint32_t>(dst * 64 + src * 8 + n));
                for (size_t k = 0; k < sizeof(g_work); ++k) { g_ref[k] = g_work[k]; }
                g_memcpy(g_work + dst, g_work + 48 + src, n);
                ref_move(g_ref, dst, 48 + src, n);
                if (!same(g_work, g_ref, sizeof(g_work))) { put("memcpy FAIL\n"); return 1; }
                g_memmove(g_work + dst + 4, g_work + src, n);
                ref_move(g_ref, dst + 4, src, n);
                if (!same(g_work, g_ref, sizeof(g_work))) { put("memmove forward-overlap FAIL\n"); return 1; }
                g_memmove(g_work + dst, g_work + src + 4, n);
                ref_move(g_ref, dst, src + 4, n);
                if (!same(g_work, g_ref, sizeof(g_work))) { put("memmove backward-overlap FAIL\n"); return 1; }
                g_memset(g_work + dst, 0x1A5, n);
                for (size_t k = 0; k < n; ++k) { static_cast<volatile uint8_t*>(g_ref)[dst + k] = 0xA5; }
                if (!same(g_work, g_ref, sizeof(g_work))) { put("memset FAIL\n"); return 1; }
                if (g_memcmp(g_work, g_ref, sizeof(g_work)) != 0) { put("memcmp equal FAIL\n"); return 1; }
                if (n > 0) {
                    // Bytes compare as unsigned char: 0x90 is greater than 0x10.
                    g_work[src + n - 1] = 0x10;
                    g_ref[src + n - 1] = 0x90;
                    if (g_memcmp(g_work + src, g_ref + src, n) >= 0 || g_memcmp(g_ref + src, g_work + src, n) <= 0) {
                        put("memcmp order FAIL\n");
                        return 1;
                    }
                }
                ++cases;
            }
        }
    }
    put("mem ok "); put_uint(cases); put("\n");
    return 0;
}
"""

STRLEN_APP = r"""
#include "platform.hpp"
extern "C" size_t strlen(const char* s);  // declared, not defined: the C library must provide it
const char* volatile g_text = "hello";
extern "C" int app_main() {
    qmcu::platform::console_write(g_text, strlen(g_text));
    return 0;
}
"""

BIG_APP = r"""
#include "platform.hpp"
// A constant array larger than the smallest board's flash.
extern const uint8_t kBig[BIG_SIZE];
const uint8_t kBig[BIG_SIZE] = {1, 2, 3};
volatile uint32_t g_index = 1;
extern "C" int app_main() { return kBig[g_index] == 2 ? 0 : 1; }
"""


# --- building ----------------------------------------------------------------------------------


class Builder:
    """Cross builds with toolchain.py's flags and linker_script.py's script; platform objects are built once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._platform: dict[tuple[str, Corner], list[Path]] = {}
        self._lock = threading.Lock()
        self._count = 0

    def _compile(self, compiler: str, flags: toolchain.Flags, src: Path, obj: Path, extra: list[str]) -> Path:
        _run([compiler, *flags.cxxflags, *flags.define_flags(), *extra, f"-I{PLATFORM_INCLUDE}", "-c", str(src),
              "-o", str(obj)])
        return obj

    def platform_objects(self, board: Board, corner: Corner) -> list[Path]:
        key = (board.id, corner)
        with self._lock:
            if key in self._platform:
                return self._platform[key]
        flags = toolchain.target_flags(board, corner)
        out = self.root / "platform" / f"{board.id}-{corner.name}"
        out.mkdir(parents=True, exist_ok=True)
        sources = toolchain.platform_sources(board, corner)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            objs = list(pool.map(lambda s: self._compile("arm-none-eabi-g++", flags, s, out / f"{s.stem}.o", []),
                                 sources))
        with self._lock:
            self._platform[key] = objs
        return objs

    def build(self, board: Board, corner: Corner, source: str, *, defines: dict[str, str] | None = None,
              extra_link: tuple[str, ...] = (), extra_libs: tuple[str, ...] = (), script_board: Board | None = None,
              name: str = "app") -> Path:
        """Compile source with the board's flags, link it with the platform, return the ELF (map beside it)."""
        with self._lock:
            self._count += 1
            out = self.root / f"{self._count:03d}-{name}-{board.id}-{corner.name}"
        out.mkdir(parents=True)
        flags = toolchain.target_flags(board, corner)
        src = out / f"{name}.cpp"
        src.write_text(source)
        app_obj = self._compile("arm-none-eabi-g++", flags, src, out / f"{name}.o",
                                [f"-D{k}={v}" for k, v in (defines or {}).items()])
        script = linker_script.write_linker_script(script_board or board, out / "link.ld")
        elf = out / f"{name}.elf"
        _run(["arm-none-eabi-g++", *flags.linkflags, *extra_link, f"-T{script}", toolchain.link_map_flag(elf), "-o", str(elf),
              str(app_obj), *map(str, self.platform_objects(board, corner)), *flags.lib_flags(),
              *[f"-l{lib}" for lib in extra_libs]])
        return elf


@pytest.fixture(scope="session")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    missing = [t for t in CROSS_TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs them)")
    return Builder(tmp_path_factory.mktemp("platform"))


def _run_board(board: Board, elf: Path, timeout_s: float = RUN_TIMEOUT_S) -> RunResult:
    return run_qemu(board, elf, timeout_s)


def _symbol_range(elf: Path, name: str) -> tuple[int, int]:
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == name:
            start = int(parts[0], 16) & ~1
            return start, start + int(parts[1], 16)
    raise AssertionError(f"{name} not in {elf}")


def _in_flash(board: Board, address: int) -> bool:
    assert board.flash is not None
    return board.flash.origin <= address < board.flash.origin + board.flash.size


# --- runs on every QEMU board --------------------------------------------------------------------

def test_there_are_qemu_boards() -> None:
    assert QEMU_BOARDS, "boards/ has no qemu board"


@pytest.mark.parametrize(("board", "corner"), _board_params())
def test_hello_runs_on_every_board_and_corner(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, HELLO_APP, defines={"APP_STATUS": "0"}, name="hello")
    result = _run_board(board, elf)
    text = result.output_text
    assert result.exit_code == 0, text
    assert "qmcu platform ok\n" in text
    assert "init 42 7 0\n" in text, "static constructor, .data copy or .bss zeroing failed"
    assert "kernel 22\n" in text
    c0, c1 = (int(v) for v in re.search(r"^counter (\d+) (\d+)$", text, re.M).groups())
    if board.counter.kind == "none":
        assert (c0, c1) == (0, 0)
    else:
        assert c1 > c0 > 0
    if corner.float:
        assert "float 337\n" in text, "float arithmetic (FPU enabled? soft-float linked?) gave a wrong result"
    used = int(re.search(r"^stack (\d+)$", text, re.M).group(1))
    assert 0 < used < linker_script.DEFAULT_STACK_SIZE
    # The clean app passes every check its corner asks for.
    checked = elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, ["integer_kernel"])
    assert checked["checks"]
    sizes = elfcheck.check_fits(board, elf)
    assert sizes["vectors"] > 0 and sizes["flash"] >= sizes["vectors"] + sizes["text"]
    assert sizes["ram"] >= linker_script.DEFAULT_STACK_SIZE + linker_script.DEFAULT_GUARD_SIZE


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_exit_status_reaches_qemu(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, HELLO_APP, defines={"APP_STATUS": "2"}, name="status2")
    assert _run_board(board, elf).exit_code == 2


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_fault_prints_pc_and_exits_3(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, FAULT_APP, defines={"FAULT_BY_CALL": "0"}, name="trap")
    result = _run_board(board, elf)
    assert result.exit_code == 3, result.output_text
    m = re.search(r"^FAULT HardFault pc=0x([0-9a-f]{8}) lr=0x([0-9a-f]{8})$", result.output_text, re.M)
    assert m, result.output_text
    assert "still alive" not in result.output_text
    start, end = _symbol_range(elf, "fault_here")
    assert start <= int(m.group(1), 16) < end, "stacked PC is not inside the faulting function"


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_call_through_invalid_address_faults(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, FAULT_APP, defines={"FAULT_BY_CALL": "1", "NOWHERE": f"0x{NOWHERE:08x}u"},
                        name="call")
    result = _run_board(board, elf)
    assert result.exit_code == 3, result.output_text
    m = re.search(r"^FAULT HardFault pc=0x([0-9a-f]{8}) lr=0x([0-9a-f]{8})$", result.output_text, re.M)
    assert m, result.output_text
    assert int(m.group(1), 16) == NOWHERE & ~1
    assert _in_flash(board, int(m.group(2), 16)), "stacked LR should point back into the caller"


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_stack_overflow_into_guard_exits_4(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, OVERFLOW_APP, name="overflow")
    result = _run_board(board, elf)
    assert result.exit_code == 4, result.output_text
    assert "diving\nFAULT stack overflow\n" in result.output_text


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_hanging_app_is_killed_by_the_timeout(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, HANG_APP, name="hang")
    with pytest.raises(QmcuError, match=r"QEMU did not finish within 0\.5s \(hang\.elf on \S+\); last lines: hanging"):
        _run_board(board, elf, timeout_s=0.5)


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_lockup_is_a_clear_error(builder: Builder, board: Board, corner: Corner) -> None:
    for region in (board.flash, board.ram):
        assert region is not None and not region.origin <= STACK_NOWHERE < region.origin + region.size
    elf = builder.build(board, corner, LOCKUP_APP, defines={"STACK_NOWHERE_TEXT": f'"0x{STACK_NOWHERE:08x}"'},
                        name="lockup")
    with pytest.raises(QmcuError, match=r"locked up.*memory map or the vector table is wrong.*pulling the stack away"):
        _run_board(board, elf)


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_counter_is_exact_and_linear(builder: Builder, board: Board, corner: Corner) -> None:
    if board.counter.kind != "stm32-tim":
        pytest.skip(f"board {board.id} has counter kind {board.counter.kind}")
    elf = builder.build(board, corner, COUNTER_APP, name="counter")
    first, second = _run_board(board, elf), _run_board(board, elf)
    assert first.exit_code == 0, first.output_text
    assert first.output_text == second.output_text, "the instruction counter is not deterministic"
    counts = {int(n): int(d) for n, d in re.findall(r"^loop (\d+) (\d+)$", first.output_text, re.M)}
    assert sorted(counts) == [0, 1000, 2000, 4000]
    assert counts[0] > 0
    for n in (1000, 2000, 4000):
        # Two instructions per iteration, one count per instruction.
        assert counts[n] - counts[0] == 2 * n, counts


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0))
def test_memfuncs_behave_like_the_c_library(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, MEM_APP, name="mem")
    result = _run_board(board, elf)
    assert result.exit_code == 0, result.output_text
    assert "mem ok 1024\n" in result.output_text
    checked = elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, [])
    assert not any("libc" in m for m in checked["archive_members"])


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_dwt_counter_variant_builds_and_runs(builder: Builder, board: Board, corner: Corner) -> None:
    # No board file uses the DWT counter yet; the code path must still build on every core. (QEMU does
    # not model DWT, so the counter reads 0 there; on hardware it counts cycles.)
    dwt_board = dataclasses.replace(board, counter=Counter("dwt", "cycles"))
    assert toolchain.target_flags(dwt_board, corner).defines["QMCU_COUNTER_DWT"] == "1"
    elf = builder.build(dwt_board, corner, COUNTER_APP, name="dwt")
    result = _run_board(board, elf)
    assert result.exit_code == 0, result.output_text


# --- ELF checks ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("board", "corner"), _each_board(flt=0))
def test_planted_float_fails_float0(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, FLOAT_APP, name="float0")
    with pytest.raises(QmcuError, match=r"FLOAT=0 image float0\.elf contains the soft-float routine __aeabi_f[a-z0-9]+ at "
                                        r"0x[0-9a-f]{8}, pulled in by float0\.o"):
        elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, [])


@pytest.mark.parametrize(("board", "corner"), _each_board(flt=1))
def test_planted_float_in_inference_fails_float1(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, FLOAT_APP, name="float1")
    result = _run_board(board, elf)
    assert result.exit_code == 0, result.output_text
    elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, ["integer_kernel"])
    expected = r"contains the FPU instruction 'v" if board.fpu else r"calls the soft-float routine __aeabi_fmul"
    with pytest.raises(QmcuError, match=rf"inference symbol planted_kernel {expected}.* at 0x[0-9a-f]{{8}}"):
        elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, ["integer_kernel", "planted_kernel"])
    with pytest.raises(QmcuError, match="inference symbol no_such_function is not a function"):
        elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, ["no_such_function"])


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_std0_map_check_rejects_libc(builder: Builder, board: Board, corner: Corner) -> None:
    # A STD=0 build that still gets linked against newlib: strlen comes from libc.
    elf = builder.build(board, corner, STRLEN_APP, extra_link=("--specs=nano.specs",), extra_libs=("c",),
                        name="strlen")
    result = _run_board(board, elf)
    assert result.exit_code == 0 and "hello" in result.output_text
    with pytest.raises(QmcuError, match=r"STD=0 image strlen\.elf pulls \S*strlen\S* from libc\S*\.a .*only libgcc\.a"):
        elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, [])
    # The same program is fine in a STD=1 corner, where the C library is the point.
    std1 = _first_corner(board, std=1, flt=0)
    if std1 is not None:
        elf1 = builder.build(board, std1, STRLEN_APP, name="strlen1")
        assert _run_board(board, elf1).exit_code == 0
        elfcheck.check_float_free(elf1, Path(f"{elf1}.map"), std1, [])


def test_check_fits_refuses_an_image_bigger_than_the_board(builder: Builder) -> None:
    small = min(QEMU_BOARDS, key=lambda b: b.flash.size if b.flash else 0)
    assert small.flash is not None
    big_size = small.flash.size + 44 * 1024
    roomy = [b for b in QEMU_BOARDS if b.flash and b.flash.size >= big_size + 64 * 1024]
    if not roomy:
        pytest.skip("no board has room for an image bigger than the smallest board's flash")
    corner = Corner(0, 0)
    big_board = roomy[0]
    elf = builder.build(big_board, corner, BIG_APP, defines={"BIG_SIZE": str(big_size)}, name="big")
    sizes = elfcheck.check_fits(big_board, elf)
    assert sizes["flash"] > big_size
    with pytest.raises(QmcuError, match=rf"image big\.elf is {sizes['flash']} bytes, board {small.id} has "
                                        rf"{small.flash.size} bytes of flash"):
        elfcheck.check_fits(small, elf)
    # Linking it for the small board itself already fails: the linker script knows the flash size.
    if small.supports(corner):
        with pytest.raises(AssertionError, match="overflow|will not fit"):
            builder.build(small, corner, BIG_APP, defines={"BIG_SIZE": str(big_size)}, name="big-small")
    # RAM is checked too (data + bss + stack).
    assert small.ram is not None
    tight = dataclasses.replace(big_board, ram=Region(small.ram.origin, sizes["ram"] - 8))
    with pytest.raises(QmcuError, match=rf"needs {sizes['ram']} bytes of RAM"):
        elfcheck.check_fits(tight, elf)


def test_symbol_and_image_sizes(builder: Builder) -> None:
    board = QEMU_BOARDS[0]
    corner = board.corners[0]
    elf = builder.build(board, corner, HELLO_APP, defines={"APP_STATUS": "0"}, name="sizes")
    symbols = {name: (size, kind) for name, size, kind in elfcheck.symbol_sizes(elf)}
    assert symbols["app_main"][1] == "T" and symbols["app_main"][0] > 0
    assert "qmcu::platform::console_write(char const*, unsigned int)" in symbols  # demangled
    sizes = elfcheck.image_sizes(elf)
    assert sizes["stack"] == linker_script.DEFAULT_STACK_SIZE + linker_script.DEFAULT_GUARD_SIZE
    assert sizes["flash"] == sum(v for k, v in sizes["sections"].items() if k not in (".bss", ".stack"))
