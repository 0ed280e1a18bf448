"""One run of the application on one board: runner -> records -> judge -> reports.

The same flow serves every runner (host program, QEMU semihosting, later UART and real boards).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from qmcu.build import elfcheck
from qmcu.build.toolchain import TARGET_PREFIX
from qmcu.codegen.vectors import Vectors, make_vectors
from qmcu.errors import QmcuError
from qmcu.judge import report
from qmcu.judge.verdict import Gates, PartRun, Verdict, describe_exit, judge_run
from qmcu.options import BuildOptions
from qmcu.paths import BUILD_DIR
from qmcu.quant.intmodel import IntModel
from qmcu.run.records import ProtocolError, parse_stream, stream_bytes
from qmcu.run.result import RunResult, last_lines

logger = logging.getLogger(__name__)

# The forward path in the ELF, by demangled symbol name: the kernels, the generated forward() and
# constants (qmcu_model:: in model.hpp; pytorch_quant_xor:: and qmcu_seed:: for the seed tutorial's
# API corner), and its state (g_layers and the activation buffers). Not forwardLayer(): it serves
# only the per-layer profile.
FORWARD_CODE = ("qmcu_infer", "qmcu::Q", "qmcu::sat", "qmcu::round", "qmcu::mult", "qmcu::qApply", "qmcu::qrelu",
                "qmcu_model::forward(", "qmcu_seed::forward(")
FORWARD_DATA = ("pytorch_quant_xor::", "qmcu_model::k")
FORWARD_STATE = ("qmcu_model::g_", "qmcu_model::forward(", "qmcu_seed::g_", "qmcu_seed::forward(")
# The fault handler's line (firmware/platform/cortexm/startup.cpp).
_FAULT_RE = re.compile(r"^FAULT (?P<what>.+?)(?: pc=(?P<pc>0x[0-9a-fA-F]+) lr=(?P<lr>0x[0-9a-fA-F]+))?\r?$", re.M)


def forward_sizes(elf: Path, tool_prefix: str) -> dict[str, int]:
    """Bytes of the forward path: its code + model constants (flash) and its state + activations (RAM)."""
    flash = ram = 0
    for name, size, kind in elfcheck.symbol_sizes(elf, tool_prefix):
        k = kind.lower()
        if k in ("t", "w") and name.startswith(FORWARD_CODE) or k == "r" and name.startswith(FORWARD_DATA):
            flash += size
        elif k in ("b", "d", "v") and name.startswith(FORWARD_STATE):
            ram += size
    return {"forward_flash": flash, "forward_ram": ram}


def execute(opts: BuildOptions, program: Path, vectors: Vectors | None = None,
            outputs: int = 1) -> tuple[RunResult, list[int] | None]:
    """Run the program on its board; under QEMU the host-side plugin also counts every qmcu_infer call.

    On a real board the timeout is at least what its UART needs for the records of vectors (outputs
    values each) at its baud rate (runners.board.run_timeout).
    """
    board = opts.board
    if board.kind == "host":
        from qmcu.run.host import run_host

        return run_host(program, opts.timeout), None
    if board.kind == "qemu":
        from qmcu.run import insn_plugin
        from qmcu.run.qemu import run_qemu

        so = insn_plugin.build_plugin(BUILD_DIR / "plugin")
        entry, rets = insn_plugin.call_window_args(program, "qmcu_infer", TARGET_PREFIX)
        counts_file = program.with_name(f"{program.stem}.plugin-counts")
        counts_file.unlink(missing_ok=True)
        plugin = insn_plugin.plugin_argv(so, entry, rets, counts_file)
        if opts.console == "uart":
            from qmcu.run.qemu_uart import run_qemu_uart

            result = run_qemu_uart(board, program, opts.timeout, opts.transport, plugin)
        else:
            result = run_qemu(board, program, opts.timeout, plugin)
        counts = insn_plugin.read_counts(counts_file)[0] if counts_file.exists() else None
        return result, counts
    from qmcu.run.board import run_board, run_timeout

    timeout = opts.timeout
    if vectors is not None:
        timeout = run_timeout(board, stream_bytes(vectors.inputs_q, outputs, len(vectors.labels)), timeout)
    result = run_board(board, program, opts.port or None, opts.flasher or None, timeout, dry_run=opts.dry_run)
    if isinstance(result, list):  # dry run: the flash command was printed, nothing ran
        raise QmcuError("dry run: nothing was flashed or run", "drop dry_run=1 to flash the board and read its results")
    return result, None


def stream_error(opts: BuildOptions, program: Path, result: RunResult, err: ProtocolError) -> QmcuError:
    """Why a run's output holds no complete stream, most telling cause first: a fault, a signal, a damaged stream."""
    text = result.output_text
    board = opts.board.id
    fault = _FAULT_RE.search(text)
    before = last_lines(text[:fault.start()], 3) if fault else last_lines(text)
    if fault and fault.group("what") == "stack overflow":
        return QmcuError(f"the firmware on {board} overflowed its stack (FAULT stack overflow, "
                         f"{describe_exit(result.exit_code)}) running {program.name}; last lines before it: {before}",
                         "a firmware fault, not a slow run: give the stack more room (the link's __qmcu_stack_size) "
                         "or make the model need less")
    if fault:
        pc, lr = fault.group("pc"), fault.group("lr")
        where = f" at pc={pc} lr={lr}" if pc else ""
        locate = (f"`{TARGET_PREFIX}addr2line -Cfe {program} {pc} {lr}` names the faulting function and its caller"
                  if pc else "see the last lines")
        return QmcuError(f"the firmware on {board} faulted: {fault.group('what')}{where} "
                         f"({describe_exit(result.exit_code)}) running {program.name}; last lines before it: {before}",
                         f"a firmware fault, not a slow run (raising timeout= does not help): {locate}")
    if result.exit_code < 0:
        return QmcuError(f"{program.name} on {board} was {describe_exit(result.exit_code)} before its END record "
                         f"({err}); last lines: {before}",
                         "the program crashed: run it under a debugger (gdb) or build it with sanitizers to see where")
    return QmcuError(f"the result stream from {board} is incomplete or damaged: {err}; "
                     f"{describe_exit(result.exit_code)}; last lines: {before}",
                     "the firmware stopped before its END record or printed something that is not a record: "
                     "see the last lines")


