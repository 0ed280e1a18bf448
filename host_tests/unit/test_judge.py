"""The judge shown wrong results: every rule of judge() has a stream that breaks it, and only it; and the
rules on the rest of a run's evidence (exit code, the QEMU plugin's counts, a test set split over images).

Streams are written in the firmware's record format (records.format_record) and read back by the
real parser, so what the judge sees is exactly what a run would hand it. The base stream is what a
correct target prints for the committed textbook model; each test changes one thing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import TEXTBOOK_TESTSET
from qmcu.boards import load_board
from qmcu.codegen.vectors import Vectors, make_vectors
from qmcu.judge.verdict import Gates, PartRun, Verdict, accuracy_gates, judge, judge_counts, judge_run
from qmcu.quant import reference
from qmcu.quant.intmodel import IntModel
from qmcu.quant.reference import predictions
from qmcu.run.records import STATUS_FAULT, Begin, End, RecordStream, Result, format_record, parse_stream


@pytest.fixture(scope="module")
def vectors(textbook_model: IntModel) -> Vectors:
    return make_vectors(textbook_model, "xor", TEXTBOOK_TESTSET)


def stream_text(model: IntModel, vectors: Vectors, *, inputs: np.ndarray | None = None,
                outputs: np.ndarray | None = None, name: str | None = None, mode: str | None = None,
                count: int | None = None, summary: tuple[int, int] | None = None, with_summary: bool = True,
                status: int = 0) -> str:
    """What a target prints; by default a correct run (reference outputs, host inputs, honest SUM, status 0)."""
    ins = vectors.inputs_q if inputs is None else inputs
    outs = reference.forward(model, vectors.inputs_q) if outputs is None else outputs
    n = len(ins) if count is None else count
    lines = ["boot banner\n", format_record(0, "BEGIN", [
        ("proto", 1), ("model", name or model.name), ("mode", mode or vectors.mode), ("count", n),
        ("outputs", len(outs[0])), ("unit", "instructions")])]
    for i in range(n):
        lines.append(format_record(1 + i, "R", [("i", i), ("in", [int(v) for v in ins[i]]),
                                                ("out", [int(v) for v in outs[i]]), ("n", 400 + i % 7)]))
    seq = 1 + n
    labels = vectors.labels
    if with_summary:
        if summary is None:
            preds = predictions(model, np.asarray(outs[: len(labels)], dtype=np.int64))
            summary = (int((preds == labels).sum()), len(labels))
        lines.append(format_record(seq, "SUM", [("correct", summary[0]), ("total", summary[1])]))
        seq += 1
    lines.append(format_record(seq, "END", [("status", status), ("records", n), ("stack", 688)]))
    return "".join(lines)


def verdict_of(model: IntModel, vectors: Vectors, text: str) -> Verdict:
    stream: RecordStream = parse_stream(text)
    verdict = judge(stream, model, vectors)
    for problem in verdict.problems:
        assert "\n" not in problem
    return verdict


def only_problem(verdict: Verdict) -> str:
    assert len(verdict.problems) == 1, verdict.problems
    assert not verdict.passed
    return verdict.problems[0]


def test_a_correct_run_passes(textbook_model: IntModel, vectors: Vectors) -> None:
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors))
    assert v.passed and v.problems == []
    assert v.bit_exact and v.mismatches == 0 and v.inferences == vectors.count == 1685
    assert (v.correct, v.reference_correct, v.labelled) == (4, 4, 4)
    assert v.predictions == [0, 1, 1, 0] and v.status == 0 and v.stack_bytes == 688


def test_a_wrong_output_byte_fails_and_is_named(textbook_model: IntModel, vectors: Vectors) -> None:
    # An unlabelled grid point: only the bit-exact rule can notice (accuracy and SUM stay right).
    outs = reference.forward(textbook_model, vectors.inputs_q).copy()
    k = 1000
    outs[k, 0] += 1 if outs[k, 0] < 127 else -1
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, outputs=outs))
    want = reference.forward(textbook_model, vectors.inputs_q[k: k + 1])[0].tolist()
    assert only_problem(v) == (f"1 of 1685 outputs differ from the integer reference, first at index {k} input "
                               f"{vectors.inputs_q[k].tolist()}: target {outs[k].tolist()} reference {want}")
    assert not v.bit_exact and v.mismatches == 1
    assert v.first_mismatches == [{"index": k, "inputs": vectors.inputs_q[k].tolist(), "target": outs[k].tolist(),
                                   "reference": want}]


def test_every_output_wrong_by_one_is_counted(textbook_model: IntModel, vectors: Vectors) -> None:
    """Off-by-one everywhere (a rounding bug): every grid output is counted, the first 20 listed."""
    outs = reference.forward(textbook_model, vectors.inputs_q).copy()
    outs[4:] = np.where(outs[4:] < 127, outs[4:] + 1, outs[4:] - 1)
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, outputs=outs))
    assert v.mismatches == 1685 - 4 and len(v.first_mismatches) == 20 and not v.bit_exact
    assert v.problems[0].startswith("1681 of 1685 outputs differ from the integer reference, first at index 4 ")


def test_a_wrong_input_fails_and_is_named(textbook_model: IntModel, vectors: Vectors) -> None:
    # The target quantized one input differently (a FLOAT=1 rounding bug) but computed its output from it:
    # the outputs are then right for what it used, so only the input rule can notice.
    k = 700
    ins = vectors.inputs_q.copy()
    ins[k, 1] += 1 if ins[k, 1] < 127 else -1
    outs = reference.forward(textbook_model, vectors.inputs_q)
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, inputs=ins, outputs=outs))
    assert only_problem(v) == (f"1 inputs differ from the host's quantization, first at index {k}: target "
                               f"{ins[k].tolist()} host {vectors.inputs_q[k].tolist()}")


def test_a_wrong_sum_fails(textbook_model: IntModel, vectors: Vectors) -> None:
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, summary=(3, 4)))
    assert only_problem(v) == "target says 3/4, the judge counts 4/4"
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, summary=(4, 5)))
    assert only_problem(v) == "target says 4/5, the judge counts 4/4"
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, with_summary=False))
    assert only_problem(v) == "no SUM record although the vectors are labelled"


@pytest.mark.parametrize("status", [1, 3, -1, 2**31 - 1])
def test_a_non_zero_end_status_fails(textbook_model: IntModel, vectors: Vectors, status: int) -> None:
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, status=status))
    assert only_problem(v) == f"firmware exit status {status}"
    assert v.status == status and v.bit_exact  # every byte right, and still a failure


def test_a_wrong_model_name_fails(textbook_model: IntModel, vectors: Vectors) -> None:
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, name="xor-trained"))
    assert only_problem(v) == "target ran model 'xor-trained', expected 'xor-textbook' (stale image?)"
    assert v.model == "xor-trained"


def test_a_wrong_mode_fails(textbook_model: IntModel, vectors: Vectors) -> None:
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, mode="exhaustive"))
    assert only_problem(v) == "target ran mode exhaustive x1685, expected xor x1685"


def test_too_few_results_fail(textbook_model: IntModel, vectors: Vectors) -> None:
    # A target that ran 1000 of the 1685 vectors, all of them right (BEGIN and END agree with it).
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, count=1000))
    assert v.problems == ["target ran mode xor x1000, expected xor x1685", "only 1000 of 1685 results"]
    assert v.inferences == 1000 and not v.bit_exact and v.mismatches == 0


def test_too_many_results_fail(textbook_model: IntModel, vectors: Vectors) -> None:
    ins = np.concatenate([vectors.inputs_q, vectors.inputs_q[:3]])
    outs = reference.forward(textbook_model, ins)
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, inputs=ins, outputs=outs))
    assert v.problems == ["target ran mode xor x1688, expected xor x1685"]


def test_accuracy_below_required_fails_unless_not_required(textbook_model: IntModel, vectors: Vectors) -> None:
    # Bit-exact outputs, honest SUM, but the model itself gets one labelled point wrong: only a gate fails it.
    flipped = dataclasses.replace(vectors, labels=np.array([1, 1, 1, 0], dtype=np.int64))
    v = verdict_of(textbook_model, flipped, stream_text(textbook_model, flipped))
    assert v.passed and (v.correct, v.reference_correct, v.labelled) == (3, 3, 4) and v.bit_exact
    assert accuracy_gates(v, None, None, 1.0) == ["target accuracy 75.00 % is below min_accuracy=1"]
    assert accuracy_gates(v, None, None, None) == []


def test_accuracy_is_the_targets_not_the_references(textbook_model: IntModel, vectors: Vectors) -> None:
    # The target got labelled point 1 wrong (output below the positive threshold): the judge's accuracy
    # comes from the target's outputs, the reference's separately.
    outs = reference.forward(textbook_model, vectors.inputs_q).copy()
    outs[1, 0] = -100
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, outputs=outs, summary=(3, 4)))
    assert (v.correct, v.reference_correct) == (3, 4)
    assert only_problem(v).startswith("1 of 1685 outputs differ from the integer reference, first at index 1 ")
    assert accuracy_gates(v, None, None, 1.0) == ["target accuracy 75.00 % is below min_accuracy=1"]


@pytest.mark.parametrize("width", [1, 3])
def test_results_with_the_wrong_number_of_inputs_are_one_problem(textbook_model: IntModel, vectors: Vectors,
                                                                  width: int) -> None:
    """Another model's image (item 7): one line naming the widths, not a reshape traceback or a silent regroup."""
    line = (f"the target's results carry {width} input values each, model 'xor-textbook' has 2 "
            "(an image built for another model? rebuild it)")
    for count in (1, 4, 1685):
        ins = np.zeros((count, width), dtype=np.int64)
        v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, inputs=ins, count=count))
        mode = [] if count == 1685 else [f"target ran mode xor x{count}, expected xor x1685"]
        assert v.problems == [*mode, line]
        assert not v.passed and not v.bit_exact and v.inferences == 0


