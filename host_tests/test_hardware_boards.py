"""Real boards as data, flashing, port detection and the hardware runner: everything provable without a board.

Every hardware board file in boards/ is validated and its image is really cross-built (UART console,
halt exit, DWT counter), linked with its own memory map and checked to fit. Flash commands are checked
argument by argument; serial ports come from pyserial port descriptions given as data. No board is
attached to these machines: where a flasher would run, a stand-in script on PATH records its
arguments, and the board's UART is a local socket (a pyserial socket:// port) that prints the
board's stream when the flasher has reset it, losing what nobody is listening to, like a real UART.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import select
import shlex
import shutil
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from serial.tools.list_ports_common import ListPortInfo

from qmcu import board_config, boards, elfcheck, flash, linker, toolchain
from qmcu.boards import Board, Corner, Counter, FlashSettings
from qmcu.errors import QmcuError
from qmcu.paths import BOARDS_DIR, REPO_ROOT
from qmcu.ports import find_port
from qmcu.records import format_record
from qmcu.runners.board import NO_STATUS, run_board, serial_settings, status_of

HARDWARE = [b for b in boards.load_all() if b.kind == "hardware"]
QEMU = [b for b in boards.load_all() if b.kind == "qemu"]
CROSS = ("arm-none-eabi-g++", "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "arm-none-eabi-objdump",
         "arm-none-eabi-objcopy")
ST_VID = 0x0483
# (pid, what) of the ST-Link probes with a virtual COM port (stlink-org/stlink usb.h names).
VCP_PIDS = {0x374B: "V2-1", 0x3752: "V2-1 without mass storage", 0x374E: "V3E", 0x374F: "V3S", 0x3753: "V3 two VCPs",
            0x3754: "V3 without mass storage", 0x3757: "V3PWR"}


# STM32F4 USARTs have the SR/DR/BRR/CR1 layout; STM32F7 and STM32L4 the CR1/BRR/ISR/TDR one.
USART_LAYOUT = {"nucleo-f401re": "stm32-usart", "nucleo-f446re": "stm32-usart", "stm32f4-discovery": "stm32-usart",
                "nucleo-l476rg": "stm32-usart-v2", "nucleo-f767zi": "stm32-usart-v2"}


def _by_id(board_id: str) -> Board:
    return next(b for b in HARDWARE if b.id == board_id)


def _params(items: list[Board]) -> list[Any]:
    return [pytest.param(b, id=b.id) for b in items]


# --- the board files -----------------------------------------------------------------------------

def test_the_five_hardware_boards_are_there() -> None:
    assert {b.id for b in HARDWARE} == {"nucleo-f401re", "nucleo-f446re", "nucleo-l476rg", "stm32f4-discovery",
                                        "nucleo-f767zi"}


@pytest.mark.parametrize("board", _params(HARDWARE))
def test_hardware_board_is_complete(board: Board) -> None:
    assert board.consoles == ("uart",) and board.exit == "halt"
    assert board.counter == Counter("dwt", "cycles") and board.counter_unit == "cycles"
    assert board.cpu in ("cortex-m4", "cortex-m7") and board.dsp and board.fpu
    assert set(board.corners) == {Corner(s, f) for s in (0, 1) for f in (0, 1)}
    assert board.flash is not None and board.flash.origin == 0x08000000
    assert board.ram is not None and board.ram.origin == 0x20000000
    assert board.uart is not None and board.uart.driver == USART_LAYOUT[board.id] and board.uart.baud == 115200
    assert board.clock is not None and board.uart.clock_hz == board.clock.hz == 16_000_000
    assert len(board.uart.pins) == 2 and all(p.af == 7 for p in board.uart.pins)
    assert len(board.uart.enable) == 2
    assert board.flasher is not None and all(board.flasher.supports(n) for n in flash.FLASHERS)
    if board.usb is not None:
        assert board.usb.vid == ST_VID and set(board.usb.pids) == set(VCP_PIDS)
    # The raw sections stay available beside the typed fields.
    assert set(board.extra) >= {"uart", "clock", "flash"}


def test_board_facts_per_part() -> None:
    sizes = {b.id: (b.flash.size, b.ram.size, b.fpu) for b in HARDWARE if b.flash and b.ram}
    assert sizes == {
        "nucleo-f401re": (512 * 1024, 96 * 1024, "fpv4-sp-d16"),
        "nucleo-f446re": (512 * 1024, 128 * 1024, "fpv4-sp-d16"),
        "nucleo-l476rg": (1024 * 1024, 96 * 1024, "fpv4-sp-d16"),
        "stm32f4-discovery": (1024 * 1024, 128 * 1024, "fpv4-sp-d16"),
        "nucleo-f767zi": (2048 * 1024, 128 * 1024, "fpv5-d16"),
    }
    l476 = _by_id("nucleo-l476rg")
    assert l476.clock is not None and l476.clock.source == "HSI16"
    # HSION (RCC_CR bit 8), wait HSIRDY (bit 10); then SW=01 in RCC_CFGR, wait SWS=01 (bit 2).
    assert [(s.register, s.set, s.wait_register, s.wait_mask) for s in l476.clock.init] == [
        (0x40021000, 1 << 8, 0x40021000, 1 << 10), (0x40021008, 0b01, 0x40021008, 0b01 << 2)]
    assert all(b.clock is not None and not b.clock.init for b in HARDWARE if b is not l476)
    # The Discovery's console is a USB-serial adapter: no ST-Link IDs, so no auto-detection.
    assert _by_id("stm32f4-discovery").usb is None
    f767 = _by_id("nucleo-f767zi")
    assert f767.uart is not None and f767.uart.base == 0x40004800 and {p.pin for p in f767.uart.pins} == {8, 9}


def _raw(board_id: str = "nucleo-f401re") -> dict[str, Any]:
    return json.loads((BOARDS_DIR / f"{board_id}.json").read_text())


def _drop(path: str) -> Any:
    def edit(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for p in parents:
            node = node[p]
        del node[last]
    return edit


def _set(path: str, value: Any) -> Any:
    def edit(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = value
    return edit


BAD_FILES = [
    ("unknown top key", _set("flash_tool", "pyocd"), r"unknown key\(s\) flash_tool; valid keys are"),
    ("unknown uart key", _set("uart.parity", "none"), r"unknown key\(s\) uart\.parity; valid keys of uart are"),
    ("unknown flash key", _set("flash.jlink_device", "x"), r"unknown key\(s\) flash\.jlink_device"),
    ("overlapping memory", _set("memory.ram", {"origin": "0x08010000", "size": 65536}),
     r"memory\.flash and memory\.ram overlap"),
    ("missing flash section", _drop("flash"), r"a hardware board needs a \"flash\" section"),
    ("uart without pins", _drop("uart.pins"), r"uart\.pins is empty: on real hardware"),
    ("uart with empty pins", _set("uart.pins", []), r"uart\.pins is empty"),
    ("uart console without uart", _drop("uart"), r"the console is \"uart\" but the file has no \"uart\" section"),
    ("semihosting exit", _set("exit", "semihosting"), r"a hardware board cannot exit by semihosting; set \"exit\": \"halt\""),
    ("missing exit", _drop("exit"), r"cannot exit by semihosting"),
    ("semihosting console", _set("consoles", ["uart", "semihosting"]), r"consoles must be \[\"uart\"\]"),
    ("default without setting", _drop("flash.pyocd_target"),
     r"flash\.default is pyocd but flash\.pyocd_target is not set"),
    ("unknown flasher", _set("flash.default", "jlink"), r"flash\.default='jlink' is not one of pyocd, openocd, stflash"),
    ("unknown driver", _set("uart.driver", "pl011"), r"uart\.driver='pl011' is not one of"),
    ("pin out of range", _set("uart.pins.0.pin", 16), r"uart\.pins\[0\]\.pin=16 is outside \[0, 15\]"),
    ("af out of range", _set("uart.pins.1.af", 16), r"uart\.pins\[1\]\.af=16 is outside \[0, 15\]"),
    ("bit out of range", _set("uart.enable.0.bit", 32), r"uart\.enable\[0\]\.bit=32 is outside \[0, 31\]"),
    ("unaligned register", _set("uart.enable.0.register", "0x40023831"), r"uart\.enable\[0\]\.register=0x40023831 is not word"),
    ("bad hex", _set("uart.base", "0x4000G400"), r"uart\.base='0x4000G400' is not an integer"),
    ("slow uart clock", _set("uart.clock_hz", 1_000_000), r"uart\.clock_hz=1000000 is below 16 x uart\.baud=115200"),
    ("no clock", _drop("clock"), r"a hardware board needs a \"clock\" section"),
    ("half a wait", _set("clock.init", [{"register": "0x40021000", "set": 256, "wait_mask": 1024}]),
     r"clock\.init\[0\] has wait_mask without wait_register; give both wait_mask and wait_register or neither"),
    ("dwt in instructions", _set("counter", {"kind": "dwt", "unit": "instructions"}), r"counter\.kind dwt counts cycles"),
    ("dwt on m0", _set("cpu", "cortex-m0"), r"counter\.kind dwt needs a DWT cycle counter, which a cortex-m0 does not have"),
    ("empty pids", _set("usb.pids", []), r"usb\.pids must be a non-empty list"),
    ("vid too big", _set("usb.vid", "0x10483"), r"usb\.vid=0x10483 is outside \[0x0, 0xffff\]"),
    ("stflash not a bool", _set("flash.stflash", "yes"), r"flash\.stflash must be true or false"),
]


@pytest.mark.parametrize(("edit", "message"), [pytest.param(e, m, id=name) for name, e, m in BAD_FILES])
def test_bad_board_file_gives_a_clear_error(tmp_path: Path, edit: Any, message: str) -> None:
    raw = copy.deepcopy(_raw())
    edit(raw)
    (tmp_path / "nucleo-f401re.json").write_text(json.dumps(raw))
    with pytest.raises(QmcuError, match=message) as info:
        boards.load_board("nucleo-f401re", tmp_path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"board file {tmp_path / 'nucleo-f401re.json'}: ") and "; " in text


@pytest.mark.parametrize(("key", "value"), [("usb", {"vid": "0x0483", "pids": ["0x374b"]}),
                                            ("flash", {"default": "stflash", "stflash": True})])
def test_hardware_sections_are_refused_on_qemu_boards(tmp_path: Path, key: str, value: Any) -> None:
    raw = json.loads((BOARDS_DIR / f"{QEMU[0].id}.json").read_text())
    raw[key] = value
    (tmp_path / f"{QEMU[0].id}.json").write_text(json.dumps(raw))
    with pytest.raises(QmcuError, match=rf"'{key}' is for hardware boards, this board's kind is qemu; remove"):
        boards.load_board(QEMU[0].id, tmp_path)


def test_a_qemu_board_may_describe_its_uart_without_pins(tmp_path: Path) -> None:
    raw = json.loads((BOARDS_DIR / f"{QEMU[0].id}.json").read_text())
    raw["uart"] = {"driver": "cmsdk-uart", "base": "0x40004000", "clock_hz": 25_000_000, "baud": 115200}
    (tmp_path / f"{QEMU[0].id}.json").write_text(json.dumps(raw))
    board = boards.load_board(QEMU[0].id, tmp_path)
    assert board.uart is not None and board.uart.pins == () and board.exit == "semihosting" and board.flasher is None


# --- flash commands ------------------------------------------------------------------------------

EXPECTED_ARGV = {
    # pyOCD target names: pyOCD's board ID table (NUCLEO-F401RE 0720 -> stm32f401retx, ...); stm32f767zi is built in.
    # OpenOCD configs: tcl/board/ of OpenOCD. st-flash: raw binary at the flash origin.
    "nucleo-f401re": ("stm32f401retx", "board/st_nucleo_f4.cfg"),
    "nucleo-f446re": ("stm32f446retx", "board/st_nucleo_f4.cfg"),
    "nucleo-l476rg": ("stm32l476rgtx", "board/st_nucleo_l4.cfg"),
    "stm32f4-discovery": ("stm32f407vgtx", "board/stm32f4discovery.cfg"),
    "nucleo-f767zi": ("stm32f767zi", "board/st_nucleo_f7.cfg"),
}


@pytest.mark.parametrize("board", _params(HARDWARE))
def test_flash_commands_are_what_the_tools_expect(board: Board) -> None:
    target, config = EXPECTED_ARGV[board.id]
    elf = Path("/b/app.elf")
    assert flash.flash_argv(board, "pyocd", elf) == ["pyocd", "flash", "--target", target, "/b/app.elf"]
    assert flash.flash_argv(board, "openocd", elf) == ["openocd", "-f", config, "-c", "program /b/app.elf verify reset exit"]
    assert flash.flash_argv(board, "stflash", elf) == ["st-flash", "--reset", "write", "/b/app.bin", "0x08000000"]
    assert flash.prepare_argv(board, "stflash", elf) == [["arm-none-eabi-objcopy", "-O", "binary", "/b/app.elf", "/b/app.bin"]]
    assert flash.prepare_argv(board, "pyocd", elf) == flash.prepare_argv(board, "openocd", elf) == []
    assert flash.reset_argv(board, "pyocd") == ["pyocd", "reset", "--target", target]
    assert flash.reset_argv(board, "openocd") == ["openocd", "-f", config, "-c", "init", "-c", "reset run", "-c", "shutdown"]
    assert flash.reset_argv(board, "stflash") == ["st-flash", "reset"]
    # No flasher named: the board's default.
    assert board.flasher is not None
    assert flash.flash_argv(board, None, elf) == flash.flash_argv(board, board.flasher.default, elf)


def test_openocd_gets_a_path_with_spaces_as_one_tcl_word() -> None:
    argv = flash.flash_argv(HARDWARE[0], "openocd", Path("/my builds/app.elf"))
    assert argv[-1] == "program {/my builds/app.elf} verify reset exit"


def test_flasher_registry_matches_the_board_schema() -> None:
    assert tuple(flash.FLASHERS) == boards.FLASHERS
    with pytest.raises(QmcuError, match=r"unknown flasher 'jlink'; use one of pyocd, openocd, stflash"):
        flash.flash_argv(HARDWARE[0], "jlink", Path("a.elf"))
    only_openocd = dataclasses.replace(HARDWARE[0], flasher=FlashSettings(default="openocd", openocd_config="x.cfg"))
    with pytest.raises(QmcuError, match=r"has no flash\.stflash for flasher stflash; use flasher openocd, or add "
                                        r"flash\.stflash to boards/nucleo-\S+\.json"):
        flash.flash_argv(only_openocd, "stflash", Path("a.elf"))
    with pytest.raises(QmcuError, match=rf"board {QEMU[0].id} is not a board qmcu can flash \(kind qemu\)"):
        flash.flash_argv(QEMU[0], None, Path("a.elf"))


@pytest.mark.parametrize(("name", "hint"), [
    ("pyocd", r"pyocd \(flasher pyocd\) is not installed; install it into the venv with `\.venv/bin/pip install pyocd`"),
    ("openocd", r"openocd \(flasher openocd\) is not installed; install the Debian package openocd"),
    ("stflash", r"st-flash \(flasher stflash\) is not installed; install the Debian package stlink-tools"),
])
def test_missing_flasher_says_how_to_install_it(tmp_path: Path, name: str, hint: str) -> None:
    with pytest.raises(QmcuError, match=hint):
        flash.check_installed(name, search_path=str(tmp_path))
    fake = _fake_tool(tmp_path / "bin", flash.FLASHERS[name].program, tmp_path / "log")
    assert flash.check_installed(name, search_path=str(fake.parent)) == str(fake)


# --- real images: link, fit, refuse ----------------------------------------------------------------

MINIMAL_APP = r"""
#include "platform.hpp"
namespace {
const char kHello[] = "qmcu hardware image\n";
int g_data = 7;
int g_bss;
}  // namespace
extern "C" __attribute__((noinline)) int integer_kernel(int a) { return a * 3 + 1; }
extern "C" int app_main() {
    const uint32_t t0 = qmcu::platform::counter_read();
    qmcu::platform::console_write(kHello, sizeof(kHello) - 1);
    const int k = integer_kernel(g_data + g_bss);
    const uint32_t t1 = qmcu::platform::counter_read();
    return (k == 22 && t1 - t0 < 0x80000000u) ? 0 : 1;
}
"""

BIG_C = r"""
__attribute__((used)) const unsigned char kBig[BIG_SIZE] = {1, 2, 3};
void _start(void) { for (;;) { } }
"""


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs them)")


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{shlex.join(argv)}\n{proc.stderr}"


@dataclasses.dataclass(frozen=True)
class Image:
    board: Board
    corner: Corner
    elf: Path


def _build(root: Path, board: Board, corner: Corner) -> Image:
    out = root / f"{board.id}-{corner.name}"
    out.mkdir(parents=True)
    flags = toolchain.target_flags(board, corner)
    assert flags.defines.get("QMCU_CONSOLE_UART") == "1" and flags.defines.get("QMCU_EXIT_HALT") == "1"
    includes = [f"-I{toolchain.PLATFORM_DIR}"]
    if "QMCU_BOARD_INIT" in flags.defines:
        board_config.write_board_config(board, out / "board_config.hpp")
        includes.append(f"-I{out}")
    src = out / "app.cpp"
    src.write_text(MINIMAL_APP)
    objs = []
    for s in [src, *toolchain.platform_sources(board, corner)]:
        obj = out / f"{s.stem}.o"
        _run(["arm-none-eabi-g++", *flags.cxxflags, *flags.define_flags(), *includes, "-c", str(s), "-o", str(obj)])
        objs.append(str(obj))
    script = linker.write_linker_script(board, out / "link.ld")
    elf = out / "app.elf"
    _run(["arm-none-eabi-g++", *flags.linkflags, f"-T{script}", toolchain.link_map_flag(elf), "-o", str(elf), *objs,
          *flags.lib_flags()])
    return Image(board, corner, elf)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, Corner], Image]:
    _need(*CROSS)
    root = tmp_path_factory.mktemp("hardware")
    return {(b.id, c): _build(root, b, c) for b in HARDWARE for c in b.corners}


def _symbol(elf: Path, name: str) -> int:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise AssertionError(f"{name} not in {elf}")


@pytest.mark.parametrize("board", _params(HARDWARE))
def test_every_hardware_image_links_and_fits(images: dict[tuple[str, Corner], Image], board: Board) -> None:
    assert board.flash is not None and board.ram is not None
    for corner in board.corners:
        image = images[(board.id, corner)]
        sizes = elfcheck.check_fits(board, image.elf)
        assert 0 < sizes["flash"] < board.flash.size and 0 < sizes["ram"] < board.ram.size
        assert _symbol(image.elf, "__qmcu_stack_top") == board.ram.origin + board.ram.size
        vectors = subprocess.run(["arm-none-eabi-objdump", "-h", str(image.elf)], capture_output=True, text=True,
                                 check=True).stdout
        assert re.search(rf"\.isr_vector\s+\S+\s+{board.flash.origin:08x}", vectors), vectors
        checks = elfcheck.check_float_free(image.elf, Path(f"{image.elf}.map"), corner, ["integer_kernel"])
        assert checks["checks"], checks
        flags = toolchain.target_flags(board, corner)
        assert flags.defines.get("QMCU_COUNTER_DWT") == "1"
        assert ("-mfloat-abi=hard" in flags.cxxflags) == (corner.float == 1)
        assert (f"-mfpu={board.fpu}" in flags.cxxflags) == (corner.float == 1)


@pytest.mark.parametrize("board", _params(HARDWARE))
def test_dry_run_flash_prints_the_exact_commands(images: dict[tuple[str, Corner], Image], board: Board,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    elf = images[(board.id, board.corners[0])].elf
    for name in flash.FLASHERS:
        argv = flash.flash(board, elf, name, dry_run=True)
        assert argv == flash.flash_argv(board, name, elf)
        lines = capsys.readouterr().out.splitlines()
        expected = [*(shlex.join(c) for c in flash.prepare_argv(board, name, elf)), shlex.join(argv)]
        assert lines == [f"dry run: {e}" for e in expected]
    assert not elf.with_suffix(".bin").exists(), "a dry run wrote the st-flash binary"


def _big_elf(root: Path, size: int) -> Path:
    _need("arm-none-eabi-gcc", "arm-none-eabi-size")
    src = root / "big.c"
    src.write_text(BIG_C)
    elf = root / "big.elf"
    _run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-O1", f"-DBIG_SIZE={size}",
          "-Wl,--entry=_start", "-Wl,-Ttext=0x08000000", str(src), "-o", str(elf)])
    return elf


@pytest.mark.parametrize("board", _params(HARDWARE))
def test_an_image_over_the_flash_is_refused_before_flashing(tmp_path: Path, board: Board,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert board.flash is not None
    elf = _big_elf(tmp_path, board.flash.size + 4096)
    size = elfcheck.image_sizes(elf)["flash"]
    assert size > board.flash.size
    refusal = rf"image big\.elf is {size} bytes, board {board.id} has {board.flash.size} bytes of flash"
    log = tmp_path / "flasher.log"
    bin_dir = tmp_path / "bin"
    for name in flash.FLASHERS:
        _fake_tool(bin_dir, flash.FLASHERS[name].program, log)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ["PATH"]]))
    for name in flash.FLASHERS:
        with pytest.raises(QmcuError, match=refusal):
            flash.flash(board, elf, name, dry_run=True)
        with pytest.raises(QmcuError, match=refusal):
            flash.flash(board, elf, name)
    with pytest.raises(QmcuError, match=refusal):
        run_board(board, elf, "/dev/null", None, 1.0, lister=list)
    assert capsys.readouterr().out == ""
    assert not log.exists(), "a flasher ran for an image that does not fit"
    assert not elf.with_suffix(".bin").exists()


# --- serial ports ---------------------------------------------------------------------------------

def _port(device: str, vid: int | None, pid: int | None, serial: str = "0671FF555185754867183432") -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial
    info.description = "STM32 STLink" if vid == ST_VID else "USB serial"
    return info


NUCLEO = _by_id("nucleo-f446re")
ADAPTER = _port("/dev/ttyUSB0", 0x0403, 0x6001, "A10KJ3")  # an FTDI USB-serial adapter
OLD_STLINK = _port("/dev/ttyACM7", ST_VID, 0x3748)  # ST-LINK/V2: no virtual COM port


@pytest.mark.parametrize("pid", sorted(VCP_PIDS))
def test_the_one_stlink_port_is_found(pid: int) -> None:
    ports = [ADAPTER, OLD_STLINK, _port("/dev/ttyACM0", ST_VID, pid), _port("/dev/ttyS0", None, None)]
    assert find_port(NUCLEO, None, lambda: ports) == "/dev/ttyACM0"


def test_no_stlink_port() -> None:
    with pytest.raises(QmcuError, match=r"^no ST-Link virtual COM port found; plug the board in or pass "
                                        r"port=/dev/ttyACM0$"):
        find_port(NUCLEO, None, lambda: [ADAPTER, OLD_STLINK])


def test_several_stlink_ports() -> None:
    ports = [_port("/dev/ttyACM1", ST_VID, 0x374E, "003A00"), _port("/dev/ttyACM0", ST_VID, 0x374B, "0671FF")]
    with pytest.raises(QmcuError) as info:
        find_port(NUCLEO, None, lambda: ports)
    assert str(info.value) == ("several ST-Link virtual COM ports found: /dev/ttyACM0 (0483:374b, STM32 STLink, 0671FF); "
                               "/dev/ttyACM1 (0483:374e, STM32 STLink, 003A00); pass port= with the one of board "
                               "nucleo-f446re")


def test_an_explicit_port_wins_and_must_exist(tmp_path: Path) -> None:
    ports = [_port("/dev/ttyACM0", ST_VID, 0x374B)]
    assert find_port(NUCLEO, "/dev/ttyACM5", lambda: [*ports, _port("/dev/ttyACM5", None, None)]) == "/dev/ttyACM5"
    device = tmp_path / "ttyFAKE0"
    device.touch()
    assert find_port(NUCLEO, str(device), lambda: ports) == str(device)
    with pytest.raises(QmcuError, match=r"^serial port /dev/ttyQMCU9 does not exist; plug the board in, check the name"):
        find_port(NUCLEO, "/dev/ttyQMCU9", lambda: ports)


def test_a_board_without_usb_ids_needs_a_port() -> None:
    discovery = _by_id("stm32f4-discovery")
    with pytest.raises(QmcuError, match=r"board stm32f4-discovery has no USB IDs to find its serial port by; "
                                        r"pass port=/dev/ttyUSB0"):
        find_port(discovery, None, lambda: [ADAPTER, _port("/dev/ttyACM0", ST_VID, 0x374B)])
    assert find_port(discovery, "/dev/ttyUSB0", lambda: [ADAPTER]) == "/dev/ttyUSB0"


# --- the hardware runner --------------------------------------------------------------------------

def _fake_tool(bin_dir: Path, name: str, log: Path) -> Path:
    """A stand-in for a flasher program: appends its name and arguments to log, succeeds."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f"#!/bin/sh\necho \"{name} $*\" >> '{log}'\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool


