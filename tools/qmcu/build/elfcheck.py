"""Checks on a linked firmware image, before it ever runs: sizes, fit, and the corner's promises.

A corner promises things about the image: FLOAT=0 means no floating point at all (no soft-float
routine, no FPU instruction), STD=0 means no C library (only libgcc's integer helpers), and with
FLOAT=1 the inference itself is still integer-only. check_float_free() verifies those promises from
the ELF (binutils nm/objdump) and the link map; each failure is one line naming the symbol or the
instruction and its address.
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmcu.boards import Board, Corner
from qmcu.build.toolchain import TARGET_PREFIX, require_tool
from qmcu.errors import QmcuError

logger = logging.getLogger(__name__)

# Sections that hold nothing at run time (debug information, notes for tools).
_NON_ALLOC = (".debug", ".comment", ".ARM.attributes", ".stab", ".gnu.attributes", ".gnu.build.attributes")
# Sections that occupy RAM only (no load image in flash).
_RAM_ONLY = (".bss", ".stack", ".heap", ".noinit", ".tbss")
# Sections that occupy RAM and whose initial image is stored in flash.
_RAM_AND_FLASH = (".data", ".tdata")

# Soft-float routines (AEABI run-time helpers and libgcc's classic names).
SOFT_FLOAT_RE = re.compile(
    r"""^(?:
        __aeabi_[fd][a-z0-9_]+          # __aeabi_fadd __aeabi_dmul __aeabi_f2iz __aeabi_d2f __aeabi_fcmplt ...
      | __aeabi_c[fd][a-z0-9_]+         # __aeabi_cfcmpeq __aeabi_cdrcmple
      | __aeabi_u?[il]2[fd]             # __aeabi_i2f __aeabi_ui2d __aeabi_l2f __aeabi_ul2d
      | __aeabi_h2f(?:_alt)?            # half precision
      | __gnu_[fh]2[hf]_[a-z]+          # __gnu_f2h_ieee __gnu_h2f_alternative
      | __[a-z]*(?:sf|df|sc|dc)[a-z0-9]*  # __addsf3 __fixdfsi __floatsisf __extendsfdf2 __unordsf2 __mulsc3
    )$""",
    re.VERBOSE,
)
# VFP/SIMD instruction mnemonics all start with "v" in unified syntax (vadd.f32, vldr, vmov, vpush, vmrs ...).
VFP_MNEMONIC_RE = re.compile(r"^v[a-z]")

_INSN_RE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)(?:\s+(.*))?$")
_CALL_TARGET_RE = re.compile(r"<([^>+]+)(?:\+0x[0-9a-f]+)?>")


def _run(argv: list[str]) -> str:
    require_tool(argv[0])
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise QmcuError(f"{' '.join(argv)} failed: {proc.stderr.strip() or proc.stdout.strip()}",
                        "check that the file is a complete ELF built for this board")
    return proc.stdout


def _elf(elf: Path) -> Path:
    elf = Path(elf)
    if not elf.is_file():
        raise QmcuError(f"{elf} does not exist", "build it first")
    return elf


def section_sizes(elf: Path, tool_prefix: str = TARGET_PREFIX) -> dict[str, int]:
    """Allocated sections and their sizes in bytes, from `size -A`."""
    out = _run([f"{tool_prefix}size", "-A", "-d", str(_elf(elf))])
    sections: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[0].startswith(".") or not parts[1].isdigit():
            continue
        if parts[0].startswith(_NON_ALLOC):
            continue
        sections[parts[0]] = int(parts[1])
    return sections


def image_sizes(elf: Path, tool_prefix: str = TARGET_PREFIX) -> dict[str, Any]:
    """Flash and RAM bytes of an image.

    flash = every loaded section (vectors, code, constants, unwind tables, init arrays) + the .data image;
    ram = .data + .bss + stack (the .stack section holds the stack and its guard).
    """
    sections = section_sizes(elf, tool_prefix)
    flash = ram = 0
    for name, size in sections.items():
        if name.startswith(_RAM_ONLY):
            ram += size
        elif name.startswith(_RAM_AND_FLASH):
            ram += size
            flash += size
        else:
            flash += size
    text = sum(size for name, size in sections.items() if name.startswith((".text", ".ARM.ex", ".init", ".fini",
                                                                          ".preinit")))
    return {
        "flash": flash,
        "ram": ram,
        "vectors": sections.get(".isr_vector", 0),
        "text": text,
        "rodata": sum(size for name, size in sections.items() if name.startswith(".rodata")),
        "data": sum(size for name, size in sections.items() if name.startswith(_RAM_AND_FLASH)),
        "bss": sum(size for name, size in sections.items() if name.startswith((".bss", ".tbss", ".noinit"))),
        "stack": sections.get(".stack", 0),
        "sections": sections,
    }


def symbol_sizes(elf: Path, tool_prefix: str = TARGET_PREFIX) -> list[tuple[str, int, str]]:
    """(demangled name, size in bytes, nm type letter) of every sized symbol, from `nm -C -S`."""
    out = _run([f"{tool_prefix}nm", "-C", "-S", str(_elf(elf))])
    symbols = []
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4:
            try:
                size = int(parts[1], 16)
            except ValueError:
                continue
            symbols.append((parts[3], size, parts[2]))
    return symbols


def check_fits(board: Board, elf: Path, tool_prefix: str = TARGET_PREFIX) -> dict[str, Any]:
    """Refuse an image larger than the board's flash or RAM; returns the image sizes."""
    if board.flash is None or board.ram is None:
        raise QmcuError(f"board {board.id} has no memory map", "only target boards have flash and RAM to fit")
    sizes = image_sizes(elf, tool_prefix)
    if sizes["flash"] > board.flash.size:
        raise QmcuError(f"image {Path(elf).name} is {sizes['flash']} bytes, board {board.id} has {board.flash.size} "
                        "bytes of flash", "shrink the model or the code, or pick a board with more flash")
    if sizes["ram"] > board.ram.size:
        raise QmcuError(f"image {Path(elf).name} needs {sizes['ram']} bytes of RAM (data + bss + stack), board "
                        f"{board.id} has {board.ram.size} bytes of RAM", "shrink the buffers or the stack, or pick a "
                        "board with more RAM")
    return sizes


