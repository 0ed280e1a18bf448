"""The matrix's outputs: Markdown table, JUnit XML (one test case per cell) and a JSON of everything.

All three are written only after every cell has been judged, atomically; `finish` first removes
the previous ones, so an interrupted run never leaves a report that claims success.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from xml.etree import ElementTree as ET

from . import atomic
from .errors import QmcuError
from .matrix import (
    Cell,
    Skipped,
    check_budgets,
    cross_cell_identity,
    known_cell_keys,
    load_budgets,
    load_cell_report,
    matrix_dir,
    write_budgets,
)

logger = logging.getLogger(__name__)

OUTPUT_NAMES = ("matrix.md", "matrix.xml", "matrix.json")


def clear_outputs() -> None:
    for name in OUTPUT_NAMES:
        (matrix_dir() / name).unlink(missing_ok=True)


def markdown_table(cells: list[Cell], docs: dict[str, dict[str, Any]], skipped: list[Skipped]) -> str:
    rows = ["| board | corner | console | mode | accuracy | bit-exact | instructions/inference | flash (fwd / image) "
            "| RAM (fwd / image) | wall | result |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for cell in cells:
        d = docs[cell.name]
        acc = f"{d['correct']}/{d['total']}" if d.get("total") else "-"
        exact = f"{d['inferences'] - d['mismatches']}/{d['inferences']}" if "inferences" in d else "-"
        stats = d.get("per_inference")
        instr = f"{stats['min']}/{stats['median']:g}/{stats['max']}" if stats else "-"
        sizes = d.get("sizes") or {}
        flash = f"{sizes['forward_flash']} / {sizes['image_flash']}" if sizes else "-"
        ram = f"{sizes['forward_ram']} / {sizes['image_ram']}" if sizes else "-"
        wall = f"{d['run_wall_s']:.2f} s" if "run_wall_s" in d else "-"
        corner = cell.opts.corner.name + (f" ({cell.note})" if cell.note else "")
        result = "PASS" if d.get("passed") else "FAIL"
        rows.append(f"| {cell.opts.board.id} | {corner} | {cell.console} | {cell.opts.mode} | {acc} | {exact} | {instr} "
                    f"| {flash} | {ram} | {wall} | {result} |")
    for s in skipped:
        rows.append(f"| {s.name} | - | - | - | - | - | - | - | - | - | skipped: {s.reason} |")
    return "\n".join(rows) + "\n\ninstructions/inference is min/median/max (exact QEMU counts under -icount).\n"


def junit_xml(cells: list[Cell], docs: dict[str, dict[str, Any]], skipped: list[Skipped], wall_s: float) -> str:
    failures = sum(1 for c in cells if not docs[c.name].get("passed"))
    suite = ET.Element("testsuite", name="qmcu-matrix", tests=str(len(cells) + len(skipped)), failures=str(failures),
                       skipped=str(len(skipped)), time=f"{wall_s:.3f}")
    for cell in cells:
        d = docs[cell.name]
        case = ET.SubElement(suite, "testcase", classname=f"matrix.{cell.opts.board.id}", name=cell.key,
                             time=f"{d.get('run_wall_s', 0.0):.3f}")
        if not d.get("passed"):
            ET.SubElement(case, "failure", message="; ".join(d.get("problems", []))[:2000])
    for s in skipped:
        case = ET.SubElement(suite, "testcase", classname="matrix", name=s.name)
        ET.SubElement(case, "skipped", message=s.reason)
    return ET.tostring(suite, encoding="unicode") + "\n"


def finish(cells: list[Cell], skipped: list[Skipped], wall_s: float, update_budgets: bool) -> dict[str, Any]:
    """Judge the whole matrix from the cells' reports; write the three reports; raise if it failed."""
    docs = {cell.name: load_cell_report(cell) for cell in cells}
    failed_cells = [c.name for c in cells if not docs[c.name].get("passed")]
    identity = cross_cell_identity(cells, docs)
    known = known_cell_keys()
    if update_budgets:
        if failed_cells or identity:
            print("budgets: not updated (the matrix did not pass)")
        else:
            for path in write_budgets(cells, docs, known):
                print(f"budgets: wrote {path}")
    budget_failures, budget_notes = check_budgets(cells, docs, load_budgets(), known)
    problems = [f"cell {n} failed" for n in failed_cells] + identity + budget_failures
    table = markdown_table(cells, docs, skipped)
    summary = {"passed": not problems, "problems": problems, "notes": budget_notes, "wall_s": round(wall_s, 2),
               "cells": docs, "skipped": [s.__dict__ for s in skipped]}
    out = matrix_dir()
    atomic.write_text(out / "matrix.md", f"# qmcu matrix\n\n{table}\nwall time: {wall_s:.1f} s\n")
    atomic.write_text(out / "matrix.xml", junit_xml(cells, docs, skipped, wall_s))
    atomic.write_text(out / "matrix.json", json.dumps(summary, indent=1) + "\n")
    print(table)
    for note in budget_notes:
        print(f"note: {note}")
    print(f"matrix: {len(cells)} cells, {len(skipped)} skipped, wall time {wall_s:.1f} s; reports in {out}/")
    if problems:
        for p in problems:
            print(f"FAIL: {p}")
        raise QmcuError(f"matrix failed ({len(problems)} problem(s))", "see the FAIL lines above")
    budgeted = sum(1 for c in cells if c.opts.board.is_target)
    under = f"; {len(budget_notes)} figure(s) under budget, see the notes" if budget_notes else ""
    print(f"matrix: PASS (all cells bit-exact with the reference and with each other; {budgeted} cell(s) on target "
          f"boards within their budgets, every figure present{under})")
    return summary


