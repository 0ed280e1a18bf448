"""Issue 11, the first real-board run: everything that would bite on a desk, proved against stand-ins.

No board is attached here. pyOCD is a stand-in script that prints a target table and logs its calls;
the board's UART is a pty whose other end a thread writes, in step with a stand-in flasher: what the
old image was still printing when the flasher started, then (at the flasher's reset) the new image's
stream. The firmware side runs for real under QEMU: target/test_first_board_firmware.py.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qmcu import boards
from qmcu.boards import Board
from qmcu.codegen.vectors import Vectors, exhaustive_inputs
from qmcu.errors import QmcuError
from qmcu.judge.verdict import judge
from qmcu.quant import reference
from qmcu.quant.intmodel import IntModel
from qmcu.run import flash
from qmcu.run.board import STATUS_FAULT, STATUS_STACK_OVERFLOW, run_board, run_timeout, transfer_s
from qmcu.run.records import ProtocolError, StreamReader, format_record, parse_stream, stream_bytes
from qmcu.run.serial_reader import FlashWindow, read_records

ALL = boards.load_all()
HARDWARE = [b for b in ALL if b.kind == "hardware"]
NUCLEO = next(b for b in HARDWARE if b.id == "nucleo-f446re")
# pyOCD's built-in STM32 targets among our boards' parts (pyocd/target/builtin/__init__.py): only the F767ZI.
PYOCD_BUILTIN = {"stm32f767zi"}
PYOCD_TABLE_HEAD = ("  Name                      Vendor                   Part Number                  Families"
                    "                       Source\n" + "-" * 120 + "\n")


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs them)")


def _script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _elf(root: Path) -> Path:
    """A small real Cortex-M ELF at the flash origin (the fit check reads its sections)."""
    _need("arm-none-eabi-gcc", "arm-none-eabi-size")
    src = root / "tiny.c"
    src.write_text("void _start(void) { for (;;) { } }\n")
    elf = root / "tiny.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-O1", "-Wl,--entry=_start",
                    "-Wl,-Ttext=0x08000000", str(src), "-o", str(elf)], check=True)
    return elf


# --- 1. pyOCD targets that come from CMSIS packs ----------------------------------------------------

def _fake_pyocd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, targets: set[str], flash_says: str = "",
                flash_code: int = 0, list_code: int = 0) -> Path:
    """pyocd on PATH: `list --targets` prints a table of targets, `flash` prints flash_says and exits flash_code."""
    log = tmp_path / "pyocd.log"
    table = tmp_path / "targets.txt"
    rows = "".join(f"  {t:<26}STMicroelectronics       {t.upper():<29}{'':<31}builtin\n" for t in sorted(targets))
    table.write_text(PYOCD_TABLE_HEAD + rows)
    (tmp_path / "flash_says.txt").write_text(flash_says)
    _script(tmp_path / "bin" / "pyocd", f"""#!/bin/sh