@dataclass(frozen=True)
class _Symbol:
    name: str
    demangled: str
    address: int
    size: int
    kind: str


def _symbols(elf: Path, tool_prefix: str) -> list[_Symbol]:
    """Every symbol with both its raw and demangled name (nm -p keeps the two listings in the same order)."""
    raw = _run([f"{tool_prefix}nm", "-p", "-S", str(elf)]).splitlines()
    dem = _run([f"{tool_prefix}nm", "-p", "-S", "-C", str(elf)]).splitlines()
    symbols = []
    for a, b in zip(raw, dem, strict=False):
        # Raw names have no spaces, so the raw line tells which fields are present; the demangled
        # name is whatever follows the same number of fields on the demangled line.
        pa = a.split()
        if len(pa) == 4:  # address size type name
            name = b.split(maxsplit=3)[3]
            symbols.append(_Symbol(pa[3], name, int(pa[0], 16) & ~1, int(pa[1], 16), pa[2]))
        elif len(pa) == 3:  # address type name
            symbols.append(_Symbol(pa[2], b.split(maxsplit=2)[2], int(pa[0], 16) & ~1, 0, pa[1]))
        elif len(pa) == 2:  # type name (undefined)
            symbols.append(_Symbol(pa[1], b.split(maxsplit=1)[1], 0, 0, pa[0]))
    return symbols


def _instructions(elf: Path, tool_prefix: str) -> list[tuple[int, str, str]]:
    """(address, mnemonic, operands) of every instruction in the image's code."""
    out = _run([f"{tool_prefix}objdump", "-d", "--no-show-raw-insn", str(elf)])
    insns = []
    for line in out.splitlines():
        m = _INSN_RE.match(line)
        if m and not m.group(2).startswith("."):  # .word/.short: literal pools, not instructions
            insns.append((int(m.group(1), 16), m.group(2), m.group(3) or ""))
    return insns


def _function_at(symbols: list[_Symbol], address: int) -> str:
    best = None
    for s in symbols:
        if s.kind in "tTwW" and s.size and s.address <= address < s.address + s.size and (best is None or s.size < best.size):
            best = s
    return best.demangled if best else "?"


@dataclass(frozen=True)
class _Member:
    archive: str
    member: str
    referenced_by: str


