"""Find the serial port a hardware board's console appears on.

An explicit port always wins: a device must exist, a pyserial URL (socket://...) is checked when it
is opened. Otherwise the ports the system lists are filtered by the board file's USB IDs ("usb":
{"vid", "pids"}, the ST-Link virtual COM port): exactly one match is the answer, none or several is
an error that says what to pass. The lister is a parameter, so tests give it port descriptions as
plain data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from qmcu.boards import Board
from qmcu.errors import QmcuError

logger = logging.getLogger(__name__)

PortLister = Callable[[], Iterable[Any]]


def system_ports() -> list[Any]:
    """The serial ports of this machine (pyserial's ListPortInfo: device, vid, pid, description, serial_number)."""
    from serial.tools import list_ports

    return list(list_ports.comports())


def _describe(info: Any) -> str:
    ids = f"{info.vid:04x}:{info.pid:04x}" if info.vid is not None and info.pid is not None else "no USB id"
    extra = ", ".join(str(x) for x in (getattr(info, "description", None), getattr(info, "serial_number", None))
                      if x and x != "n/a")
    return f"{info.device} ({ids}{', ' + extra if extra else ''})"


def find_port(board: Board, port: str | None, lister: PortLister = system_ports) -> str:
    """The serial device of the board's console: port if given (it must exist), else the one matching the board's USB IDs."""
    if port:
        if "://" in port:  # a pyserial URL (socket://host:port, rfc2217://...): opening it is the check
            return port
        if os.path.exists(port) or any(info.device == port for info in lister()):
            return port
        raise QmcuError(f"serial port {port} does not exist",
                        "plug the board in, check the name (ls /dev/ttyACM* /dev/ttyUSB*), or leave port= out to "
                        "auto-detect")
    if board.usb is None:
        raise QmcuError(f"board {board.id} has no USB IDs to find its serial port by",
                        "pass port=/dev/ttyUSB0 (the USB-serial adapter on its console pins)")
    usb = board.usb
    matches = sorted((info for info in lister() if info.vid == usb.vid and info.pid in usb.pids),
                     key=lambda info: str(info.device))
    logger.debug("ports matching %04x:%s: %s", usb.vid, [f"{p:04x}" for p in usb.pids], [m.device for m in matches])
    if not matches:
        raise QmcuError("no ST-Link virtual COM port found", "plug the board in or pass port=/dev/ttyACM0")
    if len(matches) > 1:
        raise QmcuError(f"several ST-Link virtual COM ports found: {'; '.join(_describe(m) for m in matches)}",
                        f"pass port= with the one of board {board.id}")
    return str(matches[0].device)
