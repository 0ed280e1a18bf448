"""The test vectors an application run covers, and their C++ header.

Modes:
  test        the model's test set (testset.npz next to its intmodel.json): its labelled rows, then
              its unlabelled ones (judged bit-exact, not counted in accuracy); the seed tutorial calls
              this mode `xor` (the four XOR points, then the 41x41 decision-surface grid)
  exhaustive  every int8 input of a 1- or 2-input model (65,536 pairs), generated on the target by
              loops (no table)
Inputs are quantized here, on the host; FLOAT=1 builds also get the float values and quantize
on the target, and the judge checks both agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qmcu import atomic
from qmcu.codegen.cpp import banner, float_literal
from qmcu.errors import QmcuError
from qmcu.quant.intmodel import IntModel
from qmcu.quant.reference import positive_min_q, quantize_rows, target_order

MODES = ("test", "xor", "exhaustive")
MAX_EXHAUSTIVE_INPUTS = 2


@dataclass(frozen=True)
class Vectors:
    mode: str
    inputs_q: np.ndarray  # [N, 2] int8 values (int64)
    inputs_f: np.ndarray | None  # [N, 2] float32, None when generated on the target
    labels: np.ndarray  # labels of the first len(labels) vectors

    first: int = 0  # index of the first row in the whole test set (a part of a split test set)

    @property
    def count(self) -> int:
        return int(self.inputs_q.shape[0])



def exhaustive_inputs(width: int) -> np.ndarray:
    """Every int8 input, the first input outermost: row i holds the base-256 digits of i, minus 128 (the
    order the firmware's loops produce)."""
    grids = np.meshgrid(*[np.arange(-128, 128)] * width, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)


def _load_rows(model: IntModel, testset: Path) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) of a test-set snapshot: the labelled rows, then the unlabelled ones."""
    try:
        with np.load(testset, allow_pickle=False) as npz:
            x, y = npz["x_test"].astype(np.float32), npz["y_test"].astype(np.int64)
            extra = npz["x_extra"].astype(np.float32) if "x_extra" in npz.files else np.zeros((0, x.shape[-1]), np.float32)
    except (OSError, ValueError, KeyError) as err:
        raise QmcuError(f"test set {testset} of model {model.name} cannot be read ({err})",
                        "rebuild the model (scons regenerates it), or restore a committed one with git checkout") from err
    if x.ndim != 2 or x.shape[1] != model.input_size or extra.ndim != 2 or extra.shape[1] != model.input_size:
        raise QmcuError(f"test set {testset} has {x.shape[-1]} features, model {model.name} takes {model.input_size}",
                        "delete the model's build folder and rerun")
    return (np.concatenate([x, extra]) if len(extra) else x), y


def row_count(model: IntModel, mode: str, testset: Path) -> int:
    """How many vectors a run of this mode has (the build plans its images from it)."""
    if mode == "exhaustive":
        return 256 ** model.input_size
    return len(_load_rows(model, testset)[0])


def make_vectors(model: IntModel, mode: str, testset: Path, rows: tuple[int, int] | None = None) -> Vectors:
    """The vectors of a run; `testset` is the model's test-set snapshot (testset.npz next to its intmodel);
    rows: (start, stop), the part of a test set split over several images (see parts.py)."""
    if mode not in MODES:
        raise QmcuError(f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    if mode == "exhaustive":
        if model.input_size > MAX_EXHAUSTIVE_INPUTS:
            raise QmcuError(f"mode=exhaustive runs every int8 input: model {model.name} has {model.input_size} inputs "
                            f"(256^{model.input_size} vectors)", "use mode=test; exhaustive is for models of 1 or 2 inputs")
        return Vectors(mode, exhaustive_inputs(model.input_size), None, np.zeros(0, dtype=np.int64))
    floats, y = _load_rows(model, testset)
    start, stop = (0, len(floats)) if rows is None else rows
    if not 0 <= start < stop <= len(floats):
        raise QmcuError(f"the image's part covers rows {start}..{stop - 1}, the test set has {len(floats)}",
                        "rerun: the build plans its images from the current test set")
    floats = floats[start:stop]
    return Vectors(mode, quantize_rows(model, floats), target_order(model, floats), y[start:stop], first=start)


def render_vectors_header(model: IntModel, vectors: Vectors) -> str:
    n = vectors.count
    lines = [
        banner(f"qmcu test vectors, mode '{vectors.mode}'", {"model": model.name, "model_sha256": model.digest()}),
        "#pragma once",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "namespace qmcu_vectors {",
        "",
        f"constexpr const char* kMode = \"{vectors.mode}\";",
        f"constexpr const char* kModelName = \"{model.name}\";",
        f"constexpr size_t kCount = {n};",
        f"constexpr size_t kFirstIndex = {vectors.first};  // of the whole test set (a split test set's part)",
        f"constexpr size_t kLabelledCount = {len(vectors.labels)};",
        f"constexpr int32_t kPositiveMinQ = {positive_min_q(model)};  // pred = output >= this",
    ]
    if vectors.mode == "exhaustive":
        width = vectors.inputs_q.shape[1]
        lines += ["#define QMCU_VECTORS_EXHAUSTIVE 1",
                  "constexpr uint8_t kLabels[1] = {0};  // no labels: placeholders the application never reads",
                  f"constexpr int32_t kDisplayE4[1][{width}] = {{}};"]
    else:
        labels = ", ".join(str(int(v)) for v in vectors.labels)
        width = vectors.inputs_q.shape[1]
        rows_q = ",\n    ".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in vectors.inputs_q)
        assert vectors.inputs_f is not None
        rows_f = ",\n    ".join("{" + ", ".join(float_literal(v) for v in row) + "}" for row in vectors.inputs_f)
        # Display values in 1e-4 units so even a FLOAT=0 build prints the inputs with 4 decimals.
        e4 = ",\n    ".join("{" + ", ".join(str(round(float(v) * 10000)) for v in row) + "}"
                            for row in vectors.inputs_f[: len(vectors.labels)])
        lines += [
            f"constexpr uint8_t kLabels[{len(vectors.labels)}] = {{{labels}}};",
            f"constexpr int32_t kDisplayE4[{len(vectors.labels)}][{width}] = {{\n    {e4}}};",
            f"constexpr int8_t kInputsQ[{n}][{width}] = {{\n    {rows_q}}};",
            "#if QMCU_FLOAT",
            f"constexpr float kInputsF[{n}][{width}] = {{\n    {rows_f}}};",
            "#endif",
        ]
    lines += ["", "}  // namespace qmcu_vectors", ""]
    return "\n".join(lines)


def emit_vectors(model: IntModel, mode: str, path: Path, testset: Path, rows: tuple[int, int] | None = None) -> None:
    """rows: (start, stop) of a test set split over several images (see parts.py)."""
    atomic.write_text(path, render_vectors_header(model, make_vectors(model, mode, testset, rows)))
