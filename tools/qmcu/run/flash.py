"""Program a hardware board: one registry of flashers (pyOCD, OpenOCD, st-flash), keyed by name.

Which flashers a board supports, and its default, come from the board file's "flash" section
(Board.flasher). Every flash command resets the board afterwards, so the new image starts at once.
An image is checked against the board's flash and RAM before anything touches the hardware, and a
dry run prints the exact commands and touches nothing.

pyOCD has few STM32 parts built in (the F767ZI is; the F401RE, F446RE, L476RG and F407VG are not:
they come from ST's CMSIS packs), so before flashing with pyOCD the target is looked up in
`pyocd list --targets`; a missing one is one line saying which `pyocd pack install` to run.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qmcu import interrupt
from qmcu.boards import Board, FlashSettings
from qmcu.build import elfcheck
from qmcu.errors import QmcuError
from qmcu.run.result import last_lines

logger = logging.getLogger(__name__)

OBJCOPY = "arm-none-eabi-objcopy"
FLASH_TIMEOUT_S = 120.0
# `pyocd list --targets` reads its pack index; it needs no probe and is quick.
PYOCD_LIST_TIMEOUT_S = 60.0
# What pyOCD says when its target is neither built in nor in an installed pack.
_PYOCD_UNKNOWN_TARGET_RE = re.compile(r"target type \S+ not recognized", re.I)
# Characters that would split or substitute a file name inside an OpenOCD (Tcl) command.
_TCL_SPECIAL = set(" \t\"{}[]$;\\")


@dataclass(frozen=True)
class Flasher:
    name: str
    program: str
    setting: str  # the board file's flash.<setting> this flasher needs
    install: str  # how to install it: the fix when it is missing
    program_argv: Callable[[FlashSettings, Board, Path], list[str]]
    reset_argv: Callable[[FlashSettings], list[str]]
    needs_bin: bool = False  # programs a raw binary (made with objcopy) instead of the ELF
    # Checks that need the installed program (its full path) but not the board: raise QmcuError.
    check: Callable[[Board, FlashSettings, str], None] | None = None
    # The fix for a failed flash command, from its output, when the output names the cause.
    diagnose: Callable[[FlashSettings, str, str], str | None] | None = None


def _tcl_word(path: Path) -> str:
    text = str(path)
    return f"{{{text}}}" if set(text) & _TCL_SPECIAL else text


def _flash_origin(board: Board) -> str:
    if board.flash is None:
        raise QmcuError(f"board {board.id} has no flash memory region", "add memory.flash to its board file")
    return f"0x{board.flash.origin:08x}"


def _pack_install(settings: FlashSettings, program: str) -> str:
    return (f"run `{program} pack install {settings.pyocd_target}` once (it downloads the part's CMSIS pack), "
            "or flash with flasher=openocd")


def pyocd_targets(program: str) -> set[str]:
    """The target names (lower case) `pyocd list --targets` prints: the built-in ones and those of installed packs."""
    argv = [program, "list", "--targets"]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=PYOCD_LIST_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as err:
        raise QmcuError(f"`{shlex.join(argv)}` did not finish within {PYOCD_LIST_TIMEOUT_S:g}s",
                        "run it by hand to see what pyOCD waits for, or flash with flasher=openocd") from err
    if proc.returncode != 0:
        raise QmcuError(f"`{shlex.join(argv)}` failed (exit code {proc.returncode}): "
                        f"{last_lines(proc.stdout + proc.stderr, 3)}",
                        "reinstall pyOCD (.venv/bin/pip install --force-reinstall pyocd), or flash with flasher=openocd")
    names = set()
    for line in proc.stdout.splitlines():
        words = line.split()
        # A table: a "Name  Vendor  Part Number ..." header, a line of dashes, then one target per line.
        if words and words[0] != "Name" and not words[0].startswith("-"):
            names.add(words[0].lower())
    logger.debug("pyOCD knows %d targets", len(names))
    return names


def _check_pyocd_target(board: Board, settings: FlashSettings, program: str) -> None:
    target = str(settings.pyocd_target)
    if target.lower() not in pyocd_targets(program):
        raise QmcuError(f"pyOCD does not know target {target} (board {board.id}): it is not built into pyOCD and its "
                        "CMSIS pack is not installed", _pack_install(settings, program))


def _diagnose_pyocd(settings: FlashSettings, program: str, output: str) -> str | None:
    if _PYOCD_UNKNOWN_TARGET_RE.search(output):
        return f"pyOCD does not know target {settings.pyocd_target}: {_pack_install(settings, program)}"
    return None


FLASHERS: dict[str, Flasher] = {
    f.name: f for f in (
        Flasher("pyocd", "pyocd", "pyocd_target",
                "install it into the venv with `.venv/bin/pip install pyocd` (or `.venv/bin/pip install -e '.[flash]'`); "
                "targets that are not built in also need `.venv/bin/pyocd pack install <part>`",
                lambda s, b, image: ["pyocd", "flash", "--target", str(s.pyocd_target), str(image)],
                lambda s: ["pyocd", "reset", "--target", str(s.pyocd_target)],
                check=_check_pyocd_target, diagnose=_diagnose_pyocd),
        Flasher("openocd", "openocd", "openocd_config", "install the Debian package openocd (apt-get install openocd)",
                lambda s, b, image: ["openocd", "-f", str(s.openocd_config), "-c",
                                     f"program {_tcl_word(image)} verify reset exit"],
                lambda s: ["openocd", "-f", str(s.openocd_config), "-c", "init", "-c", "reset run", "-c", "shutdown"]),
        Flasher("stflash", "st-flash", "stflash", "install the Debian package stlink-tools (apt-get install stlink-tools)",
                lambda s, b, image: ["st-flash", "--reset", "write", str(bin_path(image)), _flash_origin(b)],
                lambda s: ["st-flash", "reset"], needs_bin=True),
    )
}


def get_flasher(name: str) -> Flasher:
    """The registered flasher of that name; an unknown name is an error listing the known ones."""
    if name not in FLASHERS:
        raise QmcuError(f"unknown flasher {name!r}", f"use one of {', '.join(FLASHERS)}")
    return FLASHERS[name]


def _choose(board: Board, flasher: str | None) -> tuple[Flasher, FlashSettings]:
    if board.flasher is None:
        raise QmcuError(f"board {board.id} is not a board qmcu can flash (kind {board.kind})",
                        "pick a hardware board, or run QEMU boards with `run`")
    chosen = get_flasher(flasher or board.flasher.default)
    if not board.flasher.supports(chosen.name):
        usable = [n for n in FLASHERS if board.flasher.supports(n)]
        raise QmcuError(f"board {board.id} has no flash.{chosen.setting} for flasher {chosen.name}",
                        f"use flasher {' or '.join(usable)}, or add flash.{chosen.setting} to boards/{board.id}.json")
    return chosen, board.flasher


def bin_path(image: Path) -> Path:
    """Where the raw binary for st-flash goes: beside the ELF, same stem."""
    return Path(image).with_suffix(".bin")


def bin_argv(image: Path) -> list[str]:
    """objcopy command that turns the ELF into the raw binary st-flash writes at the flash origin."""
    return [OBJCOPY, "-O", "binary", str(image), str(bin_path(image))]


def flash_argv(board: Board, flasher: str | None, image: Path) -> list[str]:
    """The command that programs image into the board and resets it (flasher None: the board's default)."""
    chosen, settings = _choose(board, flasher)
    return chosen.program_argv(settings, board, Path(image))


def reset_argv(board: Board, flasher: str | None) -> list[str]:
    """The command that resets the board without programming it."""
    chosen, settings = _choose(board, flasher)
    return chosen.reset_argv(settings)


def prepare_argv(board: Board, flasher: str | None, image: Path) -> list[list[str]]:
    """Commands to run before flash_argv (the objcopy step for flashers that take a raw binary)."""
    chosen, _ = _choose(board, flasher)
    return [bin_argv(image)] if chosen.needs_bin else []


def default_search_path() -> str:
    """PATH plus the venv's bin directory (pyOCD installed with the venv's pip lands there)."""
    return os.pathsep.join(p for p in (os.environ.get("PATH", ""), str(Path(sys.executable).parent)) if p)


def check_installed(flasher: str, search_path: str | None = None) -> str:
    """The full path of the flasher's program, or a QmcuError saying how to install it."""
    chosen = get_flasher(flasher)
    found = shutil.which(chosen.program, path=search_path if search_path is not None else default_search_path())
    if found is None:
        raise QmcuError(f"{chosen.program} (flasher {chosen.name}) is not installed", chosen.install)
    return found


def _run(argv: list[str], what: str, diagnose: Callable[[str], str | None] | None = None) -> None:
    logger.debug("running %s", shlex.join(argv))
    try:
        with interrupt.started(argv, what, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) as proc:
            out, err_text = proc.communicate(timeout=FLASH_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise QmcuError(f"{what} did not finish within {FLASH_TIMEOUT_S:g}s",
                        "check the USB cable and that the board is powered") from err
    if proc.returncode != 0:
        fix = diagnose(out + err_text) if diagnose is not None else None
        raise QmcuError(f"{what} failed (exit code {proc.returncode}): {last_lines(out + err_text, 3)}",
                        fix or "check the USB cable, and that no debugger or other flasher holds the ST-Link")


def _program(board: Board, flasher: str | None, search_path: str | None = None) -> str:
    """Full path of the flasher's program (objcopy too when the flasher needs a raw binary), after its own checks."""
    chosen, settings = _choose(board, flasher)
    if chosen.needs_bin and shutil.which(OBJCOPY, path=search_path) is None:
        raise QmcuError(f"{OBJCOPY} is not installed", "install the Debian package binutils-arm-none-eabi (run tools/setup.sh)")
    program = check_installed(chosen.name, search_path)
    if chosen.check is not None:
        chosen.check(board, settings, program)
    return program


def _preflight(board: Board, image: Path, flasher: str | None, search_path: str | None) -> tuple[list[str], str]:
    argv = flash_argv(board, flasher, image)
    sizes = elfcheck.check_fits(board, image)
    logger.debug("%s fits %s: flash %d B, RAM %d B", image.name, board.id, sizes["flash"], sizes["ram"])
    return argv, _program(board, flasher, search_path)


def preflight(board: Board, image: Path, flasher: str | None = None, search_path: str | None = None) -> list[str]:
    """Everything that can fail before the board is touched: flasher choice, image fit, tools installed.

    Returns the flash command.
    """
    return _preflight(board, Path(image), flasher, search_path)[0]


def flash(board: Board, image: Path, flasher: str | None = None, dry_run: bool = False) -> list[str]:
    """Program image into the board and reset it; returns the flash command.

    The image must fit the board's flash and RAM (checked first, dry run or not). A dry run prints the
    commands and touches nothing: no binary is written, no flasher runs, and the flasher need not be installed.
    """
    image = Path(image)
    argv = flash_argv(board, flasher, image)
    prepare = prepare_argv(board, flasher, image)
    if dry_run:
        elfcheck.check_fits(board, image)
        for cmd in (*prepare, argv):
            print(f"dry run: {shlex.join(cmd)}")
        return argv
    _, program = _preflight(board, image, flasher, None)
    for cmd in prepare:
        _run([str(shutil.which(cmd[0])), *cmd[1:]], f"{cmd[0]} for {image.name}")
    print(f"flashing {board.id}: {shlex.join(argv)}")
    chosen, settings = _choose(board, flasher)
    diagnose = chosen.diagnose
    _run([program, *argv[1:]], f"flashing {image.name} into {board.id}",
         (lambda output: diagnose(settings, program, output)) if diagnose is not None else None)
    return argv
