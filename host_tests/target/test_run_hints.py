"""Every way a run can end early names its cause and the fix that fits it: a QEMU that does not know the
board's machine, a firmware fault (with its pc and lr), a signal that stopped QEMU or killed a host
program, and only a real timeout says "raise timeout="."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from test_uart import UART_QEMU, Builder

from qmcu import boards
from qmcu.errors import QmcuError
from qmcu.judge import run_and_judge
from qmcu.options import parse_options
from qmcu.quant import intmodel
from qmcu.run.qemu import run_qemu
from qmcu.run.qemu_uart import run_qemu_uart

QEMU_MISSING = shutil.which("qemu-system-arm") is None
needs_qemu = pytest.mark.skipif(QEMU_MISSING, reason="qemu-system-arm missing (tools/setup.sh installs it)")


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    if QEMU_MISSING or shutil.which("arm-none-eabi-g++") is None:
        pytest.skip("arm-none-eabi-g++ or qemu-system-arm missing (tools/setup.sh installs them)")
    return Builder(tmp_path_factory.mktemp("hints"))


def _host_run(tmp_path: Path, script: str) -> QmcuError:
    """run_and_judge.run of a host 'program' that is a shell script; the error it ends with."""
    opts = parse_options({"board": "host", "model": "textbook", "timeout": "5"})
    program = tmp_path / "app"
    program.write_text(f"#!/bin/sh\n{script}\n")
    program.chmod(0o755)
    with pytest.raises(QmcuError) as err:
        run_and_judge.run(opts, program, intmodel.load(opts.model_dir / "intmodel.json"))
    return err.value


@needs_qemu
@pytest.mark.parametrize("transport", ["semihosting", "socket", "pty"])
def test_a_mistyped_qemu_machine_says_so(tmp_path: Path, transport: str) -> None:
    board = dataclasses.replace(boards.load_board("qemu-m4"), qemu_machine="netduinoplus3")
    elf = tmp_path / "app.elf"
    elf.write_bytes(b"\x7fELF")  # QEMU refuses the machine before it reads the image
    with pytest.raises(QmcuError) as err:
        if transport == "semihosting":
            run_qemu(board, elf, 10.0)
        else:
            run_qemu_uart(board, elf, 10.0, transport)
    message = str(err.value)
    assert "QEMU does not know the machine 'netduinoplus3' of board qemu-m4" in message
    assert 'fix "qemu": {"machine": ...} in boards/qemu-m4.json' in message
    assert "timeout" not in message and "firmware" not in message


def test_a_firmware_fault_names_pc_and_lr_not_the_timeout(tmp_path: Path) -> None:
    message = str(_host_run(tmp_path, "echo 'about to fault'; echo 'FAULT HardFault pc=0x08000123 lr=0x08000457'; exit 3"))
    assert "the firmware on host faulted: HardFault at pc=0x08000123 lr=0x08000457 (exit code 3 (the firmware's " \
           "fault status))" in message
    assert "last lines before it: about to fault" in message
    assert "addr2line -Cfe" in message and "0x08000123 0x08000457" in message
    assert "raising timeout= does not help" in message
    overflow = str(_host_run(tmp_path, "echo 'FAULT stack overflow'; exit 4"))
    assert "overflowed its stack" in overflow and "raise timeout" not in overflow
    # Only a run that really ran out of time is told to raise timeout=.
    slow = str(_host_run(tmp_path, "exec sleep 30"))
    assert "did not finish within 5s" in slow and "raise timeout=" in slow


def test_a_host_program_killed_by_a_signal_names_it(tmp_path: Path) -> None:
    message = str(_host_run(tmp_path, "echo started; kill -SEGV $$"))
    assert "app on host was killed by SIGSEGV (signal 11) before its END record" in message
    assert "exit code -11" not in message and "raise timeout" not in message


def _qemu_children() -> list[int]:
    """Pids of this process's qemu-system-arm children."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == "qemu-system-arm" and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("console", ["semihosting", "uart"])
def test_a_signal_that_stops_qemu_is_not_reported_as_a_damaged_stream(builder: Builder, console: str) -> None:
    # A Ctrl-C that reaches QEMU (say, from a terminal that signals the whole group) ends it cleanly, with
    # exit code 0 and half a stream: that is an interrupted run, not a firmware that printed garbage.
    board = UART_QEMU[0]
    elf = builder.build(board, console, "hang.cpp", {}, "hang")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            (run_qemu_uart if console == "uart" else run_qemu)(board, elf, 30.0)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while not _qemu_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    for pid in _qemu_children():
        os.kill(pid, signal.SIGINT)
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], QmcuError), errors
    message = str(errors[0])
    assert f"QEMU ({board.qemu_machine}) was stopped by SIGINT sent by pid {os.getpid()}" in message
    assert "damaged" not in message and "timeout" not in message
