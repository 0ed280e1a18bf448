"""The single source of compile and link flags for every board and corner.

Everything board-specific is read from the Board (boards/<id>.json): CPU, FPU, DSP, console, exit
and counter (the console, exit and UART facts through board_config.py). cross.py puts them into the
command lines that SCons (sconsbuild.py) and the tests run.

Corners: STD=0 is a freestanding image (no C library: -ffreestanding -nostdlib, libgcc only for
integer helpers such as __aeabi_lmul on armv6-m, our own memcpy/memset/memmove/memcmp);
STD=1 links newlib-nano (nano.specs + nosys.specs). FLOAT=1 uses the hardware FPU when the board
has one (-mfloat-abi=hard), soft-float otherwise; FLOAT=0 is always -mfloat-abi=soft so that
any float operation shows up as a libgcc call that elfcheck.py can find.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from qmcu.boards import Board, Corner, make_corner
from qmcu.codegen import board_config
from qmcu.errors import QmcuError
from qmcu.paths import FIRMWARE_DIR

logger = logging.getLogger(__name__)

PLATFORM_DIR = FIRMWARE_DIR / "platform"
CORTEXM_DIR = PLATFORM_DIR / "cortexm"
HOST_DIR = PLATFORM_DIR / "host"

# The cross toolchain's prefix: every Cortex-M tool qmcu runs is f"{TARGET_PREFIX}<tool>".
TARGET_PREFIX = "arm-none-eabi-"

# The Debian package that provides each external tool qmcu runs.
_TOOL_PACKAGES = {
    f"{TARGET_PREFIX}gcc": "gcc-arm-none-eabi",
    f"{TARGET_PREFIX}g++": "gcc-arm-none-eabi",
    f"{TARGET_PREFIX}size": "binutils-arm-none-eabi",
    f"{TARGET_PREFIX}nm": "binutils-arm-none-eabi",
    f"{TARGET_PREFIX}objdump": "binutils-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "g++": "g++",
    "gcc": "gcc",
}

WARNINGS = ("-Wall", "-Wextra", "-Wpedantic", "-Werror")
CXX_COMMON = ("-std=c++17", *WARNINGS, "-fno-exceptions", "-fno-rtti", "-ffunction-sections", "-fdata-sections",
              "-fno-threadsafe-statics", "-fno-use-cxa-atexit")

# Cores on which the DSP extension is optional, so a board without it must say so to the compiler.
_OPTIONAL_DSP_CPUS = ("cortex-m33",)


@dataclass(frozen=True)
class Flags:
    """Compiler and linker arguments for one board and corner.

    libs are bare library names: cross.py passes each as -l<name> after the objects.
    """

    cxxflags: tuple[str, ...]
    linkflags: tuple[str, ...]
    defines: dict[str, str]
    libs: tuple[str, ...]


def require_tool(name: str) -> str:
    """The full path of an external tool, or a QmcuError naming the Debian package that provides it."""
    path = shutil.which(name)
    if path is None:
        package = _TOOL_PACKAGES.get(name, name)
        raise QmcuError(f"{name} is not installed", f"install the Debian package {package} (run tools/setup.sh)")
    return path


def _check_opt(opt: str) -> None:
    if not opt.startswith("-O"):
        raise QmcuError(f"optimisation flag {opt!r} is not an -O option", "use one of -O0, -O1, -O2, -O3, -Os, -Og")


def _arch_flags(board: Board, corner: Corner) -> list[str]:
    if board.cpu is None:
        raise QmcuError(f"board {board.id} has no cpu", "add \"cpu\" to its board file")
    mcpu = board.cpu
    if not board.dsp and board.cpu in _OPTIONAL_DSP_CPUS:
        mcpu += "+nodsp"
    flags = [f"-mcpu={mcpu}", "-mthumb"]
    if corner.float == 1 and board.fpu:
        flags += [f"-mfpu={board.fpu}", "-mfloat-abi=hard"]
    else:
        flags += ["-mfloat-abi=soft"]
    return flags


def _counter_defines(board: Board) -> dict[str, str]:
    counter = board.counter
    if counter.kind == "stm32-tim":
        return {"QMCU_COUNTER_STM32_TIM": "1", "QMCU_TIM_BASE": f"0x{counter.timer_base:08x}u",
                "QMCU_TIM_ENABLE_REG": f"0x{counter.enable_register:08x}u",
                "QMCU_TIM_ENABLE_BIT": str(counter.enable_bit)}
    if counter.kind == "dwt":
        return {"QMCU_COUNTER_DWT": "1"}
    return {}


# The file that drives each UART the board data may name (boards.UART_DRIVERS).
_UART_SOURCES = {"stm32-usart": "uart_stm32.cpp", "stm32-usart-v2": "uart_stm32.cpp", "cmsdk-uart": "uart_cmsdk.cpp"}


def _console_defines(board: Board, console: str | None) -> dict[str, str]:
    """Which console and exit the platform files compile in, and whether start-up runs board_init()."""
    chosen = board_config.choose_console(board, console)
    defines = {f"QMCU_CONSOLE_{chosen.upper()}": "1", f"QMCU_EXIT_{board.exit.upper()}": "1"}
    if chosen == "uart":
        defines["QMCU_UART_" + board_config.console_uart(board).driver.upper().replace("-", "_")] = "1"
    if board_config.needs_board_config(board, chosen):
        defines["QMCU_BOARD_INIT"] = "1"
    return defines


def target_flags(board: Board, corner: Corner, opt: str = "-O2", console: str | None = None) -> Flags:
    """Flags for a Cortex-M board (kind qemu or hardware) in one corner, for one of its consoles (default: the first).

    With QMCU_BOARD_INIT in the defines, the platform files include the generated board_config.hpp
    (board_config.write_board_config): its directory must be on the include path.
    """
    if not board.is_target:
        raise QmcuError(f"board {board.id} is not a cross-compiled target", "use host_flags() for the host board")
    _check_opt(opt)
    make_corner(corner.std, corner.float, board)
    arch = _arch_flags(board, corner)
    defines = {
        "QMCU_STD": str(corner.std),
        "QMCU_FLOAT": str(corner.float),
        "QMCU_HAS_FPU": "1" if board.fpu else "0",
        "QMCU_HAS_DSP": "1" if board.dsp else "0",
        **_console_defines(board, console),
        **_counter_defines(board),
        "QMCU_COUNTER_UNIT": board.counter_unit,  # what the records call the counter's figures
    }
    cxx = [*arch, *CXX_COMMON, opt, "-g"]
    link = [*arch, "-Wl,--gc-sections"]
    if corner.std == 0:
        cxx += ["-ffreestanding", "-nostdlib"]
        link += ["-nostdlib"]
        libs: tuple[str, ...] = ("gcc",)
    else:
        # newlib-nano with stub system calls; -nostartfiles because the start-up code is ours, and
        # -nodefaultlibs because g++ would add libstdc++, which is neither needed nor installed.
        link += ["--specs=nano.specs", "--specs=nosys.specs", "-nostartfiles", "-nodefaultlibs"]
        # libc and libnosys need each other; listing libc twice resolves both directions.
        libs = ("m", "c", "nosys", "c", "gcc")
    flags = Flags(cxxflags=tuple(cxx), linkflags=tuple(link), defines=defines, libs=libs)
    logger.debug("target flags for %s %s: %s", board.id, corner.name, flags)
    return flags


def host_flags(corner: Corner, opt: str = "-O2") -> Flags:
    """Flags for the host board (native g++). The host platform file uses libc, so nothing is -nostdlib."""
    _check_opt(opt)
    make_corner(corner.std, corner.float)
    cxx = [*CXX_COMMON, opt, "-g"]
    defines = {"QMCU_STD": str(corner.std), "QMCU_FLOAT": str(corner.float)}
    return Flags(cxxflags=tuple(cxx), linkflags=("-Wl,--gc-sections",), defines=defines, libs=())


def platform_sources(board: Board, corner: Corner, console: str | None = None) -> list[Path]:
    """The platform files to compile and link with the application for this board, corner and console."""
    if not board.is_target:
        return [HOST_DIR / "platform.cpp"]
    chosen = board_config.choose_console(board, console)
    sources = [CORTEXM_DIR / "startup.cpp", CORTEXM_DIR / "counter.cpp"]
    if board_config.needs_board_config(board, chosen):
        sources.append(CORTEXM_DIR / "board_init.cpp")
    if chosen == "semihosting" or board.exit == "semihosting":
        sources.append(CORTEXM_DIR / "semihosting.cpp")
    if chosen == "uart":
        sources.append(CORTEXM_DIR / _UART_SOURCES[board_config.console_uart(board).driver])
    if board.exit == "halt":
        sources.append(CORTEXM_DIR / "halt.cpp")
    if corner.std == 0:
        sources.append(CORTEXM_DIR / "memfuncs.cpp")
    return sources