def test_results_with_the_wrong_number_of_outputs_are_one_problem(textbook_model: IntModel, vectors: Vectors) -> None:
    outs = np.zeros((vectors.count, 2), dtype=np.int64)
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors, outputs=outs, summary=(0, 4)))
    assert v.problems[0] == ("the target's results carry 2 output values each, model 'xor-textbook' has 1 "
                             "(an image built for another model? rebuild it)")
    assert not v.passed and not v.bit_exact and v.inferences == 0


def test_exhaustive_mode_needs_no_sum(textbook_model: IntModel) -> None:
    # 65,536 results: built as records directly (formatting and parsing them all would take seconds).
    vectors = make_vectors(textbook_model, "exhaustive", TEXTBOOK_TESTSET)
    outs = reference.forward(textbook_model, vectors.inputs_q)

    def stream(outputs: np.ndarray) -> RecordStream:
        results = [Result(i, tuple(int(v) for v in vectors.inputs_q[i]), (int(outputs[i, 0]),), 0)
                   for i in range(vectors.count)]
        return RecordStream(Begin(1, textbook_model.name, "exhaustive", vectors.count, 1, "none"), results, None,
                            End(0, vectors.count, 0), [])

    assert judge(stream(outs), textbook_model, vectors).passed
    bad = outs.copy()
    bad[65535, 0] ^= 1
    v = judge(stream(bad), textbook_model, vectors)
    assert only_problem(v).startswith("1 of 65536 outputs differ from the integer reference, first at index 65535 "
                                      "input [127, 127]")


