"""Console choice, the generated board_config.hpp's UART and the UART runner's request checks follow the
board data; no board is named in console code.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from qmcu import boards
from qmcu.boards import Board
from qmcu.build import toolchain
from qmcu.codegen import board_config
from qmcu.errors import QmcuError
from qmcu.paths import PACKAGE_DIR, REPO_ROOT
from qmcu.run.qemu_uart import run_qemu_uart

ALL_BOARDS = boards.load_all()
TARGETS = [b for b in ALL_BOARDS if b.is_target]
UART_QEMU = [b for b in ALL_BOARDS if b.kind == "qemu" and "uart" in b.consoles]


def test_some_qemu_board_has_a_uart() -> None:
    assert UART_QEMU, "no QEMU board lists the uart console"


def test_runner_rejects_bad_requests(tmp_path: Path) -> None:
    board = UART_QEMU[0]
    with pytest.raises(QmcuError, match=r"unknown UART transport 'usb'; use one of socket, pty"):
        run_qemu_uart(board, tmp_path / "x.elf", 1.0, "usb")
    with pytest.raises(QmcuError, match=r"x\.elf does not exist"):
        run_qemu_uart(board, tmp_path / "x.elf", 1.0)
    no_uart = [b for b in ALL_BOARDS if b.kind == "qemu" and "uart" not in b.consoles]
    if no_uart:
        with pytest.raises(QmcuError, match=rf"board {no_uart[0].id} has no uart console"):
            run_qemu_uart(no_uart[0], tmp_path / "x.elf", 1.0)


# --- flags, sources and the generated header --------------------------------------------------------

@pytest.mark.parametrize("board", TARGETS, ids=lambda b: b.id)
def test_console_choice_follows_board_data(board: Board) -> None:
    corner = board.corners[0]
    default = toolchain.target_flags(board, corner)
    assert default.defines == toolchain.target_flags(board, corner, console=board.consoles[0]).defines
    for console in board.consoles:
        flags = toolchain.target_flags(board, corner, console=console)
        names = [p.name for p in toolchain.platform_sources(board, corner, console)]
        assert flags.defines[f"QMCU_CONSOLE_{console.upper()}"] == "1"
        assert flags.defines[f"QMCU_EXIT_{board.exit.upper()}"] == "1"
        assert ("semihosting.cpp" in names) == (console == "semihosting" or board.exit == "semihosting")
        assert ("halt.cpp" in names) == (board.exit == "halt")
        uart_files = [n for n in names if n.startswith("uart_")]
        assert len(uart_files) == (console == "uart")
        assert ("board_init.cpp" in names) == ("QMCU_BOARD_INIT" in flags.defines)
        assert ("board_init.cpp" in names) == (console == "uart" or bool(board.clock and board.clock.init))
    with pytest.raises(QmcuError, match=rf"board {board.id} has no console 'jtag'; use one of its consoles: "
                                        rf"{', '.join(board.consoles)}"):
        toolchain.target_flags(board, corner, console="jtag")
    with pytest.raises(QmcuError, match="has no console 'jtag'"):
        toolchain.platform_sources(board, corner, "jtag")
    stdout_board = dataclasses.replace(board, consoles=(*board.consoles, "stdout"))
    with pytest.raises(QmcuError, match=r"console 'stdout' of board \S+ is not implemented by the Cortex-M platform"):
        toolchain.target_flags(stdout_board, corner, console="stdout")


@pytest.mark.parametrize("board", [b for b in TARGETS if "uart" in b.consoles], ids=lambda b: b.id)
def test_board_config_header_carries_the_uart(board: Board) -> None:
    assert board.uart is not None
    text = board_config.render_board_config(board, "uart")
    assert "GENERATED FILE - DO NOT EDIT" in text and f"boards/{board.id}.json" in text
    assert f"constexpr uintptr_t kUartBase = 0x{board.uart.base:08x}u;" in text
    assert f"constexpr uint32_t kUartDivisor = {round(board.uart.clock_hz / board.uart.baud)}u;" in text
    for e in board.uart.enable:
        assert f"{{0x{e.register:08x}u, {e.bit}u}}," in text
    for p in board.uart.pins:
        assert f"{{0x{p.gpio_base:08x}u, {p.pin}u, {p.af}u}}," in text
    if "semihosting" in board.consoles:
        assert "kUartBase" not in board_config.render_board_config(board, "semihosting")


def test_board_config_rejects_an_unreachable_baud_rate() -> None:
    board = UART_QEMU[0]
    assert board.uart is not None
    slow = dataclasses.replace(board, uart=dataclasses.replace(board.uart, clock_hz=100_000_000, baud=300))
    with pytest.raises(QmcuError, match=r"needs divisor 333333, above 65535"):
        board_config.render_board_config(slow, "uart")
    # 16.5 clocks per bit: the divisor (16) is off by 3 %, more than a UART link tolerates.
    odd = dataclasses.replace(board, uart=dataclasses.replace(board.uart, clock_hz=int(115200 * 16.5), baud=115200))
    with pytest.raises(QmcuError, match=r"cannot make 115200 baud \(off by 3\.\d%\)"):
        board_config.render_board_config(odd, "uart")


def test_no_board_named_in_console_code() -> None:
    cortexm = sorted((REPO_ROOT / "firmware" / "platform" / "cortexm").glob("*"))
    paths = [PACKAGE_DIR / "codegen" / "board_config.py", *cortexm]
    for path in paths:
        text = path.read_text()
        for b in ALL_BOARDS:
            for name in [b.id, *([b.qemu_machine] if b.qemu_machine else [])] if b.kind != "host" else []:
                assert not re.search(rf"\b{re.escape(name)}\b", text), f"{path} names board {name}"
