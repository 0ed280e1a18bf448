"""Runner for QEMU boards: boot the ELF on the board's machine and collect what it prints. Never judges.

The firmware talks over Arm semihosting: its console lines reach QEMU's stdout/stderr, and its exit
status (SYS_EXIT_EXTENDED) becomes QEMU's exit code. Both streams are read through one pipe, so
the firmware's lines and QEMU's own messages keep their order. -icount shift=0 makes the emulated
time advance one nanosecond per instruction, so timer-based counters count instructions exactly.
"""

from __future__ import annotations

import logging
import re
import resource
import subprocess
import time
from pathlib import Path

from qmcu import interrupt
from qmcu.boards import Board
from qmcu.build.toolchain import require_tool
from qmcu.errors import QmcuError
from qmcu.run.result import RunResult, last_lines

logger = logging.getLogger(__name__)

QEMU = "qemu-system-arm"
_FATAL_RE = re.compile(r"qemu: fatal: (.*)")
# QEMU's own messages start with its program name; the firmware's never do.
_QEMU_SAYS_RE = re.compile(rf"^{QEMU}: (.*)$", re.M)
_SIGNAL_RE = re.compile(rf"^{QEMU}: terminating on signal (\d+)(?: from pid (\d+)(?: \((.*)\))?)?", re.M)


def qemu_argv(board: Board, elf: Path, plugin_args: list[str] | None = None) -> list[str]:
    """The qemu-system-arm command line that runs elf on this board (plugin_args appended as given)."""
    if board.kind != "qemu" or not board.qemu_machine:
        raise QmcuError(f"board {board.id} is not a QEMU board", "pick a board whose kind is \"qemu\"")
    return [QEMU, "-M", board.qemu_machine, "-nographic", "-monitor", "none", "-serial", "null",
            "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf),
            *(plugin_args or [])]


def qemu_problem(board: Board, elf: Path, qemu_text: str, code: int | None, firmware_text: str) -> QmcuError | None:
    """What went wrong on QEMU's side, if anything: it refused to start, or a signal stopped it mid-run.

    qemu_text is what QEMU printed (semihosting output included), code its exit code (None: still running),
    firmware_text what the firmware printed (for the last lines). None when QEMU ran the image to its end.
    """
    stopped = _SIGNAL_RE.search(qemu_text)
    if stopped or (code is not None and code < 0):
        signum = int(stopped.group(1)) if stopped else -(code or 0)
        sender = ""
        if stopped and stopped.group(2):
            sender = f" sent by pid {stopped.group(2)}" + (f" ({stopped.group(3)})" if stopped.group(3) else "")
        return QmcuError(f"QEMU ({board.qemu_machine}) was stopped by {interrupt.signal_name(signum)}{sender} while "
                         f"running {elf.name}, so the run was cut off and is not judged; last lines: "
                         f"{last_lines(firmware_text, 3)}",
                         "nothing is wrong with the firmware: run it again without interrupting it (if nobody "
                         "did, look for the out-of-memory killer or a time limit around qmcu)")
    said = [m.group(1).strip() for m in _QEMU_SAYS_RE.finditer(qemu_text) if "warning:" not in m.group(1)]
    started = re.search(r"^QM ", firmware_text, re.M) is not None
    if code is None or code == 0 or not said or started:
        return None
    if any("unsupported machine type" in line for line in said):
        return QmcuError(f"QEMU does not know the machine {board.qemu_machine!r} of board {board.id} "
                         f"(qemu-system-arm: {'; '.join(said)})",
                         f"fix \"qemu\": {{\"machine\": ...}} in boards/{board.id}.json; "
                         f"`{QEMU} -M help` lists the machines")
    return QmcuError(f"QEMU refused to run {elf.name} on board {board.id} ({board.qemu_machine}), exit code {code}: "
                     f"{'; '.join(said)}",
                     f"see QEMU's message: the board file boards/{board.id}.json or the QEMU arguments are wrong")


def _no_core_dump() -> None:
    # A QEMU abort (e.g. on a CPU lockup) must not leave a core file the size of the guest's RAM.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_qemu(board: Board, elf: Path, timeout_s: float, plugin_args: list[str] | None = None) -> RunResult:
    """Run elf under QEMU; returns the exit code and everything printed. Raises QmcuError on a timeout or a lockup."""
    require_tool(QEMU)
    elf = Path(elf)
    if not elf.is_file():
        raise QmcuError(f"{elf} does not exist", "build it first (scons board=<id> build)")
    argv = qemu_argv(board, elf, plugin_args)
    logger.debug("running %s", " ".join(argv))
    start = time.monotonic()
    with interrupt.started(argv, f"QEMU {board.qemu_machine}", _no_core_dump, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as err:
            proc.kill()
            out, _ = proc.communicate()
            text = out.decode("latin-1")
            raise QmcuError(f"QEMU did not finish within {timeout_s:g}s ({elf.name} on {board.qemu_machine}); "
                            f"last lines: {last_lines(text)}",
                            "the firmware hangs (endless loop or waiting forever); if it is only slow, raise timeout=") from err
    wall = time.monotonic() - start
    text = out.decode("latin-1")
    fatal = _FATAL_RE.search(text)
    if fatal:
        # QEMU's register dump follows the fatal line; what the firmware printed comes before it.
        before = last_lines(text[:fatal.start()], 3)
        if "Lockup" in fatal.group(1):
            raise QmcuError(f"the emulated CPU of board {board.id} ({board.qemu_machine}) locked up running {elf.name} "
                            f"({fatal.group(1).strip()}: a fault while entering the fault handler, so the memory map or "
                            f"the vector table is wrong, or the stack pointer left RAM); last lines: {before}",
                            f"check \"memory\" in boards/{board.id}.json against the machine's memory map and that "
                            "the vector table is first in flash")
        raise QmcuError(f"QEMU ({board.qemu_machine}) aborted running {elf.name}: {fatal.group(1).strip()}; "
                        f"last lines: {before}", "see the QEMU message; the firmware or the board file is wrong")
    problem = qemu_problem(board, elf, text, proc.returncode, text)
    if problem is not None:
        raise problem
    logger.debug("QEMU exit code %d after %.3fs", proc.returncode, wall)
    return RunResult(exit_code=proc.returncode, output_text=text, wall_s=wall)
