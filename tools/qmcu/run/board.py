"""Runner for hardware boards: flash the ELF, then collect the records the board prints on its UART. Never judges.

The serial port is opened before flashing, because the flash command resets the board and the
firmware starts printing at once; a reader thread collects the stream (serial_reader.read_records)
while the flasher runs (bytes from before the flasher started, and an old image's stream cut by the
reset, are dropped: serial_reader.FlashWindow). A real board cannot exit, so the RunResult's exit code
is the END record's status; a firmware that faulted prints its FAULT line instead of END and the
reader stops there at once, and the exit code is the status the firmware would have exited with (3,
or 4 for a stack overflow); -1 when the stream has neither (the judge then reports why).

The read timeout is derived from the bytes the run will print and the board's baud rate
(run_timeout): an exhaustive XOR run prints about 3.4 MB, about 300 s at 115200 baud.
"""

from __future__ import annotations

import logging
import shlex
import threading
import time
from pathlib import Path

from qmcu import interrupt
from qmcu.boards import Board
from qmcu.errors import QmcuError
from qmcu.run import flash
from qmcu.run.ports import PortLister, find_port, system_ports
from qmcu.run.records import FAULT_PREFIX, ProtocolError, parse_stream
from qmcu.run.result import RunResult, last_lines
from qmcu.run.serial_reader import FlashWindow, open_port, read_records

logger = logging.getLogger(__name__)

NO_STATUS = -1
# The statuses the firmware ends with after a FAULT line (firmware/platform/platform.hpp).
STATUS_FAULT = 3
STATUS_STACK_OVERFLOW = 4
# Bits on the wire per byte: 8N1 is a start bit, 8 data bits and a stop bit.
BITS_PER_BYTE = 10
# The derived timeout: this many times the pure transfer time, plus this much for everything else.
TIMEOUT_FACTOR = 1.5
TIMEOUT_MARGIN_S = 30.0


def transfer_s(stream_bytes: int, baud: int) -> float:
    """Seconds the UART needs to carry stream_bytes at baud (8N1)."""
    return stream_bytes * BITS_PER_BYTE / baud


def run_timeout(board: Board, stream_bytes: int, timeout_s: float) -> float:
    """The read timeout for a run that prints about stream_bytes: timeout_s, or more where the UART needs longer.

    A UART cannot carry the records faster than its baud rate allows, so a timeout below that would kill
    every healthy run (mode=exhaustive at 115200 baud needs about 300 s); timeout= can only lengthen it.
    """
    if board.uart is None:
        return timeout_s
    needed = TIMEOUT_FACTOR * transfer_s(stream_bytes, board.uart.baud) + TIMEOUT_MARGIN_S
    if needed > timeout_s:
        logger.info("%s: about %d bytes of records take %.0f s at %d baud: waiting up to %.0f s instead of "
                    "timeout=%g", board.id, stream_bytes, transfer_s(stream_bytes, board.uart.baud), board.uart.baud,
                    needed, timeout_s)
        return needed
    return timeout_s


def serial_settings(board: Board, port: str | None) -> str:
    """The console's serial settings as one line: device (or how it is found), baud rate, 8N1."""
    if board.uart is None:
        raise QmcuError(f"board {board.id} has no UART console", "add a \"uart\" section to its board file")
    if port:
        where = port
    elif board.usb is not None:
        where = f"auto-detected USB {board.usb.vid:04x}:{'|'.join(f'{p:04x}' for p in board.usb.pids)}"
    else:
        where = "port= (required: the board has no USB IDs)"
    return f"{where} at {board.uart.baud} baud, 8N1"


def status_of(text: str) -> int:
    """The END record's status; else the firmware's status after its FAULT line; else NO_STATUS."""
    try:
        return parse_stream(text).end.status
    except ProtocolError as err:
        logger.debug("no status from the board's output: %s", err)
    for line in text.splitlines():
        if line.startswith(FAULT_PREFIX):
            return STATUS_STACK_OVERFLOW if line.rstrip("\r") == f"{FAULT_PREFIX}stack overflow" else STATUS_FAULT
    return NO_STATUS


def run_board(board: Board, elf: Path, port: str | None, flasher: str | None, timeout_s: float, dry_run: bool = False,
              *, lister: PortLister = system_ports) -> RunResult | list[str]:
    """Flash elf into the board and read its records until END or FAULT; with dry_run, print what would run.

    A dry run returns the flash argv. port is a serial device or a pyserial URL (None: found by the board's USB
    IDs, see ports.find_port, whose port lister is lister). timeout_s counts from the end of flashing.
    """
    if board.kind != "hardware" or board.uart is None:
        raise QmcuError(f"board {board.id} is not a hardware board with a UART console", "use the QEMU or host runner")
    elf = Path(elf)
    if dry_run:
        argv = flash.flash(board, elf, flasher, dry_run=True)
        print(f"dry run: then read records from {serial_settings(board, port)} for up to {timeout_s:g}s")
        return argv

    # Everything that can fail without the board fails before anything touches it.
    argv = flash.preflight(board, elf, flasher)
    device = find_port(board, port, lister)
    ser = open_port(device, board.uart.baud)
    received: list[str] = []
    texts: list[str] = []
    errors: list[BaseException] = []
    window = FlashWindow()

    def _read() -> None:
        try:
            texts.append(read_records(ser, timeout_s + flash.FLASH_TIMEOUT_S, on_line=received.append,
                                      flashing=window))
        except BaseException as err:  # handed to the caller's thread below
            errors.append(err)

    stop_key = interrupt.register(f"serial reader on {device}", ser.close)
    try:
        thread = threading.Thread(target=_read, name=f"qmcu-serial-{device}", daemon=True)
        thread.start()
        logger.debug("reading %s; flashing with %s", serial_settings(board, device), shlex.join(argv))
        window.start()
        flash.flash(board, elf, flasher)
        window.end()
        start = time.monotonic()
        thread.join(timeout_s + window.grace_s)
        if thread.is_alive():
            seen = "\n".join(received)
            raise QmcuError(f"board {board.id} printed no END record within {timeout_s:g}s after flashing ({device}); "
                            f"last lines: {last_lines(seen)}",
                            "check the wiring and the baud rate; if the run is only slow, raise timeout=")
    finally:
        interrupt.unregister(stop_key)
        ser.close()  # also ends a reader that is still waiting
    if errors:
        raise errors[0]
    text = texts[0]
    status = status_of(text)
    wall = time.monotonic() - start
    logger.debug("board %s: END status %d after %.3fs", board.id, status, wall)
    return RunResult(exit_code=status, output_text=text, wall_s=wall)
