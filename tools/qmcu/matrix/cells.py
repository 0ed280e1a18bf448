"""The regression matrix: every runnable board x corner x console x mode, judged, compared, budgeted.

Cells are built and run by one SCons graph (parallel with -j, one build folder per cell); this
module enumerates the cells and, once all have run, turns their report.json files into the
cross-cell identity check, the budget check and the JUnit / Markdown / JSON reports.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmcu import atomic
from qmcu.boards import Board, board_names, load_all
from qmcu.errors import QmcuError
from qmcu.options import OPTS, BuildOptions, parse_options
from qmcu.paths import BOARDS_DIR, BUILD_DIR

logger = logging.getLogger(__name__)

RUNNABLE_KINDS = ("host", "qemu")
# QMCU_BUDGETS_DIR points the matrix at another budgets folder (tests use it).
BUDGETS_DIR = Path(os.environ.get("QMCU_BUDGETS_DIR", BOARDS_DIR / "budgets"))
BUDGET_FIGURES = ("instructions_min", "instructions_median", "instructions_max", "forward_flash", "forward_ram",
                  "image_flash", "image_ram", "stack_bytes")
# The XOR models share cell keys (same network, same code); every other model's cells are prefixed by it.
XOR_MODELS = ("textbook", "trained")
# The matrix's digits cells: the committed model, so their exact budgets hold on any CPU.
DIGITS_MODEL = "digits-committed"
DIGITS_MODE = "test"
# Every committed model beside the XOR one, at STD=0 FLOAT=0 on every QEMU board (mode test): the digits MLP,
# the digits CNN and the keyword-spotting DS-CNN.
COMMITTED_CELL_MODELS = (DIGITS_MODEL, "digits-cnn-committed", "kws-committed")
MATRIX_DIR_NAME = "matrix"


@dataclass(frozen=True)
class Cell:
    opts: BuildOptions
    arguments: dict[str, str]
    console: str
    note: str

    @property
    def key(self) -> str:
        """The cell's name within its board (and its budget's key): [model/]corner/console/mode[/opt]."""
        key = f"{self.opts.corner.name}/{self.console}/{self.opts.mode}"
        if self.opts.model not in XOR_MODELS:
            key = f"{self.opts.model}/{key}"
        return key if self.opts.opt == "O2" else f"{key}/{self.opts.opt}"

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
    """All cells the matrix runs here, and the ones it cannot run (with the reason): the XOR model on every
    corner, console and mode, and the committed digits MLP at STD=0 FLOAT=0 on every QEMU board (mode `test`)."""
    skip = ("board", "STD", "FLOAT", "mode", "boards", "modes", "console", "update_budgets")
    base = {"model": "textbook", **{k: v for k, v in arguments.items() if k not in skip}}
    model = base["model"]
    wanted = [m for m in arguments.get("modes", "").split(",") if m]
    model_modes = parse_options({"model": model}).modes
    modes = [m for m in wanted if m in model_modes] if wanted else list(model_modes)
    with_digits = model not in (DIGITS_MODEL, "digits")
    digits = with_digits and (not wanted or DIGITS_MODE in wanted)
    valid = set(model_modes) | ({DIGITS_MODE} if with_digits else set())
    if set(wanted) - valid:
        raise QmcuError(f"modes= names unknown mode(s) {', '.join(sorted(set(wanted) - valid))}",
                        f"valid modes here: {', '.join(sorted(valid))}")
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
                    cells.append(Cell(parse_options(args), args, console, note))
        if digits and board.kind == "qemu":
            for extra in COMMITTED_CELL_MODELS:
                if extra == model:
                    continue
                args = {**base, "model": extra, "board": board.id, "STD": "0", "FLOAT": "0", "mode": DIGITS_MODE,
                        "console": board.consoles[0]}
                opts = parse_options(args)
                reason = _does_not_fit(opts)
                if reason:
                    skipped.append(Skipped(f"{board.id}/{extra}/std0-float0/{board.consoles[0]}/{DIGITS_MODE}", reason))
                else:
                    cells.append(Cell(opts, args, board.consoles[0], ""))
    return cells, skipped


@functools.cache
def _committed_arena(folder: Path) -> tuple[str, int | None]:
    """A committed model's name and arena with its guard (None: not a graph model); planned once per process."""
    from qmcu.codegen.graph_header import ARENA_GUARD_BYTES, graph_plan
    from qmcu.quant import intmodel

    model = intmodel.load(folder / "intmodel.json")
    return model.name, (graph_plan(model).arena_bytes + ARENA_GUARD_BYTES if model.is_graph else None)


