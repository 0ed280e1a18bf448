"""Bad values given to the real SCons build are refused in one line before anything is built."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from qmcu.errors import QmcuError
from qmcu.options import parse_options
from scons_run import one_error_line as _one_error_line
from scons_run import scons


@pytest.mark.parametrize("args", [
    ["lr=inf"], ["lr=1e30", "epochs=20"], ["timeout=inf"], [f"seed={2**64}"],
])
def test_scons_refuses_bad_numbers_in_one_line_and_writes_no_model(tmp_path: Path, args: list[str]) -> None:
    proc = scons(tmp_path, "board=host", *args, "run", timeout=120)
    key = args[0].split("=")[0]
    _one_error_line(proc, rf"^qmcu: error: (training diverged at )?{key}=")
    assert not (tmp_path / "models" / "trained" / "intmodel.json").exists()
    assert not list(tmp_path.glob("host-*/report*.json"))


def test_a_flasher_the_board_file_lacks_is_refused_before_the_build(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from qmcu import options
    from qmcu.boards import FlashSettings

    real = options.load_board("nucleo-f446re")
    only_pyocd = dataclasses.replace(real, flasher=FlashSettings(default="pyocd", pyocd_target="stm32f446retx"))
    with monkeypatch.context() as m:
        m.setattr(options, "load_board", lambda name: only_pyocd)
        with pytest.raises(QmcuError, match=r"^board nucleo-f446re cannot be programmed with flasher=openocd; use "
                                            r"flasher=pyocd, or add its setting to boards/nucleo-f446re\.json$"):
            parse_options({"board": "nucleo-f446re", "flasher": "openocd"})
    assert parse_options({"board": "nucleo-f446re", "flasher": "stflash"}).flasher == "stflash"
    # Through SCons: refused while the graph is made, so nothing is compiled.
    proc = scons(tmp_path, "board=nucleo-f446re", "flasher=bogus", "flash", timeout=120)
    _one_error_line(proc, r"^qmcu: error: flasher=bogus is not a known flasher")
    assert not list(tmp_path.rglob("*.o")) and not list(tmp_path.rglob("*.elf"))
    proc = scons(tmp_path, "board=qemu-m4", "port=/dev/ttyACM0", "run", timeout=120)
    _one_error_line(proc, r"^qmcu: error: port=/dev/ttyACM0 applies to real boards; qemu-m4 is a qemu board")
    assert not list(tmp_path.rglob("*.elf"))
