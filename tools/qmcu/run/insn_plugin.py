"""Exact instruction counts per call of one function, from a QEMU TCG plugin (plugin/insn_window.c).

The plugin counts every executed guest instruction (an inline add per instruction, not per
translation block). Given the address of the measured function's first instruction (entry) and
the return addresses of its call sites (ret), it records, for every call, the number of
instructions from the function's first instruction through its return instruction. At QEMU exit it
writes one count per line and a final ``total N`` line.

Typical use::

    so = build_plugin(build_dir)
    entry, rets = call_window_args(elf)
    cmd = ["qemu-system-arm", ..., "-kernel", str(elf), *plugin_argv(so, entry, rets, out)]
    windows, total = read_counts(out)

Limits: one vCPU; nested or recursive calls are not measured (a new entry while a window is open
restarts it); only direct ``bl`` call sites are found, so calls through a pointer or tail calls are
not measured.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from qmcu.errors import QmcuError

logger = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
PLUGIN_SOURCE = PLUGIN_DIR / "insn_window.c"
PLUGIN_HEADER = PLUGIN_DIR / "qemu_plugin_api.h"
PLUGIN_NAME = "insn_window.so"

_CFLAGS = ("-std=gnu11", "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror")

# An objdump -d instruction line: "   8:\tf000 f802 \tbl\t10 <qmcu_infer>".
_INSN_LINE = re.compile(r"^\s*([0-9a-f]+):\t((?:[0-9a-f]+ )+)\s*\t(\S+)(?:\t(.*))?$")
# A direct branch target: "10 <qmcu_infer>" (objdump omits the offset when it is zero).
_BRANCH_TARGET = re.compile(r"^([0-9a-f]+) <([^>]+)>")
_CALL_MNEMONICS = ("bl", "bl.w", "blx")


class PluginError(QmcuError, RuntimeError):
    """The instruction-count plugin could not be built, set up or read. str(err) is one line."""


def build_plugin(build_dir: Path) -> Path:
    """Compile plugin/insn_window.c to build_dir/insn_window.so, unless that is newer than the sources.

    The compiler writes a temporary file that is then renamed into place, so a concurrent or
    interrupted build never leaves a half-written plugin.
    """
    build_dir = Path(build_dir)
    so = build_dir / PLUGIN_NAME
    sources = (PLUGIN_SOURCE, PLUGIN_HEADER)
    for source in sources:
        if not source.is_file():
            raise PluginError(f"plugin source {source} is missing", "reinstall qmcu")
    newest_source = max(source.stat().st_mtime_ns for source in sources)
    if so.is_file() and so.stat().st_mtime_ns >= newest_source:
        logger.debug("plugin %s is up to date", so)
        return so

    gcc = shutil.which("gcc")
    if gcc is None:
        raise PluginError("gcc is not installed, so the QEMU instruction-count plugin cannot be built",
                          "install the Debian package gcc")
    build_dir.mkdir(parents=True, exist_ok=True)
    tmp = build_dir / f".{PLUGIN_NAME}.{os.getpid()}.tmp"
    cmd = [gcc, *_CFLAGS, "-o", str(tmp), str(PLUGIN_SOURCE)]
    logger.info("building QEMU plugin %s", so)
    logger.debug("running %s", " ".join(cmd))
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            logger.error("gcc output:\n%s", result.stderr)
            first = next((line for line in result.stderr.splitlines() if "error" in line), "no message")
            raise PluginError(f"gcc failed to build the QEMU plugin {PLUGIN_SOURCE.name}: {first}",
                              "see the log for the full compiler output")
        os.replace(tmp, so)
    finally:
        tmp.unlink(missing_ok=True)
    return so


def _run_tool(tool: str, args: list[str]) -> str:
    path = shutil.which(tool)
    if path is None:
        raise PluginError(f"{tool} is not installed", "install the Debian package binutils-arm-none-eabi")
    result = subprocess.run([path, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()
        raise PluginError(f"{tool} {' '.join(args)} failed: {message[0] if message else f'exit {result.returncode}'}")
    return result.stdout


def _entry_address(elf: Path, func: str, tool_prefix: str) -> int:
    addresses = set()
    for line in _run_tool(f"{tool_prefix}nm", [str(elf)]).splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == func and fields[1] in "tTW":
            # Thumb function symbols have bit 0 set; QEMU reports instruction addresses without it.
            addresses.add(int(fields[0], 16) & ~1)
    if not addresses:
        raise PluginError(f"function {func} is not in the symbol table of {elf}",
                          "check the function name and that the ELF is not stripped")
    if len(addresses) > 1:
        found = ", ".join(f"0x{a:x}" for a in sorted(addresses))
        raise PluginError(f"function name {func} is ambiguous in {elf} (at {found})", "give the function a unique name")
    return addresses.pop()


def _return_addresses(elf: Path, func: str, entry: int, tool_prefix: str) -> list[int]:
    rets: list[int] = []
    for line in _run_tool(f"{tool_prefix}objdump", ["-d", str(elf)]).splitlines():
        match = _INSN_LINE.match(line)
        if match is None or match.group(3) not in _CALL_MNEMONICS or match.group(4) is None:
            continue
        target = _BRANCH_TARGET.match(match.group(4))
        if target is None or target.group(2) != func or int(target.group(1), 16) != entry:
            continue
        # The return address is the address of the instruction after the call (the value the
        # call puts in LR without the Thumb bit): call address plus the call's encoded size.
        size = len("".join(match.group(2).split())) // 2
        rets.append(int(match.group(1), 16) + size)
    return sorted(set(rets))


def call_window_args(elf: Path, func: str = "qmcu_infer", tool_prefix: str = "arm-none-eabi-") -> tuple[int, list[int]]:
    """The plugin's entry address (bit 0 cleared) and return addresses of every direct call to func in elf."""
    elf = Path(elf)
    if not elf.is_file():
        raise PluginError(f"ELF file {elf} does not exist", "build the firmware first")
    entry = _entry_address(elf, func, tool_prefix)
    rets = _return_addresses(elf, func, entry, tool_prefix)
    if not rets:
        raise PluginError(f"no direct call (bl) to {func} found in {elf}",
                          f"call {func} directly and keep it out of line (__attribute__((noinline)))")
    logger.debug("%s: entry 0x%x, return addresses %s", func, entry, ", ".join(f"0x{r:x}" for r in rets))
    return entry, rets


