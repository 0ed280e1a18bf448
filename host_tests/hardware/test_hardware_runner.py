"""Real-board images and the hardware runner without a board: every hardware board's image links and fits,
dry runs print the exact flash commands, and run_board drives a stand-in flasher and a pty board.
"""

from __future__ import annotations

import dataclasses
import os
import re
import select
import shlex
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hardware_cases import ADAPTER, HARDWARE, NUCLEO, QEMU, ST_VID, _fake_tool, _params, _port
from platform_apps import PROGRAMS
from qmcu.boards import Board, Corner
from qmcu.build import cross, elfcheck, toolchain
from qmcu.errors import QmcuError
from qmcu.paths import PACKAGE_DIR
from qmcu.run import flash
from qmcu.run.board import NO_STATUS, run_board, serial_settings, status_of
from qmcu.run.records import format_record

CROSS = ("arm-none-eabi-g++", "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "arm-none-eabi-objdump",
         "arm-none-eabi-objcopy")


# --- real images: link, fit, refuse ----------------------------------------------------------------

def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs them)")


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{shlex.join(argv)}\n{proc.stderr}"


@dataclasses.dataclass(frozen=True)
class Image:
    board: Board
    corner: Corner
    elf: Path


def _build(root: Path, board: Board, corner: Corner) -> Image:
    flags = toolchain.target_flags(board, corner)
    assert flags.defines.get("QMCU_CONSOLE_UART") == "1" and flags.defines.get("QMCU_EXIT_HALT") == "1"
    elf = cross.cross_build(board, corner, [PROGRAMS / "hardware_minimal.cpp"], root / f"{board.id}-{corner.name}" / "app.elf")
    return Image(board, corner, elf)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, Corner], Image]:
    _need(*CROSS)
    root = tmp_path_factory.mktemp("hardware")
    return {(b.id, c): _build(root, b, c) for b in HARDWARE for c in b.corners}


def _symbol(elf: Path, name: str) -> int:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise AssertionError(f"{name} not in {elf}")


@pytest.mark.parametrize("board", _params(HARDWARE))
def test_every_hardware_image_links_and_fits(images: dict[tuple[str, Corner], Image], board: Board) -> None:
    assert board.flash is not None and board.ram is not None
    for corner in board.corners:
        image = images[(board.id, corner)]
        sizes = elfcheck.check_fits(board, image.elf)
        assert 0 < sizes["flash"] < board.flash.size and 0 < sizes["ram"] < board.ram.size
        assert _symbol(image.elf, "__qmcu_stack_top") == board.ram.origin + board.ram.size
        vectors = subprocess.run(["arm-none-eabi-objdump", "-h", str(image.elf)], capture_output=True, text=True,
                                 check=True).stdout
        assert re.search(rf"\.isr_vector\s+\S+\s+{board.flash.origin:08x}", vectors), vectors
        checks = elfcheck.check_float_free(image.elf, Path(f"{image.elf}.map"), corner, ["integer_kernel"])
        assert checks["checks"], checks
        flags = toolchain.target_flags(board, corner)
        assert flags.defines.get("QMCU_COUNTER_DWT") == "1"
        assert ("-mfloat-abi=hard" in flags.cxxflags) == (corner.float == 1)
        assert (f"-mfpu={board.fpu}" in flags.cxxflags) == (corner.float == 1)


@pytest.mark.parametrize("board", _params(HARDWARE))
def test_dry_run_flash_prints_the_exact_commands(images: dict[tuple[str, Corner], Image], board: Board,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    elf = images[(board.id, board.corners[0])].elf
    for name in flash.FLASHERS:
        argv = flash.flash(board, elf, name, dry_run=True)
        assert argv == flash.flash_argv(board, name, elf)
        lines = capsys.readouterr().out.splitlines()
        expected = [*(shlex.join(c) for c in flash.prepare_argv(board, name, elf)), shlex.join(argv)]
        assert lines == [f"dry run: {e}" for e in expected]
    assert not elf.with_suffix(".bin").exists(), "a dry run wrote the st-flash binary"


def _big_elf(root: Path, size: int) -> Path:
    _need("arm-none-eabi-gcc", "arm-none-eabi-size")
    elf = root / "big.elf"
    # A bare ELF, not a board image: only its flash size matters to the refusal.
    _run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-O1", f"-DBIG_SIZE={size}",
          "-Wl,--entry=_start", "-Wl,-Ttext=0x08000000", str(PROGRAMS / "big_flash.c"), "-o", str(elf)])
    return elf


