"""The judge: turns what a run gave (record streams, exit codes, the QEMU plugin's counts) into a verdict.

Runners never judge; every verdict rule is here. Every output byte is compared with the Python
integer reference; the inputs the target used are compared with the host's vectors (which proves a
FLOAT=1 target quantized them identically); the process's exit code must match the END record; the
on-target counter and the plugin must agree; the user's accuracy gates hold on the whole test set.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qmcu import interrupt
from qmcu.boards import Board, counter_warning
from qmcu.codegen.vectors import Vectors
from qmcu.quant import reference
from qmcu.quant.intmodel import IntModel
from qmcu.quant.reference import predictions
from qmcu.run.records import STATUS_ARENA_OVERRUN, STATUS_FAULT, STATUS_STACK_OVERFLOW, RecordStream, Result, fault_line

logger = logging.getLogger(__name__)

MAX_LISTED = 20


@dataclass
class Verdict:
    model: str
    mode: str
    unit: str
    inferences: int
    correct: int
    reference_correct: int
    labelled: int
    predictions: list[int]
    outputs: list[list[int]]
    bit_exact: bool
    mismatches: int
    first_mismatches: list[dict[str, object]]
    counts: list[int]
    layer_counts: dict[str, int]
    stack_bytes: int
    status: int
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PartRun:
    """What one image's run gave the judge: its records, the process's exit code, the QEMU plugin's
    per-inference counts (None where there is no plugin) and the rows the image held."""

    stream: RecordStream
    exit_code: int
    plugin: list[int] | None
    vectors: Vectors


@dataclass(frozen=True)
class Gates:
    """The accuracy gates (accuracy_gates): the float model's accuracy and the user's max_drop / min_accuracy."""

    float_accuracy: float | None = None
    max_drop: float | None = None
    min_accuracy: float | None = None


def judge_run(parts: list[PartRun], model: IntModel, board: Board | None = None,
              gates: Gates | None = None) -> tuple[Verdict, dict[str, Any]]:
    """The verdict on a whole run (one image, or a test set split over several, in order) and its
    instruction figures (judge_counts): each part judged (judge), the parts merged (merge_parts),
    then the accuracy gates and the counter checks on the whole."""
    verdicts = [judge(p.stream, model, p.vectors, p.exit_code) for p in parts]
    verdict = merge_parts(verdicts, [p.vectors.first for p in parts])
    g = gates or Gates()
    verdict.problems += accuracy_gates(verdict, g.float_accuracy, g.max_drop, g.min_accuracy)
    plugin = None if any(p.plugin is None for p in parts) else [c for p in parts for c in p.plugin or []]
    return verdict, judge_counts(verdict, plugin, board)


def describe_exit(code: int) -> str:
    """An exit code in words: a negative one is the signal that killed the process."""
    if code < 0:
        return f"killed by {interrupt.signal_name(-code)} (signal {-code})"
    known = {STATUS_FAULT: " (the firmware's fault status)", STATUS_STACK_OVERFLOW: " (the firmware's stack-overflow status)"}
    return f"exit code {code}{known.get(code, '')}"


def judge(stream: RecordStream, model: IntModel, vectors: Vectors, exit_code: int | None = None) -> Verdict:
    """Every verdict rule on one run's records (and, given, the process's exit code, which must be the END
    record's status); accuracy itself is gated by accuracy_gates (the model's max_drop / min_accuracy:
    examples/xor.py demands 4/4)."""
    problems: list[str] = []
    begin, end = stream.begin, stream.end
    if begin.model != model.name:
        problems.append(f"target ran model {begin.model!r}, expected {model.name!r} (stale image?)")
    if begin.mode != vectors.mode or begin.count != vectors.count:
        problems.append(f"target ran mode {begin.mode} x{begin.count}, expected {vectors.mode} x{vectors.count}")
    shape_problem = _shape_problem(stream, model)
    results: list[Result] = stream.results
    if shape_problem is not None:
        # Results of another shape cannot be compared value by value: judge none of them (one line, no traceback).
        problems.append(shape_problem)
        results = []
    got_in = np.array([r.inputs for r in results], dtype=np.int64).reshape(-1, model.input_size)
    got_out = np.array([r.outputs for r in results], dtype=np.int64).reshape(-1, model.output_size)
    n = min(len(got_in), vectors.count)
    if n < vectors.count and shape_problem is None:
        problems.append(f"only {n} of {vectors.count} results")

    bad_in = np.nonzero((got_in[:n] != vectors.inputs_q[:n]).any(axis=1))[0]
    if bad_in.size:
        i = int(bad_in[0])
        problems.append(f"{bad_in.size} inputs differ from the host's quantization, first at index {i}: "
                        f"target {got_in[i].tolist()} host {vectors.inputs_q[i].tolist()}")

    expected = reference.forward(model, vectors.inputs_q[:n])
    bad = np.nonzero((got_out[:n] != expected).any(axis=1))[0]
    first = [{"index": int(i), "inputs": vectors.inputs_q[i].tolist(), "target": got_out[i].tolist(),
              "reference": expected[i].tolist()} for i in bad[:MAX_LISTED]]
    if bad.size:
        f = first[0]
        problems.append(f"{bad.size} of {n} outputs differ from the integer reference, first at index {f['index']} "
                        f"input {f['inputs']}: target {f['target']} reference {f['reference']}")

    labels = vectors.labels
    preds = predictions(model, got_out[: len(labels)]) if len(labels) else np.zeros(0, np.int64)
    correct = int((preds == labels[: len(preds)]).sum())
    ref_preds = predictions(model, expected[: len(labels)]) if len(labels) else np.zeros(0, np.int64)
    reference_correct = int((ref_preds == labels[: len(ref_preds)]).sum())
    if len(labels) and shape_problem is None:
        if stream.summary is None:
            problems.append("no SUM record although the vectors are labelled")
        elif (stream.summary.correct, stream.summary.total) != (correct, len(labels)):
            problems.append(f"target says {stream.summary.correct}/{stream.summary.total}, the judge counts "
                            f"{correct}/{len(labels)}")
    if end.status == STATUS_ARENA_OVERRUN and model.is_graph:
        problems.append(f"firmware exit status {end.status}: the guard after the activation arena changed during the "
                        "run (a kernel wrote past the memory plan)")
    elif end.status != 0:
        problems.append(f"firmware exit status {end.status}")
    fault = fault_line(stream.text_lines)
    if fault is not None:
        problems.append(f"the firmware printed {fault.strip()!r}")
    frozen = _frozen_counter(stream)
    if frozen is not None:
        problems.append(frozen)
    if exit_code is not None and exit_code != end.status:
        problems.append(f"process {describe_exit(exit_code)} differs from the END record's status {end.status}")

    return Verdict(
        model=begin.model, mode=begin.mode, unit=begin.unit, inferences=n, correct=correct,
        reference_correct=reference_correct, labelled=len(labels), predictions=preds.tolist(),
        outputs=got_out[:n].tolist(), bit_exact=not bad.size and n == vectors.count, mismatches=int(bad.size),
        first_mismatches=first, counts=[r.count for r in stream.results],
        layer_counts=dict(stream.layers) if any(stream.layers.values()) else {},
        stack_bytes=end.stack, status=end.status, problems=problems,
    )


def _frozen_counter(stream: RecordStream) -> str | None:
    """A cycle counter that did not advance: every inference (or layer) takes cycles, so a 0 means it stood still.

    A counter that stops gives zero deltas from then on: all zeros when it never ran (or stopped before
    the first inference), zeros from some index on when it stopped mid-run. Only cycle counts are held
    to this; an instruction count of 0 is how a board without a counter reports.
    """
    if stream.begin.unit != "cycles":
        return None
    counts = [r.count for r in stream.results]
    zeros = [i for i, n in enumerate(counts) if n == 0]
    layers = sorted(name for name, n in stream.layers.items() if n == 0)
    if not zeros and not layers:
        return None
    where = (f"{len(zeros)} of {len(counts)} inferences took 0 cycles (first at index {zeros[0]})" if zeros
             else f"layer {layers[0]} took 0 cycles")
    return (f"the cycle counter did not advance: {where}; the DWT counter was stopped (a debugger that disconnects "
            "clears DEMCR), so these cycle counts are not measurements")


def _shape_problem(stream: RecordStream, model: IntModel) -> str | None:
    """One line when the results do not carry the model's number of inputs and outputs (another model's image?)."""
    for what, size, widths in (("input", model.input_size, {len(r.inputs) for r in stream.results}),
                               ("output", model.output_size, {len(r.outputs) for r in stream.results})):
        wrong = sorted(w for w in widths if w != size)
        if wrong:
            return (f"the target's results carry {wrong[0]} {what} values each, model {model.name!r} has {size} "
                    f"(an image built for another model? rebuild it)")
    if stream.begin.outputs != model.output_size:
        return (f"the target's BEGIN says outputs={stream.begin.outputs}, model {model.name!r} has "
                f"{model.output_size} (an image built for another model? rebuild it)")
    return None


def accuracy_gates(verdict: Verdict, float_accuracy: float | None, max_drop: float | None,
                   min_accuracy: float | None) -> list[str]:
    """The user's accuracy gates on the target's accuracy: a drop beyond max_drop, or below min_accuracy."""
    if not verdict.labelled:
        return []
    acc = verdict.correct / verdict.labelled
    problems = []
    if max_drop is not None and float_accuracy is not None and acc < float_accuracy - max_drop - 1e-12:
        problems.append(f"target accuracy {acc * 100:.2f} % is {(float_accuracy - acc) * 100:.2f} points below the float "
                        f"model's {float_accuracy * 100:.2f} %, more than max_drop={max_drop:g}")
    if min_accuracy is not None and acc < min_accuracy - 1e-12:
        problems.append(f"target accuracy {acc * 100:.2f} % is below min_accuracy={min_accuracy:g}")
    return problems


def judge_counts(verdict: Verdict, plugin: list[int] | None, board: Board | None = None) -> dict[str, Any]:
    """Instruction figures (the report's per_inference, counter_source and counts ...): the on-target
    counter where the board has one, else the host plugin.

    Where both exist they must differ by one constant (the counter reads and the call around
    qmcu_infer); anything else means one of them is wrong, and the verdict gets the problem. A board
    whose counter read 0 throughout gets a warning (boards.counter_warning), not a failure.
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
    info["counts"] = target or plugin  # the figures per inference behind per_inference
    return info


def _stats(values: list[int]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def merge_parts(verdicts: list[Verdict], firsts: list[int]) -> Verdict:
    """One verdict for a test set split over several images (parts.py): the parts' results in order,
    every problem named with its image; per-layer counts from the first image."""
    if len(verdicts) == 1:
        return verdicts[0]
    n = len(verdicts)
    problems = [f"image {k + 1} of {n} (rows from {first}): {p}"
                for k, (v, first) in enumerate(zip(verdicts, firsts, strict=True)) for p in v.problems]
    first_mismatches = [{**m, "index": int(str(m["index"])) + first}
                        for v, first in zip(verdicts, firsts, strict=True) for m in v.first_mismatches][:MAX_LISTED]
    head = verdicts[0]
    return Verdict(
        model=head.model, mode=head.mode, unit=head.unit, inferences=sum(v.inferences for v in verdicts),
        correct=sum(v.correct for v in verdicts), reference_correct=sum(v.reference_correct for v in verdicts),
        labelled=sum(v.labelled for v in verdicts), predictions=[p for v in verdicts for p in v.predictions],
        outputs=[o for v in verdicts for o in v.outputs], bit_exact=all(v.bit_exact for v in verdicts),
        mismatches=sum(v.mismatches for v in verdicts), first_mismatches=first_mismatches,
        counts=[c for v in verdicts for c in v.counts], layer_counts=head.layer_counts,
        stack_bytes=max(v.stack_bytes for v in verdicts), status=next((v.status for v in verdicts if v.status), 0),
        problems=problems,
    )
