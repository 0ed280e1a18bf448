"""Runner for QEMU boards whose image prints on the board's UART: the path a real board's serial port takes.

QEMU runs with the argv of qemu.qemu_argv, except that its first serial port (the board's console UART,
see "uart" in the board file) is a chardev the host reads with pyserial through serial_reader:
  socket  -serial tcp:127.0.0.1:PORT,server=on,wait=on: QEMU waits for our connection before the
          machine starts, so no byte is missed; what QEMU wrote before it exited stays in the socket.
  pty     a pseudo-terminal pair made here: QEMU writes to the master (passed with -add-fd as a serial
          device), pyserial reads the slave /dev/pts/N exactly like a board's /dev/ttyACM0. The slave is
          open before QEMU starts and the master stays open here until the reading is done: a pty whose
          master closes throws away the input not yet read, which a QEMU -serial pty does on exit.
The run still ends with the board's semihosting exit, so QEMU's exit code is the status. Nothing is ever
sent to the firmware. Never judges.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import serial

from qmcu import interrupt
from qmcu.boards import Board
from qmcu.build.toolchain import require_tool
from qmcu.errors import QmcuError
from qmcu.run.qemu import QEMU, qemu_argv, qemu_problem
from qmcu.run.result import RunResult, last_lines
from qmcu.run.serial_reader import POLL_S, PortClosed, port_name, read_records

logger = logging.getLogger(__name__)

TRANSPORTS = ("socket", "pty")
# How long QEMU may take to listen on its socket before that counts as a failure.
STARTUP_S = 10.0
# How long QEMU may take to exit once the END record has arrived.
EXIT_S = 5.0
# QEMU's own chardev chatter on stdout/stderr, not the firmware's.
_CHATTER_RE = re.compile(r"^.*QEMU waiting for connection on: .*\n?", re.M)
_FATAL_RE = re.compile(r"qemu: fatal: (.*)")

T = TypeVar("T")


# Explains why QEMU ended early, from what it printed and its exit code (None: nothing to explain).
Explain = Callable[[str, int], QmcuError | None]


class _Qemu:
    """One QEMU process whose merged stdout/stderr is collected by a thread (so the pipe never fills).

    It is registered with interrupt while it runs (a signal kills it at once); explain, if given, turns an
    early exit into the error to show (see qemu.qemu_problem).
    """

    def __init__(self, argv: list[str], pass_fds: tuple[int, ...] = (), what: str = "QEMU",
                 explain: Explain | None = None) -> None:
        logger.debug("running %s", " ".join(argv))
        self.explain = explain
        self.proc, self._key = interrupt.start(argv, what, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, pass_fds=pass_fds)
        self._out = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        for chunk in iter(lambda: stdout.read1(4096), b""):
            with self._lock:
                self._out += chunk

    def output(self) -> str:
        with self._lock:
            return self._out.decode("latin-1")

    def wait(self, timeout_s: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> str:
        """Kill QEMU if it still runs; everything it printed."""
        if self.proc.poll() is None:
            interrupt.kill_group(self.proc)
            self.proc.wait()
        interrupt.unregister(self._key)
        self._thread.join(timeout=2.0)
        return self.output()

    def exited_early(self, what: str) -> QmcuError:
        """The error for a QEMU that exited before what (it has exited)."""
        text = self.output()
        code = self.proc.returncode
        explained = self.explain(text, code) if self.explain is not None else None
        return explained or QmcuError(f"QEMU exited with code {code} before {what}; it said: {last_lines(text)}",
                                      "see QEMU's message")


def _await(qemu: _Qemu, what: str, attempt: Callable[[], T | None]) -> T:
    """Call attempt() until it returns something, QEMU exits, or STARTUP_S passes."""
    deadline = time.monotonic() + STARTUP_S
    while True:
        result = attempt()
        if result is not None:
            return result
        if qemu.proc.poll() is not None:
            qemu.wait(1.0)  # let the collector thread catch QEMU's last words
            raise qemu.exited_early(what)
        if time.monotonic() >= deadline:
            raise QmcuError(f"QEMU did not get to {what} within {STARTUP_S:g}s; it said: {last_lines(qemu.output())}",
                            "the machine is overloaded or QEMU hangs at start-up")
        time.sleep(0.02)


def _with_serial(argv: list[str], *replacement: str) -> list[str]:
    """argv with its "-serial null" replaced (qemu_argv gives the first serial port nowhere to go)."""
    at = argv.index("-serial")
    return [*argv[:at], *replacement, *argv[at + 2:]]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _qmp_reply(reader: io.BufferedReader) -> bytes:
    """The next QMP reply (asynchronous events, such as RESUME, may come before it); b"" at the end of the stream."""
    reply = reader.readline()
    while b'"event"' in reply:
        reply = reader.readline()
    return reply


def _qmp_cont(qemu: _Qemu, path: str) -> None:
    """Resume a QEMU started with -S through its QMP socket (capabilities handshake, then cont).

    A short image can run to its end and QEMU exit before the reply to cont is read (the socket then
    reads as closed or reset): that is a successful start, judged later like any run.
    """

    def connect() -> socket.socket | None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            s.close()
            return None
        return s

    with _await(qemu, f"QMP on {path}", connect) as qmp, qmp.makefile("rb") as reader:
        qmp.settimeout(STARTUP_S)
        try:
            reader.readline()  # the greeting
            qmp.sendall(b'{"execute": "qmp_capabilities"}\n')
            reply = _qmp_reply(reader)
        except OSError as err:
            reply = str(err).encode()
        if b'"return"' not in reply:
            if qemu.wait(EXIT_S) is not None:
                raise qemu.exited_early("the QMP handshake")
            raise QmcuError(f"QEMU refused the QMP handshake: {reply.decode(errors='replace').strip() or 'no reply'}",
                            "see QEMU's message")
        try:
            qmp.sendall(b'{"execute": "cont"}\n')
            reply = _qmp_reply(reader)
        except OSError as err:  # reset or broken pipe: QEMU closed the socket (or, after STARTUP_S, no reply)
            logger.debug("QMP socket after cont: %s", err)
            reply = b""
        if b'"return"' in reply:
            return
        if reply:
            raise QmcuError(f"QEMU refused cont: {reply.decode(errors='replace').strip()}", "see QEMU's message")
        # No reply, the socket closed: QEMU exited, or is exiting, after running the image.
        if qemu.wait(EXIT_S) is None:
            raise QmcuError(f"QEMU gave no reply to cont on its QMP socket {path} and keeps running",
                            "the machine is overloaded or QEMU hangs: run it again")


def _start_socket(argv: list[str], what: str = "QEMU", explain: Explain | None = None) -> tuple[_Qemu, serial.SerialBase]:
    # QEMU starts paused (-S) and is resumed over QMP only once pyserial has connected: pyserial's
    # socket:// open() discards whatever already arrived, which under load could be the first records.
    for _ in range(3):
        port = _free_port()
        url = f"socket://127.0.0.1:{port}"
        qmp_dir = tempfile.mkdtemp(prefix="qmcu-qmp-")
        qmp_path = os.path.join(qmp_dir, "qmp.sock")
        qemu = _Qemu(_with_serial(argv, "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on") +
                     ["-S", "-qmp", f"unix:{qmp_path},server=on,wait=off"], what=what, explain=explain)

        def connect(url: str = url) -> serial.SerialBase | None:
            try:
                return serial.serial_for_url(url, timeout=POLL_S)
            except serial.SerialException:
                return None  # not listening yet

        try:
            ser = _await(qemu, f"listening on {url}", connect)
            try:
                _qmp_cont(qemu, qmp_path)
            except BaseException:
                ser.close()
                qemu.stop()
                raise
            finally:
                shutil.rmtree(qmp_dir, ignore_errors=True)  # QEMU keeps its open socket; the path is not needed
            return qemu, ser
        except BaseException:
            # Between our probe and QEMU's bind another program may have taken the port.
            if "Address already in use" not in qemu.stop():
                raise
            logger.debug("port %d was taken meanwhile; trying another", port)
    raise QmcuError("QEMU could not bind a free local TCP port three times in a row", "try again, or use transport pty")


def _start_pty(argv: list[str], what: str = "QEMU", explain: Explain | None = None) -> tuple[_Qemu, serial.SerialBase, int]:
    """QEMU on the master of a new pty, pyserial on its slave; the caller closes the master when done."""
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        try:
            port = serial.Serial(path, 115200, timeout=POLL_S)
        finally:
            os.close(slave)  # pyserial has its own descriptor
        try:
            # /dev/fdset/1 makes QEMU open a copy of the descriptor passed with -add-fd.
            qemu = _Qemu(_with_serial(argv, "-add-fd", f"fd={master},set=1", "-chardev",
                                      "serial,id=qmcu_console,path=/dev/fdset/1", "-serial", "chardev:qmcu_console"),
                         pass_fds=(master,), what=what, explain=explain)
        except BaseException:
            port.close()
            raise
    except BaseException:
        os.close(master)
        raise
    return qemu, port, master


def _check_fatal(board: Board, elf: Path, uart_text: str, qemu_text: str) -> None:
    fatal = _FATAL_RE.search(qemu_text)
    if fatal:
        raise QmcuError(f"QEMU ({board.qemu_machine}) aborted running {elf.name}: {fatal.group(1).strip()} (a lockup "
                        f"means a fault inside the fault handler); last UART lines: {last_lines(uart_text, 3)}",
                        f"check \"memory\" in boards/{board.id}.json against the machine and the vector table")


def _read_run(board: Board, elf: Path, qemu: _Qemu, port: serial.SerialBase, timeout_s: float) -> tuple[str, int]:
    """The UART text up to END (or until QEMU ended the run) and QEMU's exit code."""
    try:
        text = read_records(port, timeout_s, writer_alive=lambda: qemu.proc.poll() is None)
    except PortClosed as closed:
        text = closed.text  # QEMU ended the run before END (a fault, say): the judge reports what is missing
    code = qemu.wait(EXIT_S)
    _check_fatal(board, elf, text, qemu.output())
    problem = qemu_problem(board, elf, qemu.output(), code, text)
    if problem is not None:  # a signal cut the run off, whatever the stream looks like
        raise problem
    if code is None:
        raise QmcuError(f"QEMU did not exit within {EXIT_S:g}s after the END record ({elf.name} on {board.qemu_machine}); "
                        f"last UART lines: {last_lines(text)}", f"the image must end with the board's exit ({board.exit})")
    return text, code


