"""Issue 11, the first real-board run: the firmware side under QEMU, whose memory-write trace shows the order
in which the firmware touches the USART, the GPIO pins and the DWT.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from platform_apps import PROGRAMS
from qmcu import boards
from qmcu.boards import Board, Corner, Counter
from qmcu.build import cross
from qmcu.run.board import STATUS_STACK_OVERFLOW
from qmcu.run.qemu import qemu_argv, run_qemu
from qmcu.run.qemu_uart import run_qemu_uart
from qmcu.run.records import parse_stream

ALL = boards.load_all()
HARDWARE = [b for b in ALL if b.kind == "hardware"]
CROSS = ("arm-none-eabi-g++", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs them)")


# --- the firmware, under QEMU ----------------------------------------------------------------------------

CORNER0 = Corner(0, 0)


def _build(root: Path, board: Board, console: str | None, corner: Corner = CORNER0, overflow: int = 0,
           name: str = "app") -> Path:
    _need(*CROSS)
    out = root / f"{name}-{board.id}-{console}-{corner.name}-{overflow}"
    return cross.cross_build(board, corner, [PROGRAMS / "board_records.cpp"], out / "app.elf",
                             defines={"OVERFLOW": str(overflow)}, include_dirs=[PROGRAMS], console=console)


@pytest.mark.parametrize("board", [pytest.param(b, id=b.id) for b in HARDWARE])
def test_the_firmware_builds_for_every_real_board_and_corner(tmp_path: Path, board: Board) -> None:
    for corner in board.corners:
        for overflow in (0, 1):
            assert _build(tmp_path, board, None, corner, overflow).is_file()


def _writes(log: Path) -> list[tuple[int, int]]:
    """(address, value) of every MMIO write in a QEMU memory_region_ops_write trace, in order."""
    found = re.findall(r"memory_region_ops_write .*?addr (0x[0-9a-f]+) value (0x[0-9a-f]+)", log.read_text())
    return [(int(a, 16), int(v, 16)) for a, v in found]


def _trace(log: Path) -> list[str]:
    return ["-trace", "memory_region_ops_write", "-D", str(log)]


def _qemu(cpu: str) -> Board:
    return next(b for b in ALL if b.kind == "qemu" and b.cpu == cpu)


DEMCR, DWT_CTRL, DWT_LAR = 0xE000EDFC, 0xE0001000, 0xE0001FB0


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7"])
def test_the_dwt_is_enabled_before_every_inference_and_unlocked_only_on_m7(tmp_path: Path, cpu: str) -> None:
    board = _qemu(cpu)
    dwt = dataclasses.replace(board, counter=Counter("dwt", "cycles"))
    elf = _build(tmp_path, dwt, None)
    log = tmp_path / "trace.log"
    result = run_qemu(board, elf, 20.0, _trace(log))
    assert result.exit_code == 0, result.output_text
    writes = _writes(log)
    trcena = [k for k, (a, v) in enumerate(writes) if a == DEMCR and v & (1 << 24)]
    cyccntena = [k for k, (a, v) in enumerate(writes) if a == DWT_CTRL and v & 1]
    # Start-up, then once before each of the three inferences (pyOCD's disconnect may have cleared DEMCR).
    assert len(trcena) == len(cyccntena) == 4, writes
    assert all(t < c for t, c in zip(trcena, cyccntena, strict=True))
    unlocks = [k for k, (a, _) in enumerate(writes) if a == DWT_LAR]
    assert bool(unlocks) == (cpu == "cortex-m7"), "the DWT lock-access register exists only on the Cortex-M7"


def test_the_usart_is_on_before_its_pins_and_a_newline_comes_first(tmp_path: Path) -> None:
    # QEMU's STM32F405 USART1 on its real pins (PA9/PA10, AF7), as a Nucleo's console is routed.
    board = next(b for b in ALL if b.kind == "qemu" and b.uart is not None and b.uart.driver == "stm32-usart")
    assert board.uart is not None
    pins = (boards.UartPin(0x40020000, 9, 7), boards.UartPin(0x40020000, 10, 7))
    routed = dataclasses.replace(board, uart=dataclasses.replace(board.uart, pins=pins))
    elf = _build(tmp_path, routed, "uart", name="routed")
    log = tmp_path / "trace.log"
    result = run_qemu_uart(routed, elf, 20.0, "socket", _trace(log))
    assert result.exit_code == 0
    assert result.output_text.startswith("\r\nQM 0 BEGIN ")
    writes = _writes(log)
    cr1 = board.uart.base + 0x0C
    usart_on = next(k for k, (a, v) in enumerate(writes) if a == cr1 and v & (1 << 13) and v & (1 << 3))
    moder = [k for k, (a, _) in enumerate(writes) if a == 0x40020000]
    pupdr = [(k, v) for k, (a, v) in enumerate(writes) if a == 0x4002000C]
    assert moder and pupdr, "the pins were not routed"
    assert usart_on < moder[0], "a pin was switched to the USART before the USART was on"
    assert pupdr[0][0] < moder[0], "the pull-up came after the pin was switched"
    # (QEMU's GPIO is an unimplemented device that reads 0, so each read-modify-write shows one pin.)
    assert all(any((v >> (2 * p.pin)) & 3 == 1 for _, v in pupdr) for p in pins), "console pins are not pulled up"
    # Without pins (QEMU's own UART boards), no newline: their output is unchanged.
    plain = run_qemu_uart(board, _build(tmp_path, board, "uart"), 20.0)
    assert plain.output_text.startswith("QM 0 BEGIN ")


def test_a_stack_overflow_is_in_end_where_the_run_halts(tmp_path: Path) -> None:
    # A QEMU board made to end like a real one (exit: halt): no exit status reaches the host, only END.
    board = next(b for b in ALL if b.kind == "qemu" and "semihosting" in b.consoles and b.cpu == "cortex-m4")
    halting = dataclasses.replace(board, exit="halt")
    for overflow, status in ((0, 0), (1, STATUS_STACK_OVERFLOW)):
        elf = _build(tmp_path, halting, "semihosting", overflow=overflow)
        out = tmp_path / f"out{overflow}.txt"
        with out.open("w") as sink:
            proc = subprocess.Popen(qemu_argv(board, elf), stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "QM 4 END" not in out.read_text():
                time.sleep(0.05)
            time.sleep(0.3)  # the exit's FAULT line, if any
        finally:
            proc.kill()
            proc.wait()
        stream = parse_stream(out.read_text())
        assert stream.end.status == status
        assert ("FAULT stack overflow" in stream.text_lines) == bool(overflow)
