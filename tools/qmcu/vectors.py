"""The test vectors an application run covers, and their C++ header.

Modes:
  xor         the four XOR points (labelled) followed by the 41x41 decision-surface grid
  exhaustive  all 65,536 int8 input pairs, generated on the target by two loops (no table)
  test        a model's whole test set (testset.npz next to its intmodel.json), labelled
Inputs are quantized here, on the host; FLOAT=1 builds also get the float values and quantize
on the target, and the judge checks both agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import atomic
from .cpp import banner, float_literal
from .errors import QmcuError
from .intmodel import IntModel
from .qmath import quantize_value
from .xor_data import XOR_INPUTS, XOR_LABELS, surface_grid

MODES = ("xor", "exhaustive", "test")
GRID_POINTS = 41


@dataclass(frozen=True)
class Vectors:
    mode: str
    inputs_q: np.ndarray  # [N, 2] int8 values (int64)
    inputs_f: np.ndarray | None  # [N, 2] float32, None when generated on the target
    labels: np.ndarray  # labels of the first len(labels) vectors

    @property
    def count(self) -> int:
        return int(self.inputs_q.shape[0])


def exhaustive_inputs() -> np.ndarray:
    """Index (a + 128) * 256 + (b + 128) holds (a, b): the order the firmware's loops produce."""
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1).astype(np.int64)


def make_vectors(model: IntModel, mode: str, testset: Path | None = None) -> Vectors:
    """The vectors of a run; `testset` is a model file's test-set snapshot (testset.npz next to its intmodel)."""
    if mode not in MODES:
        raise QmcuError(f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    if testset is not None:
        with np.load(testset, allow_pickle=False) as npz:
            x, y = npz["x_test"].astype(np.float32), npz["y_test"].astype(np.int64)
        if x.ndim != 2 or x.shape[1] != model.input_size:
            raise QmcuError(f"test set {testset} has {x.shape[-1]} features, model {model.name} takes {model.input_size}",
                            "delete the model's build folder and rerun")
        return Vectors(mode, quantize_rows(model, x), x, y)
    if mode == "exhaustive":
        return Vectors(mode, exhaustive_inputs(), None, np.zeros(0, dtype=np.int64))
    if mode == "test":
        raise QmcuError(f"mode test of model {model.name} needs its test set (testset.npz next to its intmodel.json)",
                        "rebuild the model (scons regenerates it)")
    floats = np.concatenate([XOR_INPUTS, surface_grid(GRID_POINTS)]).astype(np.float32)
    return Vectors(mode, quantize_rows(model, floats), floats, XOR_LABELS.copy())


def quantize_rows(model: IntModel, floats: np.ndarray) -> np.ndarray:
    """The host-side input quantization (float32 division, lround, zero point, clamp) of every value."""
    return np.array([[quantize_value(float(v), model.input_scale, model.input_zero_point) for v in row] for row in floats],
                    dtype=np.int64).reshape(len(floats), -1)


def predictions(model: IntModel, outputs: np.ndarray) -> np.ndarray:
    """One output: probability above 0.5; several: the first arg-max (what the firmware computes)."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] >= positive_min_q(model)).astype(np.int64)
    return outputs.argmax(axis=1).astype(np.int64)


def positive_min_q(model: IntModel) -> int:
    """Smallest int8 output whose probability (q - zp) * scale exceeds 0.5: pred = out >= this."""
    out = model.layers[-1]
    scale, zp = out.output_scale, out.output_zero_point
    for q in range(-128, 128):
        if (q - zp) * scale > 0.5:
            return q
    return 128


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
        f"constexpr size_t kLabelledCount = {len(vectors.labels)};",
        f"constexpr int32_t kPositiveMinQ = {positive_min_q(model)};  // pred = output >= this",
    ]
    if vectors.mode == "exhaustive":
        lines += ["#define QMCU_VECTORS_EXHAUSTIVE 1"]
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


def emit_vectors(model: IntModel, mode: str, path: Path, testset: Path | None = None) -> None:
    atomic.write_text(path, render_vectors_header(model, make_vectors(model, mode, testset)))
