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

from ..boards import Board
from ..errors import QmcuError
from ..toolchain import require_tool
from .result import RunResult, last_lines

logger = logging.getLogger(__name__)

QEMU = "qemu-system-arm"
_FATAL_RE = re.compile(r"qemu: fatal: (.*)")


def qemu_argv(board: Board, elf: Path, plugin_args: list[str] | None = None) -> list[str]:
    """The qemu-system-arm command line that runs elf on this board (plugin_args appended as given)."""
    if board.kind != "qemu" or not board.qemu_machine:
        raise QmcuError(f"board {board.id} is not a QEMU board", "pick a board whose kind is \"qemu\"")
    return [QEMU, "-M", board.qemu_machine, "-nographic", "-monitor", "none", "-serial", "null",
            "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf),
            *(plugin_args or [])]


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
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          preexec_fn=_no_core_dump) as proc:
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
    logger.debug("QEMU exit code %d after %.3fs", proc.returncode, wall)
    return RunResult(exit_code=proc.returncode, output_text=text, wall_s=wall)
