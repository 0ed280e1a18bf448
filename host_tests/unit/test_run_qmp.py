"""QMP start-up of a UART run: QEMU may run a tiny image to its end and exit before the reply to cont is read.

A stand-in QEMU (a small Python QMP server) makes the race deterministic: it answers the handshake, then
exits on cont without replying, with the command unread (the socket reads as reset) or read (end of stream).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qmcu.run import qemu_uart

FAKE_QMP = r"""
import socket, sys, time
path, mode = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
conn, _ = server.accept()
reader = conn.makefile("rb")
conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\n')
reader.readline()
conn.sendall(b'{"return": {}}\n')
if mode == "reset":
    time.sleep(0.5)  # cont arrives meanwhile and stays unread: closing now resets the connection
elif mode == "eof":
    reader.readline()
sys.exit(0)
"""


def _fake(tmp_path: Path, mode: str) -> tuple[qemu_uart._Qemu, str]:
    path = str(tmp_path / "qmp.sock")
    return qemu_uart._Qemu([sys.executable, "-c", FAKE_QMP, path, mode]), path


@pytest.mark.parametrize("mode", ["reset", "eof"])
def test_qemu_exiting_after_cont_is_a_successful_start(tmp_path: Path, mode: str) -> None:
    qemu, path = _fake(tmp_path, mode)
    try:
        qemu_uart._qmp_cont(qemu, path)
    finally:
        qemu.stop()