def report_paths(opts: BuildOptions, program: Path) -> list[Path]:
    """The files run() writes for this cell and mode, report.json (the one that says passed) last."""
    out_dir = program.parent
    paths = []
    if opts.mode == opts.modes[0]:
        paths += [out_dir / "layers.csv", out_dir / "surface.png", out_dir / "confusion.png"]
    return [*paths, out_dir / opts.report_name]


def _run_part(opts: BuildOptions, program: Path, model: IntModel,
              rows: tuple[int, int] | None) -> tuple[PartRun, RunResult]:
    """Run one image on the rows it holds and parse what it printed; the judge gets the part."""
    vectors = make_vectors(model, opts.mode, opts.testset, rows)
    result, plugin_counts = execute(opts, program, vectors, model.output_size)
    try:
        stream = parse_stream(result.output_text)
    except ProtocolError as err:
        raise stream_error(opts, program, result, err) from err
    return PartRun(stream, result.exit_code, plugin_counts, vectors), result


def run(opts: BuildOptions, program: Path, model: IntModel, programs: list[Path] | None = None,
        parts: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """Run, judge and write the reports next to the program; returns the report dict.

    programs/parts: a test set split over several images (parts.py): each image runs its rows, in
    order, and the verdict covers them all. The reports of a previous run of this cell are deleted first,
    so a run that fails, is interrupted or raises leaves none behind to claim otherwise; each report is
    written whole (atomic), report.json last.
    """
    for path in report_paths(opts, program):
        path.unlink(missing_ok=True)
    images = programs or [program]
    ranges: list[tuple[int, int] | None] = list(parts) if parts else [None]
    runs = [_run_part(opts, image, model, rows) for image, rows in zip(images, ranges, strict=True)]
    part_runs = [part for part, _ in runs]
    gates = run_gates(opts, model)
    verdict, counts = judge_run(part_runs, model, opts.board, gates)
    result = RunResult(next((r.exit_code for _, r in runs if r.exit_code), 0), "", sum(r.wall_s for _, r in runs))
    text_lines = [ln for part in part_runs for ln in part.stream.text_lines]
    vectors = part_runs[0].vectors if len(runs) == 1 else make_vectors(model, opts.mode, opts.testset)
    doc = build_report(opts, program, model, verdict, result, gates)
    doc.update(counts)
    checked = Path(f"{program}.checked")
    doc["image_checks"] = json.loads(checked.read_text())["checks"] if checked.is_file() else []
    doc["images"] = len(images)
    doc["passed"] = verdict.passed
    # The firmware's own human lines; the generic accuracy line is re-derived by the judge, so not repeated
    # (the seed tutorial's "int8 XOR accuracy: 4/4" is kept: the tutorial's output, checked against SUM).
    doc["console"] = [ln for ln in text_lines
                      if ln.strip() and not (ln.startswith("int8 ") and " accuracy on the target: " in ln)]
    out_dir = program.parent
    if opts.mode == opts.modes[0]:  # the test set: per-layer counts, and the pictures its rows make
        report.write_layers_csv(out_dir / "layers.csv", doc["layers"])
        side = report.surface_side(model.input_size, model.output_size, vectors.count - len(vectors.labels))
        if side is not None:
            title = f"decision surface computed on the target: {opts.board.id} {opts.corner.name}, {model.name}"
            report.write_surface_png(out_dir / "surface.png", verdict, title, verdict.labelled, side)
        if opts.mode == "test":  # the seed tutorial's mode `xor` draws its surface instead
            title = f"{model.name} on the target ({opts.board.id} {opts.corner.name}): held-out split"
            report.write_confusion_png(out_dir / "confusion.png", vectors.labels, verdict.predictions, title)
    report.write_json(out_dir / opts.report_name, doc)  # last: a report.json means every report is whole
    return doc


def run_gates(opts: BuildOptions, model: IntModel) -> Gates:
    """The accuracy gates of this run: max_drop / min_accuracy given as options, else the model file's."""
    prov = model.provenance
    return Gates(prov.get("float_test_accuracy"),
                 opts.max_drop if opts.max_drop is not None else prov.get("max_drop"),
                 opts.min_accuracy if opts.min_accuracy is not None else prov.get("min_accuracy"))


def build_report(opts: BuildOptions, program: Path, model: IntModel, verdict: Verdict,
                 result: RunResult, gates: Gates) -> dict[str, Any]:
    sizes = None
    if opts.board.is_target:
        sizes = {**elfcheck.image_sizes(program, TARGET_PREFIX), **forward_sizes(program, TARGET_PREFIX)}
        sizes = {"image_flash": sizes["flash"], "image_ram": sizes["ram"], "forward_flash": sizes["forward_flash"],
                 "forward_ram": sizes["forward_ram"]}
    return {
        "board": opts.board.id, "corner": opts.corner.name, "std": opts.corner.std, "float": opts.corner.float,
        "model": model.name, "model_sha256": model.digest(), "mode": opts.mode, "opt": opts.opt,
        "correct": verdict.correct, "total": verdict.labelled, "inferences": verdict.inferences,
        "reference_correct": verdict.reference_correct,
        "float_accuracy": model.provenance.get("float_test_accuracy"), "fake_quant": model.provenance.get("fake_quant"),
        "diagnosis": model.provenance.get("diagnosis"), "dropped": model.provenance.get("dropped"),
        "weights": model.provenance.get("weights"), "weights_comparison": model.provenance.get("weights_comparison"),
        "gates": {"max_drop": gates.max_drop, "min_accuracy": gates.min_accuracy},
        "bit_exact": verdict.bit_exact, "mismatches": verdict.mismatches,
        "first_mismatches": verdict.first_mismatches, "outputs": verdict.outputs,
        "unit": verdict.unit, "layers": report.layer_rows(model, verdict), "stack_bytes": verdict.stack_bytes,
        "sizes": sizes, "arena_bytes": _arena_bytes(model), "status": verdict.status, "exit_code": result.exit_code,
        "run_wall_s": round(result.wall_s, 3), "problems": verdict.problems, "passed": verdict.passed,
    }


def _arena_bytes(model: IntModel) -> int | None:
    """A graph model's activation arena (exact, scratch included; the guard after it is not counted)."""
    if not model.is_graph:
        return None
    from qmcu.codegen.graph_header import graph_plan

    return graph_plan(model).arena_bytes
