"""Boards are data: one JSON file per board in `boards/`, validated on load.

Code never tests a board's id; it reads the fields below. A new board is one new file: in the built-in
`boards/`, or, with qmcu installed from a wheel, in `boards/` of the folder the command runs in (found beside
the built-in ones, validated the same way; its id must not be a built-in board's, see board_files).

`boards/schema.json` (JSON Schema, Draft 2020-12) says what every key may hold: the keys an object
may and must have, types, the allowed names, ranges and alignment; its descriptions document the
keys. Numbers may be written as JSON numbers or as hex strings ("0x20000000"); ranges apply to the
value a hex string spells. The rules that relate keys to each other stay in Python below
(`_cross_field_problems`): the id and the file name, which sections a host, qemu or hardware board
has, the console's UART, the counter and the core, the UART clock and baud, the memory map.
Every error is one line: the file, the key (its JSON path), the problem and the fix.

The keys: id, description, kind, consoles, counter and corners always; cpu and memory on target boards;
qemu on qemu boards; "uart" (the console UART) when "uart" is among the consoles; "clock" (the core
clock, with its init steps); "exit" ("semihosting" or "halt"); on hardware boards "flash" (how to
program the board, exposed as Board.flasher since Board.flash is the flash memory region) and "usb"
(the virtual COM port's USB IDs, for port auto-detection).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from qmcu.errors import QmcuError
from qmcu.paths import BOARDS_DIR, USER_BOARDS_DIR, WORK_DIR

logger = logging.getLogger(__name__)

SCHEMA_PATH = BOARDS_DIR / "schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())


def _shown(path: Path) -> str:
    """A built-in file as a hint names it: boards/... in the checkout, its full path in an installed wheel."""
    return str(path.relative_to(WORK_DIR)) if path.is_relative_to(WORK_DIR) else str(path)


_EXAMPLE_BOARD = _shown(BOARDS_DIR / "qemu-m4.json")  # the board file hints point to for the format
# The flashers a board file may name (flash.default); flash.py drives each.
FLASHERS: tuple[str, ...] = tuple(SCHEMA["properties"]["flash"]["properties"]["default"]["enum"])
# Cores without the DWT cycle counter (ARMv6-M has no DWT_CYCCNT).
_NO_DWT_CPUS = ("cortex-m0", "cortex-m0plus")
_HARDWARE_ONLY = ("flash", "usb")
_TARGET_ONLY = ("uart", "clock")
# How the schema spells "a number written as a JSON number or a string" ($defs/integer).
_INT_PATTERN = r"^(0[xX][0-9a-fA-F]+|[0-9]+)$"
# The keywords checked again once hex strings are numbers: they constrain values, not spellings.
_VALUE_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems")


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
class RegisterBit:
    """One bit to set in a memory-mapped register (e.g. a peripheral clock enable)."""

    register: int
    bit: int


@dataclass(frozen=True)
class UartPin:
    """A GPIO pin switched to an alternate function (af) for the UART."""

    gpio_base: int
    pin: int
    af: int


@dataclass(frozen=True)
class Uart:
    driver: str
    base: int
    clock_hz: int
    baud: int
    enable: tuple[RegisterBit, ...] = ()
    pins: tuple[UartPin, ...] = ()


@dataclass(frozen=True)
class ClockStep:
    """register |= set; then, if wait_register is given, wait until (wait_register & wait_mask) == wait_mask."""

    register: int
    set: int
    wait_register: int | None = None
    wait_mask: int | None = None


@dataclass(frozen=True)
class Clock:
    source: str
    hz: int
    init: tuple[ClockStep, ...] = ()


@dataclass(frozen=True)
class FlashSettings:
    """How to program the board: the default flasher and each flasher's setting (None/False: not supported)."""

    default: str
    pyocd_target: str | None = None
    openocd_config: str | None = None
    stflash: bool = False

    def supports(self, flasher: str) -> bool:
        return {"pyocd": self.pyocd_target is not None, "openocd": self.openocd_config is not None,
                "stflash": self.stflash}.get(flasher, False)


@dataclass(frozen=True)
class Usb:
    vid: int
    pids: tuple[int, ...]