@pytest.mark.parametrize("board", _params(HARDWARE))
def test_an_image_over_the_flash_is_refused_before_flashing(tmp_path: Path, board: Board,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert board.flash is not None
    elf = _big_elf(tmp_path, board.flash.size + 4096)
    size = elfcheck.image_sizes(elf)["flash"]
    assert size > board.flash.size
    refusal = rf"image big\.elf is {size} bytes, board {board.id} has {board.flash.size} bytes of flash"
    log = tmp_path / "flasher.log"
    bin_dir = tmp_path / "bin"
    for name in flash.FLASHERS:
        _fake_tool(bin_dir, flash.FLASHERS[name].program, log)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ["PATH"]]))
    for name in flash.FLASHERS:
        with pytest.raises(QmcuError, match=refusal):
            flash.flash(board, elf, name, dry_run=True)
        with pytest.raises(QmcuError, match=refusal):
            flash.flash(board, elf, name)
    with pytest.raises(QmcuError, match=refusal):
        run_board(board, elf, "/dev/null", None, 1.0, lister=list)
    assert capsys.readouterr().out == ""
    assert not log.exists(), "a flasher ran for an image that does not fit"
    assert not elf.with_suffix(".bin").exists()


# --- the hardware runner --------------------------------------------------------------------------


def _stream(status: int) -> str:
    lines = [format_record(0, "BEGIN", [("proto", 1), ("model", "textbook"), ("mode", "xor"), ("count", 1),
                                        ("outputs", 1), ("unit", "cycles")]),
             format_record(1, "R", [("i", 0), ("in", [-128, 127]), ("out", [127]), ("n", 411)]),
             format_record(2, "END", [("status", status), ("records", 1), ("stack", 688)])]
    return "qmcu on hardware\n" + "".join(lines)


@pytest.mark.parametrize("board", _params(HARDWARE))
def test_dry_run_prints_flash_command_and_serial_settings(images: dict[tuple[str, Corner], Image], board: Board,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    elf = images[(board.id, board.corners[0])].elf

    def untouchable() -> list[Any]:
        raise AssertionError("a dry run listed the serial ports")

    argv = run_board(board, elf, None, None, 30.0, dry_run=True, lister=untouchable)
    assert argv == flash.flash_argv(board, None, elf)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"dry run: {shlex.join(argv)}"
    assert out[-1] == f"dry run: then read records from {serial_settings(board, None)} for up to 30s"
    if board.usb is not None:
        assert serial_settings(board, None) == "auto-detected USB 0483:374b|3752|374e|374f|3753|3754|3757 at 115200 baud, 8N1"
    else:
        assert serial_settings(board, None) == "port= (required: the board has no USB IDs) at 115200 baud, 8N1"
    assert serial_settings(board, "/dev/ttyACM3") == "/dev/ttyACM3 at 115200 baud, 8N1"


def test_no_port_fails_before_flashing(images: dict[tuple[str, Corner], Image], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "flasher.log"
    _fake_tool(tmp_path / "bin", "openocd", log)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "bin"), os.environ["PATH"]]))
    elf = images[(NUCLEO.id, NUCLEO.corners[0])].elf
    with pytest.raises(QmcuError, match="no ST-Link virtual COM port found"):
        run_board(NUCLEO, elf, None, "openocd", 5.0, lister=lambda: [ADAPTER])
    with pytest.raises(QmcuError, match="serial port /dev/ttyQMCU9 does not exist"):
        run_board(NUCLEO, elf, "/dev/ttyQMCU9", "openocd", 5.0, lister=lambda: [ADAPTER])
    assert not log.exists()


