"""Target flags, the linker script and the QEMU command line follow the board data; no board is named in
the platform code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from platform_apps import ALL_BOARDS, HOST_BOARDS, QEMU_BOARDS, _board_params
from qmcu.boards import Board, Corner
from qmcu.build import toolchain
from qmcu.codegen import linker_script
from qmcu.errors import QmcuError
from qmcu.paths import PACKAGE_DIR, REPO_ROOT
from qmcu.run.qemu import qemu_argv

# --- flags, linker script, runner argv --------------------------------------------------------------

@pytest.mark.parametrize(("board", "corner"), _board_params())
def test_target_flags_follow_board_data(board: Board, corner: Corner) -> None:
    flags = toolchain.target_flags(board, corner, "-Os")
    assert flags.cxxflags[0].startswith(f"-mcpu={board.cpu}") and "-mthumb" in flags.cxxflags and "-Os" in flags.cxxflags
    hard = corner.float == 1 and board.fpu is not None
    for f in (flags.cxxflags, flags.linkflags):
        assert ("-mfloat-abi=hard" in f) == hard and ("-mfloat-abi=soft" in f) == (not hard)
        assert (f"-mfpu={board.fpu}" in f) == hard
    assert flags.defines["QMCU_STD"] == str(corner.std) and flags.defines["QMCU_FLOAT"] == str(corner.float)
    assert flags.defines["QMCU_HAS_FPU"] == ("1" if board.fpu else "0")
    assert flags.defines["QMCU_HAS_DSP"] == ("1" if board.dsp else "0")
    assert ("QMCU_COUNTER_STM32_TIM" in flags.defines) == (board.counter.kind == "stm32-tim")
    if board.counter.kind == "stm32-tim":
        assert int(flags.defines["QMCU_TIM_BASE"].rstrip("u"), 16) == board.counter.timer_base
    assert ("-nostdlib" in flags.linkflags) == (corner.std == 0)
    assert ("--specs=nano.specs" in flags.linkflags) == (corner.std == 1)
    assert "gcc" in flags.libs and ("c" in flags.libs) == (corner.std == 1)
    names = [p.name for p in toolchain.platform_sources(board, corner)]
    assert ("memfuncs.cpp" in names) == (corner.std == 0) and "startup.cpp" in names
    assert all(p.is_file() for p in toolchain.platform_sources(board, corner))


def test_flags_reject_bad_input() -> None:
    board = QEMU_BOARDS[0]
    with pytest.raises(QmcuError, match="not an -O option"):
        toolchain.target_flags(board, board.corners[0], "O2")
    with pytest.raises(QmcuError, match="not a cross-compiled target"):
        toolchain.target_flags(HOST_BOARDS[0], HOST_BOARDS[0].corners[0])
    host = toolchain.host_flags(Corner(0, 1))
    assert "-nostdlib" not in host.cxxflags + host.linkflags and host.defines == {"QMCU_STD": "0", "QMCU_FLOAT": "1"}


def test_require_tool_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(QmcuError, match=r"arm-none-eabi-gcc is not installed; install the Debian package "
                                        r"gcc-arm-none-eabi \(run tools/setup.sh\)"):
        toolchain.require_tool("arm-none-eabi-gcc")
    with pytest.raises(QmcuError, match="Debian package qemu-system-arm"):
        toolchain.require_tool("qemu-system-arm")


@pytest.mark.parametrize("board", QEMU_BOARDS, ids=lambda b: b.id)
def test_linker_script_follows_the_memory_map(board: Board, tmp_path: Path) -> None:
    assert board.flash is not None and board.ram is not None
    text = linker_script.render_linker_script(board)
    assert f"ORIGIN = 0x{board.flash.origin:08x}, LENGTH = 0x{board.flash.size:x}" in text
    assert f"ORIGIN = 0x{board.ram.origin:08x}, LENGTH = 0x{board.ram.size:x}" in text
    assert text.index(".isr_vector") < text.index(".text :")
    path = linker_script.write_linker_script(board, tmp_path / "sub" / "link.ld")
    assert path.read_text() == text and [p.name for p in path.parent.iterdir()] == ["link.ld"]
    with pytest.raises(QmcuError, match="do not fit"):
        linker_script.render_linker_script(board, stack_size=board.ram.size)


@pytest.mark.parametrize("board", QEMU_BOARDS, ids=lambda b: b.id)
def test_qemu_argv(board: Board) -> None:
    argv = qemu_argv(board, Path("x.elf"), ["-plugin", "p.so"])
    assert argv[:3] == ["qemu-system-arm", "-M", board.qemu_machine]
    assert argv[-4:] == ["-kernel", "x.elf", "-plugin", "p.so"]
    assert "enable=on,target=native" in argv and "shift=0" in argv


def test_no_board_named_in_platform_code() -> None:
    mine = [*sorted((REPO_ROOT / "firmware" / "platform").rglob("*.?pp")),
            *(PACKAGE_DIR / f for f in ("build/toolchain.py", "codegen/linker_script.py", "build/elfcheck.py")),
            *sorted((PACKAGE_DIR / "run").glob("*.py"))]
    mine = [p for p in mine if p.name not in ("records.hpp",)]
    for path in mine:
        text = path.read_text()
        for b in ALL_BOARDS:
            names = [b.id] + ([b.qemu_machine] if b.qemu_machine else [])
            if b.kind == "host":
                names = []  # "host" is an ordinary word
            for name in names:
                assert not re.search(rf"\b{re.escape(name)}\b", text), f"{path} names board {name}"