@dataclass(frozen=True)
class Counter:
    """The on-target counter around each inference: none, an STM32 general-purpose timer, or the DWT cycle counter.

    unit names what it counts (none, instructions, cycles); the timer fields are set for kind stm32-tim only.
    """

    kind: str
    unit: str
    timer_base: int | None = None
    enable_register: int | None = None
    enable_bit: int | None = None


@dataclass(frozen=True)
class Board:
    id: str
    description: str
    kind: str
    consoles: tuple[str, ...]
    counter: Counter
    corners: tuple[Corner, ...]
    cpu: str | None = None
    fpu: str | None = None
    dsp: bool = False
    flash: Region | None = None
    ram: Region | None = None
    qemu_machine: str | None = None
    uart: Uart | None = None
    clock: Clock | None = None
    exit: str = "semihosting"
    flasher: FlashSettings | None = None
    usb: Usb | None = None
    # The raw "uart", "clock", "flash" and "usb" sections as written (the typed fields above are parsed from them).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_target(self) -> bool:
        return self.kind != "host"

    @property
    def counter_unit(self) -> str:
        return self.counter.unit

    def supports(self, corner: Corner) -> bool:
        return corner in self.corners


def _fail(path: Path, what: str, fix: str) -> QmcuError:
    return QmcuError(f"board file {path}: {what}", fix)


def make_corner(std: object, flt: object, board: Board | None = None) -> Corner:
    """The one check of a corner: STD and FLOAT are each 0 or 1 (as numbers or text), and the board, if given, lists it."""
    values = []
    for name, value in (("STD", std), ("FLOAT", flt)):
        if isinstance(value, bool) or value not in (0, 1, "0", "1"):
            raise QmcuError(f"{name}={value!r} is not valid", "use one of 0, 1")
        values.append(int(value))  # type: ignore[call-overload]  # checked just above: 0, 1, "0" or "1"
    corner = Corner(*values)
    if board is not None and corner not in board.corners:
        raise QmcuError(f"board {board.id} does not list corner STD={corner.std} FLOAT={corner.float}",
                        f"use one of {', '.join(c.name for c in board.corners)}")
    return corner


def counter_warning(board: Board, counts: list[int], plugin: bool) -> str | None:
    """Why the instruction figures are not the board's own, when its board file names a counter that read 0.

    A board with counter.kind other than none whose every reading is 0 has a wrong counter entry
    (a timer_base or enable bit that addresses nothing): say so instead of silently using the plugin.
    """
    c = board.counter
    if c.kind == "none" or not counts or any(counts):
        return None
    entry = (f"counter.timer_base=0x{c.timer_base:08x}, counter.enable_register=0x{c.enable_register:08x}, "
             f"counter.enable_bit={c.enable_bit}" if c.kind == "stm32-tim" and c.timer_base is not None
             and c.enable_register is not None else "the DWT (is it present and enabled on this core?)")
    figures = "the figures are the QEMU plugin's" if plugin else "there are no instruction figures"
    return (f"board {board.id}'s {c.kind} counter read 0 for all {len(counts)} inferences, so {figures}; "
            f"check {entry} in boards/{board.id}.json")


# --- the schema: one line per error ------------------------------------------------------------

@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(SCHEMA)
    cls.check_schema(SCHEMA)
    return cls(SCHEMA)


