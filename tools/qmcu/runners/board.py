"""Runner for hardware boards: flash the ELF, then collect the records the board prints on its UART. Never judges.

The serial port is opened before flashing, because the flash command resets the board and the
firmware starts printing at once; a reader thread collects the stream (serial_reader.read_records)
while the flasher runs. A real board cannot exit, so the RunResult's exit code is the END record's
status (-1 when the stream has no intact END record; the judge then reports why).
"""

from __future__ import annotations

import logging
import shlex
import threading
import time
from pathlib import Path

from .. import flash, interrupt
from ..boards import Board
from ..errors import QmcuError
from ..ports import PortLister, find_port, system_ports
from ..records import ProtocolError, parse_stream
from .result import RunResult, last_lines
from .serial_reader import open_port, read_records

logger = logging.getLogger(__name__)

NO_STATUS = -1


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
    """The END record's status, or NO_STATUS when the output holds no complete, intact stream."""
    try:
        return parse_stream(text).end.status
    except ProtocolError as err:
        logger.debug("no status from the board's output: %s", err)
        return NO_STATUS


def run_board(board: Board, elf: Path, port: str | None, flasher: str | None, timeout_s: float, dry_run: bool = False,
              *, lister: PortLister = system_ports) -> RunResult | list[str]:
    """Flash elf into the board and read its records until END; with dry_run, print what would run and return the flash argv.

    port is a serial device or a pyserial URL (None: found by the board's USB IDs, see ports.find_port, whose
    port lister is lister). timeout_s counts from the end of flashing.
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

    def _read() -> None:
        try:
            texts.append(read_records(ser, timeout_s + flash.FLASH_TIMEOUT_S, on_line=received.append))
        except BaseException as err:  # handed to the caller's thread below
            errors.append(err)

    stop_key = interrupt.register(f"serial reader on {device}", ser.close)
    try:
        thread = threading.Thread(target=_read, name=f"qmcu-serial-{device}", daemon=True)
        thread.start()
        logger.debug("reading %s; flashing with %s", serial_settings(board, device), shlex.join(argv))
        flash.flash(board, elf, flasher)
        start = time.monotonic()
        thread.join(timeout_s)
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
