"""Issue 9, items 7 and 8: each bad value becomes one line naming the value and the fix, never a traceback.

Each value is fed through the Python API and through the real commands (`scons ...`, `qmcu ...`):
non-zero exit, exactly one `qmcu: error:` line, no traceback, nothing half-written. (Through `scons`:
target/test_bad_values_scons.py.)
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qmcu.errors import QmcuError
from qmcu.model.train import TrainConfig, train
from qmcu.options import parse_options
from qmcu.paths import REPO_ROOT, TEXTBOOK_HEADER
from qmcu.quant.calibrate import load_calibration_file
from scons_run import one_error_line as _one_error_line

QMCU = [sys.executable, "-m", "qmcu.cli"]
TEXTBOOK_INTMODEL = TEXTBOOK_HEADER.with_name("intmodel.json")


@pytest.mark.parametrize(("key", "value", "match"), [
    ("lr", "inf", r"^lr=inf is not a positive finite number; give a learning rate such as lr=0\.1$"),
    ("lr", "nan", r"^lr=nan is not a positive finite number"),
    ("lr", "0", r"^lr=0\.0 is not a positive finite number"),
    ("epochs", "0", r"^epochs=0 is not a positive integer; give epochs= of 1 or more"),
    ("max_tries", "-1", r"^max_tries=-1 is not a positive integer; give max_tries= of 1 or more"),
    ("timeout", "inf", r"^timeout=inf is not a number of seconds in \(0, 86400\]; give seconds such as timeout=120$"),
    ("timeout", "1e12", r"^timeout=1e12 is not a number of seconds"),
    ("timeout", "0", r"^timeout=0 is not a number of seconds"),
])
def test_each_bad_number_is_named_with_its_fix(key: str, value: str, match: str) -> None:
    with pytest.raises(QmcuError, match=match):
        parse_options({key: value})


def test_seeds_beyond_what_torch_takes_are_refused_and_the_edges_accepted() -> None:
    with pytest.raises(QmcuError, match=rf"^seed={2**64} is out of range: with max_tries=8 it must lie in "
                                        rf"\[-{2**63}, {2**64 - 8}\] \(torch seeds are 64-bit\); give a seed such as seed=42$"):
        parse_options({"seed": str(2**64)})
    with pytest.raises(QmcuError, match="out of range"):
        parse_options({"seed": str(2**64 - 2)})  # the retries would pass 2^64 - 1
    with pytest.raises(QmcuError, match="out of range"):
        parse_options({"seed": str(-(2**63) - 1)})
    assert parse_options({"seed": str(2**64 - 8)}).seed == 2**64 - 8
    assert parse_options({"seed": str(-(2**63))}).seed == -(2**63)


def test_training_refuses_infinite_lr_and_stops_when_a_huge_lr_diverges() -> None:
    with pytest.raises(QmcuError, match=r"^lr=inf is not a positive finite number; give a learning rate such as lr=0\.1$"):
        train(TrainConfig(lr=math.inf, epochs=5, max_tries=1))
    with pytest.raises(QmcuError, match=r"^training diverged at lr=1e\+30: the model output became NaN or Inf in epoch "
                                        r"\d+ \(seed 42\); give a smaller learning rate such as lr=0\.1$"):
        train(TrainConfig(lr=1e30, epochs=50, max_tries=3))
    with pytest.raises(QmcuError, match=rf"^seed={2**64} is out of range"):
        train(TrainConfig(seed=2**64, epochs=5, max_tries=1))


def test_a_npy_of_strings_is_refused_as_not_numbers(tmp_path: Path) -> None:
    path = tmp_path / "strings.npy"
    np.save(path, np.array([["0", "1"], ["1", "0"]]))
    with pytest.raises(QmcuError, match=r"^calibration file .*strings\.npy holds <U1 values, not numbers; give a numeric "
                                        r"array"):
        load_calibration_file(path, 2)


def test_values_beyond_float32_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    np.save(path, np.array([[0.0, 1.0], [1e300, 0.0]]))
    with pytest.raises(QmcuError, match=r"huge\.npy row 1 holds \[1e\+300, 0\.0\], beyond float32's range"):
        load_calibration_file(path, 2)


def test_cli_quantize_refuses_lr_inf_before_training(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([*QMCU, "quantize", "--model", str(REPO_ROOT / "examples" / "xor.py"), "lr=inf",
                           "--out", str(out)], capture_output=True, text=True, check=False)
    _one_error_line(proc, r"^qmcu: error: lr=inf is not a positive finite number")
    assert not out.exists()


@pytest.mark.parametrize("where", ["file", "under-file", "proc"])
def test_emit_to_an_unwritable_place_is_one_line(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    out = {"file": blocker, "under-file": blocker / "headers", "proc": Path("/proc/qmcu-headers")}[where]
    proc = subprocess.run([*QMCU, "emit", "--intmodel", str(TEXTBOOK_INTMODEL), "--out", str(out)],
                          capture_output=True, text=True, check=False)
    line = _one_error_line(proc, rf"^qmcu: error: cannot write --out {out}/model.hpp: .*; give --out a path in a "
                                 r"writable directory$")
    assert proc.returncode == 2, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no temporary file left behind
    assert not (out / "model.hpp").is_file()


@pytest.mark.parametrize(("args", "match"), [
    ({"flasher": "pyocd"}, r"^flasher=pyocd applies to real boards; qemu-m4 is a qemu board; drop flasher=$"),
    ({"port": "/dev/ttyACM0"}, r"^port=/dev/ttyACM0 applies to real boards; qemu-m4 is a qemu board; drop port=$"),
    ({"board": "host", "port": "/dev/ttyACM0", "flasher": "openocd"},
     r"^port=/dev/ttyACM0 and flasher=openocd apply to real boards; host is a host board; drop port= and flasher=$"),
    ({"board": "qemu-m3", "dry_run": "1"}, r"^dry_run=1 applies to real boards; qemu-m3 is a qemu board"),
    ({"board": "nucleo-f446re", "flasher": "jlink"},
     r"^flasher=jlink is not a known flasher; use one of pyocd, openocd, stflash$"),
])
def test_real_board_options_are_refused_elsewhere_and_checked_first(args: dict[str, str], match: str) -> None:
    with pytest.raises(QmcuError, match=match):
        parse_options(args)


@pytest.mark.parametrize(("key", "value", "match"), [
    ("timer_base", "0x4000000", r"counter\.timer_base=0x04000000 is outside \[0x40000000, 0x60000000\); a 0x400-aligned "
                                r"address in the peripheral region"),
    ("timer_base", "0x40000004", r"counter\.timer_base=0x40000004 is not 0x400-aligned; a 0x400-aligned address"),
    ("enable_register", "0x20000000", r"counter\.enable_register=0x20000000 is outside \[0x40000000, 0x60000000\); a "
                                      r"word-aligned address in the peripheral region"),
    ("enable_bit", 32, r"counter\.enable_bit=32 is outside \[0, 31\]"),
])
def test_a_wrong_timer_counter_entry_is_refused(key: str, value: object, match: str) -> None:
    import json

    from qmcu.boards import parse_board
    from qmcu.paths import BOARDS_DIR

    path = BOARDS_DIR / "qemu-m4.json"
    raw = json.loads(path.read_text())
    raw["counter"] = {**raw["counter"], key: value}
    with pytest.raises(QmcuError, match=match):
        parse_board(path, raw)


def test_a_counter_that_reads_zero_is_reported_not_silently_replaced() -> None:
    from qmcu.boards import counter_warning, load_board

    qemu_m4 = load_board("qemu-m4")
    assert counter_warning(qemu_m4, [408, 411], plugin=True) is None
    assert counter_warning(load_board("qemu-m3"), [0, 0], plugin=True) is None  # no counter: the plugin is the source
    assert counter_warning(qemu_m4, [0] * 1685, plugin=True) == (
        "board qemu-m4's stm32-tim counter read 0 for all 1685 inferences, so the figures are the QEMU plugin's; check "
        "counter.timer_base=0x40000000, counter.enable_register=0x40023840, counter.enable_bit=0 in "
        "boards/qemu-m4.json")