# ------------------------------------------------ the run's other evidence: exit code, plugin counts, parts

def counts_of(vectors: Vectors) -> list[int]:
    """The counts stream_text reports, per inference."""
    return [400 + i % 7 for i in range(vectors.count)]


def test_an_exit_code_other_than_the_end_status_fails(textbook_model: IntModel, vectors: Vectors) -> None:
    stream = parse_stream(stream_text(textbook_model, vectors))
    assert judge(stream, textbook_model, vectors, exit_code=0).passed
    fault = judge(stream, textbook_model, vectors, exit_code=STATUS_FAULT)
    assert only_problem(fault) == "process exit code 3 (the firmware's fault status) differs from the END record's status 0"
    killed = judge(stream, textbook_model, vectors, exit_code=-9)
    assert only_problem(killed) == "process killed by SIGKILL (signal 9) differs from the END record's status 0"


def test_counter_and_plugin_one_constant_apart_pass(textbook_model: IntModel, vectors: Vectors) -> None:
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors))
    info = judge_counts(v, [c - 12 for c in counts_of(vectors)])
    assert v.passed and info["counter_minus_plugin"] == 12
    assert info["counter_source"] == "on-target counter" and info["counts"] == counts_of(vectors)
    assert info["per_inference"] == {"min": 400, "median": 403, "max": 406}
    assert info["plugin_per_inference"] == {"min": 388, "median": 391, "max": 394}


