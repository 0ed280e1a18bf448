"""`scons bench` / `qmcu bench`: instructions, per-MAC cost and bytes of each network on each board.

Each (board, network) cell is built and run like a matrix cell (same graph machinery, same judge:
a benchmark figure only counts if the run was bit-exact), and is held to the same exact budgets
(boards/budgets/, written by `qmcu matrix --update-budgets`): a figure over budget, a figure missing
from a report or a cell without a budget fails the bench. The split into a fixed per-call
overhead and a per-MAC cost is the straight line through the two networks' figures on a board:
per_mac = (I_big - I_small) / (MACs_big - MACs_small), fixed = I_small - per_mac * MACs_small.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

from qmcu import atomic
from qmcu.errors import QmcuError
from qmcu.matrix.cells import (
    DIGITS_MODE,
    DIGITS_MODEL,
    Cell,
    Skipped,
    _does_not_fit,
    _selected_boards,
    check_budgets,
    known_cell_keys,
    load_budgets,
    load_cell_report,
)
from qmcu.options import parse_options
from qmcu.paths import BUILD_DIR
from qmcu.quant import intmodel

logger = logging.getLogger(__name__)

# Every network is a committed integer model, so its figures (and budgets) are exact on any machine.
NETWORKS = (("textbook", "xor", "2-4-1 XOR"), (DIGITS_MODEL, DIGITS_MODE, "64-32-10 MLP"),
            ("digits-cnn-committed", DIGITS_MODE, "digits CNN"), ("kws-committed", DIGITS_MODE, "KWS DS-CNN"))
# The fixed + per-MAC split is a straight line through the MLPs (one kernel family); CNNs are listed per layer.
SPLIT_MODELS = ("textbook", DIGITS_MODEL)


def bench_dir() -> Path:
    return BUILD_DIR / "bench"


def enumerate_bench_cells(arguments: dict[str, str]) -> tuple[list[Cell], list[Skipped]]:
    base = {k: v for k, v in arguments.items() if k in ("opt", "seed", "timeout")}
    cells, skipped = [], []
    spec = arguments.get("boards", "")
    for board in _selected_boards(spec):
        if board.kind != "qemu":
            if spec:
                skipped.append(Skipped(board.id, "bench counts instructions under QEMU"))
            continue
        for model, mode, _ in NETWORKS:
            args = {**base, "board": board.id, "model": model, "mode": mode, "STD": "0", "FLOAT": "0",
                    "console": board.consoles[0]}  # the matrix cell's exact options: same build, same budget
            opts = parse_options(args)
            reason = _does_not_fit(opts)
            if reason:
                skipped.append(Skipped(f"{board.id} {model}", reason))
            else:
                cells.append(Cell(opts, args, board.consoles[0], ""))
    return cells, skipped


def macs(model: intmodel.IntModel) -> int:
    """Multiply-accumulates per inference (a convolution's padded taps counted)."""
    from qmcu.quant.graph_checks import layer_macs

    return sum(layer_macs(model).values())


def _intmodel_path(cell: Cell) -> Path:
    return cell.opts.model_dir / "intmodel.json"


def finish_bench(cells: list[Cell], skipped: list[Skipped], wall_s: float) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    docs = {cell.name: load_cell_report(cell) for cell in cells}
    for cell in cells:
        doc = docs[cell.name]
        stats = doc.get("plugin_per_inference") or doc.get("per_inference")  # plugin: the same window on every board
        sizes = doc.get("sizes") or {}
        lacking = [k for k in ("forward_flash", "forward_ram", "image_flash") if not isinstance(sizes.get(k), int)]
        if not doc.get("passed") or not stats or lacking or not isinstance(doc.get("layers"), list):
            why = "; ".join(doc.get("problems", [])) or f"the report lacks {', '.join(lacking) or 'counts or layers'}"
            problems.append(f"{cell.opts.board.id} {cell.opts.model}: {why}")
            continue
        n_macs = macs(intmodel.load(_intmodel_path(cell)))
        median = float(stats["median"])
        rows.append({"board": cell.opts.board.id, "network": next(n for m, _, n in NETWORKS if m == cell.opts.model),
                     "model": cell.opts.model, "macs": n_macs, "instructions": median,
                     "instructions_min": stats["min"], "instructions_max": stats["max"],
                     "per_mac": round(median / n_macs, 3), "forward_flash": doc["sizes"]["forward_flash"],
                     "forward_ram": doc["sizes"]["forward_ram"], "image_flash": doc["sizes"]["image_flash"],
                     "layers": {r["name"]: r["instructions"] for r in doc["layers"]},
                     "layer_macs": {r["name"]: r.get("macs") for r in doc["layers"]}})
    budget_failures, budget_notes = check_budgets(cells, docs, load_budgets(), known_cell_keys())
    problems += budget_failures
    splits = {}
    for board in sorted({r["board"] for r in rows}):
        pts = sorted((r["macs"], r["instructions"]) for r in rows if r["board"] == board and r["model"] in SPLIT_MODELS)
        if len(pts) >= 2 and pts[-1][0] != pts[0][0]:
            per_mac = (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])
            splits[board] = {"per_mac": round(per_mac, 3), "fixed": round(pts[0][1] - per_mac * pts[0][0], 1)}
    summary = {"rows": rows, "splits": splits, "problems": problems, "notes": budget_notes, "wall_s": round(wall_s, 2),
               "skipped": [s.__dict__ for s in skipped]}
    out = bench_dir()
    table = markdown(rows, splits)
    atomic.write_text(out / "bench.json", json.dumps(summary, indent=1) + "\n")
    atomic.write_text(out / "bench.md", table)
    write_chart(out / "bench.png", rows)
    print(table)
    for note in budget_notes:
        print(f"note: {note}")
    print(f"bench: {len(rows)} figures in {wall_s:.1f} s; {out}/bench.json, bench.md, bench.png")
    if problems:
        for p in problems:
            print(f"FAIL: {p}")
        raise QmcuError(f"bench failed ({len(problems)} problem(s))", "see the FAIL lines above")
    return summary


