"""`scons board=qemu-m4 console=uart run`: the full pyserial path (socket and pty) gives the semihosting report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scons_run import report, scons

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm missing")


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console")
    proc = scons(path, "board=qemu-m4", "model=textbook", "run")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return path


@pytest.mark.parametrize("transport", ["socket", "pty"])
def test_uart_run_equals_semihosting_run(build: Path, transport: str) -> None:
    proc = scons(build, "board=qemu-m4", "model=textbook", "console=uart", f"transport={transport}", "run")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "int8 XOR accuracy: 4/4" in proc.stdout.splitlines()
    semi, uart = report(build, "qemu-m4", suffix="-textbook"), report(build, "qemu-m4", suffix="-textbook-uart")
    for key in ("outputs", "correct", "total", "bit_exact", "per_inference", "plugin_per_inference", "counter_minus_plugin"):
        assert uart[key] == semi[key], key


def test_real_board_dry_run_prints_the_pyocd_command(build: Path) -> None:
    proc = scons(build, "board=nucleo-f446re", "flash", "dry_run=1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    elf = build / "nucleo-f446re-std0-float0" / "app.elf"
    assert f"dry run: pyocd flash --target stm32f446retx {elf}" in proc.stdout.splitlines()
    run = scons(build, "board=nucleo-f446re", "run", "dry_run=1", "port=/dev/ttyACM7")
    assert run.returncode == 0 and "/dev/ttyACM7 at 115200 baud, 8N1" in run.stdout


def test_a_board_without_uart_refuses_console_uart(build: Path) -> None:
    proc = scons(build, "board=qemu-m0", "console=uart", "run")
    assert proc.returncode != 0
    assert "qmcu: error: board qemu-m0 has no console 'uart'; use one of semihosting" in proc.stderr