def test_missing_flasher_fails_before_anything(images: dict[tuple[str, Corner], Image], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # PATH keeps binutils (for the fit check) but has no flasher; the venv's bin is searched too, so use OpenOCD.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("arm-none-eabi-size", "arm-none-eabi-objcopy"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    elf = images[(NUCLEO.id, NUCLEO.corners[0])].elf
    with pytest.raises(QmcuError, match=r"openocd \(flasher openocd\) is not installed; install the Debian package openocd"):
        run_board(NUCLEO, elf, None, "openocd", 5.0, lister=lambda: [_port("/dev/ttyACM0", ST_VID, 0x374B)])
    with pytest.raises(QmcuError, match=r"st-flash \(flasher stflash\) is not installed; install the Debian package "
                                        r"stlink-tools"):
        flash.flash(NUCLEO, elf, "stflash")
    assert not elf.with_suffix(".bin").exists()


class _Board:
    """Plays a board behind a pyserial socket:// port: it prints its stream once, when the flasher resets it.

    Bytes printed while nobody has the port open are lost, as on a real UART: a runner that opened
    the port only after flashing would receive nothing.
    """

    def __init__(self, log: Path, text: str) -> None:
        self.log, self.text = log, text
        self.lost = False
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._conn: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (self.log.is_file() and "reset exit" in self.log.read_text()):
            time.sleep(0.01)
        listening, _, _ = select.select([self._server], [], [], 0)
        if not listening:
            self.lost = True
            return
        self._conn, _ = self._server.accept()
        self._conn.sendall(self.text.encode())

    def close(self) -> None:
        self._thread.join(5)
        for s in (self._conn, self._server):
            if s is not None:
                s.close()


def _fake_openocd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "flasher.log"
    _fake_tool(tmp_path / "bin", "openocd", log)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "bin"), os.environ["PATH"]]))
    return log


@pytest.mark.parametrize("status", [0, 2])
def test_run_opens_the_port_then_flashes_and_takes_the_status_from_end(images: dict[tuple[str, Corner], Image],
                                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       status: int) -> None:
    log = _fake_openocd(tmp_path, monkeypatch)
    elf = images[(NUCLEO.id, NUCLEO.corners[0])].elf
    board = _Board(log, _stream(status))
    try:
        # Auto-detection picks the ST-Link port (here a socket URL standing in for /dev/ttyACM0).
        result = run_board(NUCLEO, elf, None, "openocd", 10.0, lister=lambda: [ADAPTER, _port(board.url, ST_VID, 0x374B)])
    finally:
        board.close()
    assert not board.lost
    assert not isinstance(result, list)
    assert result.exit_code == status and result.output_text == _stream(status)
    assert log.read_text().splitlines() == [f"openocd -f board/st_nucleo_f4.cfg -c program {elf} verify reset exit"]


def test_run_without_end_times_out_with_what_arrived(images: dict[tuple[str, Corner], Image], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_openocd(tmp_path, monkeypatch)
    elf = images[(NUCLEO.id, NUCLEO.corners[0])].elf
    board = _Board(log, _stream(0).split("QM 2 END")[0])  # the board stops before END
    try:
        with pytest.raises(QmcuError, match=rf"board nucleo-f446re printed no END record within 0\.5s after flashing "
                                            rf"\({re.escape(board.url)}\); last lines: qmcu on hardware \| QM 0 BEGIN .* \| "
                                            r"QM 1 R .*; check the wiring and the baud rate"):
            run_board(NUCLEO, elf, board.url, "openocd", 0.5)
    finally:
        board.close()


def test_a_port_that_cannot_be_opened_fails_before_flashing(images: dict[tuple[str, Corner], Image], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_openocd(tmp_path, monkeypatch)
    elf = images[(NUCLEO.id, NUCLEO.corners[0])].elf
    with socket.create_server(("127.0.0.1", 0)) as taken:
        url = f"socket://127.0.0.1:{taken.getsockname()[1]}"
    with pytest.raises(QmcuError, match=rf"cannot open serial port {re.escape(url)}"):
        run_board(NUCLEO, elf, url, "openocd", 1.0)
    assert not log.exists()


def test_status_of_a_damaged_stream_is_unknown() -> None:
    assert status_of(_stream(3)) == 3
    assert status_of(_stream(3).replace("status=3", "status=4")) == NO_STATUS  # CRC no longer matches
    assert status_of("no records at all\n") == NO_STATUS


def test_run_board_refuses_other_boards(tmp_path: Path) -> None:
    with pytest.raises(QmcuError, match=rf"board {QEMU[0].id} is not a hardware board with a UART console"):
        run_board(QEMU[0], tmp_path / "x.elf", None, None, 1.0)


def test_no_board_fact_in_the_code() -> None:
    """Board ids, pyOCD targets, OpenOCD configs and register addresses live in boards/, not in the code."""
    code = [PACKAGE_DIR / f for f in ("run/flash.py", "run/ports.py", "run/board.py", "boards.py")]
    facts = set()
    for b in HARDWARE:
        assert b.flasher is not None and b.uart is not None
        facts |= {b.id, str(b.flasher.pyocd_target), str(b.flasher.openocd_config), f"0x{b.uart.base:08x}",
                  f"{b.uart.base:#x}"}
    for path in code:
        text = path.read_text().lower()
        for fact in facts:
            assert fact.lower() not in text, f"{path} names the board fact {fact}"
