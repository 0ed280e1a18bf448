"""The serial reader on its own, against real ptys standing in for a board's port."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
import serial

from qmcu.errors import QmcuError
from qmcu.run.records import parse_stream
from qmcu.run.serial_reader import read_records

# --- the reader on its own, against real ptys -----------------------------------------------------

def _record_lines(status: int = 0) -> bytes:
    from qmcu.run.records import format_record

    lines = [format_record(0, "BEGIN", [("proto", 1), ("model", "m"), ("mode", "xor"), ("count", 1), ("outputs", 1),
                                        ("unit", "none")]),
             format_record(1, "R", [("i", 0), ("in", [1, 2]), ("out", [3]), ("n", 0)]),
             format_record(2, "END", [("status", status), ("records", 1), ("stack", 8)])]
    return ("hello\r\n" + "".join(lines)).encode()


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def _write_soon(master: int, data: bytes) -> None:
    # Opening a port flushes its input (pyserial does), so what the "board" sends must come afterwards.
    threading.Timer(0.5, os.write, (master, data)).start()


def test_reader_reads_a_port_by_name_until_end(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    _write_soon(master, _record_lines() + b"after\n")
    seen: list[str] = []
    text = read_records(path, 5.0, on_line=seen.append)
    assert parse_stream(text).end.status == 0
    assert seen[0] == "hello" and seen[-1] == "after", "the short drain after END keeps what follows"


def test_reader_leaves_a_given_port_open(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    with serial.Serial(path, 115200, timeout=None) as port:
        os.write(master, _record_lines(status=1))
        assert parse_stream(read_records(port, 5.0)).end.status == 1
        assert port.is_open and port.timeout is None


def test_reader_reports_a_damaged_stream(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    _write_soon(master, _record_lines().replace(b"R i=0", b"R i=5"))
    with pytest.raises(QmcuError, match=rf"the result stream from {path} is damaged: corrupt record .*crc mismatch"):
        read_records(path, 5.0)


def test_port_that_goes_away_before_end_is_a_clear_error() -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    _write_soon(master, _record_lines()[:60])
    threading.Timer(1.0, os.close, (master,)).start()  # the board is unplugged
    with pytest.raises(QmcuError, match=rf"serial port {path} closed before the END record .*; last lines: hello"):
        read_records(path, 5.0)


def test_missing_port_is_a_clear_error() -> None:
    with pytest.raises(QmcuError, match=r"cannot open serial port /dev/ttyQMCU-none: .*; the port does not exist: plug the "
                                        r"board in"):
        read_records("/dev/ttyQMCU-none", 1.0)
    with pytest.raises(QmcuError, match=r"cannot open serial port socket://127\.0\.0\.1:1: .*nothing accepts connections"):
        read_records("socket://127.0.0.1:1", 1.0)


def test_busy_port_is_a_clear_error(pty_pair: tuple[int, str]) -> None:
    _, path = pty_pair
    with serial.Serial(path, exclusive=True), pytest.raises(QmcuError, match=rf"cannot open serial port {path}: .*another "
                                                                            r"program holds the port"):
        read_records(path, 1.0)