def _stream(status: int) -> str:
    lines = [format_record(0, "BEGIN", [("proto", 1), ("model", "textbook"), ("mode", "xor"), ("count", 1),
                                        ("outputs", 1), ("unit", "cycles")]),
             format_record(1, "R", [("i", 0), ("in", [-128, 127]), ("out", [127]), ("n", 411)]),
             format_record(2, "END", [("status", status), ("records", 1), ("stack", 688)])]
    return "qmcu on hardware\n" + "".join(lines)


@pytest.mark.parametrize("board", _params(HARDWARE))
def test_dry_run_prints_flash_command_and_serial_settings(images: dict[tuple[str, Corner], Image], board: Board,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    elf = images[(board.id, board.corners[0])].elf

    def untouchable() -> list[Any]:
        raise AssertionError("a dry run listed the serial ports")

    argv = run_board(board, elf, None, None, 30.0, dry_run=True, lister=untouchable)
    assert argv == flash.flash_argv(board, None, elf)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"dry run: {shlex.join(argv)}"
    assert out[-1] == f"dry run: then read records from {serial_settings(board, None)} for up to 30s"
    if board.usb is not None:
        assert serial_settings(board, None) == "auto-detected USB 0483:374b|3752|374e|374f|3753|3754|3757 at 115200 baud, 8N1"
    else:
        assert serial_settings(board, None) == "port= (required: the board has no USB IDs) at 115200 baud, 8N1"
    assert serial_settings(board, "/dev/ttyACM3") == "/dev/ttyACM3 at 115200 baud, 8N1"


def test_no_port_fails_before_flashing(images: dict[tuple[str, Corner], Image], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "flasher.log"
    _fake_tool(tmp_path / "bin", "openocd", log)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "bin"), os.environ["PATH"]]))
    elf = images[(NUCLEO.id, NUCLEO.corners[0])].elf
    with pytest.raises(QmcuError, match="no ST-Link virtual COM port found"):
        run_board(NUCLEO, elf, None, "openocd", 5.0, lister=lambda: [ADAPTER])
    with pytest.raises(QmcuError, match="serial port /dev/ttyQMCU9 does not exist"):
        run_board(NUCLEO, elf, "/dev/ttyQMCU9", "openocd", 5.0, lister=lambda: [ADAPTER])
    assert not log.exists()