def _does_not_fit(opts: BuildOptions) -> str | None:
    """Why a committed graph model cannot run on the board at all: its activation arena and the stack the
    image reserves already exceed the board's RAM (a lower bound: the application needs a little more)."""
    from qmcu.codegen.linker_script import DEFAULT_GUARD_SIZE, DEFAULT_STACK_SIZE

    if opts.committed is None or opts.board.ram is None:
        return None
    name, arena = _committed_arena(opts.committed)
    stack = DEFAULT_STACK_SIZE + DEFAULT_GUARD_SIZE
    if arena is None or arena + stack <= opts.board.ram.size:
        return None
    return (f"{name}'s activation arena ({arena:,} B with its guard) and the stack ({stack:,} B) need more "
            f"than the board's RAM ({opts.board.ram.size:,} B)")


# --- progress, printed by each cell's run step as it finishes (threads under scons -j) ---------

_progress_lock = threading.Lock()
_progress = {"done": 0, "total": 0, "t0": time.monotonic()}


def start_progress(total: int) -> None:
    _progress.update(done=0, total=total, t0=time.monotonic())


def duration_text(seconds: float) -> str:
    """A wall time as a person reads it: 8 s, 2 min 05 s, 1 h 04 min."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def progress_text(done: int, total: int, elapsed_s: float) -> str:
    """`3/40, about 1 min 50 s left`: cells done of all, and the time left at the average pace so far
    (cells run in parallel under -j, so the pace is wall time per finished cell); no estimate once all are done."""
    if done >= total or done <= 0:
        return f"{done}/{total}"
    return f"{done}/{total}, about {duration_text(max(1.0, elapsed_s / done * (total - done)))} left"


def cell_finished(name: str, doc: dict[str, Any] | None, error: str | None, log_tail: str = "") -> None:
    with _progress_lock:
        _progress["done"] += 1
        done, total = int(_progress["done"]), int(_progress["total"])
        head = f"[{progress_text(done, total, time.monotonic() - _progress['t0'])}] {name}:"
        if doc is not None and doc.get("passed"):
            stats = doc.get("per_inference")
            figure = f", {stats['median']:.12g} {doc['unit']}/inference" if stats else ""
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
    """Every cell of one model and mode must print the same int8 outputs; name the first differing input and cells."""
    problems = []
    for model, mode in sorted({(c.opts.model, c.opts.mode) for c in cells}):
        ref_cell = None
        for cell in cells:
            doc = docs[cell.name]
            if (cell.opts.model, cell.opts.mode) != (model, mode) or doc.get("outputs") is None:
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


def budgeted(cell: Cell) -> bool:
    """Cells on a target (QEMU) board are pinned by budgets; the host build has no counts or sizes."""
    return cell.opts.board.is_target


def cell_figures(doc: dict[str, Any]) -> dict[str, int]:
    """The budgeted figures a cell's report carries (a figure the report lacks is absent here)."""
    figures: dict[str, int] = {}
    stats = doc.get("per_inference")
    if stats and doc.get("unit") == "instructions":
        for name, stat in (("instructions_min", "min"), ("instructions_median", "median"), ("instructions_max", "max")):
            if isinstance(stats.get(stat), int | float):
                figures[name] = int(stats[stat])
    sizes = doc.get("sizes") or {}
    for name in ("forward_flash", "forward_ram", "image_flash", "image_ram"):
        if isinstance(sizes.get(name), int):
            figures[name] = int(sizes[name])
    if isinstance(doc.get("stack_bytes"), int):
        figures["stack_bytes"] = int(doc["stack_bytes"])
    return figures


def budget_path(board: str) -> Path:
    return BUDGETS_DIR / f"{board}.json"


def load_budgets() -> dict[str, dict[str, dict[str, int]]]:
    """boards/budgets/<board>.json -> {board: {cell key: {figure: value}}}; stale or malformed files are an error."""
    budgets: dict[str, dict[str, dict[str, int]]] = {}
    for path in sorted(BUDGETS_DIR.glob("*.json")):
        if path.stem not in board_names():
            raise QmcuError(f"budgets file {path} names board {path.stem!r}, which no longer exists",
                            "delete the file or run `qmcu matrix --update-budgets`")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise QmcuError(f"budgets file {path} is not valid JSON ({err.msg})",
                            "regenerate it with `qmcu matrix --update-budgets`") from err
        if not isinstance(raw, dict) or raw.get("board") != path.stem or not isinstance(raw.get("cells"), dict):
            raise QmcuError(f"budgets file {path} is malformed", "regenerate it with `qmcu matrix --update-budgets`")
        for key, figures in raw["cells"].items():
            if not isinstance(figures, dict) or set(figures) != set(BUDGET_FIGURES) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in figures.values()):
                raise QmcuError(f"budgets file {path}: cell {key} must pin exactly the figures "
                                f"{', '.join(BUDGET_FIGURES)} as non-negative integers",
                                "regenerate it with `qmcu matrix --update-budgets`")
        budgets[path.stem] = raw["cells"]
    return budgets