def _where(parts: Iterable[str | int]) -> str:
    """A JSON path as the files are read: uart.pins[0].pin."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: int, written_as_text: bool, width: int) -> str:
    """A number as the file spells it: hex when it was written as a hex string."""
    return f"0x{value:0{width}x}" if written_as_text else str(value)


def _at(raw: Any, parts: Iterable[str | int]) -> Any:
    for part in parts:
        raw = raw[part]
    return raw


def _as_numbers(raw: Any) -> Any:
    """The document with every number written as text turned into a number (the schema has checked the spelling)."""
    if isinstance(raw, dict):
        return {k: _as_numbers(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_as_numbers(v) for v in raw]
    if isinstance(raw, str) and re.fullmatch(_INT_PATTERN, raw):
        return int(raw, 16) if raw[:2].lower() == "0x" else int(raw)
    return raw


_TYPE_PHRASES = {"object": "must be an object", "array": "must be a list", "string": "must be a string",
                 "boolean": "must be true or false", "integer": "must be an integer"}


def _explain(error: jsonschema.ValidationError, raw: Any) -> tuple[str, str]:
    """(problem, fix) for one schema error, naming the key by its JSON path."""
    where, value, schema = _where(error.absolute_path), error.instance, error.schema
    hint = schema.get("description") if isinstance(schema, dict) else None
    keyword, wanted = error.validator, error.validator_value
    if keyword == "additionalProperties":
        keys = sorted(schema.get("properties", {}))
        unknown = ", ".join(f"{where}.{k}" if where else k for k in sorted(set(value) - set(keys)))
        return f"unknown key(s) {unknown}", f"valid keys{f' of {where}' if where else ''} are {', '.join(keys)}"
    if keyword == "required":
        missing = ", ".join(k for k in wanted if k not in value)
        keys = ", ".join(sorted(schema.get("properties", {})))
        if not where:
            return f"missing key(s) {missing}", f"add them (see {_EXAMPLE_BOARD})"
        return f"{where} lacks {missing}", hint or f"add them (keys of {where}: {keys})"
    if keyword == "dependentRequired":
        key = next(k for k, needs in wanted.items() if k in value and any(n not in value for n in needs))
        other = next(n for n in wanted[key] if n not in value)
        return f"{where} has {key} without {other}", f"give both {key} and {other} or neither"
    if keyword == "type":
        if not where:
            return "top level is not a JSON object", f"see {_EXAMPLE_BOARD} for the format"
        if isinstance(wanted, list) and "integer" in wanted:
            return f"{where}={_show(value)} is not an integer", hint or "write a number"
        return f"{where} {_TYPE_PHRASES.get(wanted, f'must be {wanted}')}, not {_show(value)}", hint or f"set {where}"
    if keyword == "pattern":
        if wanted == _INT_PATTERN:
            return f"{where}={_show(value)} is not an integer", hint or "write a number or a hex string"
        return f"{where}={_show(value)} does not match {wanted}", hint or f"set {where}"
    if keyword == "enum":
        allowed = ", ".join(v if isinstance(v, str) else json.dumps(v) for v in wanted)
        return f"{where}={_show(value)} is not one of {allowed}", hint or f"set {where} to a supported value"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
        as_text = isinstance(_at(raw, error.absolute_path), str)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 0))
        width = 8 if high > 0xFFFF else 1

        def show(n: int) -> str:
            return _number(n, as_text, width)
        if keyword == "multipleOf":
            aligned = "word aligned" if wanted == 4 else f"{hex(wanted) if as_text else wanted}-aligned"
            return f"{where}={show(value)} is not {aligned}", hint or f"use a multiple of {wanted}"
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        close = "]" if "maximum" in schema else ")"
        problem = f"{where}={show(value)} is outside [{show(low)}, {show(high)}{close}"
        return problem, hint or f"give {where} a value in that range"
    if keyword == "minItems":
        return f"{where} must be a non-empty list", hint or f"add an entry to {where}"
    if keyword == "uniqueItems":
        return f"{where} lists an entry twice", hint or "remove the repeat"
    if keyword == "minLength":
        return f"{where} must be a non-empty string", hint or f"set {where}"
    return f"{where or 'the file'}: {error.message}", hint or f"see {_shown(SCHEMA_PATH)}"


def _schema_problem(raw: Any) -> tuple[str, str] | None:
    """The most relevant schema error, if any: first as written, then with hex strings read as numbers."""
    validator = _validator()
    error = jsonschema.exceptions.best_match(validator.iter_errors(raw))
    if error is None:
        values = (e for e in validator.iter_errors(_as_numbers(raw)) if e.validator in _VALUE_KEYWORDS)
        error = jsonschema.exceptions.best_match(values)
    return None if error is None else _explain(error, raw)


# --- the rules that relate keys: what a schema does not say well -------------------------------

def _cross_field_problems(path: Path, raw_id: str, f: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(problem, fix) for each rule the file breaks, in order; only the first is reported, so later rules may
    rely on the earlier ones. f is the schema-valid file with its numbers as numbers (raw_id: its id as written)."""
    kind, consoles, counter = f["kind"], f["consoles"], f["counter"]
    if raw_id != path.stem:
        yield f"id {raw_id!r} differs from the file name", f"set \"id\": \"{path.stem}\""
    for key in _HARDWARE_ONLY:
        if key in f and kind != "hardware":
            yield f"'{key}' is for hardware boards, this board's kind is {kind}", f"remove \"{key}\""
    for key in _TARGET_ONLY:
        if key in f and kind == "host":
            yield f"'{key}' is for target boards, not the host", f"remove \"{key}\""
    if "uart" in consoles and "uart" not in f:
        yield ("the console is \"uart\" but the file has no \"uart\" section",
               "add \"uart\": {\"driver\", \"base\", \"clock_hz\", \"baud\", \"enable\", \"pins\"}")
    if counter["kind"] == "stm32-tim":
        for key in ("timer_base", "enable_register", "enable_bit"):
            if key not in counter:
                yield f"counter.kind stm32-tim needs counter.{key}", "add the timer's register addresses"
    if counter["kind"] == "dwt" and counter["unit"] != "cycles":
        yield f"counter.kind dwt counts cycles, but counter.unit is {counter['unit']!r}", "set \"unit\": \"cycles\""
    if "uart" in f and f["uart"]["clock_hz"] < 16 * f["uart"]["baud"]:
        yield (f"uart.clock_hz={f['uart']['clock_hz']} is below 16 x uart.baud={f['uart']['baud']}",
               "a UART oversamples each bit 16 times: lower the baud rate or give the real peripheral clock")
    if "flash" in f:
        setting = {"pyocd": "pyocd_target", "openocd": "openocd_config", "stflash": "stflash"}[f["flash"]["default"]]
        if not f["flash"].get(setting):
            yield (f"flash.default is {f['flash']['default']} but flash.{setting} is not set",
                   f"add flash.{setting} or pick another default")
    if kind == "host":
        return
    for key in ("cpu", "memory") + (("qemu",) if kind == "qemu" else ()):
        if key not in f:
            yield f"a {kind} board needs '{key}'", f"add it (see {_EXAMPLE_BOARD})"
    if counter["kind"] == "dwt" and f["cpu"] in _NO_DWT_CPUS:
        yield (f"counter.kind dwt needs a DWT cycle counter, which a {f['cpu']} does not have",
               "use counter.kind none (or a timer)")
    flash, ram = (Region(**f["memory"][k]) for k in ("flash", "ram"))
    for name, region in (("flash", flash), ("ram", ram)):
        if region.origin + region.size > 1 << 32:
            yield f"memory.{name} ends past the 32-bit address space", "fix its origin or size"
    if flash.origin < ram.origin + ram.size and ram.origin < flash.origin + flash.size:
        yield "memory.flash and memory.ram overlap", "fix the memory map"
    if kind != "hardware":
        return
    # Real boards: nobody attaches a debugger to catch semihosting, so the UART carries everything.
    if "flash" not in f:
        yield "a hardware board needs a \"flash\" section", "add \"flash\": {\"default\": \"pyocd\", \"pyocd_target\": ...}"
    if consoles != ["uart"]:
        yield (f"a hardware board's consoles must be [\"uart\"], not {consoles}",
               "semihosting stops a board that has no debugger attached; read its UART")
    if f.get("exit", "semihosting") != "halt":
        yield f"a hardware board cannot exit by {f.get('exit', 'semihosting')}", "set \"exit\": \"halt\""
    if not f["uart"].get("pins"):
        yield ("uart.pins is empty: on real hardware the UART's TX/RX pins must be switched to the UART",
               "list them as {\"gpio_base\": \"0x...\", \"pin\": 0-15, \"af\": 0-15}")
    if "clock" not in f:
        yield "a hardware board needs a \"clock\" section", "name the clock the firmware runs on"