echo "pyocd $*" >> '{log}'
if [ "$1" = list ]; then cat '{table}'; exit {list_code}; fi
cat '{tmp_path / "flash_says.txt"}'
exit {flash_code}
""")
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "bin"), os.environ["PATH"]]))
    return log


@pytest.mark.parametrize("board", [pytest.param(b, id=b.id) for b in HARDWARE])
def test_pyocd_target_is_checked_before_flashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, board: Board) -> None:
    assert board.flasher is not None and board.flasher.default == "pyocd"
    target = str(board.flasher.pyocd_target)
    elf = _elf(tmp_path)
    log = _fake_pyocd(tmp_path, monkeypatch, {"cortex_m", *PYOCD_BUILTIN})  # a plain `pip install pyocd`
    pyocd = str(tmp_path / "bin" / "pyocd")
    if target in PYOCD_BUILTIN:
        assert flash.preflight(board, elf) == ["pyocd", "flash", "--target", target, str(elf)]
        return
    with pytest.raises(QmcuError) as info:
        flash.preflight(board, elf)
    text = str(info.value)
    assert text == (f"pyOCD does not know target {target} (board {board.id}): it is not built into pyOCD and its CMSIS "
                    f"pack is not installed; run `{pyocd} pack install {target}` once (it downloads the part's CMSIS "
                    "pack), or flash with flasher=openocd")
    assert "cable" not in text and "\n" not in text
    assert log.read_text().splitlines() == ["pyocd list --targets"], "pyOCD was asked to flash an unknown target"
    # After `pyocd pack install`, the same board flashes.
    log.unlink()
    _fake_pyocd(tmp_path, monkeypatch, {"cortex_m", target, *PYOCD_BUILTIN})
    assert flash.flash(board, elf) == ["pyocd", "flash", "--target", target, str(elf)]
    assert log.read_text().splitlines() == ["pyocd list --targets", f"pyocd flash --target {target} {elf}"]


def test_pyocd_not_recognizing_its_target_is_not_blamed_on_the_cable(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A pack listed but broken (or a target table out of date): pyOCD's own words lead to the same fix.
    elf = _elf(tmp_path)
    _fake_pyocd(tmp_path, monkeypatch, {"stm32f446retx"}, flash_code=1,
                flash_says="0000470 C Target type 'stm32f446retx' not recognized. Use 'pyocd list --targets' to see "
                           "currently available target types. [__main__]\n")
    with pytest.raises(QmcuError, match=r"failed \(exit code 1\): .*not recognized.*; pyOCD does not know target "
                                        r"stm32f446retx: run `\S+/pyocd pack install stm32f446retx` once") as info:
        flash.flash(NUCLEO, elf)
    assert "cable" not in str(info.value)
    # Any other failure still points at the hardware.
    _fake_pyocd(tmp_path, monkeypatch, {"stm32f446retx"}, flash_code=1, flash_says="No connected debug probes\n")
    with pytest.raises(QmcuError, match=r"No connected debug probes; check the USB cable"):
        flash.flash(NUCLEO, elf)


def test_a_pyocd_that_cannot_list_its_targets_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elf = _elf(tmp_path)
    _fake_pyocd(tmp_path, monkeypatch, set(), list_code=2)
    with pytest.raises(QmcuError, match=r"^`\S+/pyocd list --targets` failed \(exit code 2\): .*Name.*; reinstall "
                                        r"pyOCD .* or flash with flasher=openocd$"):
        flash.preflight(NUCLEO, elf)


# --- 2./5. the stream: junk before the first record, an old stream, a fault ---------------------------

def _stream(model: str = "m", count: int = 2, status: int = 0, unit: str = "cycles", end: bool = True,
            counts: tuple[int, ...] = (411, 409)) -> bytes:
    lines = [format_record(0, "BEGIN", [("proto", 1), ("model", model), ("mode", "xor"), ("count", count),
                                        ("outputs", 1), ("unit", unit)])]
    for i in range(count):
        lines.append(format_record(1 + i, "R", [("i", i), ("in", [i, -i]), ("out", [i]), ("n", counts[i % len(counts)])]))
    if end:
        lines.append(format_record(1 + count, "END", [("status", status), ("records", count), ("stack", 688)]))
    return "".join(lines).encode()


OLD_STREAM = _stream("old", count=600)  # what the image flashed last time prints after a reset
CUT_OLD = OLD_STREAM[:OLD_STREAM.index(b"QM 517 R") + 14]  # ... cut in the middle of seq 517 by the flasher's halt
NEW = _stream("new")


@pytest.mark.parametrize("junk", [b"\xff", b"\x00", b"\xff\x00\xff\x00", b"\x00\x00\xff\r\n"])
def test_non_printable_bytes_before_the_first_record_are_skipped(junk: bytes) -> None:
    assert parse_stream(junk + NEW).begin.model == "new"
    reader = StreamReader()
    reader.feed(junk + NEW)
    assert reader.done and reader.finish().end.status == 0


def test_junk_after_the_first_record_is_still_damage() -> None:
    first_end = NEW.index(b"\n") + 1
    with pytest.raises(ProtocolError, match="missing record: seq 1 is absent"):
        parse_stream(NEW[:first_end] + b"\xff" + NEW[first_end:])
    with pytest.raises(ProtocolError, match=r"no BEGIN record.*started mid-stream"):
        parse_stream(b"\xffx" + NEW)  # printable junk is not skipped: the record is a text line


@pytest.mark.parametrize(("before", "between"), [
    pytest.param(CUT_OLD, b"\xff\r\n", id="cut-old-stream-then-newline"),
    pytest.param(CUT_OLD, b"\xff", id="cut-old-stream-same-line"),
    pytest.param(OLD_STREAM, b"", id="whole-old-stream"),
    pytest.param(OLD_STREAM[OLD_STREAM.index(b"QM 300 R"):], b"\x00\r\n", id="old-stream-joined-mid-way"),
])
def test_the_reader_restarts_at_a_new_begin(before: bytes, between: bytes) -> None:
    data = before + between + NEW
    reader = StreamReader(restart=True)
    for k in range(0, len(data), 97):  # in chunks, as a port delivers it
        reader.feed(data[k:k + 97])
    assert reader.done and reader.restarts == 1
    assert data[reader.stream_start:] == NEW
    assert reader.finish().begin.model == "new"
    # Without restart (QEMU, a program's stdout) the same bytes are a damaged stream, as before.
    strict = StreamReader()
    with pytest.raises(ProtocolError):
        strict.feed(data)
        strict.finish()


def test_a_damaged_stream_without_a_new_begin_stays_damaged() -> None:
    reader = StreamReader(restart=True)
    reader.feed(NEW.replace(b"R i=1", b"R i=7"))
    assert not reader.done and reader.damage is not None
    with pytest.raises(ProtocolError, match="crc mismatch"):
        reader.finish()


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def _write_soon(master: int, data: bytes) -> None:
    threading.Timer(0.5, os.write, (master, data)).start()  # after pyserial has opened (and flushed) the port


def test_reader_on_a_pty_skips_a_glitch_byte(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    _write_soon(master, b"\xff" + NEW)
    assert parse_stream(read_records(path, 5.0)).begin.model == "new"


def test_reader_on_a_pty_stops_at_a_fault_line(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    _write_soon(master, _stream("new", count=2, end=False) + b"FAULT HardFault pc=0x08000412 lr=0x080003a1\n")
    start = time.monotonic()
    text = read_records(path, 60.0)
    assert time.monotonic() - start < 5.0, "the reader waited for the timeout after the FAULT line"
    assert text.endswith("FAULT HardFault pc=0x08000412 lr=0x080003a1\n")


class _PtyBoard:
    """A board behind a pty, in step with a stand-in OpenOCD: `old` goes out when the flasher starts (the old
    image still running), `new` when it resets the board (its last step)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: bytes, new: bytes) -> None:
        self.log = tmp_path / "openocd.log"
        _script(tmp_path / "bin" / "openocd", f"""#!/bin/sh
echo "openocd starts" >> '{self.log}'
sleep 0.4
echo "openocd $*" >> '{self.log}'
""")
        monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "bin"), os.environ["PATH"]]))
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        os.close(slave)  # the runner opens it by name
        self._thread = threading.Thread(target=self._play, args=(old, new), daemon=True)
        self._thread.start()

    def _wait(self, text: str) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (self.log.is_file() and text in self.log.read_text()):
            time.sleep(0.005)

    def _play(self, old: bytes, new: bytes) -> None:
        self._wait("openocd starts")
        os.write(self.master, old)
        self._wait("reset exit")
        os.write(self.master, new)

    def close(self) -> None:
        self._thread.join(5)
        os.close(self.master)


