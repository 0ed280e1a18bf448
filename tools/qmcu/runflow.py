"""One run of the application on one board: runner -> records -> judge -> reports.

The same flow serves every runner (host program, QEMU semihosting, later UART and real boards).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from . import elfcheck, report
from .errors import QmcuError
from .intmodel import IntModel
from .judge import Verdict, judge
from .options import BuildOptions
from .records import ProtocolError, parse_stream
from .runners.result import RunResult, last_lines
from .vectors import make_vectors

logger = logging.getLogger(__name__)

FORWARD_CODE = ("qmcu_infer", "qmcu::Q", "qmcu::sat", "qmcu::round", "qmcu::mult", "qmcu::qApply", "qmcu::qrelu")
FORWARD_DATA = ("pytorch_quant_xor::",)
FORWARD_STATE = ("fwd::",)


def forward_sizes(elf: Path, tool_prefix: str) -> dict[str, int]:
    """Bytes of the forward path: its code + model constants (flash) and its state + activations (RAM)."""
    flash = ram = 0
    for name, size, kind in elfcheck.symbol_sizes(elf, tool_prefix):
        k = kind.lower()
        if k == "t" and name.startswith(FORWARD_CODE) or k == "r" and name.startswith(FORWARD_DATA):
            flash += size
        elif k in ("b", "d") and name.startswith(FORWARD_STATE):
            ram += size
    return {"forward_flash": flash, "forward_ram": ram}


def execute(opts: BuildOptions, program: Path) -> RunResult:
    board = opts.board
    if board.kind == "host":
        from .runners.host import run_host

        return run_host(program, opts.timeout)
    if board.kind == "qemu":
        from .runners.qemu import run_qemu

        return run_qemu(board, program, opts.timeout)
    raise QmcuError(f"board {board.id} is real hardware", "flash it with `scons board=<id> flash run` (issue 4)")


def run(opts: BuildOptions, program: Path, model: IntModel) -> dict[str, Any]:
    """Run, judge and write the reports next to the program; returns the report dict."""
    result = execute(opts, program)
    try:
        stream = parse_stream(result.output_text)
    except ProtocolError as err:
        raise QmcuError(f"the result stream from {opts.board.id} is incomplete or damaged: {err}; "
                        f"exit code {result.exit_code}; last lines: {last_lines(result.output_text)}",
                        "fix the firmware fault shown above, or raise timeout=") from err
    verdict = judge(stream, model, make_vectors(model, opts.mode))
    if result.exit_code != verdict.status:
        verdict.problems.append(f"process exit code {result.exit_code} differs from the END record's "
                                f"status {verdict.status}")
    doc = build_report(opts, program, model, verdict, result)
    # The firmware's own human lines; its accuracy line is re-derived by the judge, so not repeated.
    doc["console"] = [ln for ln in stream.text_lines if ln.strip() and not ln.startswith("int8 XOR accuracy")]
    out_dir = program.parent
    report.write_json(out_dir / opts.report_name, doc)
    if opts.mode == "xor":
        report.write_layers_csv(out_dir / "layers.csv", doc["layers"])
        title = f"decision surface computed on the target: {opts.board.id} {opts.corner.name}, {model.name}"
        report.write_surface_png(out_dir / "surface.png", verdict, title, verdict.labelled)
    return doc


def build_report(opts: BuildOptions, program: Path, model: IntModel, verdict: Verdict,
                 result: RunResult) -> dict[str, Any]:
    sizes = None
    if opts.board.is_target:
        prefix = "arm-none-eabi-"
        sizes = {**elfcheck.image_sizes(program, prefix), **forward_sizes(program, prefix)}
        sizes = {"image_flash": sizes["flash"], "image_ram": sizes["ram"], "forward_flash": sizes["forward_flash"],
                 "forward_ram": sizes["forward_ram"]}
    stats = verdict.count_stats()
    return {
        "board": opts.board.id, "corner": opts.corner.name, "std": opts.corner.std, "float": opts.corner.float,
        "model": model.name, "model_sha256": model.digest(), "mode": opts.mode, "opt": opts.opt,
        "correct": verdict.correct, "total": verdict.labelled, "inferences": verdict.inferences,
        "bit_exact": verdict.bit_exact, "mismatches": verdict.mismatches,
        "first_mismatches": verdict.first_mismatches, "outputs": verdict.outputs,
        "unit": verdict.unit, "counter_source": "on-target counter" if stats else None,
        "per_inference": stats, "layers": report.layer_rows(model, verdict), "stack_bytes": verdict.stack_bytes,
        "sizes": sizes, "status": verdict.status, "exit_code": result.exit_code,
        "run_wall_s": round(result.wall_s, 3), "problems": verdict.problems, "passed": verdict.passed,
    }