def _qemu_opt_value(text: str) -> str:
    # QEMU option values end at a comma; a literal comma is written as two.
    return text.replace(",", ",,")


def plugin_argv(so: Path, entry: int, rets: list[int], out: Path) -> list[str]:
    """The QEMU command-line arguments that load the plugin for these addresses and write counts to out."""
    if not rets:
        raise PluginError("no return addresses given for the instruction-count plugin", "pass the call sites of the function")
    parts = [f"file={_qemu_opt_value(str(Path(so).resolve()))}", f"entry=0x{entry:x}"]
    parts += [f"ret=0x{ret:x}" for ret in rets]
    parts.append(f"out={_qemu_opt_value(str(Path(out).resolve()))}")
    return ["-plugin", ",".join(parts)]


def read_counts(out: Path) -> tuple[list[int], int]:
    """The per-call instruction counts and the run's total instruction count from a plugin output file."""
    out = Path(out)
    try:
        lines = out.read_text().splitlines()
    except FileNotFoundError:
        raise PluginError(f"the instruction-count plugin wrote no output file {out}",
                          "QEMU probably did not exit normally (timeout, crash or kill)") from None
    windows: list[int] = []
    total: int | None = None
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if total is None and len(fields) == 1 and fields[0].isdigit():
            windows.append(int(fields[0]))
        elif total is None and len(fields) == 2 and fields[0] == "total" and fields[1].isdigit():
            total = int(fields[1])
        else:
            raise PluginError(f"{out} line {number} is not an instruction count: {line.strip()!r}")
    if total is None:
        raise PluginError(f"{out} has no 'total' line", "the plugin output is truncated")
    return windows, total