def test_counter_and_plugin_that_disagree_fail(textbook_model: IntModel, vectors: Vectors) -> None:
    v = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors))
    plugin = counts_of(vectors)
    plugin[5] += 1
    info = judge_counts(v, plugin)
    assert only_problem(v) == "on-target counter and plugin disagree by varying amounts [-1, 0]"
    assert "counter_minus_plugin" not in info
    short = verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors))
    judge_counts(short, counts_of(vectors)[:-1])
    assert only_problem(short) == "the plugin saw 1684 qmcu_infer calls, the target reported 1685"


def test_a_counter_that_read_zero_leaves_the_plugin_figures_and_a_warning(textbook_model: IntModel,
                                                                          vectors: Vectors) -> None:
    v = dataclasses.replace(verdict_of(textbook_model, vectors, stream_text(textbook_model, vectors)),
                            counts=[0] * vectors.count)
    info = judge_counts(v, counts_of(vectors), load_board("qemu-m4"))
    assert v.passed and info["counter_source"] == "QEMU plugin (qmcu_infer entry to return)"
    assert info["counts"] == counts_of(vectors)
    assert info["counter_warning"].startswith("board qemu-m4's ")
    nothing = judge_counts(v, None)
    assert (nothing["per_inference"], nothing["counter_source"], nothing["counts"]) == (None, None, None)


def test_judge_run_judges_a_test_set_split_over_images(textbook_model: IntModel) -> None:
    halves = [make_vectors(textbook_model, "xor", TEXTBOOK_TESTSET, rows) for rows in ((0, 1000), (1000, 1685))]

    def parts(exit_codes: tuple[int, int], plugin: tuple[bool, bool]) -> list[PartRun]:
        return [PartRun(parse_stream(stream_text(textbook_model, v)), code, [c - 5 for c in counts_of(v)] if p else None, v)
                for v, code, p in zip(halves, exit_codes, plugin, strict=True)]

    verdict, info = judge_run(parts((0, 0), (True, True)), textbook_model, gates=Gates(min_accuracy=1.0))
    assert verdict.passed and verdict.inferences == 1685 and (verdict.correct, verdict.labelled) == (4, 4)
    assert info["counter_minus_plugin"] == 5 and len(info["counts"]) == 1685
    verdict, info = judge_run(parts((0, STATUS_FAULT), (True, False)), textbook_model)
    assert only_problem(verdict) == ("image 2 of 2 (rows from 1000): process exit code 3 (the firmware's fault status) "
                                     "differs from the END record's status 0")
    assert info["plugin_per_inference"] is None and "counter_minus_plugin" not in info
    verdict, _ = judge_run(parts((0, 0), (True, True)), textbook_model, gates=Gates(float_accuracy=1.0, max_drop=0.0,
                                                                                   min_accuracy=1.01))
    assert only_problem(verdict) == "target accuracy 100.00 % is below min_accuracy=1.01"
