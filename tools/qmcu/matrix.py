"""The regression matrix: every runnable board x corner x console x mode, judged, compared, budgeted.

Cells are built and run by one SCons graph (parallel with -j, one build folder per cell); this
module enumerates the cells and, once all have run, turns their report.json files into the
cross-cell identity check, the budget check and the JUnit / Markdown / JSON reports.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import atomic
from .boards import Board, board_names, load_all
from .errors import QmcuError
from .examples import EXAMPLES
from .options import BuildOptions, parse_options
from .paths import BOARDS_DIR, BUILD_DIR

logger = logging.getLogger(__name__)

RUNNABLE_KINDS = ("host", "qemu")
# QMCU_BUDGETS_DIR points the matrix at another budgets folder (tests use it).
BUDGETS_DIR = Path(os.environ.get("QMCU_BUDGETS_DIR", BOARDS_DIR / "budgets"))
BUDGET_FIGURES = ("instructions_min", "instructions_median", "instructions_max", "forward_flash", "forward_ram",
                  "image_flash", "image_ram")
MATRIX_DIR_NAME = "matrix"


@dataclass(frozen=True)
class Cell:
    opts: BuildOptions
    arguments: dict[str, str]
    console: str
    note: str

    @property
    def key(self) -> str:
        return f"{self.opts.corner.name}/{self.console}/{self.opts.mode}"

    @property
    def name(self) -> str:
        return f"{self.opts.board.id}/{self.key}"

    @property
    def report_path(self) -> Path:
        return self.opts.build_dir / self.opts.report_name


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


def matrix_dir() -> Path:
    return BUILD_DIR / MATRIX_DIR_NAME


def _selected_boards(spec: str) -> list[Board]:
    if not spec:
        return load_all()
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in board_names()]
    if unknown:
        raise QmcuError(f"boards= names unknown board(s) {', '.join(unknown)}", f"valid boards: {', '.join(board_names())}")
    return [b for b in load_all() if b.id in names]


def enumerate_cells(arguments: dict[str, str]) -> tuple[list[Cell], list[Skipped]]:
    """All cells the matrix runs here, and the ones it cannot run (with the reason)."""
    skip = ("board", "STD", "FLOAT", "mode", "boards", "console")
    base = {"model": "textbook", **{k: v for k, v in arguments.items() if k not in skip}}
    model = {"model": "textbook", **arguments}["model"]
    modes = [m for m in arguments.get("modes", "").split(",") if m] or list(EXAMPLES[model].modes)
    cells: list[Cell] = []
    skipped: list[Skipped] = []
    for board in _selected_boards(arguments.get("boards", "")):
        if board.kind not in RUNNABLE_KINDS:
            skipped.append(Skipped(f"{board.id}/*", f"{board.kind} board: needs the real board on a desk "
                                                  f"(scons board={board.id} run)"))
            continue
        for corner in board.corners:
            note = "soft-float ABI: no FPU" if corner.float and board.kind != "host" and not board.fpu else ""
            for console in board.consoles:
                for mode in modes:
                    args = {**base, "board": board.id, "STD": str(corner.std), "FLOAT": str(corner.float), "mode": mode,
                            "console": console}
                    args.pop("modes", None)
                    cells.append(Cell(parse_options(args), args, console, note))
    return cells, skipped


# --- progress, printed by each cell's run step as it finishes (threads under scons -j) ---------

_progress_lock = threading.Lock()
_progress = {"done": 0, "total": 0, "t0": time.monotonic()}


def start_progress(total: int) -> None:
    _progress.update(done=0, total=total, t0=time.monotonic())


def cell_finished(name: str, doc: dict[str, Any] | None, error: str | None, log_tail: str = "") -> None:
    with _progress_lock:
        _progress["done"] += 1
        head = f"[{_progress['done']}/{_progress['total']}] {name}:"
        if doc is not None and doc.get("passed"):
            stats = doc.get("per_inference")
            figure = f", {stats['median']:g} {doc['unit']}/inference" if stats else ""
            print(f"{head} PASS {doc['inferences']}/{doc['inferences']} bit-exact{figure} ({doc['run_wall_s']:.1f} s)",
                  flush=True)
        else:
            reason = error or "; ".join(doc.get("problems", [])) if doc else error
            print(f"{head} FAIL {reason}", flush=True)
            if log_tail:
                print("    " + log_tail.replace("\n", "\n    "), flush=True)


# --- aggregation -----------------------------------------------------------------------------

def _failure_doc(cell: Cell, error: str) -> dict[str, Any]:
    return {"board": cell.opts.board.id, "corner": cell.opts.corner.name, "mode": cell.opts.mode, "passed": False,
            "problems": [error], "outputs": None}


def load_cell_report(cell: Cell) -> dict[str, Any]:
    status = cell.report_path.with_suffix(".status.json")
    if status.is_file():
        st = json.loads(status.read_text())
        if st.get("error"):
            return _failure_doc(cell, st["error"])
    if not cell.report_path.is_file():
        return _failure_doc(cell, "no report: the cell did not run")
    return json.loads(cell.report_path.read_text())


def cross_cell_identity(cells: list[Cell], docs: dict[str, dict[str, Any]]) -> list[str]:
    """Every cell of a mode must print the same int8 outputs; name the first differing input and cells."""
    problems = []
    for mode in sorted({c.opts.mode for c in cells}):
        ref_cell = None
        for cell in cells:
            doc = docs[cell.name]
            if cell.opts.mode != mode or doc.get("outputs") is None:
                continue
            if ref_cell is None:
                ref_cell = cell
                continue
            a, b = docs[ref_cell.name]["outputs"], doc["outputs"]
            if a != b:
                idx = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
                problems.append(f"{mode}: outputs of {cell.name} differ from {ref_cell.name} first at input index {idx} "
                                f"({a[idx] if idx < len(a) else 'missing'} vs {b[idx] if idx < len(b) else 'missing'})")
    return problems


def cell_figures(doc: dict[str, Any]) -> dict[str, int]:
    figures: dict[str, int] = {}
    stats = doc.get("per_inference")
    if stats and doc.get("unit") == "instructions":
        figures.update(instructions_min=int(stats["min"]), instructions_median=int(stats["median"]),
                       instructions_max=int(stats["max"]))
    sizes = doc.get("sizes")
    if sizes:
        figures.update({k: int(sizes[k]) for k in ("forward_flash", "forward_ram", "image_flash", "image_ram")})
    return figures


def load_budgets() -> dict[str, dict[str, dict[str, int]]]:
    """boards/budgets/<board>.json -> {board: {cell key: {figure: value}}}; stale files are an error."""
    budgets: dict[str, dict[str, dict[str, int]]] = {}
    for path in sorted(BUDGETS_DIR.glob("*.json")):
        if path.stem not in board_names():
            raise QmcuError(f"budgets file {path} names board {path.stem!r}, which no longer exists",
                            "delete the file or run `qmcu matrix --update-budgets`")
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict) or raw.get("board") != path.stem or not isinstance(raw.get("cells"), dict):
            raise QmcuError(f"budgets file {path} is malformed", "regenerate it with `qmcu matrix --update-budgets`")
        budgets[path.stem] = raw["cells"]
    return budgets


def check_budgets(cells: list[Cell], docs: dict[str, dict[str, Any]],
                  budgets: dict[str, dict[str, dict[str, int]]]) -> tuple[list[str], list[str]]:
    """(failures, notes): a figure over budget fails; under budget asks for a lower budget."""
    failures: list[str] = []
    notes: list[str] = []
    fix = "lower the budget with `qmcu matrix --update-budgets` and commit boards/budgets/"
    for cell in cells:
        figures = cell_figures(docs[cell.name])
        if not figures:
            continue
        budget = budgets.get(cell.opts.board.id, {}).get(cell.key)
        if budget is None:
            notes.append(f"{cell.name}: no budget yet ({fix.replace('lower', 'set')})")
            continue
        for name, value in figures.items():
            limit = budget.get(name)
            if limit is None:
                continue
            if value > limit:
                failures.append(f"{cell.name}: {name} grew from {limit} to {value} (over budget by {value - limit})")
            elif value < limit:
                notes.append(f"{cell.name}: {name} shrank from {limit} to {value}: {fix}")
    ran = {(c.opts.board.id, c.key) for c in cells}
    selected = {c.opts.board.id for c in cells}
    for board, cells_budget in budgets.items():
        for key in cells_budget:
            if board in selected and (board, key) not in ran:
                failures.append(f"budgets for {board} name cell {key}, which the matrix does not have; "
                                "run `qmcu matrix --update-budgets`")
    return failures, notes


def write_budgets(cells: list[Cell], docs: dict[str, dict[str, Any]]) -> list[Path]:
    by_board: dict[str, dict[str, dict[str, int]]] = {}
    for cell in cells:
        figures = cell_figures(docs[cell.name])
        if figures and docs[cell.name].get("passed"):
            by_board.setdefault(cell.opts.board.id, {})[cell.key] = figures
    written = []
    for board, cells_budget in sorted(by_board.items()):
        path = BUDGETS_DIR / f"{board}.json"
        atomic.write_text(path, json.dumps({"board": board, "cells": dict(sorted(cells_budget.items()))}, indent=1) + "\n")
        written.append(path)
    return written
