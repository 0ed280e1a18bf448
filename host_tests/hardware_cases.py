"""Hardware boards, ports and stand-in tools shared by the hardware tests."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from serial.tools.list_ports_common import ListPortInfo

from qmcu import boards
from qmcu.boards import Board

HARDWARE = [b for b in boards.load_all() if b.kind == "hardware"]
QEMU = [b for b in boards.load_all() if b.kind == "qemu"]
ST_VID = 0x0483


def _by_id(board_id: str) -> Board:
    return next(b for b in HARDWARE if b.id == board_id)


def _params(items: list[Board]) -> list[Any]:
    return [pytest.param(b, id=b.id) for b in items]


# --- serial ports ---------------------------------------------------------------------------------

def _port(device: str, vid: int | None, pid: int | None, serial: str = "0671FF555185754867183432") -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial
    info.description = "STM32 STLink" if vid == ST_VID else "USB serial"
    return info


NUCLEO = _by_id("nucleo-f446re")
ADAPTER = _port("/dev/ttyUSB0", 0x0403, 0x6001, "A10KJ3")  # an FTDI USB-serial adapter


# --- the hardware runner --------------------------------------------------------------------------

def _fake_tool(bin_dir: Path, name: str, log: Path) -> Path:
    """A stand-in for a flasher program: appends its name and arguments to log, succeeds."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f"#!/bin/sh\necho \"{name} $*\" >> '{log}'\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool
