"""`qmcu check` (issue 10, item 8): the plan of a model file on a board, nothing built."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmcu import cli
from qmcu.boards import load_board
from qmcu.codegen.plan import fits, plan_file, plan_lines

# 5 -> 6 (BatchNorm folded, ReLU fused) -> 3 (Sigmoid table) -> 2, then Dropout and a final Softmax dropped.
_MODEL = '''
import numpy as np
import torch
from torch import nn

def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.1), nn.Linear(6, 3),
                         nn.Sigmoid(), nn.Linear(3, 2), nn.Softmax(dim=1)).eval()

def calibration():
    return np.random.default_rng(0).uniform(-1, 1, (64, 5)).astype(np.float32)

def test():
    x = np.random.default_rng(1).uniform(-1, 1, (20, 5)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)
'''


def _file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.py"
    path.write_text(body)
    return path


def test_plan_numbers_are_the_hand_computed_ones(tmp_path: Path) -> None:
    plan = plan_file(_file(tmp_path, _MODEL), None, "qemu-m4")
    kinds = [(r.treatment, r.macs, r.weight_bytes, r.activation_bytes) for r in plan.rows]
    # int16 weights in the kernel layout: rows padded to 4 * (in // 4) + (0, 2, 2, 4)[in % 4] halves.
    assert kinds == [
        ("kernel (dense)", 5 * 6, 2 * 6 * (4 + 2) + 4 * 6, 5 + 6),
        ("fused", 0, 0, 0),
        ("kernel (dense)", 6 * 3, 2 * 3 * (4 + 2) + 4 * 3, 6 + 3),
        ("table", 0, 256, 3 + 3),
        ("kernel (dense)", 3 * 2, 2 * 2 * 4 + 4 * 2, 3 + 2),
        ("folded", 0, 0, 0),
        ("dropped", 0, 0, 0),
        ("dropped", 0, 0, 0),
    ]
    assert plan.macs == 30 + 18 + 6
    assert plan.flash_bytes == 96 + 48 + 256 + 24
    assert plan.ram_bytes == 11
    assert fits(plan) and plan.warnings == []
    text = "\n".join(plan_lines(plan))
    assert "forward path only" in text and "flash 424 B of" in text and "fits" in text


def test_badly_scaled_feature_is_named(tmp_path: Path) -> None:
    body = _MODEL.replace("return np.random.default_rng(0).uniform(-1, 1, (64, 5)).astype(np.float32)",
                          "x = np.random.default_rng(0).uniform(-1, 1, (64, 5)).astype(np.float32)\n"
                          "    x[:, 3] *= 40.0\n    x[:, 1] *= 0.01\n    return x")
    plan = plan_file(_file(tmp_path, body), None, "qemu-m4")
    [warning] = [w for w in plan.warnings if w.startswith("badly scaled inputs")]
    # Feature 3 (x40) sets the one scale; every other feature uses < 1/16 of it, feature 1 (x0.01) least.
    assert "and 4 use less than 1/16" in warning and "feature 0 (" in warning and " 1 (0.0 %)" in warning
    assert " 3 (" not in warning
    assert "standardize" in warning


def test_does_not_fit_a_small_ram(tmp_path: Path) -> None:
    import dataclasses

    from qmcu.boards import Region
    from qmcu.codegen.plan import make_plan
    from qmcu.model import modelfile

    board = load_board("qemu-m0")
    assert board.flash is not None
    tiny = dataclasses.replace(board, ram=Region(board.ram.origin if board.ram else 0, 8))
    plan = make_plan(modelfile.load(_file(tmp_path, _MODEL)), tiny)
    assert not fits(plan)
    assert "RAM 11 B of 8 B: DOES NOT FIT" in plan_lines(plan)[-1]


def test_cli_check_prints_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--model", str(_file(tmp_path, _MODEL)), "board=qemu-m0"]) == 0
    out = capsys.readouterr().out
    assert "on qemu-m0 (nothing built)" in out and "54 MACs per inference" in out


@pytest.mark.parametrize(("body", "message"), [
    ("def model(:\n", "cannot be read as Python"),
    ("import numpy\ndef model():\n    return None\n", "does not define calibration(), test()"),
    ("def model():\n    raise ValueError('boom')\ndef calibration():\n    pass\ndef test():\n    pass\n",
     "raised ValueError at line 2: boom"),
])
def test_bad_model_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, message: str) -> None:
    assert cli.main(["check", "--model", str(_file(tmp_path, body))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qmcu: error:") and message in err and "\n" not in err


def test_cli_refuses_a_bad_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--model", str(_file(tmp_path, _MODEL)), "board"]) == 2
    assert "not a key=value option" in capsys.readouterr().err