def test_missing_flasher_fails_before_anything(images: dict[tuple[str, Corner], Image], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # PATH keeps binutils (for the fit check) but has no flasher; the venv's bin is searched too, so use OpenOCD.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("arm-none-eabi-size", "arm-none-eabi-objcopy"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    elf = images[(NUCLEO.id, NUCLEO.corners[0])].elf
    with pytest.raises(QmcuError, match=r"openocd \(flasher openocd\) is not installed; install the Debian package openocd"):
        run_board(NUCLEO, elf, None, "openocd", 5.0, lister=lambda: [_port("/dev/ttyACM0", ST_VID, 0x374B)])
    with pytest.raises(QmcuError, match=r"st-flash \(flasher stflash\) is not installed; install the Debian package "
                                        r"stlink-tools"):
        flash.flash(NUCLEO, elf, "stflash")
    assert not elf.with_suffix(".bin").exists()


class _Board:
    """Plays a board behind a pyserial socket:// port: it prints its stream once, when the flasher resets it.

    Bytes printed while nobody has the port open are lost, as on a real UART: a runner that opened
    the port only after flashing would receive nothing.
    """

    def __init__(self, log: Path, text: str) -> None:
        self.log, self.text = log, text
        self.lost = False
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._conn: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (self.log.is_file() and "reset exit" in self.log.read_text()):
            time.sleep(0.01)
        listening, _, _ = select.select([self._server], [], [], 0)
        if not listening:
            self.lost = True
            return
        self._conn, _ = self._server.accept()
        self._conn.sendall(self.text.encode())

    def close(self) -> None:
        self._thread.join(5)
        for s in (self._conn, self._server):
            if s is not None:
                s.close()


def _fake_openocd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "flasher.log"
    _fake_tool(tmp_path / "bin", "openocd", log)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "bin"), os.environ["PATH"]]))
    return log


