"""Boards are data: one JSON file per board in `boards/`, validated on load.

Code never tests a board's id; it reads the fields below. A new board is one new file.

Besides the core keys (kind, cpu, fpu, dsp, memory, qemu, consoles, counter, corners), a board may say:

* "uart": the console UART: {"driver", "base", "clock_hz", "baud", "enable": [{"register", "bit"}],
  "pins": [{"gpio_base", "pin", "af"}]}. Required when "uart" is among the consoles; on hardware the
  pins are required too. "enable" lists the clock-enable bits (GPIO port, USART) to set first. The
  driver names the register layout: "stm32-usart" is the SR/DR/BRR/CR1 USART of STM32F1/F2/F4,
  "stm32-usart-v2" the CR1/BRR/ISR/TDR USART of STM32F0/F3/F7/L0/L4/G4, "cmsdk-uart" Arm's CMSDK UART.
* "clock": the core clock the firmware runs on: {"source", "hz", "init": [steps]}. Each init step ORs
  "set" into "register", then, when "wait_register"/"wait_mask" are given, waits until every bit of
  "wait_mask" reads 1 there. An empty init means the reset clock is used as it is.
* "exit": how the program ends: "semihosting" (the host sees the exit code) or "halt" (real boards,
  where no debugger listens: the END record's status is the result).
* "flash": how to program a hardware board: {"default", "pyocd_target", "openocd_config", "stflash"}.
  Exposed as Board.flasher (Board.flash is the flash memory region).
* "usb": {"vid", "pids"}: the USB IDs of the board's virtual COM port, for port auto-detection.
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
UART_DRIVERS = ("stm32-usart", "stm32-usart-v2", "cmsdk-uart")
EXITS = ("semihosting", "halt")
FLASHERS = ("pyocd", "openocd", "stflash")
# Cores without the DWT cycle counter (ARMv6-M has no DWT_CYCCNT).
_NO_DWT_CPUS = ("cortex-m0", "cortex-m0plus")

_TOP_KEYS = {
    "id": True, "description": True, "kind": True, "consoles": True, "counter": True,
    "corners": True, "cpu": False, "fpu": False, "dsp": False, "memory": False,
    "qemu": False, "uart": False, "clock": False, "exit": False, "flash": False, "usb": False,
}
_COUNTER_KEYS = {"kind", "unit", "timer_base", "enable_register", "enable_bit"}
_HARDWARE_ONLY = ("flash", "usb")
_TARGET_ONLY = ("uart", "clock")


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


def _ranged(path: Path, where: str, value: Any, low: int, high: int) -> int:
    number = _int(path, where, value)
    if not low <= number <= high:
        raise _fail(path, f"{where}={number} is outside [{low}, {high}]", f"give {where} a value in that range")
    return number


def _address(path: Path, where: str, value: Any) -> int:
    """A 32-bit, word-aligned address of a register or a peripheral."""
    address = _ranged(path, where, value, 0, 0xFFFFFFFF)
    if address % 4:
        raise _fail(path, f"{where}=0x{address:08x} is not word aligned", "registers sit at multiples of 4")
    return address


# Cortex-M's peripheral region, where every STM32 timer and RCC register lives.
PERIPHERAL_REGION = (0x40000000, 0x60000000)


def _peripheral(path: Path, where: str, value: Any, align: int) -> int:
    """A register address in the peripheral region, aligned as the peripheral requires (STM32 timers: 1 KiB)."""
    address = _int(path, where, value)
    low, high = PERIPHERAL_REGION
    if not low <= address < high or address % align:
        aligned = "word-aligned" if align == 4 else f"0x{align:x}-aligned"
        raise _fail(path, f"{where}=0x{address:08x} is not a {aligned} address "
                    f"in the peripheral region [0x{low:08x}, 0x{high:08x})",
                    "copy the address from the chip's reference manual (STM32F4 TIM2: 0x40000000)")
    return address


def counter_warning(board: Board, counts: list[int], plugin: bool) -> str | None:
    """Why the instruction figures are not the board's own, when its board file names a counter that read 0.

    A board with counter.kind other than none whose every reading is 0 has a wrong counter entry
    (a timer_base or enable bit that addresses nothing): say so instead of silently using the plugin.
    """
    if board.counter["kind"] == "none" or not counts or any(counts):
        return None
    entry = (f"counter.timer_base=0x{board.counter['timer_base']:08x}, counter.enable_register="
             f"0x{board.counter['enable_register']:08x}, counter.enable_bit={board.counter['enable_bit']}"
             if board.counter["kind"] == "stm32-tim" else "the DWT (is it present and enabled on this core?)")
    figures = "the figures are the QEMU plugin's" if plugin else "there are no instruction figures"
    return (f"board {board.id}'s {board.counter['kind']} counter read 0 for all {len(counts)} inferences, so {figures}; "
            f"check {entry} in boards/{board.id}.json")


def _text(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"{where} must be a non-empty string", f"set {where}")
    return value


def _section(path: Path, where: str, raw: Any, required: set[str], optional: set[str] | None = None) -> dict[str, Any]:
    """An object with exactly the required keys and possibly the optional ones."""
    optional = optional or set()
    keys = sorted(required | optional)
    if not isinstance(raw, dict):
        raise _fail(path, f"{where} must be an object", f"give it the keys {', '.join(keys)}")
    unknown = sorted(set(raw) - required - optional)
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(f'{where}.{k}' for k in unknown)}",
                    f"valid keys of {where} are {', '.join(keys)}")
    missing = sorted(required - set(raw))
    if missing:
        raise _fail(path, f"{where} lacks {', '.join(missing)}", f"add them (keys of {where}: {', '.join(keys)})")
    return raw


def _list(path: Path, where: str, raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise _fail(path, f"{where} must be a list", f"write {where} as [...]")
    return raw


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


def _uart(path: Path, raw: Any) -> Uart:
    u = _section(path, "uart", raw, {"driver", "base", "clock_hz", "baud"}, {"enable", "pins"})
    enable = []
    for k, e in enumerate(_list(path, "uart.enable", u.get("enable", []))):
        e = _section(path, f"uart.enable[{k}]", e, {"register", "bit"})
        enable.append(RegisterBit(_address(path, f"uart.enable[{k}].register", e["register"]),
                                  _ranged(path, f"uart.enable[{k}].bit", e["bit"], 0, 31)))
    pins = []
    for k, p in enumerate(_list(path, "uart.pins", u.get("pins", []))):
        p = _section(path, f"uart.pins[{k}]", p, {"gpio_base", "pin", "af"})
        pins.append(UartPin(_address(path, f"uart.pins[{k}].gpio_base", p["gpio_base"]),
                            _ranged(path, f"uart.pins[{k}].pin", p["pin"], 0, 15),
                            _ranged(path, f"uart.pins[{k}].af", p["af"], 0, 15)))
    uart = Uart(driver=_choice(path, "uart.driver", u["driver"], UART_DRIVERS),
                base=_address(path, "uart.base", u["base"]),
                clock_hz=_ranged(path, "uart.clock_hz", u["clock_hz"], 1, 10**9),
                baud=_ranged(path, "uart.baud", u["baud"], 1, 10**8), enable=tuple(enable), pins=tuple(pins))
    if uart.clock_hz < 16 * uart.baud:
        raise _fail(path, f"uart.clock_hz={uart.clock_hz} is below 16 x uart.baud={uart.baud}",
                    "a UART oversamples each bit 16 times: lower the baud rate or give the real peripheral clock")
    return uart


def _clock(path: Path, raw: Any) -> Clock:
    c = _section(path, "clock", raw, {"source", "hz"}, {"init"})
    steps = []
    for k, s in enumerate(_list(path, "clock.init", c.get("init", []))):
        where = f"clock.init[{k}]"
        s = _section(path, where, s, {"register", "set"}, {"wait_register", "wait_mask"})
        if ("wait_register" in s) != ("wait_mask" in s):
            raise _fail(path, f"{where} has only one of wait_register and wait_mask", "give both or neither")
        wait_register = _address(path, f"{where}.wait_register", s["wait_register"]) if "wait_register" in s else None
        wait_mask = _ranged(path, f"{where}.wait_mask", s["wait_mask"], 1, 0xFFFFFFFF) if "wait_mask" in s else None
        steps.append(ClockStep(_address(path, f"{where}.register", s["register"]),
                               _ranged(path, f"{where}.set", s["set"], 1, 0xFFFFFFFF), wait_register, wait_mask))
    return Clock(source=_text(path, "clock.source", c["source"]), hz=_ranged(path, "clock.hz", c["hz"], 1, 10**10),
                 init=tuple(steps))


def _flash_settings(path: Path, raw: Any) -> FlashSettings:
    f = _section(path, "flash", raw, {"default"}, {"pyocd_target", "openocd_config", "stflash"})
    stflash = f.get("stflash", False)
    if not isinstance(stflash, bool):
        raise _fail(path, "flash.stflash must be true or false", "true when st-flash can program the board")
    settings = FlashSettings(
        default=_choice(path, "flash.default", f["default"], FLASHERS),
        pyocd_target=_text(path, "flash.pyocd_target", f["pyocd_target"]) if "pyocd_target" in f else None,
        openocd_config=_text(path, "flash.openocd_config", f["openocd_config"]) if "openocd_config" in f else None,
        stflash=stflash)
    if not settings.supports(settings.default):
        setting = {"pyocd": "pyocd_target", "openocd": "openocd_config", "stflash": "stflash"}[settings.default]
        raise _fail(path, f"flash.default is {settings.default} but flash.{setting} is not set",
                    f"add flash.{setting} or pick another default")
    return settings


def _usb(path: Path, raw: Any) -> Usb:
    u = _section(path, "usb", raw, {"vid", "pids"})
    pids = tuple(_ranged(path, f"usb.pids[{k}]", p, 0, 0xFFFF) for k, p in enumerate(_list(path, "usb.pids", u["pids"])))
    if not pids or len(set(pids)) != len(pids):
        raise _fail(path, "usb.pids must be a non-empty list without repeats", 'e.g. ["0x374b", "0x374e"]')
    return Usb(vid=_ranged(path, "usb.vid", u["vid"], 0, 0xFFFF), pids=pids)


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
        counter = {**counter, "timer_base": _peripheral(path, "counter.timer_base", counter["timer_base"], 0x400),
                   "enable_register": _peripheral(path, "counter.enable_register", counter["enable_register"], 4),
                   "enable_bit": _ranged(path, "counter.enable_bit", counter["enable_bit"], 0, 31)}
    if counter["kind"] == "dwt" and counter["unit"] != "cycles":
        raise _fail(path, f"counter.kind dwt counts cycles, but counter.unit is {counter['unit']!r}",
                    "set \"unit\": \"cycles\"")

    corners_raw = raw["corners"]
    if not isinstance(corners_raw, list) or not corners_raw:
        raise _fail(path, "corners must be a non-empty list", 'e.g. [{"std": 0, "float": 0}]')
    corners = []
    for c in corners_raw:
        if not isinstance(c, dict) or set(c) != {"std", "float"} or c["std"] not in (0, 1) or c["float"] not in (0, 1):
            raise _fail(path, f"corner {c!r} is impossible", 'each corner is {"std": 0|1, "float": 0|1}')
        corners.append(Corner(int(c["std"]), int(c["float"])))

    for key in _HARDWARE_ONLY:
        if key in raw and kind != "hardware":
            raise _fail(path, f"'{key}' is for hardware boards, this board's kind is {kind}", f"remove \"{key}\"")
    for key in _TARGET_ONLY:
        if key in raw and kind == "host":
            raise _fail(path, f"'{key}' is for target boards, not the host", f"remove \"{key}\"")
    if "uart" in consoles and "uart" not in raw:
        raise _fail(path, "the console is \"uart\" but the file has no \"uart\" section",
                    "add \"uart\": {\"driver\", \"base\", \"clock_hz\", \"baud\", \"enable\", \"pins\"}")
    exit_ = _choice(path, "exit", raw.get("exit", "semihosting"), EXITS)

    board = Board(
        id=str(raw["id"]), description=str(raw["description"]), kind=kind, consoles=tuple(consoles),
        counter=counter, corners=tuple(corners), exit=exit_,
        uart=_uart(path, raw["uart"]) if "uart" in raw else None,
        clock=_clock(path, raw["clock"]) if "clock" in raw else None,
        flasher=_flash_settings(path, raw["flash"]) if "flash" in raw else None,
        usb=_usb(path, raw["usb"]) if "usb" in raw else None,
        extra={k: raw[k] for k in ("uart", "clock", "flash", "usb") if k in raw},
    )
    if kind == "host":
        return board
    for key in ("cpu", "memory"):
        if key not in raw:
            raise _fail(path, f"a {kind} board needs '{key}'", "add it (see boards/qemu-m4.json)")
    cpu = _choice(path, "cpu", raw["cpu"], CPUS)
    if counter["kind"] == "dwt" and cpu in _NO_DWT_CPUS:
        raise _fail(path, f"counter.kind dwt needs a DWT cycle counter, which a {cpu} does not have",
                    "use counter.kind none (or a timer)")
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
    if kind == "hardware":
        _check_hardware(path, board)
    return Board(**{**board.__dict__, "cpu": cpu, "fpu": fpu, "dsp": dsp, "flash": flash, "ram": ram,
                    "qemu_machine": machine})


def _check_hardware(path: Path, board: Board) -> None:
    """Rules for real boards: nobody attaches a debugger to catch semihosting, so the UART carries everything."""
    if board.flasher is None:
        raise _fail(path, "a hardware board needs a \"flash\" section",
                    "add \"flash\": {\"default\": \"pyocd\", \"pyocd_target\": ...}")
    if board.consoles != ("uart",):
        raise _fail(path, f"a hardware board's consoles must be [\"uart\"], not {list(board.consoles)}",
                    "semihosting stops a board that has no debugger attached; read its UART")
    if board.exit != "halt":
        raise _fail(path, f"a hardware board cannot exit by {board.exit}", "set \"exit\": \"halt\"")
    assert board.uart is not None  # "uart" in consoles requires the section
    if not board.uart.pins:
        raise _fail(path, "uart.pins is empty: on real hardware the UART's TX/RX pins must be switched to the UART",
                    "list them as {\"gpio_base\": \"0x...\", \"pin\": 0-15, \"af\": 0-15}")
    if board.clock is None:
        raise _fail(path, "a hardware board needs a \"clock\" section", "name the clock the firmware runs on")


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