@pytest.fixture
def elf(tmp_path: Path) -> Path:
    return _elf(tmp_path)


@pytest.mark.parametrize(("old", "new"), [
    pytest.param(b"", b"\xff" + NEW, id="glitch-byte"),
    pytest.param(CUT_OLD, b"\xff\r\n" + NEW, id="old-stream-cut-by-the-reset"),
    pytest.param(CUT_OLD, b"\x00" + NEW, id="old-stream-cut-no-newline"),
    pytest.param(OLD_STREAM, NEW, id="whole-old-stream-first"),
])
def test_a_board_run_judges_the_new_images_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, elf: Path,
                                                  old: bytes, new: bytes) -> None:
    board = _PtyBoard(tmp_path, monkeypatch, old, new)
    try:
        result = run_board(NUCLEO, elf, board.path, "openocd", 10.0)
    finally:
        board.close()
    assert not isinstance(result, list)
    assert result.exit_code == 0
    assert parse_stream(result.output_text).begin.model == "new"
    assert result.output_text.encode("latin-1").endswith(NEW)


@pytest.mark.parametrize(("tail", "status"), [
    pytest.param(b"FAULT HardFault pc=0x08000412 lr=0x080003a1\n", STATUS_FAULT, id="hardfault"),
    pytest.param(b"FAULT UsageFault pc=0x08000412 lr=0x080003a1\n", STATUS_FAULT, id="usagefault"),
])
def test_a_fault_mid_run_ends_the_read_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, elf: Path,
                                               tail: bytes, status: int) -> None:
    board = _PtyBoard(tmp_path, monkeypatch, b"", _stream("new", end=False) + tail)
    start = time.monotonic()
    try:
        result = run_board(NUCLEO, elf, board.path, "openocd", 120.0)  # the default timeout
    finally:
        board.close()
    assert time.monotonic() - start < 10.0, "the runner waited for the timeout after the FAULT line"
    assert not isinstance(result, list)
    assert result.exit_code == status and result.output_text.endswith(tail.decode())


