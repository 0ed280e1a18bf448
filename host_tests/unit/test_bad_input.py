"""Bad input: one clear line naming the problem and the fix, and nothing half-written on disk."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qmcu.boards import load_board, parse_board
from qmcu.errors import QmcuError
from qmcu.options import parse_options
from qmcu.paths import BOARDS_DIR
from qmcu.quant import intmodel
from qmcu.quant.calibrate import check_calibration_set, load_calibration_file
from qmcu.quant.intmodel import IntModel


@pytest.mark.parametrize(("data", "match"), [
    (np.zeros((0, 2)), "is empty"),
    (np.zeros((5, 3)), r"shape \(5, 3\), expected N x 2"),
    (np.zeros(4), r"shape \(4,\)"),
    (np.array([[0.0, np.nan]]), "NaN or Inf"),
])
def test_bad_calibration_sets(data: np.ndarray, match: str) -> None:
    with pytest.raises(QmcuError, match=match):
        check_calibration_set(data, 2)


def test_calibration_files(tmp_path: Path) -> None:
    good = tmp_path / "cal.csv"
    good.write_text("0,0\n0.5,1\n")
    assert load_calibration_file(good, 2).shape == (2, 2)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(QmcuError, match="is empty"):
        load_calibration_file(tmp_path / "empty.csv", 2)
    (tmp_path / "text.csv").write_text("a,b\n")
    with pytest.raises(QmcuError, match="not numeric"):
        load_calibration_file(tmp_path / "text.csv", 2)
    with pytest.raises(QmcuError, match="does not exist"):
        load_calibration_file(tmp_path / "nope.npy", 2)


def test_unknown_board_lists_the_valid_ones() -> None:
    with pytest.raises(QmcuError, match=r"unknown board 'nucleo-x'; valid boards: .*host.*qemu-m4"):
        parse_options({"board": "nucleo-x"})
    with pytest.raises(QmcuError, match="unknown board"):
        load_board("nucleo-x")


def test_unknown_option_and_bad_values() -> None:
    with pytest.raises(QmcuError, match="unknown option"):
        parse_options({"boad": "host"})
    with pytest.raises(QmcuError, match="STD='2' is not valid"):
        parse_options({"STD": "2"})
    with pytest.raises(QmcuError, match="epochs='x' is not a valid int"):
        parse_options({"epochs": "x"})


def test_board_schema_rejects_unknown_keys_and_bad_maps(tmp_path: Path) -> None:
    raw = json.loads((BOARDS_DIR / "qemu-m4.json").read_text())
    path = tmp_path / "qemu-m4.json"
    with pytest.raises(QmcuError, match="unknown key.*colour"):
        parse_board(path, {**raw, "colour": "red"})
    bad_map = {**raw, "memory": {"flash": {"origin": "0x08000000", "size": 1024},
                                 "ram": {"origin": "0x08000100", "size": 1024}}}
    with pytest.raises(QmcuError, match="overlap"):
        parse_board(path, bad_map)
    with pytest.raises(QmcuError, match=r"corners\[0\]\.std=2 is not one of 0, 1; each corner is"):
        parse_board(path, {**raw, "corners": [{"std": 2, "float": 0}]})
    with pytest.raises(QmcuError, match="differs from the file name"):
        parse_board(tmp_path / "other.json", raw)


def _with_layer(model: IntModel, name: str, **changes: object) -> IntModel:
    layers = [dataclasses.replace(lay, **changes) if lay.name == name else lay for lay in model.layers]
    return dataclasses.replace(model, layers=layers)


def test_accumulator_that_could_overflow_is_refused(textbook_model: IntModel, tmp_path: Path) -> None:
    huge = _with_layer(textbook_model, "fc1", bias=[2**31 - 1000] * 4)
    out = tmp_path / "intmodel.json"
    with pytest.raises(QmcuError, match="accumulator can reach .* overflowing int32"):
        huge.save(out)
    assert not out.exists()  # nothing half-written


def test_out_of_range_weights_are_refused(textbook_model: IntModel) -> None:
    with pytest.raises(QmcuError, match=r"weights\[0\]=-128 is outside \[-127, 127\]"):
        intmodel.validate(_with_layer(textbook_model, "fc1", weights=[-128] + [1] * 7))


def test_corrupt_intmodel_file(tmp_path: Path) -> None:
    p = tmp_path / "intmodel.json"
    p.write_text("{")
    with pytest.raises(QmcuError, match="not valid JSON"):
        intmodel.load(p)
    p.write_text(json.dumps({"format": "other"}))
    with pytest.raises(QmcuError, match="is not a qmcu-intmodel/1 file"):
        intmodel.load(p)


def test_cli_error_is_one_line_and_nonzero(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "qmcu.cli", "quantize", "--model", str(tmp_path / "none.py"),
                           "--out", str(tmp_path / "m")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"qmcu: error: model file {tmp_path / 'none.py'} does not exist; "
                                                "give model= the path of a .py model file or .pt2 program"]
    assert not (tmp_path / "m").exists()
