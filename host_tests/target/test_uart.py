"""UART consoles end to end: real cross builds, real QEMU, real sockets and ptys, read with pyserial.

Every QEMU board whose board file lists the "uart" console is run over both transports and must print
exactly the records its semihosting build prints. No board is named here: boards are data.
(The reader against ptys: hardware/test_serial_reader.py; console flags and the generated header: unit/test_console_config.py.)
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from platform_apps import PROGRAMS
from qmcu import boards
from qmcu.boards import Board, Clock, ClockStep, Corner
from qmcu.build import cross
from qmcu.codegen import board_config
from qmcu.errors import QmcuError
from qmcu.run.qemu import run_qemu
from qmcu.run.qemu_uart import run_qemu_uart
from qmcu.run.records import RecordStream, parse_stream

ALL_BOARDS = boards.load_all()
TARGETS = [b for b in ALL_BOARDS if b.is_target]
UART_QEMU = [b for b in ALL_BOARDS if b.kind == "qemu" and "uart" in b.consoles]
CROSS_TOOLS = ("arm-none-eabi-g++", "qemu-system-arm")
TIMEOUT_S = 20.0
CORNER = Corner(0, 0)
RECORDS = 200  # about 9 KB of records: enough to fill any UART FIFO and socket buffer many times over

class Builder:
    """Builds host_tests/programs/ for one console with cross.cross_build, as the build does (that console's
    flags and platform files, board_config.hpp when the board needs it). Platform objects and whole images are
    built once per distinct input."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._count = 0
        self._lock = threading.Lock()
        self._done: dict[str, Any] = {}

    def _dir(self, name: str) -> Path:
        with self._lock:
            self._count += 1
            return self.root / f"{self._count:03d}-{name}"

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._done:
            self._done[key] = make()
        return self._done[key]

    def platform(self, board: Board, console: str | None, corner: Corner) -> list[Path]:
        return self._once(repr(("platform", board, console, corner)), lambda: cross.platform_objects(
            board, corner, self._dir(f"platform-{board.id}-{console or 'default'}-{corner.name}"), console=console))

    def build(self, board: Board, console: str | None, program: str, defines: dict[str, str], name: str,
              corner: Corner = CORNER) -> Path:
        def make() -> Path:
            out = self._dir(f"{name}-{board.id}-{console or 'default'}")
            return cross.cross_build(board, corner, [PROGRAMS / program], out / f"{name}.elf", defines=defines,
                                     include_dirs=[PROGRAMS], console=console,
                                     platform=self.platform(board, console, corner))

        return self._once(repr((board, console, program, sorted(defines.items()), corner)), make)


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    missing = [t for t in CROSS_TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs them)")
    return Builder(tmp_path_factory.mktemp("uart"))


def _records_app(builder: Builder, board: Board, console: str | None, status: int = 0) -> Path:
    return builder.build(board, console, "record_stream.cpp", {"RECORDS": str(RECORDS), "APP_STATUS": str(status)}, "records")


def _same_records(a: RecordStream, b: RecordStream) -> None:
    assert a.begin == b.begin and a.results == b.results and a.summary == b.summary
    # The stack depth differs between consoles (different console code); status and count may not.
    assert (a.end.status, a.end.records) == (b.end.status, b.end.records)
    assert a.end.stack > 0 and b.end.stack > 0


@pytest.fixture(scope="module")
def semihosting_streams(builder: Builder) -> dict[str, RecordStream]:
    """The default-console (first in "consoles") build of the records app on every UART board: the reference."""
    streams = {}
    for board in UART_QEMU:
        assert board.consoles[0] != "uart", "a QEMU board's default console should stay semihosting"
        result = run_qemu(board, _records_app(builder, board, None), TIMEOUT_S)
        assert result.exit_code == 0, result.output_text
        streams[board.id] = parse_stream(result.output_text)
    return streams


