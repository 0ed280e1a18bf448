"""The regression matrix: cells run in one SCons graph; identity, budgets and reports are judged after.
(The real `scons matrix` runs: target/test_matrix_runs.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qmcu.boards import board_names
from qmcu.errors import QmcuError
from qmcu.matrix.cells import check_budgets, cross_cell_identity, enumerate_cells, load_budgets
from qmcu.paths import BOARDS_DIR


def test_cells_cover_every_runnable_board_corner_and_mode() -> None:
    cells, skipped = enumerate_cells({})
    boards = {name: json.loads((BOARDS_DIR / f"{name}.json").read_text()) for name in board_names()}
    runnable = {b for b, raw in boards.items() if raw["kind"] in ("host", "qemu")}
    assert {c.opts.board.id for c in cells} == runnable
    assert all(c.opts.corner in c.opts.board.corners for c in cells)
    xor = [c for c in cells if c.opts.model == "textbook"]
    assert len(xor) == sum(len(boards[b]["corners"]) * len(boards[b]["consoles"]) for b in runnable) * 2
    qemu = {b for b in runnable if boards[b]["kind"] == "qemu"}
    digits = [c for c in cells if c.opts.model == "digits-committed"]
    assert sorted(c.opts.board.id for c in digits) == sorted(qemu)  # one digits cell per QEMU board
    assert {c.opts.model for c in cells if c not in xor} == {"digits-committed", "digits-cnn-committed", "kws-committed"}
    assert {c.console for c in cells if c.opts.board.id == "qemu-m4"} == {"semihosting", "uart"}
    assert {s.name.split("/")[0] for s in skipped if "kws" not in s.name} == set(boards) - runnable
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
    monkeypatch.setattr("qmcu.matrix.cells.BUDGETS_DIR", tmp_path)
    with pytest.raises(QmcuError, match="names board 'nucleo-gone', which no longer exists"):
        load_budgets()


def test_committed_budgets_name_existing_boards_and_cells() -> None:
    budgets = load_budgets()
    cells, _ = enumerate_cells({})
    keys = {(c.opts.board.id, c.key) for c in cells}
    for board, cells_budget in budgets.items():
        for key in cells_budget:
            assert (board, key) in keys
