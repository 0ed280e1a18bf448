"""Budgets fail closed: a missing budgets file, a missing cell budget and a figure missing from a report all
fail; stack bytes are budgeted; the digits MLP is pinned on every QEMU board; budgets of cells not
selected in a run (`modes=xor`) are not demanded, and updating from such a run keeps them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qmcu.errors import QmcuError
from qmcu.matrix import bench
from qmcu.matrix.cells import (
    BUDGET_FIGURES,
    COMMITTED_CELL_MODELS,
    DIGITS_MODEL,
    Cell,
    budget_path,
    check_budgets,
    enumerate_cells,
    known_cell_keys,
    load_budgets,
    write_budgets,
)

FIGURES = {"instructions_min": 110, "instructions_median": 110, "instructions_max": 110, "forward_flash": 744,
           "forward_ram": 65, "image_flash": 15408, "image_ram": 8520, "stack_bytes": 688}


def doc_for(figures: dict[str, int], passed: bool = True) -> dict[str, Any]:
    return {"passed": passed, "unit": "instructions",
            "per_inference": {"min": figures["instructions_min"], "median": figures["instructions_median"],
                              "max": figures["instructions_max"]},
            "sizes": {k: figures[k] for k in ("forward_flash", "forward_ram", "image_flash", "image_ram")},
            "stack_bytes": figures["stack_bytes"]}


def m4_cells(**args: str) -> list[Cell]:
    return enumerate_cells({"boards": "qemu-m4", **args})[0]


def budgets_for(cells: list[Cell], figures: dict[str, int] = FIGURES) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for c in cells:
        out.setdefault(c.opts.board.id, {})[c.key] = dict(figures)
    return out


def test_a_missing_budgets_file_fails() -> None:
    cells = m4_cells(modes="xor")
    docs = {c.name: doc_for({**FIGURES, "instructions_max": 9999}) for c in cells}
    failures, _ = check_budgets(cells, docs, {})
    assert len(failures) == 1 and failures[0].startswith("qemu-m4: no budgets file ") and "qemu-m4.json" in failures[0]


def test_a_missing_cell_budget_fails() -> None:
    cells = m4_cells(modes="xor")
    docs = {c.name: doc_for(FIGURES) for c in cells}
    budgets = budgets_for(cells)
    del budgets["qemu-m4"][cells[1].key]
    failures, notes = check_budgets(cells, docs, budgets)
    assert failures == [f"{cells[1].name}: no budget for this cell in {budget_path('qemu-m4')}: "
                        "run the full matrix with `qmcu matrix --update-budgets` and commit boards/budgets/"]
    assert notes == []


@pytest.mark.parametrize("lost", ["per_inference", "sizes", "stack_bytes"])
def test_a_figure_missing_from_a_report_fails(lost: str) -> None:
    cells = m4_cells(modes="xor")
    docs = {c.name: doc_for(FIGURES) for c in cells}
    docs[cells[0].name].pop(lost)
    failures, _ = check_budgets(cells, docs, budgets_for(cells))
    assert failures and all(f.startswith(f"{cells[0].name}: ") and "is missing from the cell's report" in f
                            for f in failures)


def test_stack_bytes_are_budgeted() -> None:
    cells = m4_cells(modes="xor")
    docs = {c.name: doc_for(FIGURES) for c in cells}
    docs[cells[0].name]["stack_bytes"] = FIGURES["stack_bytes"] + 8
    failures, _ = check_budgets(cells, docs, budgets_for(cells))
    assert failures == [f"{cells[0].name}: stack_bytes grew from 688 to 696 (over budget by 8)"]


def test_a_figure_under_budget_is_a_note_not_silence() -> None:
    cells = m4_cells(modes="xor")
    docs = {c.name: doc_for(FIGURES) for c in cells}
    docs[cells[0].name]["stack_bytes"] = FIGURES["stack_bytes"] - 8
    failures, notes = check_budgets(cells, docs, budgets_for(cells))
    assert failures == [] and notes == [f"{cells[0].name}: stack_bytes shrank from 688 to 680: lower the budget with "
                                        "`qmcu matrix --update-budgets` and commit boards/budgets/"]


def test_budgets_of_cells_not_selected_are_not_demanded_but_stale_ones_fail() -> None:
    everything = m4_cells()
    budgets = budgets_for(everything)
    selected = m4_cells(modes="xor")
    docs = {c.name: doc_for(FIGURES) for c in selected}
    assert check_budgets(selected, docs, budgets) == ([], [])
    budgets["qemu-m4"]["std9-float0/semihosting/xor"] = dict(FIGURES)
    failures, _ = check_budgets(selected, docs, budgets)
    assert failures == ["budgets for qemu-m4 name cell std9-float0/semihosting/xor, which the matrix does not have; "
                        "run `qmcu matrix --update-budgets`"]


def test_the_matrix_has_a_digits_cell_on_every_qemu_board() -> None:
    cells, skipped = enumerate_cells({})
    digits = [c for c in cells if c.opts.model == DIGITS_MODEL]
    qemu = {c.opts.board.id for c in cells if c.opts.board.kind == "qemu"}
    assert {c.opts.board.id for c in digits} == qemu
    assert all(c.opts.corner.std == 0 and c.opts.corner.float == 0 and c.opts.mode == "test" for c in digits)
    assert all(c.key == f"{DIGITS_MODEL}/std0-float0/{c.console}/test" for c in digits)
    # modes=xor (the README's documented run) selects no digits cell; modes=test only the digits cells
    assert not [c for c in enumerate_cells({"modes": "xor"})[0] if c.opts.model == DIGITS_MODEL]
    assert {c.opts.model for c in enumerate_cells({"modes": "test"})[0]} == set(COMMITTED_CELL_MODELS)
    # The CNNs run wherever their arena and the stack fit: KWS's 8,528 + 8,448 bytes do not fit the micro:bit's 16 KB.
    for extra in COMMITTED_CELL_MODELS:
        boards = {c.opts.board.id for c in cells if c.opts.model == extra}
        assert boards == qemu - ({"qemu-m0"} if extra == "kws-committed" else set()), extra
    assert [s.name for s in skipped if "kws" in s.name] == ["qemu-m0/kws-committed/std0-float0/semihosting/test"]
    assert "activation arena (8,528 B with its guard) and the stack (8,448 B) need more than the board's RAM (16,384 B)" in \
        next(s.reason for s in skipped if "kws" in s.name)
    with pytest.raises(QmcuError, match="modes= names unknown mode"):
        enumerate_cells({"modes": "xor,tset"})


def test_committed_budgets_pin_every_qemu_cell_exactly_with_every_figure() -> None:
    budgets = load_budgets()
    cells, _ = enumerate_cells({})
    for cell in cells:
        if cell.opts.board.is_target:
            budget = budgets[cell.opts.board.id][cell.key]
            assert set(budget) == set(BUDGET_FIGURES), cell.name
            assert budget["instructions_min"] <= budget["instructions_median"] <= budget["instructions_max"]
    known = known_cell_keys()
    assert all((b, k) in known for b, cb in budgets.items() for k in cb)


def test_the_committed_digits_budget_catches_a_less_unrolled_kernel() -> None:
    # Unrolling the main MLP kernel loop less took qemu-m4 from 2,886 to 3,298 instructions and passed everything.
    budgets = load_budgets()
    (cell,) = [c for c in m4_cells(modes="test") if c.opts.model == DIGITS_MODEL]
    budget = budgets["qemu-m4"][cell.key]
    assert budget["instructions_max"] < 3000, budget
    slower = {**budget, **{k: budget[k] + 3298 - 2886 for k in ("instructions_min", "instructions_median",
                                                                    "instructions_max")}}
    failures, _ = check_budgets([cell], {cell.name: doc_for(slower)}, budgets)
    assert f"{cell.name}: instructions_max grew from {budget['instructions_max']} to {slower['instructions_max']} " \
           f"(over budget by 412)" in failures


def test_updating_from_a_partial_run_keeps_the_other_budgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qmcu.matrix.cells.BUDGETS_DIR", tmp_path)
    everything = m4_cells()
    (tmp_path / "qemu-m4.json").write_text(json.dumps({"board": "qemu-m4", "cells": budgets_for(everything)["qemu-m4"]}))
    selected = m4_cells(modes="xor")
    new = {**FIGURES, "stack_bytes": 700}
    write_budgets(selected, {c.name: doc_for(new) for c in selected})
    written = load_budgets()["qemu-m4"]
    assert set(written) == {c.key for c in everything}
    assert all(written[c.key] == new for c in selected)
    assert all(written[c.key] == FIGURES for c in everything if c not in selected)


def test_updating_refuses_a_report_without_a_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qmcu.matrix.cells.BUDGETS_DIR", tmp_path)
    cells = m4_cells(modes="xor")
    docs = {c.name: doc_for(FIGURES) for c in cells}
    docs[cells[0].name].pop("stack_bytes")
    with pytest.raises(QmcuError, match=r"cannot budget .*its report lacks stack_bytes"):
        write_budgets(cells, docs)
    assert not list(tmp_path.iterdir())


def test_a_budget_without_stack_bytes_is_malformed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qmcu.matrix.cells.BUDGETS_DIR", tmp_path)
    old = {k: v for k, v in FIGURES.items() if k != "stack_bytes"}
    (tmp_path / "qemu-m4.json").write_text(json.dumps({"board": "qemu-m4", "cells": {"std0-float0/semihosting/xor": old}}))
    with pytest.raises(QmcuError, match="must pin exactly the figures"):
        load_budgets()


def test_the_bench_fails_without_budgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qmcu.matrix.cells.BUDGETS_DIR", tmp_path / "budgets")
    monkeypatch.setattr("qmcu.matrix.bench.bench_dir", lambda: tmp_path / "bench")
    cells, _ = bench.enumerate_bench_cells({"boards": "qemu-m4"})
    assert {c.opts.model for c in cells} == {"textbook", DIGITS_MODEL, "digits-cnn-committed", "kws-committed"}
    doc = {**doc_for(FIGURES), "inferences": 4, "layers": [{"name": "fc1", "instructions": 50}]}
    monkeypatch.setattr("qmcu.matrix.bench.load_cell_report", lambda cell: doc)
    with pytest.raises(QmcuError, match=r"bench failed"):
        bench.finish_bench(cells, [], 1.0)
    summary = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert summary["problems"] == [f"qemu-m4: no budgets file {tmp_path / 'budgets' / 'qemu-m4.json'}: run the full "
                                   "matrix with `qmcu matrix --update-budgets` and commit boards/budgets/"]
