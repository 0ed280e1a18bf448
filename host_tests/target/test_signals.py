"""Ctrl-C and SIGTERM stop a run at once: QEMU, the serial reader and the build, within a second or two,
with exit code 128 + signal, one line saying what was stopped, no emulator left running and no report."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_uart import UART_QEMU, Builder

from qmcu import interrupt
from qmcu.paths import REPO_ROOT
from scons_run import SCONS, scons

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-g++") is None,
                                reason="qemu-system-arm or arm-none-eabi-g++ missing (tools/setup.sh installs them)")

CELL = ("board=qemu-m4", "model=textbook", "mode=exhaustive")
# sconsbuild.setup() makes SCons use qmcu's signal handler (interrupt.patch_scons); where it does not yet,
# the same is done here before SCons starts, so the test is of the handler either way.

def _descendants(root: int) -> dict[int, str]:
    """pid -> command name of every live (not zombie) process below root."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if rest[0] != "Z":
            parents[int(entry.name)], names[int(entry.name)] = int(rest[1]), name
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found[child] = names[child]
                frontier.append(child)
    return found


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("signals")
    proc = scons(path, *CELL, "console=uart", "build")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return path


def _wait_for_qemu(proc: subprocess.Popen[str], seconds: float) -> list[int]:
    """The pids of the QEMU processes below proc, once one runs."""
    deadline = time.monotonic() + seconds
    while "qemu-system-arm" not in _descendants(proc.pid).values():
        assert proc.poll() is None and time.monotonic() < deadline, "QEMU never started"
        time.sleep(0.05)
    return [pid for pid, name in _descendants(proc.pid).items() if name == "qemu-system-arm"]


@pytest.mark.parametrize(("console", "signum", "group"), [("uart", signal.SIGTERM, False), ("uart", signal.SIGINT, True)],
                         ids=["uart-sigterm", "uart-ctrl-c"])
def test_a_signal_stops_a_long_run_at_once(build: Path, console: str, signum: signal.Signals, group: bool) -> None:
    argv = [str(SCONS), "-C", str(REPO_ROOT), "-Q", *CELL, f"console={console}", "timeout=120", "run"]
    proc = subprocess.Popen(argv, env={**os.environ, "QMCU_BUILD_DIR": str(build)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # its own group, as at a terminal
    try:
        qemu = _wait_for_qemu(proc, 120)
        time.sleep(1.0)  # well into the run: records are flowing
        sent = time.monotonic()
        if group:
            os.killpg(proc.pid, signum)  # a Ctrl-C at a terminal signals the whole foreground group
        else:
            os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert took < 3.0, f"took {took:.1f}s to stop; stderr: {err[-1500:]}"
    assert proc.returncode == 128 + signum, err[-1500:]
    lines = [ln for ln in err.splitlines() if ln.startswith("qmcu: interrupted")]
    assert lines and lines[0].startswith(f"qmcu: interrupted by {signum.name}: stopped QEMU netduinoplus2 (pid {qemu[0]})")
    if console == "uart":
        assert ", serial reader on socket://127.0.0.1:" in lines[0]
    assert "damaged" not in err and "error" not in err, err[-1500:]
    assert not any(Path(f"/proc/{pid}").exists() for pid in qemu), "QEMU outlived the run"
    cell = build / ("qemu-m4-std0-float0-textbook" + ("-uart" if console == "uart" else ""))
    assert not (cell / "report-exhaustive.json").exists()
    assert not list(cell.glob(".*.tmp"))


def test_handler_stops_a_hung_semihosting_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The qmcu CLI's way in: install_handlers() in the main thread, then a runner; here a firmware that hangs.
    board = UART_QEMU[0]
    elf = Builder(tmp_path_factory.mktemp("hang")).build(board, "semihosting", "hang.cpp", {}, "hang")
    script = ("import sys\nfrom pathlib import Path\nfrom qmcu import boards, interrupt\nfrom qmcu.run.qemu import run_qemu\n"
              f"interrupt.install_handlers()\nrun_qemu(boards.load_board({board.id!r}), Path({str(elf)!r}), 60.0)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        qemu = _wait_for_qemu(child, 30)
        sent = time.monotonic()
        os.killpg(child.pid, signal.SIGINT)
        _, err = child.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert took < 2.0 and child.returncode == 128 + signal.SIGINT, err
    assert err == f"qmcu: interrupted by SIGINT: stopped QEMU {board.qemu_machine} (pid {qemu[0]})\n"
    assert not any(Path(f"/proc/{pid}").exists() for pid in qemu)


def test_a_signal_while_a_child_starts_still_stops_and_names_it() -> None:
    # The child signals qmcu before its exec, so the signal lands inside Popen, before registration:
    # it must wait for the registration, then stop the child and name it (not "nothing was running").
    script = (
        "import os, signal\n"
        "from qmcu import interrupt\n"
        "interrupt.install_handlers()\n"
        "def tell_parent():\n"
        "    os.kill(os.getppid(), signal.SIGINT)\n"
        "with interrupt.started(['sleep', '60'], 'a starter', tell_parent) as proc:\n"
        "    proc.wait()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = child.communicate(timeout=10)
    assert child.returncode == 128 + signal.SIGINT, err
    assert re.fullmatch(r"qmcu: interrupted by SIGINT: stopped a starter \(pid (\d+)\)\n", err), err
    pid = re.findall(r"\d+", err)[0]
    assert not Path(f"/proc/{pid}").exists()


def test_handler_stops_registered_children_and_exits_with_128_plus_signal(tmp_path: Path) -> None:
    # The CLI's way in: install_handlers() in the main thread of a plain Python program.
    script = (
        "import subprocess, sys, time\n"
        "from qmcu import interrupt\n"
        "interrupt.install_handlers()\n"
        "with interrupt.started(['sleep', '60'], 'a sleeper') as proc:\n"
        "    print(proc.pid, flush=True)\n"
        "    proc.wait()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    sleeper = int(child.stdout.readline())
    sent = time.monotonic()
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=10)
    assert time.monotonic() - sent < 2.0
    assert child.returncode == 128 + signal.SIGTERM
    assert err == f"qmcu: interrupted by SIGTERM: stopped a sleeper (pid {sleeper})\n"
    assert not Path(f"/proc/{sleeper}").exists()
    assert interrupt.running() == []
