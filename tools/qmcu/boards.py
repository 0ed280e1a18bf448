"""Boards are data: one JSON file per board in `boards/`, validated on load.

Code never tests a board's id; it reads the fields below. A new board is one new file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import QmcuError
from .paths import BOARDS_DIR

logger = logging.getLogger(__name__)

KINDS = ("host", "qemu", "hardware")
CPUS = ("cortex-m0", "cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33")
FPUS = ("fpv4-sp-d16", "fpv5-sp-d16", "fpv5-d16")
CONSOLES = ("stdout", "semihosting", "uart")
COUNTER_KINDS = ("none", "stm32-tim", "dwt")
UNITS = ("none", "instructions", "cycles")

_TOP_KEYS = {
    "id": True, "description": True, "kind": True, "consoles": True, "counter": True,
    "corners": True, "cpu": False, "fpu": False, "dsp": False, "memory": False,
    "qemu": False, "uart": False, "clock": False, "flash": False, "usb": False,
}
_COUNTER_KEYS = {"kind", "unit", "timer_base", "enable_register", "enable_bit"}


@dataclass(frozen=True)
class Region:
    origin: int
    size: int


@dataclass(frozen=True)
class Corner:
    std: int
    float: int

    @property
    def name(self) -> str:
        return f"std{self.std}-float{self.float}"


@dataclass(frozen=True)
class Board:
    id: str
    description: str
    kind: str
    consoles: tuple[str, ...]
    counter: dict[str, Any]
    corners: tuple[Corner, ...]
    cpu: str | None = None
    fpu: str | None = None
    dsp: bool = False
    flash: Region | None = None
    ram: Region | None = None
    qemu_machine: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_target(self) -> bool:
        return self.kind != "host"

    @property
    def counter_unit(self) -> str:
        return str(self.counter["unit"])

    def supports(self, corner: Corner) -> bool:
        return corner in self.corners


def _fail(path: Path, what: str, fix: str) -> QmcuError:
    return QmcuError(f"board file {path}: {what}", fix)


def _int(path: Path, where: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _fail(path, f"{where} is a boolean", "write a number or a hex string like \"0x20000000\"")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise _fail(path, f"{where}={value!r} is not an integer", "write a number or a hex string like \"0x20000000\"")


def _region(path: Path, name: str, raw: Any) -> Region:
    if not isinstance(raw, dict) or set(raw) != {"origin", "size"}:
        raise _fail(path, f"memory.{name} must be an object with exactly 'origin' and 'size'", "see boards/qemu-m4.json")
    region = Region(_int(path, f"memory.{name}.origin", raw["origin"]), _int(path, f"memory.{name}.size", raw["size"]))
    if region.size <= 0 or region.origin < 0 or region.origin + region.size > 1 << 32:
        raise _fail(path, f"memory.{name} {region} lies outside the 32-bit address space or is empty", "fix origin/size")
    if region.origin % 4 or region.size % 4:
        raise _fail(path, f"memory.{name} is not word aligned", "use origins and sizes that are multiples of 4")
    return region


def _choice(path: Path, where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _fail(path, f"{where}={value!r} is not one of {', '.join(allowed)}", f"set {where} to a supported value")
    return str(value)


def parse_board(path: Path, raw: Any) -> Board:
    """Validate one board file's content and build a Board; every error names the file and the key."""
    if not isinstance(raw, dict):
        raise _fail(path, "top level is not a JSON object", "see boards/qemu-m4.json for the format")
    unknown = sorted(set(raw) - set(_TOP_KEYS))
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}", f"valid keys are {', '.join(sorted(_TOP_KEYS))}")
    missing = sorted(k for k, required in _TOP_KEYS.items() if required and k not in raw)
    if missing:
        raise _fail(path, f"missing key(s) {', '.join(missing)}", "add them (see boards/qemu-m4.json)")
    if raw["id"] != path.stem:
        raise _fail(path, f"id {raw['id']!r} differs from the file name", f"set \"id\": \"{path.stem}\"")
    kind = _choice(path, "kind", raw["kind"], KINDS)
    consoles = raw["consoles"]
    if not isinstance(consoles, list) or not consoles:
        raise _fail(path, "consoles must be a non-empty list", f"use some of {', '.join(CONSOLES)}")
    for c in consoles:
        _choice(path, "consoles[]", c, CONSOLES)

    counter = raw["counter"]
    if not isinstance(counter, dict) or not {"kind", "unit"} <= set(counter) or set(counter) - _COUNTER_KEYS:
        raise _fail(path, "counter must have 'kind' and 'unit' and only keys " + ", ".join(sorted(_COUNTER_KEYS)),
                    "see boards/qemu-m4.json")
    _choice(path, "counter.kind", counter["kind"], COUNTER_KINDS)
    _choice(path, "counter.unit", counter["unit"], UNITS)
    if counter["kind"] == "stm32-tim":
        for key in ("timer_base", "enable_register", "enable_bit"):
            if key not in counter:
                raise _fail(path, f"counter.kind stm32-tim needs counter.{key}", "add the timer's register addresses")
            counter = {**counter, key: _int(path, f"counter.{key}", counter[key])}

    corners_raw = raw["corners"]
    if not isinstance(corners_raw, list) or not corners_raw:
        raise _fail(path, "corners must be a non-empty list", 'e.g. [{"std": 0, "float": 0}]')
    corners = []
    for c in corners_raw:
        if not isinstance(c, dict) or set(c) != {"std", "float"} or c["std"] not in (0, 1) or c["float"] not in (0, 1):
            raise _fail(path, f"corner {c!r} is impossible", 'each corner is {"std": 0|1, "float": 0|1}')
        corners.append(Corner(int(c["std"]), int(c["float"])))

    board = Board(
        id=str(raw["id"]), description=str(raw["description"]), kind=kind, consoles=tuple(consoles),
        counter=counter, corners=tuple(corners),
        extra={k: raw[k] for k in ("uart", "clock", "flash", "usb") if k in raw},
    )
    if kind == "host":
        return board
    for key in ("cpu", "memory"):
        if key not in raw:
            raise _fail(path, f"a {kind} board needs '{key}'", "add it (see boards/qemu-m4.json)")
    cpu = _choice(path, "cpu", raw["cpu"], CPUS)
    fpu = raw.get("fpu")
    if fpu is not None:
        _choice(path, "fpu", fpu, FPUS)
    memory = raw["memory"]
    if not isinstance(memory, dict) or set(memory) != {"flash", "ram"}:
        raise _fail(path, "memory must have exactly 'flash' and 'ram'", "see boards/qemu-m4.json")
    flash, ram = _region(path, "flash", memory["flash"]), _region(path, "ram", memory["ram"])
    if flash.origin < ram.origin + ram.size and ram.origin < flash.origin + flash.size:
        raise _fail(path, "memory.flash and memory.ram overlap", "fix the memory map")
    machine = None
    if kind == "qemu":
        q = raw.get("qemu")
        if not isinstance(q, dict) or set(q) != {"machine"} or not isinstance(q["machine"], str):
            raise _fail(path, "a qemu board needs \"qemu\": {\"machine\": <name>}", "name the qemu-system-arm -M machine")
        machine = q["machine"]
    dsp = raw.get("dsp", False)
    if not isinstance(dsp, bool):
        raise _fail(path, "dsp must be true or false", "set \"dsp\": true only for cores with the DSP extension")
    return Board(**{**board.__dict__, "cpu": cpu, "fpu": fpu, "dsp": dsp, "flash": flash, "ram": ram,
                    "qemu_machine": machine})


def board_names(boards_dir: Path = BOARDS_DIR) -> list[str]:
    return sorted(p.stem for p in boards_dir.glob("*.json"))


def load_board(name: str, boards_dir: Path = BOARDS_DIR) -> Board:
    """Load and validate boards/<name>.json; an unknown name lists the valid ones."""
    path = boards_dir / f"{name}.json"
    if not path.is_file():
        raise QmcuError(f"unknown board {name!r}", f"valid boards: {', '.join(board_names(boards_dir))}")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise _fail(path, f"is not valid JSON ({err})", "fix the syntax") from err
    return parse_board(path, raw)


def load_all(boards_dir: Path = BOARDS_DIR) -> list[Board]:
    return [load_board(n, boards_dir) for n in board_names(boards_dir)]
