"""One run of the application on one board: runner -> records -> judge -> reports.

The same flow serves every runner (host program, QEMU semihosting, later UART and real boards).
"""

from __future__ import annotations

import json
import logging
import re
import statistics
from pathlib import Path
from typing import Any

from . import elfcheck, interrupt, report
from .boards import Board, counter_warning
from .errors import QmcuError
from .intmodel import IntModel
from .judge import Verdict, accuracy_gates, judge, merge_parts
from .options import BuildOptions
from .paths import BUILD_DIR
from .records import ProtocolError, parse_stream, stream_bytes
from .runners.result import RunResult, last_lines
from .vectors import Vectors, make_vectors

logger = logging.getLogger(__name__)

TARGET_PREFIX = "arm-none-eabi-"
# The forward path in the ELF, by demangled symbol name: the kernels, the generated forward() and
# constants (qmcu_model:: in model.hpp; pytorch_quant_xor:: and qmcu_seed:: for the seed tutorial's
# API corner), and its state (g_layers and the activation buffers). Not forwardLayer(): it serves
# only the per-layer profile.
FORWARD_CODE = ("qmcu_infer", "qmcu::Q", "qmcu::sat", "qmcu::round", "qmcu::mult", "qmcu::qApply", "qmcu::qrelu",
                "qmcu_model::forward(", "qmcu_seed::forward(")
FORWARD_DATA = ("pytorch_quant_xor::", "qmcu_model::k")
FORWARD_STATE = ("qmcu_model::g_", "qmcu_model::forward(", "qmcu_seed::g_", "qmcu_seed::forward(")
# The fault handler's line (firmware/platform/cortexm/startup.cpp) and the statuses it exits with.
_FAULT_RE = re.compile(r"^FAULT (?P<what>.+?)(?: pc=(?P<pc>0x[0-9a-fA-F]+) lr=(?P<lr>0x[0-9a-fA-F]+))?\r?$", re.M)
STATUS_FAULT = 3
STATUS_STACK_OVERFLOW = 4


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
        from .runners.host import run_host

        return run_host(program, opts.timeout), None
    if board.kind == "qemu":
        from . import insn_plugin
        from .runners.qemu import run_qemu

        so = insn_plugin.build_plugin(BUILD_DIR / "plugin")
        entry, rets = insn_plugin.call_window_args(program, "qmcu_infer", TARGET_PREFIX)
        counts_file = program.with_name(f"{program.stem}.plugin-counts")
        counts_file.unlink(missing_ok=True)
        plugin = insn_plugin.plugin_argv(so, entry, rets, counts_file)
        if opts.console == "uart":
            from .runners.qemu_uart import run_qemu_uart

            result = run_qemu_uart(board, program, opts.timeout, opts.transport, plugin)
        else:
            result = run_qemu(board, program, opts.timeout, plugin)
        counts = insn_plugin.read_counts(counts_file)[0] if counts_file.exists() else None
        return result, counts
    from .runners.board import run_board, run_timeout

    timeout = opts.timeout
    if vectors is not None:
        timeout = run_timeout(board, stream_bytes(vectors.inputs_q, outputs, len(vectors.labels)), timeout)
    result = run_board(board, program, opts.port or None, opts.flasher or None, timeout, dry_run=opts.dry_run)
    if isinstance(result, list):  # dry run: the flash command was printed, nothing ran
        raise QmcuError("dry run: nothing was flashed or run", "drop dry_run=1 to flash the board and read its results")
    return result, None


