"""The digits example end to end on QEMU: the whole held-out split, target accuracy == reference, bit-exact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scons_run import report, scons

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm missing")


def test_digits_on_qemu_m4(tmp_path: Path) -> None:
    proc = scons(tmp_path, "model=digits", "board=qemu-m4", "run")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    rep = report(tmp_path, "qemu-m4", suffix="-digits")
    assert rep["inferences"] == rep["total"] == 360 and rep["bit_exact"]
    assert rep["correct"] == rep["reference_correct"] >= 0.9 * 360
    assert rep["float_accuracy"] >= 0.9
    assert rep["fake_quant"]["within_1_lsb"] and rep["fake_quant"]["elements"] == 360 * (32 + 10)
    assert (tmp_path / "qemu-m4-std0-float0-digits" / "confusion.png").stat().st_size > 1000
    assert "int8 accuracy on the target: " in proc.stdout and "PASS" in proc.stdout.splitlines()


def test_the_committed_digits_model_is_consistent() -> None:
    # The matrix's and the bench's digits cells run the committed integer model, so their exact budgets do
    # not depend on how this CPU rounds PyTorch's float arithmetic; its header is a fresh emission of it.
    from qmcu.codegen.model_header import render_model_header
    from qmcu.modelref import COMMITTED
    from qmcu.quant import intmodel

    json_path = COMMITTED["digits-committed"] / "intmodel.json"
    assert intmodel.stale_emission(json_path, json_path.with_name("model.hpp"), render_model_header) is None
    model = intmodel.load(json_path)
    assert model.name == "digits" and model.input_size == 64
    assert [(lay.in_features, lay.out_features) for lay in model.layers if isinstance(lay, intmodel.Dense)] == \
        [(64, 32), (32, 10)]
    assert not model.provenance.get("seed_tutorial")