# --- typed views ---------------------------------------------------------------------------------

def _board(f: dict[str, Any], raw: dict[str, Any]) -> Board:
    """The Board of a valid file (f: its content with numbers as numbers; raw: as written, for the text fields)."""
    uart = f.get("uart")
    clock = f.get("clock")
    memory = f.get("memory")
    return Board(
        id=raw["id"], description=raw["description"], kind=f["kind"], consoles=tuple(f["consoles"]),
        counter=Counter(**f["counter"]), corners=tuple(Corner(c["std"], c["float"]) for c in f["corners"]),
        cpu=f.get("cpu"), fpu=f.get("fpu"), dsp=f.get("dsp", False),
        flash=Region(**memory["flash"]) if memory else None, ram=Region(**memory["ram"]) if memory else None,
        qemu_machine=raw["qemu"]["machine"] if "qemu" in raw else None,
        uart=Uart(uart["driver"], uart["base"], uart["clock_hz"], uart["baud"],
                  enable=tuple(RegisterBit(**e) for e in uart.get("enable", ())),
                  pins=tuple(UartPin(**p) for p in uart.get("pins", ()))) if uart else None,
        clock=Clock(raw["clock"]["source"], clock["hz"], tuple(ClockStep(**s) for s in clock.get("init", ()))) if clock else None,
        exit=f.get("exit", "semihosting"),
        flasher=FlashSettings(**raw["flash"]) if "flash" in raw else None,
        usb=Usb(f["usb"]["vid"], tuple(f["usb"]["pids"])) if "usb" in f else None,
        extra={k: raw[k] for k in ("uart", "clock", "flash", "usb") if k in raw},
    )