def merge_counts(verdict: Verdict, plugin: list[int] | None, board: Board | None = None) -> dict[str, Any]:
    """Instruction figures: the on-target counter where the board has one, else the host plugin.

    Where both exist they must differ by one constant (the counter reads and the call around
    qmcu_infer); anything else means one of them is wrong, and the run fails.
    """
    target = verdict.counts if any(verdict.counts) else None
    info: dict[str, Any] = {"plugin_per_inference": _stats(plugin) if plugin else None}
    warning = counter_warning(board, verdict.counts, plugin=bool(plugin)) if board is not None else None
    if warning:
        logger.warning(warning)
        info["counter_warning"] = warning
    if target and plugin:
        if len(plugin) != len(target):
            verdict.problems.append(f"the plugin saw {len(plugin)} qmcu_infer calls, the target reported {len(target)}")
        else:
            offsets = {t - p for t, p in zip(target, plugin, strict=True)}
            if len(offsets) != 1:
                verdict.problems.append(f"on-target counter and plugin disagree by varying amounts {sorted(offsets)[:5]}")
            else:
                info["counter_minus_plugin"] = offsets.pop()
    if target:
        info.update(per_inference=_stats(target), counter_source="on-target counter")
    elif plugin:
        info.update(per_inference=_stats(plugin), counter_source="QEMU plugin (qmcu_infer entry to return)")
    else:
        info.update(per_inference=None, counter_source=None)
    return info


def _stats(values: list[int]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def describe_exit(code: int) -> str:
    """An exit code in words: a negative one is the signal that killed the process."""
    if code < 0:
        return f"killed by {interrupt.signal_name(-code)} (signal {-code})"
    known = {STATUS_FAULT: " (the firmware's fault status)", STATUS_STACK_OVERFLOW: " (the firmware's stack-overflow status)"}
    return f"exit code {code}{known.get(code, '')}"


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
        locate = (f"`arm-none-eabi-addr2line -Cfe {program} {pc} {lr}` names the faulting function and its caller"
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
              rows: tuple[int, int] | None) -> tuple[Verdict, RunResult, list[int] | None, list[str], Vectors]:
    """Run one image and judge it against the rows it holds."""
    vectors = make_vectors(model, opts.mode, opts.testset, rows)
    result, plugin_counts = execute(opts, program, vectors, model.output_size)
    try:
        stream = parse_stream(result.output_text)
    except ProtocolError as err:
        raise stream_error(opts, program, result, err) from err
    verdict = judge(stream, model, vectors)
    if result.exit_code != verdict.status:
        verdict.problems.append(f"process {describe_exit(result.exit_code)} differs from the END record's "
                                f"status {verdict.status}")
    return verdict, result, plugin_counts, stream.text_lines, vectors


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
    verdict = merge_parts([r[0] for r in runs], [r[4].first for r in runs])
    result = RunResult(next((r[1].exit_code for r in runs if r[1].exit_code), 0), "",
                       sum(r[1].wall_s for r in runs))
    plugin_parts = [r[2] for r in runs]
    plugin_counts = None if any(p is None for p in plugin_parts) else [c for p in plugin_parts for c in p or []]
    text_lines = [ln for r in runs for ln in r[3]]
    vectors = runs[0][4] if len(runs) == 1 else make_vectors(model, opts.mode, opts.testset)
    prov = model.provenance
    verdict.problems += accuracy_gates(verdict, prov.get("float_test_accuracy"),
                                       opts.max_drop if opts.max_drop is not None else prov.get("max_drop"),
                                       opts.min_accuracy if opts.min_accuracy is not None else prov.get("min_accuracy"))
    counts = merge_counts(verdict, plugin_counts, opts.board)
    doc = build_report(opts, program, model, verdict, result)
    doc.update(counts)
    doc["counts"] = verdict.counts if any(verdict.counts) else plugin_counts
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


def build_report(opts: BuildOptions, program: Path, model: IntModel, verdict: Verdict,
                 result: RunResult) -> dict[str, Any]:
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
        "gates": {k: getattr(opts, k) if getattr(opts, k) is not None else model.provenance.get(k)
                  for k in ("max_drop", "min_accuracy")},
        "bit_exact": verdict.bit_exact, "mismatches": verdict.mismatches,
        "first_mismatches": verdict.first_mismatches, "outputs": verdict.outputs,
        "unit": verdict.unit, "layers": report.layer_rows(model, verdict), "stack_bytes": verdict.stack_bytes,
        "sizes": sizes, "status": verdict.status, "exit_code": result.exit_code,
        "run_wall_s": round(result.wall_s, 3), "problems": verdict.problems, "passed": verdict.passed,
    }