def archive_members(map_file: Path) -> list[_Member]:
    """The archive members a link pulled in, from its map file's first section."""
    text = Path(map_file).read_text(errors="replace")
    members: list[_Member] = []
    in_block = False
    pending: tuple[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("Archive member included"):
            in_block = True
            continue
        if not in_block:
            continue
        if line and not line[0].isspace() and not re.match(r"^\S+\.a\(", line):
            break  # the next section of the map (Discarded input sections, Memory Configuration ...)
        if not line.strip():
            continue
        if not line[0].isspace():
            m = re.match(r"^(\S+\.a)\(([^)]*)\)\s*(.*)$", line)
            if m is None:
                continue
            if pending:
                members.append(_Member(pending[0], pending[1], ""))
            pending = (m.group(1), m.group(2))
            if m.group(3):
                members.append(_Member(pending[0], pending[1], m.group(3).strip()))
                pending = None
        elif pending:
            members.append(_Member(pending[0], pending[1], line.strip()))
            pending = None
    if pending:
        members.append(_Member(pending[0], pending[1], ""))
    return members


def _referenced_by(members: list[_Member], symbol: str) -> str:
    """", pulled in by <object>" when the firmware's own object (not a library member) asked for symbol."""
    for m in members:
        if m.referenced_by.endswith(f"({symbol})"):
            source = m.referenced_by.rsplit(" (", 1)[0]
            if not re.search(r"\.a\(", source):
                return f", pulled in by {Path(source).name}"
    return ""


def check_float_free(elf: Path, map_file: Path, corner: Corner, inference_symbols: list[str],
                     tool_prefix: str = TARGET_PREFIX) -> dict[str, Any]:
    """Verify the corner's promises; QmcuError (one line: symbol or instruction and address) when broken.

    (a) FLOAT=0: no soft-float routine defined or referenced, no VFP instruction anywhere.
    (b) STD=0: the link map shows archive members from libgcc.a only (no libc, libm, libstdc++ ...).
    (c) FLOAT=1: the inference symbols contain no VFP instruction and call no soft-float routine directly.
    Returns what was checked.
    """
    elf = _elf(elf)
    map_file = Path(map_file)
    symbols = _symbols(elf, tool_prefix)
    insns = _instructions(elf, tool_prefix)
    members = archive_members(map_file) if map_file.is_file() else []
    checked: dict[str, Any] = {"elf": str(elf), "corner": corner.name, "checks": []}

    if corner.float == 0:
        soft = [s for s in symbols if SOFT_FLOAT_RE.match(s.name)]
        if soft:
            # Name the routine the firmware's own code asked for, when the link map tells.
            direct = [s for s in soft if _referenced_by(members, s.name)]
            s = (direct or soft)[0]
            where = f"at 0x{s.address:08x}" if s.kind not in "Uw" else "(undefined reference)"
            raise QmcuError(f"FLOAT=0 image {elf.name} contains the soft-float routine {s.name} {where}"
                            f"{_referenced_by(members, s.name)}",
                            "remove the float/double operation (or build a FLOAT=1 corner)")
        for address, mnemonic, operands in insns:
            if VFP_MNEMONIC_RE.match(mnemonic):
                raise QmcuError(f"FLOAT=0 image {elf.name} contains the FPU instruction '{mnemonic} {operands}'"
                                f" at 0x{address:08x} in {_function_at(symbols, address)}",
                                "remove the float/double operation (or build a FLOAT=1 corner)")
        checked["checks"].append(f"no soft-float routine among {len(symbols)} symbols, no VFP instruction among "
                                 f"{len(insns)} instructions")

    if corner.std == 0:
        if not map_file.is_file():
            raise QmcuError(f"link map {map_file} not found: cannot verify that the STD=0 image uses no C library",
                            f"link with -Wl,-Map={map_file}")
        for m in members:
            if Path(m.archive).name != "libgcc.a":
                why = f" (for {m.referenced_by})" if m.referenced_by else ""
                raise QmcuError(f"STD=0 image {elf.name} pulls {m.member} from {Path(m.archive).name}{why}; only "
                                "libgcc.a is allowed", "define the function in the firmware or build a STD=1 corner")
        checked["archive_members"] = sorted({f"{Path(m.archive).name}({m.member})" for m in members})
        checked["checks"].append(f"link map: {len(checked['archive_members'])} archive members, all from libgcc.a")

    if corner.float == 1:
        ranges = []
        for wanted in inference_symbols:
            found = [s for s in symbols if s.size and s.kind in "tTwW" and wanted in (s.name, s.demangled)]
            if not found:
                raise QmcuError(f"inference symbol {wanted} is not a function in {elf.name}",
                                "cannot check the inference is integer-only; keep it noinline with that name")
            ranges += [(s.demangled, s.address, s.address + s.size) for s in found]
        scanned = 0
        for name, start, end in ranges:
            for address, mnemonic, operands in insns:
                if not start <= address < end:
                    continue
                scanned += 1
                if VFP_MNEMONIC_RE.match(mnemonic):
                    raise QmcuError(f"inference symbol {name} contains the FPU instruction '{mnemonic} {operands}' "
                                    f"at 0x{address:08x}", "the forward pass must be integer-only")
                target = _CALL_TARGET_RE.search(operands) if mnemonic.startswith("b") else None
                if target and SOFT_FLOAT_RE.match(target.group(1)):
                    raise QmcuError(f"inference symbol {name} calls the soft-float routine {target.group(1)} "
                                    f"at 0x{address:08x}", "the forward pass must be integer-only")
        checked["inference_symbols"] = [r[0] for r in ranges]
        checked["checks"].append(f"{scanned} instructions of {len(ranges)} inference functions: no VFP instruction, "
                                 "no soft-float call")
    logger.debug("float/std checks of %s: %s", elf, checked)
    return checked