def parse_board(path: Path, raw: Any) -> Board:
    """Validate one board file's content and build a Board; every error is one line naming the file and the key."""
    problem = _schema_problem(raw)
    if problem is None:
        problem = next(_cross_field_problems(path, raw["id"], _as_numbers(raw)), None)
    if problem is not None:
        raise _fail(path, *problem)
    return _board(_as_numbers(raw), raw)


def board_files(boards_dir: Path | None = None) -> dict[str, Path]:
    """Every board's file by id (every *.json but the schema): the built-in boards/ and, beside them, the user's
    boards/ in the work folder (paths.USER_BOARDS_DIR; a checkout has one folder for both). A user's board may
    not take a built-in board's id: it is refused, naming both files, so a board id always means one file.
    boards_dir: that folder alone (tests)."""
    folders = [boards_dir] if boards_dir is not None else [BOARDS_DIR, USER_BOARDS_DIR]
    files: dict[str, Path] = {}
    seen: set[Path] = set()
    for folder in folders:
        if not folder.is_dir() or folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        for path in sorted(folder.glob("*.json")):
            if path.name == SCHEMA_PATH.name:
                continue
            if path.stem in files:
                raise _fail(path, f"has the id of the built-in board {path.stem!r} ({files[path.stem]})",
                            f"give your board its own id: rename the file and its \"id\" (e.g. my-{path.stem})")
            files[path.stem] = path
    return files


def board_names(boards_dir: Path | None = None) -> list[str]:
    """The boards' ids, sorted (see board_files)."""
    return sorted(board_files(boards_dir))


def board_file(name: str, boards_dir: Path | None = None) -> Path:
    """The file of board <name>; an unknown name lists the valid ones."""
    files = board_files(boards_dir)
    if name not in files:
        raise QmcuError(f"unknown board {name!r}", f"valid boards: {', '.join(sorted(files))}")
    return files[name]


def load_board(name: str, boards_dir: Path | None = None) -> Board:
    """Load and validate the board file of <name> (built-in or the user's); an unknown name lists the valid ones."""
    path = board_file(name, boards_dir)
    return _parse_text(path, path.read_text())


@functools.lru_cache(maxsize=256)
def _parse_text(path: Path, text: str) -> Board:
    """A board file's content, validated once per process (keyed by the text: an edited file is read again)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise _fail(path, f"is not valid JSON ({err})", "fix the syntax") from err
    return parse_board(path, raw)


def load_all(boards_dir: Path | None = None) -> list[Board]:
    return [load_board(n, boards_dir) for n in board_names(boards_dir)]