def markdown(rows: list[dict[str, Any]], splits: dict[str, dict[str, float]]) -> str:
    lines = ["| board | network | MACs | instructions/inference (min/median/max) | per MAC | fixed + per-MAC split "
             "| forward flash | forward RAM |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = splits.get(r["board"])
        split = f"{s['fixed']:g} + {s['per_mac']:g}/MAC" if s else "-"
        split = split if r["model"] in SPLIT_MODELS else "-"
        lines.append(f"| {r['board']} | {r['network']} | {r['macs']:,} | {r['instructions_min']:,}/{r['instructions']:,.12g}/"
                     f"{r['instructions_max']:,} | {r['per_mac']:g} | {split} | {r['forward_flash']:,} B | "
                     f"{r['forward_ram']:,} B |")
    text = "\n".join(lines) + ("\n\nExact QEMU instruction counts (-icount shift=0, counted by the host plugin from the "
                               "first instruction of qmcu_infer to its return), -O2, STD=0 FLOAT=0.\n")
    return text + "".join(layer_table(r) for r in rows if r["model"] not in SPLIT_MODELS)


def layer_table(row: dict[str, Any]) -> str:
    """Per layer of one network on one board: MACs, instructions (the on-target counter's LAYER records), per MAC."""
    lines = ["", f"{row['network']} on {row['board']}, per layer:", "", "| layer | MACs | instructions | per MAC |",
             "|---|---|---|---|"]
    for name, count in row["layers"].items():
        n = row["layer_macs"].get(name) or 0
        per = f"{count / n:.2f}" if n and count is not None else "-"
        lines.append(f"| {name} | {n:,} | {count if count is None else format(count, ',')} | {per} |")
    return "\n".join(lines) + "\n"


def write_chart(path: Path, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    networks = [n for _, _, n in NETWORKS]
    boards = sorted({r["board"] for r in rows})
    fig, axes = plt.subplots(1, len(networks), figsize=(5 * len(networks), 3.8), dpi=100)
    for ax, net in zip(axes, networks, strict=True):
        vals = [next((r["instructions"] for r in rows if r["board"] == b and r["network"] == net), 0) for b in boards]
        bars = ax.bar(boards, vals, color="tab:blue")
        ax.bar_label(bars, labels=[f"{v:g}" for v in vals], fontsize=7)
        ax.set_title(f"{net}: instructions per inference (QEMU, exact)", fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())