def test_a_stack_overflow_on_a_board_is_its_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, elf: Path) -> None:
    # What the fixed firmware prints: END carries status 4, the exit's FAULT line follows it.
    board = _PtyBoard(tmp_path, monkeypatch, b"", _stream("new", status=STATUS_STACK_OVERFLOW) + b"FAULT stack overflow\n")
    try:
        result = run_board(NUCLEO, elf, board.path, "openocd", 30.0)
    finally:
        board.close()
    assert not isinstance(result, list)
    assert result.exit_code == STATUS_STACK_OVERFLOW
    stream = parse_stream(result.output_text)
    assert stream.end.status == STATUS_STACK_OVERFLOW and "FAULT stack overflow" in stream.text_lines


# --- 3./4. the judge: FAULT lines, frozen cycle counters ------------------------------------------------

def _xor_vectors(model: IntModel) -> Vectors:
    inputs = np.array([[-128, -128], [-128, 127], [127, -128], [127, 127]], dtype=np.int64)
    return Vectors("xor", inputs, None, np.array([0, 1, 1, 0], dtype=np.int64))


def _judged(model: IntModel, counts: list[int], unit: str = "cycles", text: str = "", status: int = 0,
            layers: tuple[int, ...] = (50, 40, 5)) -> list[str]:
    vectors = _xor_vectors(model)
    outs = reference.forward(model, vectors.inputs_q)
    lines = [format_record(0, "BEGIN", [("proto", 1), ("model", model.name), ("mode", "xor"), ("count", 4),
                                        ("outputs", 1), ("unit", unit)])]
    for i in range(4):
        lines.append(format_record(1 + i, "R", [("i", i), ("in", vectors.inputs_q[i].tolist()),
                                                ("out", outs[i].tolist()), ("n", counts[i])]))
    lines.append(format_record(5, "SUM", [("correct", 4), ("total", 4)]))
    for k, (name, n) in enumerate(zip(("fc1", "fc2", "sigmoid"), layers, strict=True)):
        lines.append(format_record(6 + k, "LAYER", [("name", name), ("n", n)]))
    lines.append(format_record(9, "END", [("status", status), ("records", 4), ("stack", 600)]))
    problems = judge(parse_stream("".join(lines) + text), model, vectors).problems
    assert all("\n" not in p for p in problems)
    return problems