def run_qemu_uart(board: Board, elf: Path, timeout_s: float, transport: str = "socket",
                  plugin_args: list[str] | None = None) -> RunResult:
    """Run elf (built for the uart console) under QEMU and read its UART; QEMU's exit code is the status."""
    require_tool(QEMU)
    elf = Path(elf)
    if transport not in TRANSPORTS:
        raise QmcuError(f"unknown UART transport {transport!r}", f"use one of {', '.join(TRANSPORTS)}")
    if "uart" not in board.consoles:
        raise QmcuError(f"board {board.id} has no uart console (consoles: {', '.join(board.consoles)})",
                        "run it with the semihosting runner, or add \"uart\" to the board file")
    if not elf.is_file():
        raise QmcuError(f"{elf} does not exist", "build it first (scons board=<id> console=uart build)")
    argv = qemu_argv(board, elf, plugin_args)
    start = time.monotonic()
    master = None
    what = f"QEMU {board.qemu_machine}"

    def explain(text: str, code: int) -> QmcuError | None:
        return qemu_problem(board, elf, text, code, "")

    if transport == "socket":
        qemu, port = _start_socket(argv, what, explain)
    else:
        qemu, port, master = _start_pty(argv, what, explain)
    try:
        with interrupt.registered(f"serial reader on {port_name(port)}", port.close):
            text, code = _read_run(board, elf, qemu, port, timeout_s)
    except QmcuError:
        _check_fatal(board, elf, "", qemu.stop())  # a lockup explains a silent or cut-off UART best
        raise
    finally:
        port.close()
        qemu_text = qemu.stop()
        if master is not None:
            os.close(master)
    wall = time.monotonic() - start
    semihosting = _CHATTER_RE.sub("", qemu_text)
    if semihosting and text and not text.endswith("\n"):
        text += "\n"
    logger.debug("QEMU exit code %d after %.3fs, %d UART bytes", code, wall, len(text))
    return RunResult(exit_code=code, output_text=text + semihosting, wall_s=wall)