@pytest.mark.parametrize("status", [0, 2])
def test_run_opens_the_port_then_flashes_and_takes_the_status_from_end(images: dict[tuple[str, Corner], Image],
                                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       status: int) -> None:
    log = _fake_openocd(tmp_path, monkeypatch)
    elf = images[(NUCLEO.id, NUCLEO.corners[0])].elf
    board = _Board(log, _stream(status))
    try:
        # Auto-detection picks the ST-Link port (here a socket URL standing in for /dev/ttyACM0).
        result = run_board(NUCLEO, elf, None, "openocd", 10.0, lister=lambda: [ADAPTER, _port(board.url, ST_VID, 0x374B)])
    finally:
        board.close()
    assert not board.lost
    assert not isinstance(result, list)
    assert result.exit_code == status and result.output_text == _stream(status)
    assert log.read_text().splitlines() == [f"openocd -f board/st_nucleo_f4.cfg -c program {elf} verify reset exit"]


def test_run_without_end_times_out_with_what_arrived(images: dict[tuple[str, Corner], Image], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_openocd(tmp_path, monkeypatch)
    elf = images[(NUCLEO.id, NUCLEO.corners[0])].elf
    board = _Board(log, _stream(0).split("QM 2 END")[0])  # the board stops before END
    try:
        with pytest.raises(QmcuError, match=rf"board nucleo-f446re printed no END record within 0\.5s after flashing "
                                            rf"\({re.escape(board.url)}\); last lines: qmcu on hardware \| QM 0 BEGIN .* \| "
                                            r"QM 1 R .*; check the wiring and the baud rate"):
            run_board(NUCLEO, elf, board.url, "openocd", 0.5)
    finally:
        board.close()


def test_a_port_that_cannot_be_opened_fails_before_flashing(images: dict[tuple[str, Corner], Image], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_openocd(tmp_path, monkeypatch)
    elf = images[(NUCLEO.id, NUCLEO.corners[0])].elf
    with socket.create_server(("127.0.0.1", 0)) as taken:
        url = f"socket://127.0.0.1:{taken.getsockname()[1]}"
    with pytest.raises(QmcuError, match=rf"cannot open serial port {re.escape(url)}"):
        run_board(NUCLEO, elf, url, "openocd", 1.0)
    assert not log.exists()


def test_status_of_a_damaged_stream_is_unknown() -> None:
    assert status_of(_stream(3)) == 3
    assert status_of(_stream(3).replace("status=3", "status=4")) == NO_STATUS  # CRC no longer matches
    assert status_of("no records at all\n") == NO_STATUS


def test_run_board_refuses_other_boards(tmp_path: Path) -> None:
    with pytest.raises(QmcuError, match=rf"board {QEMU[0].id} is not a hardware board with a UART console"):
        run_board(QEMU[0], tmp_path / "x.elf", None, None, 1.0)


def test_no_board_fact_in_the_code() -> None:
    """Board ids, pyOCD targets, OpenOCD configs and register addresses live in boards/, not in the code."""
    code = [REPO_ROOT / "tools" / "qmcu" / f for f in ("flash.py", "ports.py", "runners/board.py", "boards.py")]
    facts = set()
    for b in HARDWARE:
        assert b.flasher is not None and b.uart is not None
        facts |= {b.id, str(b.flasher.pyocd_target), str(b.flasher.openocd_config), f"0x{b.uart.base:08x}",
                  f"{b.uart.base:#x}"}
    for path in code:
        text = path.read_text().lower()
        for fact in facts:
            assert fact.lower() not in text, f"{path} names the board fact {fact}"