@pytest.mark.parametrize("transport", ["socket", "pty"])
@pytest.mark.parametrize("board", UART_QEMU, ids=lambda b: b.id)
def test_uart_prints_the_same_records_as_semihosting(builder: Builder, semihosting_streams: dict[str, RecordStream],
                                                     board: Board, transport: str) -> None:
    elf = _records_app(builder, board, "uart")
    result = run_qemu_uart(board, elf, TIMEOUT_S, transport)
    assert result.exit_code == 0, result.output_text
    stream = parse_stream(result.output_text)
    _same_records(stream, semihosting_streams[board.id])
    assert stream.text_lines[0] == "uart test app"
    assert "QEMU waiting" not in result.output_text and "char device" not in result.output_text


@pytest.mark.parametrize("board", UART_QEMU, ids=lambda b: b.id)
def test_uart_exit_status_and_fault_reach_the_host(builder: Builder, board: Board) -> None:
    result = run_qemu_uart(board, _records_app(builder, board, "uart", status=2), TIMEOUT_S)
    assert result.exit_code == 2 and parse_stream(result.output_text).end.status == 2
    # A fault ends the run before END: the runner still returns what the UART carried and the status.
    fault = run_qemu_uart(board, builder.build(board, "uart", "fault.cpp", {}, "fault"), TIMEOUT_S, "pty")
    assert fault.exit_code == 3
    assert re.search(r"^about to fault\nFAULT HardFault pc=0x[0-9a-f]{8} lr=0x[0-9a-f]{8}$", fault.output_text, re.M)


def test_silent_firmware_times_out_with_a_clear_error(builder: Builder) -> None:
    board = UART_QEMU[0]
    elf = builder.build(board, "uart", "silent.cpp", {}, "silent")
    start = time.monotonic()
    with pytest.raises(QmcuError, match=r"received nothing from socket://127\.0\.0\.1:\d+ within 1s; is the image built "
                                        r"for the uart console"):
        run_qemu_uart(board, elf, 1.0)
    assert time.monotonic() - start < 5.0
    with pytest.raises(QmcuError, match=r"received nothing from /dev/pts/\d+ within 1s"):
        run_qemu_uart(board, elf, 1.0, "pty")
    hang = builder.build(board, "uart", "hang.cpp", {}, "hang")
    with pytest.raises(QmcuError, match=r"no END record from socket://\S+ within 1s \(8 bytes received\); last lines: "
                                        r"hanging; the firmware hangs"):
        run_qemu_uart(board, hang, 1.0)


# --- flags, sources and the generated header --------------------------------------------------------


@pytest.mark.parametrize("board", [b for b in TARGETS if b.kind != "qemu"], ids=lambda b: b.id)
def test_every_console_of_a_board_that_cannot_run_here_compiles(builder: Builder, board: Board) -> None:
    # Real boards cannot run here; their consoles, clock steps and exit must still build warning-free
    # (QEMU boards build and run above and in test_platform.py).
    for console in board.consoles:
        builder.build(board, console, "record_stream.cpp", {"RECORDS": "1", "APP_STATUS": "0"}, "compile", board.corners[0])


def test_clock_steps_run_before_the_application(builder: Builder) -> None:
    # QEMU ignores the clock registers, so the steps here write two free RAM words instead: the second step
    # waits on the bit the first one set. The application checks both, over either console.
    board = UART_QEMU[0]
    assert board.ram is not None
    if board.ram.size < 64 * 1024:
        pytest.skip(f"board {board.id} has too little RAM for a free word between the data and the stack")
    word = (board.ram.origin + board.ram.size // 2) & ~3  # above data and bss, below the stack
    clock = Clock("test", 1, (ClockStep(word, 1), ClockStep(word + 4, 2, word, 1)))
    clocked = dataclasses.replace(board, clock=clock)
    assert board_config.needs_board_config(clocked, "semihosting")
    assert f"{{0x{word + 4:08x}u, 0x00000002u, 0x{word:08x}u, 0x00000001u}}," in board_config.render_board_config(clocked)
    defines = {"WORD": f"0x{word:08x}u"}
    semihosting = run_qemu(board, builder.build(clocked, "semihosting", "clock_steps.cpp", defines, "clock"), TIMEOUT_S)
    assert (semihosting.exit_code, semihosting.output_text) == (0, "clock steps ran\n")
    uart = run_qemu_uart(board, builder.build(clocked, "uart", "clock_steps.cpp", defines, "clock"), TIMEOUT_S)
    assert (uart.exit_code, uart.output_text) == (0, "clock steps ran\n")
