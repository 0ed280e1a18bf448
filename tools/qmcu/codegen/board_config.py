"""Board facts for the Cortex-M platform files that do not fit in -D macros: the generated board_config.hpp.

From the validated Board (boards.py): which console a build uses (the first of "consoles" unless one
is asked for; the Cortex-M platform implements TARGET_CONSOLES), the console UART ("uart": driver,
base, clock_hz, baud, clock-enable bits, alternate-function pins) and the register steps that bring
the board's clock up at reset ("clock"; none = the reset clock). The exit ("exit") needs no data and
is chosen by toolchain.py's defines alone.

render_board_config(board, console) is the header's text; the build writes it as board_config.hpp into
a directory on the include path whenever needs_board_config(board, console) is true (then
toolchain.platform_sources() lists board_init.cpp, which includes it, and startup calls board_init()).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from qmcu import atomic
from qmcu.boards import Board, ClockStep, Uart
from qmcu.codegen.cpp import banner
from qmcu.errors import QmcuError

logger = logging.getLogger(__name__)

TARGET_CONSOLES = ("semihosting", "uart")
# The largest baud-rate error a UART link tolerates in practice (both ends together stay inside ~5 %).
MAX_BAUD_ERROR = 0.025


def choose_console(board: Board, console: str | None) -> str:
    """The console to build for: the board's first one by default; one it does not list is an error."""
    chosen = board.consoles[0] if console is None else console
    if chosen not in board.consoles:
        raise QmcuError(f"board {board.id} has no console {chosen!r}", f"use one of its consoles: {', '.join(board.consoles)}")
    if chosen not in TARGET_CONSOLES:
        supported = [c for c in board.consoles if c in TARGET_CONSOLES]
        raise QmcuError(f"console {chosen!r} of board {board.id} is not implemented by the Cortex-M platform layer",
                        f"use one of its consoles {', '.join(supported) or '(none usable)'}")
    return chosen


def uart_divisor(uart: Uart) -> int:
    """BRR (stm32-usart*, 16x oversampling: 12.4 fixed point) or BAUDDIV (cmsdk-uart): both clock / baud, rounded."""
    return round(uart.clock_hz / uart.baud)


def console_uart(board: Board) -> Uart:
    """The board's console UART, checked down to a divisor its driver can program."""
    uart = board.uart
    if uart is None:
        raise QmcuError(f"board {board.id} has no \"uart\" entry", f"add one to boards/{board.id}.json")
    divisor = uart_divisor(uart)
    # boards.py guarantees clock >= 16 x baud (BRR mantissa >= 1, BAUDDIV >= 16); both registers hold 16 bits here.
    if divisor > 0xFFFF:
        raise QmcuError(f"board {board.id}: uart clock {uart.clock_hz} Hz / {uart.baud} baud needs divisor {divisor}, "
                        "above 65535", "raise uart.baud or check uart.clock_hz (the UART's peripheral clock)")
    error = abs(uart.clock_hz / divisor - uart.baud) / uart.baud
    if error > MAX_BAUD_ERROR:
        raise QmcuError(f"board {board.id}: uart clock {uart.clock_hz} Hz cannot make {uart.baud} baud (off by {error:.1%})",
                        "pick a baud rate the peripheral clock divides more closely")
    return uart


def clock_steps(board: Board) -> tuple[ClockStep, ...]:
    return board.clock.init if board.clock is not None else ()


def needs_board_config(board: Board, console: str | None = None) -> bool:
    """True when the image runs board_init(): a UART console to set up, or clock steps to run at reset."""
    return choose_console(board, console) == "uart" or bool(clock_steps(board))


def _hex(v: int) -> str:
    return f"0x{v:08x}u"


def _dec(v: int) -> str:
    return f"{v}u"


def _table(ctype: str, name: str, rows: list[list[str]], width: int, why: str) -> list[str]:
    # A zeroed row ends every table: the loops stop at register 0, and no table is ever empty.
    body = [f"    {{{', '.join(row)}}}," for row in rows] + ["    {" + ", ".join(["0u"] * width) + "},"]
    return [f"// {why}", f"constexpr {ctype} {name}[] = {{", *body, "};"]


def render_board_config(board: Board, console: str | None = None) -> str:
    """The text of board_config.hpp for this board and console (the board's default console if None)."""
    console = choose_console(board, console)
    uart = console_uart(board) if console == "uart" else None
    clock = f"{board.clock.source} at {board.clock.hz} Hz" if board.clock else "the reset clock"
    steps = [[_hex(s.register), _hex(s.set), _hex(s.wait_register or 0), _hex(s.wait_mask or 0)] for s in clock_steps(board)]
    inputs = json.dumps({k: board.extra.get(k) for k in ("uart", "clock")} | {"exit": board.exit, "console": console},
                        sort_keys=True)
    lines = [
        banner(f"qmcu board configuration: board {board.id}, console {console}",
               {"generator": "tools/qmcu/codegen/board_config.py", "board": f"boards/{board.id}.json",
                "inputs_sha256": hashlib.sha256(inputs.encode()).hexdigest()}),
        "#pragma once", "", "#include <stdint.h>", "", "namespace qmcu {", "namespace board_config {", "",
        "struct ClockStep { uintptr_t reg; uint32_t set; uintptr_t wait_reg; uint32_t wait_mask; };",
        "struct EnableBit { uintptr_t reg; uint32_t bit; };",
        "struct AfPin { uintptr_t gpio_base; uint32_t pin; uint32_t af; };", "",
        *_table("ClockStep", "kClockInit", steps, 4,
                f"Bring up {clock}: OR set into reg, then wait until wait_reg has every bit of wait_mask (if any)."),
        "",
        *_table("EnableBit", "kEnable", [[_hex(e.register), _dec(e.bit)] for e in uart.enable] if uart else [], 2,
                "Peripheral clock enables the console needs (UART and GPIO ports)."), "",
        *_table("AfPin", "kPins", [[_hex(p.gpio_base), _dec(p.pin), _dec(p.af)] for p in uart.pins] if uart else [], 3,
                "Console pins switched to their alternate function."), "",
    ]
    if uart is not None:
        divisor = uart_divisor(uart)
        lines += [
            f"// {uart.driver} UART: {uart.clock_hz} Hz / {uart.baud} baud (actual {uart.clock_hz / divisor:.0f} baud).",
            f"constexpr uintptr_t kUartBase = {_hex(uart.base)};",
            f"constexpr uint32_t kUartDivisor = {divisor}u;", "",
        ]
    lines += ["}  // namespace board_config", "}  // namespace qmcu", ""]
    return "\n".join(lines)


def write_board_config(board: Board, path: Path, console: str | None = None) -> Path:
    """Write board_config.hpp atomically (rewritten only when its text changes, so nothing rebuilds needlessly)."""
    text = render_board_config(board, console)
    if not path.is_file() or path.read_text() != text:
        atomic.write_text(path, text)
        logger.debug("wrote %s", path)
    return path