def test_the_judge_fails_a_frozen_cycle_counter(textbook_model: IntModel) -> None:
    assert _judged(textbook_model, [411, 409, 409, 411]) == []
    frozen = "the cycle counter did not advance"
    # Stopped before the first inference (pyOCD's DEMCR=0): every delta is 0.
    assert [p for p in _judged(textbook_model, [0, 0, 0, 0]) if frozen in p] == [
        "the cycle counter did not advance: 4 of 4 inferences took 0 cycles (first at index 0); the DWT counter was "
        "stopped (a debugger that disconnects clears DEMCR), so these cycle counts are not measurements"]
    # Stopped mid-run: zero deltas from then on.
    assert any(f"{frozen}: 2 of 4 inferences took 0 cycles (first at index 2)" in p
               for p in _judged(textbook_model, [411, 409, 0, 0]))
    assert any(f"{frozen}: layer sigmoid took 0 cycles" in p
               for p in _judged(textbook_model, [411, 409, 409, 411], layers=(50, 40, 0)))
    # A board without a counter reports instructions as 0: that is not a frozen counter.
    assert _judged(textbook_model, [0, 0, 0, 0], unit="instructions", layers=(0, 0, 0)) == []


def test_the_judge_fails_a_fault_line(textbook_model: IntModel) -> None:
    problems = _judged(textbook_model, [411, 409, 409, 411], text="FAULT stack overflow\n",
                       status=STATUS_STACK_OVERFLOW)
    assert problems == ["firmware exit status 4", "the firmware printed 'FAULT stack overflow'"]
    # Even with END status 0 (the old firmware), the FAULT line alone fails the run.
    assert _judged(textbook_model, [411, 409, 409, 411], text="FAULT stack overflow\n") == [
        "the firmware printed 'FAULT stack overflow'"]


# --- 6. the run timeout follows the bytes and the baud rate ---------------------------------------------

def test_the_run_timeout_covers_the_exhaustive_stream_at_the_board_baud_rate(textbook_model: IntModel) -> None:
    inputs = exhaustive_inputs(2)
    estimate = stream_bytes(inputs, 1, 0)
    # The estimate bounds what the firmware really prints (outputs from the reference, real counts).
    outs = reference.forward(textbook_model, inputs)
    actual = len(_stream_text(inputs, outs))
    assert actual <= estimate <= actual * 1.2  # each count and output at its longest
    assert 3_300_000 < actual < 3_700_000  # the 3.47 MB
    assert NUCLEO.uart is not None and NUCLEO.uart.baud == 115200
    assert transfer_s(actual, 115200) > 290
    timeout = run_timeout(NUCLEO, estimate, 120.0)
    assert timeout >= 1.5 * transfer_s(estimate, 115200) > 120.0
    # A faster UART needs less; a small run keeps timeout=, and timeout= can only lengthen the wait.
    fast = dataclasses.replace(NUCLEO, uart=dataclasses.replace(NUCLEO.uart, baud=921600))
    assert run_timeout(fast, estimate, 120.0) < timeout
    assert run_timeout(NUCLEO, stream_bytes(inputs[:1685], 1, 4), 120.0) == 120.0
    assert run_timeout(NUCLEO, estimate, 3600.0) == 3600.0


def _stream_text(inputs: np.ndarray, outs: np.ndarray) -> str:
    lines = [format_record(0, "BEGIN", [("proto", 1), ("model", "textbook"), ("mode", "exhaustive"),
                                        ("count", len(inputs)), ("outputs", 1), ("unit", "cycles")])]
    lines += [format_record(1 + i, "R", [("i", i), ("in", [int(a), int(b)]), ("out", [int(outs[i][0])]), ("n", 1234)])
              for i, (a, b) in enumerate(inputs.tolist())]
    lines.append(format_record(1 + len(inputs), "END", [("status", 0), ("records", len(inputs)), ("stack", 600)]))
    return "".join(lines)


def test_the_flash_window_drops_what_the_old_image_printed_before_flashing(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    window = FlashWindow(grace_s=0.3)
    os.write(master, b"")
    threading.Timer(0.5, os.write, (master, OLD_STREAM[:5000])).start()  # before the flasher starts
    threading.Timer(1.0, window.start).start()
    threading.Timer(1.2, os.write, (master, NEW)).start()
    threading.Timer(1.3, window.end).start()
    text = read_records(path, 10.0, flashing=window)
    assert text.encode("latin-1") == NEW
