"""The hardware board files, their flash commands and the ST-LINK serial-port search (no board attached)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from hardware_cases import ADAPTER, HARDWARE, NUCLEO, QEMU, ST_VID, _by_id, _fake_tool, _params, _port
from qmcu import boards
from qmcu.boards import Board, Corner, Counter, FlashSettings
from qmcu.errors import QmcuError
from qmcu.paths import BOARDS_DIR
from qmcu.run import flash
from qmcu.run.ports import find_port

# (pid, what) of the ST-Link probes with a virtual COM port (stlink-org/stlink usb.h names).
VCP_PIDS = {0x374B: "V2-1", 0x3752: "V2-1 without mass storage", 0x374E: "V3E", 0x374F: "V3S", 0x3753: "V3 two VCPs",
            0x3754: "V3 without mass storage", 0x3757: "V3PWR"}


# STM32F4 USARTs have the SR/DR/BRR/CR1 layout; STM32F7 and STM32L4 the CR1/BRR/ISR/TDR one.
USART_LAYOUT = {"nucleo-f401re": "stm32-usart", "nucleo-f446re": "stm32-usart", "stm32f4-discovery": "stm32-usart",
                "nucleo-l476rg": "stm32-usart-v2", "nucleo-f767zi": "stm32-usart-v2"}


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


# --- serial ports ---------------------------------------------------------------------------------


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