def known_cell_keys() -> set[tuple[str, str]]:
    """(board, key) of every cell the full matrix can have (all boards, all modes, every opt= level);
    a budget naming anything else is stale."""
    return {(c.opts.board.id, c.key) for opt in OPTS for c in enumerate_cells({"opt": opt})[0]}


def check_budgets(cells: list[Cell], docs: dict[str, dict[str, Any]], budgets: dict[str, dict[str, dict[str, int]]],
                  known: set[tuple[str, str]] | None = None) -> tuple[list[str], list[str]]:
    """(failures, notes). Budgets fail closed: on a target board, a cell without a budget, a figure missing
    from the report and a figure over budget all fail; a figure under budget is a note asking to lower it.
    Budgets of cells not selected in this run are not demanded; budgets naming a cell that the full
    matrix (`known`) does not have are stale and fail."""
    failures: list[str] = []
    notes: list[str] = []
    fix = "lower the budget with `qmcu matrix --update-budgets` and commit boards/budgets/"
    set_fix = "run the full matrix with `qmcu matrix --update-budgets` and commit boards/budgets/"
    missing_file_reported: set[str] = set()
    for cell in cells:
        if not budgeted(cell):
            continue
        doc = docs[cell.name]
        board = cell.opts.board.id
        if board not in budgets:
            if board not in missing_file_reported:
                missing_file_reported.add(board)
                failures.append(f"{board}: no budgets file {budget_path(board)}: {set_fix}")
            continue
        budget = budgets[board].get(cell.key)
        if budget is None:
            failures.append(f"{cell.name}: no budget for this cell in {budget_path(board)}: {set_fix}")
            continue
        figures = cell_figures(doc)
        for name in BUDGET_FIGURES:
            limit = budget.get(name)
            value = figures.get(name)
            if limit is None:
                failures.append(f"{cell.name}: no budget for {name} in {budget_path(board)}: {set_fix}")
            elif value is None:
                if doc.get("passed"):  # a failed cell already fails the matrix, with its own reason
                    failures.append(f"{cell.name}: {name} (budget {limit}) is missing from the cell's report")
            elif value > limit:
                failures.append(f"{cell.name}: {name} grew from {limit} to {value} (over budget by {value - limit})")
            elif value < limit:
                notes.append(f"{cell.name}: {name} shrank from {limit} to {value}: {fix}")
    known = known_cell_keys() if known is None else known
    for board, cells_budget in sorted(budgets.items()):
        for key in cells_budget:
            if (board, key) not in known:
                failures.append(f"budgets for {board} name cell {key}, which the matrix does not have; "
                                "run `qmcu matrix --update-budgets`")
    return failures, notes


def write_budgets(cells: list[Cell], docs: dict[str, dict[str, Any]],
                  known: set[tuple[str, str]] | None = None) -> list[Path]:
    """Rewrite the budgets of the cells that ran (all must have passed), keep those of cells not selected
    in this run, drop stale ones. Refuses a cell whose report lacks a figure."""
    known = known_cell_keys() if known is None else known
    try:
        existing = load_budgets()
    except QmcuError:
        existing = {}  # a malformed or stale file is replaced by this run's figures
    by_board: dict[str, dict[str, dict[str, int]]] = {}
    for cell in cells:
        if not budgeted(cell):
            continue
        doc = docs[cell.name]
        figures = cell_figures(doc)
        if not doc.get("passed") or set(figures) != set(BUDGET_FIGURES):
            missing = sorted(set(BUDGET_FIGURES) - set(figures))
            raise QmcuError(f"cannot budget {cell.name}: " + ("it did not pass" if not doc.get("passed") else
                                                             f"its report lacks {', '.join(missing)}"),
                            "fix the cell first, then run `qmcu matrix --update-budgets` again")
        by_board.setdefault(cell.opts.board.id, {})[cell.key] = figures
    written = []
    for board, cells_budget in sorted(by_board.items()):
        kept = {k: v for k, v in existing.get(board, {}).items() if (board, k) in known and k not in cells_budget}
        merged = {**kept, **cells_budget}
        path = budget_path(board)
        atomic.write_text(path, json.dumps({"board": board, "cells": dict(sorted(merged.items()))}, indent=1) + "\n")
        written.append(path)
    return written
