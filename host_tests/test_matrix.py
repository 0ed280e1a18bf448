"""The regression matrix: cells run in one SCons graph; identity, budgets and reports are judged after."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from qmcu.boards import board_names
from qmcu.errors import QmcuError
from qmcu.matrix import check_budgets, cross_cell_identity, enumerate_cells, load_budgets
from qmcu.paths import BOARDS_DIR, REPO_ROOT
from scons_run import SCONS


def run_matrix(build: Path, budgets: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QMCU_BUILD_DIR": str(build), "QMCU_BUDGETS_DIR": str(budgets)}
    return subprocess.run([str(SCONS), "-C", str(REPO_ROOT), "-Q", "-j2", "matrix", *args], capture_output=True,
                          text=True, env=env, timeout=600, check=False)


def test_cells_cover_every_runnable_board_corner_and_mode() -> None:
    cells, skipped = enumerate_cells({})
    boards = {name: json.loads((BOARDS_DIR / f"{name}.json").read_text()) for name in board_names()}
    runnable = {b for b, raw in boards.items() if raw["kind"] in ("host", "qemu")}
    assert {c.opts.board.id for c in cells} == runnable
    assert all(c.opts.corner in c.opts.board.corners for c in cells)
    xor = [c for c in cells if c.opts.model == "textbook"]
    assert len(xor) == sum(len(boards[b]["corners"]) * len(boards[b]["consoles"]) for b in runnable) * 2
    qemu = {b for b in runnable if boards[b]["kind"] == "qemu"}
    assert sorted(c.opts.board.id for c in cells if c not in xor) == sorted(qemu)  # one digits cell per QEMU board
    assert {c.console for c in cells if c.opts.board.id == "qemu-m4"} == {"semihosting", "uart"}
    assert {s.name.split("/")[0] for s in skipped} == set(boards) - runnable
    soft = [c for c in cells if c.note]
    assert soft and all(c.opts.corner.float == 1 and not c.opts.board.fpu for c in soft)


def test_identity_names_the_first_differing_input_and_cells() -> None:
    cells, _ = enumerate_cells({"boards": "host", "modes": "xor", "model": "textbook"})
    docs = {c.name: {"outputs": [[1], [2], [3]]} for c in cells}
    assert cross_cell_identity(cells, docs) == []
    docs[cells[2].name] = {"outputs": [[1], [2], [4]]}
    (problem,) = cross_cell_identity(cells, docs)
    assert f"outputs of {cells[2].name} differ from {cells[0].name} first at input index 2" in problem


def test_budget_growth_fails_and_shrink_asks_to_lower(tmp_path: Path) -> None:
    cells, _ = enumerate_cells({"boards": "qemu-m4", "modes": "xor", "model": "textbook"})
    cell = cells[0]
    doc = {"passed": True, "per_inference": {"min": 100, "median": 110, "max": 120}, "unit": "instructions",
           "sizes": {"forward_flash": 1000, "forward_ram": 70, "image_flash": 9000, "image_ram": 8000}, "stack_bytes": 600}
    budgets = {"qemu-m4": {cell.key: {"instructions_min": 100, "instructions_median": 110, "instructions_max": 119,
                                      "forward_flash": 1001, "forward_ram": 70, "image_flash": 9000, "image_ram": 8000,
                                      "stack_bytes": 600}}}
    failures, notes = check_budgets([cell], {cell.name: doc}, budgets)
    assert failures == [f"{cell.name}: instructions_max grew from 119 to 120 (over budget by 1)"]
    assert notes == [f"{cell.name}: forward_flash shrank from 1001 to 1000: lower the budget with "
                     "`qmcu matrix --update-budgets` and commit boards/budgets/"]


def test_budgets_for_a_board_that_no_longer_exists_are_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nucleo-gone.json").write_text(json.dumps({"board": "nucleo-gone", "cells": {}}))
    monkeypatch.setattr("qmcu.matrix.BUDGETS_DIR", tmp_path)
    with pytest.raises(QmcuError, match="names board 'nucleo-gone', which no longer exists"):
        load_budgets()


def test_host_matrix_end_to_end_reports(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets"
    budgets.mkdir()
    proc = run_matrix(tmp_path / "build", budgets, "boards=host", "modes=xor")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    out = tmp_path / "build" / "matrix"
    assert "| host | std1-float1 | stdout | xor | 4/4 | 1685/1685 |" in (out / "matrix.md").read_text()
    suite = ET.parse(out / "matrix.xml").getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "0" and len(suite.findall("testcase")) == 4
    summary = json.loads((out / "matrix.json").read_text())
    assert summary["passed"] and len(summary["cells"]) == 4
    assert "[4/4] host/" in proc.stdout


def test_qemu_matrix_over_budget_fails_and_leaves_no_success_report(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets"
    budgets.mkdir()
    committed = json.loads((BOARDS_DIR / "budgets" / "qemu-m4.json").read_text())
    key = "std0-float0/semihosting/xor"
    committed["cells"] = {key: {**committed["cells"][key]}}
    committed["cells"][key]["instructions_max"] -= 1
    (budgets / "qemu-m4.json").write_text(json.dumps(committed))
    build = tmp_path / "build"
    (build / "matrix").mkdir(parents=True)
    (build / "matrix" / "matrix.json").write_text('{"passed": true}')  # a stale success from an earlier run
    proc = run_matrix(build, budgets, "boards=qemu-m4", "modes=xor")
    assert proc.returncode != 0
    assert f"FAIL: qemu-m4/{key}: instructions_max grew from" in proc.stdout
    assert json.loads((build / "matrix" / "matrix.json").read_text())["passed"] is False


def test_committed_budgets_name_existing_boards_and_cells() -> None:
    budgets = load_budgets()
    cells, _ = enumerate_cells({})
    keys = {(c.opts.board.id, c.key) for c in cells}
    for board, cells_budget in budgets.items():
        for key in cells_budget:
            assert (board, key) in keys


def test_readme_modes_xor_runs_against_the_committed_budgets_and_fails_without_them(tmp_path: Path) -> None:
    # The README documents `scons -j2 matrix modes=xor`; it used to fail with spurious failures for the
    # exhaustive cells' budgets. Without any budgets file, a QEMU board now fails (it used to be a note).
    build = tmp_path / "build"
    empty = tmp_path / "budgets"
    empty.mkdir()
    args = ("boards=qemu-m4", "modes=xor,test")
    bare = run_matrix(build, empty, *args)
    assert bare.returncode != 0
    assert f"FAIL: qemu-m4: no budgets file {empty / 'qemu-m4.json'}" in bare.stdout, bare.stdout[-3000:]
    committed = run_matrix(build, BOARDS_DIR / "budgets", *args)
    assert committed.returncode == 0, committed.stdout[-3000:] + committed.stderr[-2000:]
    assert "| qemu-m4 | std0-float0 | semihosting | test | 344/360 | 360/360 |" in committed.stdout
    assert "matrix: PASS" in committed.stdout and "9 cell(s) on target boards within their budgets" in committed.stdout
