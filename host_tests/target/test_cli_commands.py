"""The qmcu command line run as a process: each run starts a fresh Python that imports PyTorch (seconds a run),
so these stay out of the unit/ inner loop. The committed textbook model checks with `qmcu freeze --check`
(its per-tensor files are unchanged by per-channel weights), and `qmcu quantize` shows the bad-model warnings
and refuses an absurd calibration set in one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qmcu.paths import REPO_ROOT

QMCU = [sys.executable, "-m", "qmcu.cli"]


def _model_file(tmp_path: Path) -> Path:
    """A model file whose XOR net has one huge weight (1e9) in fc1."""
    path = tmp_path / "huge_weight.py"
    path.write_text("import torch\nfrom qmcu.model.xor_data import XOR_INPUTS, XOR_LABELS, calibration_grid\n"
                    "from qmcu.model.xor_model import textbook_model\n\n"
                    "def model():\n    m = textbook_model()\n    with torch.no_grad():\n"
                    "        m.fc1.weight[0, 0] = 1e9\n    return m\n\n"
                    "def calibration():\n    return calibration_grid()\n\n"
                    "def test():\n    return XOR_INPUTS, XOR_LABELS\n")
    return path


def test_cli_quantize_shows_the_warnings_and_refuses_absurd_calibration(tmp_path: Path) -> None:
    model_file = _model_file(tmp_path)
    wide = tmp_path / "wide.csv"
    wide.write_text("100000,100000\n")
    out = tmp_path / "out" / "intmodel.json"
    proc = subprocess.run([*QMCU, "quantize", "--model", str(model_file), f"calibration={wide}",
                           "--out", str(out.parent)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "calibration set: 1 row(s) but only 1 distinct sample" in proc.stderr
    assert "layer fc1: 7 of its 8 nonzero weights (88%) quantize to 0, because the largest, 1e+09" in proc.stderr
    assert out.is_file()
    absurd = tmp_path / "absurd.csv"
    absurd.write_text("0,0\n1,1\n1e30,0\n")
    out.unlink()
    proc = subprocess.run([*QMCU, "quantize", "--model", str(model_file), f"calibration={absurd}",
                           "--out", str(out.parent)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "qmcu: error: calibration value 1e+30 (row 2, column 0) is beyond +-1e+12: a range that wide quantizes every "
        "ordinary input to one int8 value; remove the outlier; calibrate with samples from the range the model will see"]
    assert not out.exists()


def test_textbook_check_command_passes() -> None:
    proc = subprocess.run([sys.executable, "-m", "qmcu.cli", "freeze", "examples/xor_textbook.py",
                           "firmware/models/textbook", "--check"], capture_output=True, text=True, check=False,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0 and "is current: the quantization of xor_textbook.py" in proc.stdout


@pytest.mark.parametrize("cmd", [["qmcu.cli", "freeze", "examples/xor_textbook.py", "firmware/models/textbook", "--check"]])
def test_committed_per_tensor_models_still_check(cmd: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True, check=False, timeout=600,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
