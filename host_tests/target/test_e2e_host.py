"""End to end on the host board: `scons board=host run` from a clean build directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qmcu.codegen.vectors import make_vectors
from qmcu.quant import intmodel, reference
from scons_run import report, scons

LINE = re.compile(r"in=\((\d\.\d{4}),(\d\.\d{4})\)  q_input=\((-?\d+),(-?\d+)\)  q_logit=(-?\d+)  "
                  r"prob=(\d\.\d{4})  pred=([01])  label=([01])$")


@pytest.fixture(scope="module")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    build = tmp_path_factory.mktemp("build")
    proc = scons(build, "board=host", "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return build, proc.stdout


def test_cold_run_trains_emits_builds_and_passes(host_build: tuple[Path, str]) -> None:
    build, out = host_build
    for step in ("capturing, calibrating and quantizing", "xor.py", "emitting"):
        assert step in out
    lines = [m for m in (LINE.match(ln) for ln in out.splitlines()) if m]
    assert [(m.group(1), m.group(2), m.group(8)) for m in lines] == [
        ("0.0000", "0.0000", "0"), ("0.0000", "1.0000", "1"), ("1.0000", "0.0000", "1"), ("1.0000", "1.0000", "0")]
    assert all(m.group(7) == m.group(8) for m in lines)
    assert "int8 XOR accuracy: 4/4" in out.splitlines()
    assert "1685/1685 bit-exact with the Python integer reference" in out
    assert not (Path(__file__).parents[2] / "tools" / "build").exists()


def test_report_matches_an_independent_reference_run(host_build: tuple[Path, str]) -> None:
    build, _ = host_build
    rep = report(build, "host")
    assert (rep["board"], rep["corner"], rep["correct"], rep["total"]) == ("host", "std0-float0", 4, 4)
    assert rep["bit_exact"] is True and rep["mismatches"] == 0
    model = intmodel.load(build / "models" / "trained" / "intmodel.json")
    want = reference.forward(model, make_vectors(model, "xor", build / "models" / "trained" / "testset.npz").inputs_q)
    assert rep["outputs"] == want.tolist()


def test_noop_rerun_rebuilds_nothing_and_a_changed_parameter_retrains(host_build: tuple[Path, str]) -> None:
    build, _ = host_build
    again = scons(build, "board=host", "run")
    assert again.returncode == 0
    assert "capturing" not in again.stdout and "g++" not in again.stdout and "emitting" not in again.stdout
    assert "compiling" not in again.stdout and "linking" not in again.stdout  # quiet output's compile/link lines
    assert "int8 XOR accuracy: 4/4" in again.stdout
    changed = scons(build, "board=host", "epochs=3999", "build")
    assert changed.returncode == 0 and "capturing, calibrating and quantizing" in changed.stdout


@pytest.mark.parametrize("corner", ["STD=1 FLOAT=1", "STD=0 FLOAT=1", "STD=1 FLOAT=0"])
def test_other_corners_give_identical_outputs(host_build: tuple[Path, str], corner: str) -> None:
    build, _ = host_build
    proc = scons(build, "board=host", *corner.split(), "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    std, flt = (c.split("=")[1] for c in corner.split())
    assert report(build, "host", f"std{std}-float{flt}")["outputs"] == report(build, "host")["outputs"]


def test_unknown_board_is_one_line_and_nonzero(tmp_path: Path) -> None:
    proc = scons(tmp_path, "board=nucleo-x", "run")
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("qmcu: error:")]
    assert errors and "unknown board 'nucleo-x'; valid boards:" in errors[0]
    assert not any(tmp_path.iterdir())  # nothing written
