"""The bare-metal platform layer, end to end: real cross builds, real QEMU runs, real ELF checks.
(Flags, linker script and QEMU argv: unit/test_platform_flags.py; the host platform: host_cpp/test_host_platform.py.)

Every QEMU board in boards/ is exercised (no board is named here: boards are data). Skipped only
when the cross toolchain or QEMU is not installed (tools/setup.sh installs them).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from platform_apps import PROGRAMS, QEMU_BOARDS, _board_params
from qmcu.boards import Board, Corner, Counter, Region
from qmcu.build import cross, elfcheck, toolchain
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


# --- building ----------------------------------------------------------------------------------


class Builder:
    """Builds host_tests/programs/ with cross.cross_build; each board's platform objects are compiled once per
    corner (keyed by the whole board: a test may vary a board's counter under the same id)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._platform: dict[str, list[Path]] = {}
        self._lock = threading.Lock()
        self._count = 0

    def _next(self) -> int:
        with self._lock:
            self._count += 1
            return self._count

    def platform_objects(self, board: Board, corner: Corner) -> list[Path]:
        key = repr((board, corner))
        with self._lock:
            if key in self._platform:
                return self._platform[key]
        objects = cross.platform_objects(board, corner, self.root / "platform" / f"{self._next():03d}-{board.id}")
        with self._lock:
            self._platform[key] = objects
        return objects

    def build(self, board: Board, corner: Corner, program: str, *, defines: dict[str, str] | None = None,
              extra_link: tuple[str, ...] = (), extra_libs: tuple[str, ...] = (), name: str = "app") -> Path:
        """program (a file in host_tests/programs/) with the board's platform, as <name>.elf (map beside it)."""
        out = self.root / f"{self._next():03d}-{name}-{board.id}-{corner.name}"
        return cross.cross_build(board, corner, [PROGRAMS / program], out / f"{name}.elf", defines=defines,
                                 include_dirs=[PROGRAMS], platform=self.platform_objects(board, corner),
                                 extra_link=extra_link, extra_libs=extra_libs)


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
    elf = builder.build(board, corner, "hello.cpp", defines={"APP_STATUS": "0"}, name="hello")
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
    elf = builder.build(board, corner, "hello.cpp", defines={"APP_STATUS": "2"}, name="status2")
    assert _run_board(board, elf).exit_code == 2


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_fault_prints_pc_and_exits_3(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, "fault.cpp", defines={"FAULT_BY_CALL": "0"}, name="trap")
    result = _run_board(board, elf)
    assert result.exit_code == 3, result.output_text
    m = re.search(r"^FAULT HardFault pc=0x([0-9a-f]{8}) lr=0x([0-9a-f]{8})$", result.output_text, re.M)
    assert m, result.output_text
    assert "still alive" not in result.output_text
    start, end = _symbol_range(elf, "fault_here")
    assert start <= int(m.group(1), 16) < end, "stacked PC is not inside the faulting function"


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_call_through_invalid_address_faults(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, "fault.cpp", defines={"FAULT_BY_CALL": "1", "NOWHERE": f"0x{NOWHERE:08x}u"},
                        name="call")
    result = _run_board(board, elf)
    assert result.exit_code == 3, result.output_text
    m = re.search(r"^FAULT HardFault pc=0x([0-9a-f]{8}) lr=0x([0-9a-f]{8})$", result.output_text, re.M)
    assert m, result.output_text
    assert int(m.group(1), 16) == NOWHERE & ~1
    assert _in_flash(board, int(m.group(2), 16)), "stacked LR should point back into the caller"


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_stack_overflow_into_guard_exits_4(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, "stack_overflow.cpp", name="overflow")
    result = _run_board(board, elf)
    assert result.exit_code == 4, result.output_text
    assert "diving\nFAULT stack overflow\n" in result.output_text


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_hanging_app_is_killed_by_the_timeout(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, "hang.cpp", name="hang")
    with pytest.raises(QmcuError, match=r"QEMU did not finish within 0\.5s \(hang\.elf on \S+\); last lines: hanging"):
        _run_board(board, elf, timeout_s=0.5)


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_lockup_is_a_clear_error(builder: Builder, board: Board, corner: Corner) -> None:
    for region in (board.flash, board.ram):
        assert region is not None and not region.origin <= STACK_NOWHERE < region.origin + region.size
    elf = builder.build(board, corner, "lockup.cpp", defines={"STACK_NOWHERE_TEXT": f'"0x{STACK_NOWHERE:08x}"'},
                        name="lockup")
    with pytest.raises(QmcuError, match=r"locked up.*memory map or the vector table is wrong.*pulling the stack away"):
        _run_board(board, elf)


@pytest.mark.parametrize(("board", "corner"), _each_board(std=0, flt=0))
def test_counter_is_exact_and_linear(builder: Builder, board: Board, corner: Corner) -> None:
    if board.counter.kind != "stm32-tim":
        pytest.skip(f"board {board.id} has counter kind {board.counter.kind}")
    elf = builder.build(board, corner, "timed_loop.cpp", name="counter")
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
    elf = builder.build(board, corner, "memfuncs_check.cpp", name="mem")
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
    elf = builder.build(dwt_board, corner, "timed_loop.cpp", name="dwt")
    result = _run_board(board, elf)
    assert result.exit_code == 0, result.output_text


# --- ELF checks ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("board", "corner"), _each_board(flt=0))
def test_planted_float_fails_float0(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, "planted_float.cpp", name="float0")
    with pytest.raises(QmcuError, match=r"FLOAT=0 image float0\.elf contains the soft-float routine __aeabi_f[a-z0-9]+ at "
                                        r"0x[0-9a-f]{8}, pulled in by planted_float\.o"):
        elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, [])


