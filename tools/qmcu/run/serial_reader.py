"""Read one result stream from a serial console: QEMU's UART (socket or pty) or a board's serial port.

read_records() reads until the END record has arrived (records.StreamReader decides) or the
firmware's FAULT line has (a faulted firmware prints nothing more: waiting for the timeout would only
hide it), drains what follows for a moment, and returns everything as text for the judge. It never
writes to the port. A port that cannot be opened, a stream that stops before END, or a damaged
record is a QmcuError naming the port, what arrived and the fix; a port that goes away mid-stream
(QEMU exited, cable pulled) is PortClosed, which carries the text received so far.

A real board's port is read while the board is flashed (FlashWindow): bytes that arrive before the
flasher starts are the old image's and are dropped, the stream starts over at the new image's
``QM 0 BEGIN`` (records.StreamReader restart mode), and the returned text starts there.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import struct
import termios
import time
from collections.abc import Callable

import serial

from qmcu.errors import QmcuError
from qmcu.run.records import ProtocolError, StreamReader
from qmcu.run.result import last_lines

logger = logging.getLogger(__name__)

# How long one read may block: the deadline is checked at least this often.
POLL_S = 0.05
# After END, bytes still on the way (the rest of the line, text after it) get this long to arrive.
DRAIN_S = 0.2
# After the flasher has returned, the new image's BEGIN may still be on its way (USB latency) this long.
RESTART_GRACE_S = 1.0

LineCallback = Callable[[str], None]


class PortClosed(QmcuError):
    """The port closed before the END record arrived; text is what had arrived until then."""

    def __init__(self, port: str, text: str, cause: Exception) -> None:
        super().__init__(f"serial port {port} closed before the END record ({cause}); last lines: {last_lines(text)}",
                         "the other end went away: the emulator exited or the board was unplugged or reset")
        self.text = text


def _open_fix(port: str, err: Exception) -> str:
    code = getattr(err, "errno", None)
    text = str(err).lower()
    if "://" in port:
        return "nothing accepts connections there: start the emulator (or server) first, and check the address"
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "no such file" in text:
        return ("the port does not exist: plug the board in and pass its port (see ls /dev/serial/by-id/ "
                "/dev/ttyACM* /dev/ttyUSB*)")
    if code in (errno.EBUSY, errno.EAGAIN) or "busy" in text or "lock" in text:
        return "another program holds the port: close it (screen, minicom, picocom, another qmcu run) and try again"
    if code == errno.EACCES or "permission" in text:
        return "no permission: add yourself to the dialout group (sudo usermod -aG dialout $USER, then log in again)"
    return "check the port name and that nothing else uses it"


def open_port(port: str, baudrate: int = 115200) -> serial.SerialBase:
    """Open a device path or a pyserial URL (socket://host:port, ...) for reading; QmcuError with the fix if it fails."""
    try:
        # exclusive: a second reader on the same board would steal bytes from this one.
        return serial.serial_for_url(port, baudrate=baudrate, timeout=POLL_S, exclusive="://" not in port)
    except (serial.SerialException, OSError, ValueError) as err:
        raise QmcuError(f"cannot open serial port {port}: {err}", _open_fix(port, err)) from err


def port_name(port: serial.SerialBase) -> str:
    return str(getattr(port, "name", None) or getattr(port, "port", None) or port)


class FlashWindow:
    """The time around flashing a board whose port is already open, as the reader must see it.

    Before start(), whatever arrives was printed by the image the board ran before and is dropped.
    From start() until grace_s after end(), the old image may still be printing (until the flasher
    halts it) and the new one starts at the reset: the stream may start over at a new BEGIN, so a
    damaged record, an END or a FAULT does not end the read yet.
    """

    def __init__(self, grace_s: float = RESTART_GRACE_S) -> None:
        self.grace_s = grace_s
        self.started: float | None = None
        self.ended: float | None = None

    def start(self) -> None:
        self.started = time.monotonic()

    def end(self) -> None:
        self.ended = time.monotonic()

    @property
    def before_flashing(self) -> bool:
        return self.started is None

    @property
    def open(self) -> bool:
        return self.ended is None or time.monotonic() < self.ended + self.grace_s


class _Lines:
    """Splits the byte stream into lines for the on_line callback (StreamReader keeps its own split)."""

    def __init__(self, on_line: LineCallback | None) -> None:
        self._on_line = on_line
        self._pending = b""

    def feed(self, data: bytes) -> None:
        if self._on_line is None:
            return
        *complete, self._pending = (self._pending + data).split(b"\n")
        for raw in complete:
            self._on_line(raw.decode("latin-1").removesuffix("\r"))


def _waiting(port: serial.SerialBase) -> int:
    """Bytes ready to read. pyserial's socket:// port only ever says 0 or 1, so ask the descriptor itself."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(port.fileno(), termios.FIONREAD, b"\0" * 4))[0])
    except (AttributeError, OSError, ValueError):
        return int(port.in_waiting)


def _read_some(port: serial.SerialBase, name: str, received: bytearray) -> bytes:
    try:
        # Only what is there (or one byte within POLL_S): a larger read that fails would lose what it had.
        return bytes(port.read(max(1, _waiting(port))))
    except (serial.SerialException, OSError) as err:
        raise PortClosed(name, received.decode("latin-1"), err) from err


def _timeout_error(name: str, timeout_s: float, baudrate: int, received: bytearray) -> QmcuError:
    if not received:
        return QmcuError(f"received nothing from {name} within {timeout_s:g}s",
                         f"is the image built for the uart console, the board running (reset it), the port right and the "
                         f"baud rate {baudrate}?")
    text = received.decode("latin-1")
    return QmcuError(f"no END record from {name} within {timeout_s:g}s ({len(received)} bytes received); "
                     f"last lines: {last_lines(text)}",
                     "the firmware hangs or stopped early (see the last lines); if it is only slow, raise timeout=")


def _damaged(name: str, err: ProtocolError, received: bytearray) -> QmcuError:
    return QmcuError(f"the result stream from {name} is damaged: {err}; last lines: "
                     f"{last_lines(received.decode('latin-1'))}",
                     "check the baud rate and the cable; a stream that starts mid-way means the board "
                     "was already running: reset it after the port is open")


def read_records(port: serial.SerialBase | str, timeout_s: float, baudrate: int = 115200,
                 on_line: LineCallback | None = None, writer_alive: Callable[[], bool] | None = None,
                 flashing: FlashWindow | None = None) -> str:
    """Everything the console printed up to and just after the END record (or the FAULT line).

    port is an open pyserial port (left open; baudrate is then ignored) or a device path / pyserial URL,
    opened here at baudrate and closed again. on_line, if given, sees every complete line as it arrives.
    writer_alive, if given, says whether the writer still runs: once it has stopped and the port holds
    nothing more, the port counts as closed (a pty whose writer exited never signals it by itself).
    flashing, if given, is the window in which the board is flashed (see FlashWindow): the text
    returned then starts where this image's stream does.
    """
    owned = isinstance(port, str)
    ser = open_port(port, baudrate) if isinstance(port, str) else port
    name = port if isinstance(port, str) else port_name(port)
    saved_timeout = ser.timeout
    ser.timeout = POLL_S
    reader, lines, received = StreamReader(restart=flashing is not None), _Lines(on_line), bytearray()
    fed_from = 0  # where in received the bytes fed to the reader start (the old image's bytes come before)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            settled = flashing is None or not flashing.open
            if settled and reader.damage is not None:
                raise _damaged(name, reader.damage, received)
            if settled and (reader.done or reader.fault is not None):
                break
            if time.monotonic() >= deadline:
                raise _timeout_error(name, timeout_s, baudrate, received)
            # Asked before the read: a writer that had stopped then cannot have anything left after an empty read.
            stopped = writer_alive is not None and not writer_alive()
            chunk = _read_some(ser, name, received)
            if not chunk and stopped:
                raise PortClosed(name, received.decode("latin-1"), OSError("the writer stopped"))
            received += chunk
            lines.feed(chunk)
            if flashing is not None and flashing.before_flashing:
                fed_from = len(received)  # printed before the flasher started: the old image's
                continue
            try:
                reader.feed(chunk)
            except ProtocolError as err:
                raise _damaged(name, err, received) from err
        if reader.fault is not None and not reader.done:
            logger.debug("stopped reading %s at the firmware's fault line: %s", name, reader.fault)
        _drain(ser, received, lines)
    finally:
        if owned:
            ser.close()
        else:
            with contextlib.suppress(serial.SerialException, OSError):  # a port that went away cannot be reset
                ser.timeout = saved_timeout
    start = fed_from + reader.stream_start
    if start:
        logger.debug("dropped the first %d of %d bytes from %s: printed before this image's stream", start,
                     len(received), name)
    logger.debug("read %d bytes from %s", len(received), name)
    return received[start:].decode("latin-1")


def _drain(ser: serial.SerialBase, received: bytearray, lines: _Lines) -> None:
    end = time.monotonic() + DRAIN_S
    while time.monotonic() < end:
        try:
            chunk = bytes(ser.read(max(1, _waiting(ser))))
        except (serial.SerialException, OSError):
            return  # the other end closed after END: nothing more can come
        if not chunk:
            return
        received += chunk
        lines.feed(chunk)