@pytest.mark.parametrize(("board", "corner"), _each_board(flt=1))
def test_planted_float_in_inference_fails_float1(builder: Builder, board: Board, corner: Corner) -> None:
    elf = builder.build(board, corner, "planted_float.cpp", name="float1")
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
    elf = builder.build(board, corner, "libc_strlen.cpp", extra_link=("--specs=nano.specs",), extra_libs=("c",),
                        name="strlen")
    result = _run_board(board, elf)
    assert result.exit_code == 0 and "hello" in result.output_text
    with pytest.raises(QmcuError, match=r"STD=0 image strlen\.elf pulls \S*strlen\S* from libc\S*\.a .*only libgcc\.a"):
        elfcheck.check_float_free(elf, Path(f"{elf}.map"), corner, [])
    # The same program is fine in a STD=1 corner, where the C library is the point.
    std1 = _first_corner(board, std=1, flt=0)
    if std1 is not None:
        elf1 = builder.build(board, std1, "libc_strlen.cpp", name="strlen1")
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
    elf = builder.build(big_board, corner, "big_array.cpp", defines={"BIG_SIZE": str(big_size)}, name="big")
    sizes = elfcheck.check_fits(big_board, elf)
    assert sizes["flash"] > big_size
    with pytest.raises(QmcuError, match=rf"image big\.elf is {sizes['flash']} bytes, board {small.id} has "
                                        rf"{small.flash.size} bytes of flash"):
        elfcheck.check_fits(small, elf)
    # Linking it for the small board itself already fails: the linker script knows the flash size.
    if small.supports(corner):
        with pytest.raises(cross.BuildError, match="overflow|will not fit"):
            builder.build(small, corner, "big_array.cpp", defines={"BIG_SIZE": str(big_size)}, name="big-small")
    # RAM is checked too (data + bss + stack).
    assert small.ram is not None
    tight = dataclasses.replace(big_board, ram=Region(small.ram.origin, sizes["ram"] - 8))
    with pytest.raises(QmcuError, match=rf"needs {sizes['ram']} bytes of RAM"):
        elfcheck.check_fits(tight, elf)


def test_symbol_and_image_sizes(builder: Builder) -> None:
    board = QEMU_BOARDS[0]
    corner = board.corners[0]
    elf = builder.build(board, corner, "hello.cpp", defines={"APP_STATUS": "0"}, name="sizes")
    symbols = {name: (size, kind) for name, size, kind in elfcheck.symbol_sizes(elf)}
    assert symbols["app_main"][1] == "T" and symbols["app_main"][0] > 0
    assert "qmcu::platform::console_write(char const*, unsigned int)" in symbols  # demangled
    sizes = elfcheck.image_sizes(elf)
    assert sizes["stack"] == linker_script.DEFAULT_STACK_SIZE + linker_script.DEFAULT_GUARD_SIZE
    assert sizes["flash"] == sum(v for k, v in sizes["sections"].items() if k not in (".bss", ".stack"))
