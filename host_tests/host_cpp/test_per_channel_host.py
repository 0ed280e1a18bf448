"""Per-channel kernels and a generated per-channel model.hpp built with the host g++: bit-exact against
reference.dense, and the image check accepts the model.
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import compile_host
from per_channel_cases import INPUTS_PER_LAYER, _cpp_int8, _data, layer_inputs, random_per_channel_layer, skewed_model
from qmcu.build.image_model import check_image_holds_model
from qmcu.codegen.kernel_layout import PreparedDense, prepare_dense, render_prepared
from qmcu.codegen.model_header import render_model_header
from qmcu.errors import QmcuError
from qmcu.quant import intmodel, reference
from qmcu.quant.intmodel import Dense, IntModel
from qmcu.quant.quantize import quantize_sequential

HOST_VARIANTS = {
    "scalar": ({}, ["-Og", "-fsanitize=undefined", "-fno-sanitize-recover=all"]),
    "dsp-emulated": ({"QMCU_DENSE_EMULATE_DSP": 1}, ["-O1"]),
}
SHAPES = [(n_in, n_out) for n_in in (1, 2, 3, 4, 5, 6, 7, 8, 30, 31, 33, 34)
          for n_out in (1, 2, 3, 4, 5, 6, 7, 9)] + [(67, 37), (64, 32)]


def kernel_source(preps: list[PreparedDense], inputs: list[np.ndarray]) -> str:
    parts = ["#include <stdio.h>", "#include <qmcu/qdense_fast.hpp>", ""]
    for k, (prep, x) in enumerate(zip(preps, inputs, strict=True)):
        parts += [f"namespace l{k} {{", render_prepared("k", prep), _cpp_int8("kIn", x), "}"]
    parts += ["int main() {", '    printf("variant %s\\n", qmcu::kDenseFastVariant);']
    for k, prep in enumerate(preps):
        parts += ["    {",
                  f"        static {prep.kernel_type} layer{{l{k}::kWeights, l{k}::kFoldedBiases, l{k}::kRequantizers}};",
                  f"        int8_t out[{prep.out_features}];",
                  f"        for (size_t n = 0; n < {INPUTS_PER_LAYER}; ++n) {{",
                  f"            layer.forward(l{k}::kIn + n * {prep.in_features}, out);",
                  f"            for (size_t o = 0; o < {prep.out_features}; ++o) printf(\"%d \", out[o]);",
                  "        }", '        printf("\\n");', "    }"]
    parts += ['    printf("done\\n");', "    return 0;", "}", ""]
    return "\n".join(parts)


def test_host_per_channel_kernels_equal_the_reference(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    nrng = np.random.default_rng(7)
    layers = [random_per_channel_layer(rng, n_in, n_out) for n_in, n_out in SHAPES]
    assert {(lay.in_features % 4, lay.out_features % 4) for lay in layers} == {(a, b) for a in range(4) for b in range(4)}
    inputs = [layer_inputs(nrng, lay.in_features) for lay in layers]
    preps = [prepare_dense(lay) for lay in layers]
    assert all(p.kernel_type.startswith("qmcu::QDenseFastPC<") for p in preps)
    src = tmp_path / "pc.cpp"
    src.write_text(kernel_source(preps, inputs))
    uncovered = sum(1 for lay in layers for s in lay.shifts or [] if not -23 <= s <= -1)
    assert uncovered > 20  # the per-row fallback to Requantizer::apply is exercised
    for variant, (defines, extra) in HOST_VARIANTS.items():
        exe = compile_host(src, tmp_path / f"pc-{variant}", {"QMCU_STD": 1, "QMCU_FLOAT": 0, **defines}, extra=extra)
        proc = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        lines = proc.stdout.splitlines()
        assert lines[0] == f"variant {variant}" and lines[-1] == "done"
        checked = 0
        for k, (lay, x) in enumerate(zip(layers, inputs, strict=True)):
            got = np.array(lines[1 + k].split(), dtype=np.int64).reshape(INPUTS_PER_LAYER, lay.out_features)
            want = reference.dense(x, lay)
            assert np.array_equal(got, want), (variant, k, lay.in_features, lay.out_features,
                                               np.argwhere(got != want)[:4].tolist())
            checked += got.size
        print(f"host {variant}: {len(layers)} per-channel layers, {checked} outputs bit-exact")


# --- a generated model.hpp with per-channel layers, on the host ---------------------------------------------

APP = r"""
#include <stdio.h>
#include "model.hpp"
#include "inputs.hpp"
int main() {
    int8_t out[qmcu_model::kOutputs];
    for (size_t n = 0; n < kCount; ++n) {
        qmcu_model::forward(kInputs + n * qmcu_model::kInputs, out);
        for (size_t o = 0; o < qmcu_model::kOutputs; ++o) printf("%d ", out[o]);
        printf("\n");
    }
    return 0;
}
"""


def test_generated_per_channel_model_is_bit_exact_and_passes_the_image_check(tmp_path: Path) -> None:
    float_model = skewed_model()
    pc = quantize_sequential(float_model, _data(256, 1), name="skew", provenance={}, weights="per_channel")
    second = pc.layers[1]
    assert isinstance(second, Dense)
    pt_twin = quantize_sequential(float_model, _data(256, 1), name="skew", provenance={}).layers[1]
    assert isinstance(pt_twin, Dense) and pt_twin.input_scale == second.input_scale
    pc.layers[1] = pt_twin  # mixed with a per-tensor layer
    intmodel.validate(pc)
    kinds = [type(lay).__name__ + ("PC" if isinstance(lay, Dense) and lay.per_channel else "") for lay in pc.layers]
    assert kinds == ["DensePC", "Dense", "Lut", "DensePC"]
    from qmcu.quant.reference import quantize_rows

    q = quantize_rows(pc, _data(300, 5))
    (tmp_path / "model.hpp").write_text(render_model_header(pc))
    (tmp_path / "inputs.hpp").write_text(f"constexpr size_t kCount = {len(q)};\n" + _cpp_int8("kInputs", q) + "\n")
    src = tmp_path / "app.cpp"
    src.write_text(APP)
    want = reference.forward(pc, q)
    for variant, (defines, extra) in HOST_VARIANTS.items():
        exe = compile_host(src, tmp_path / f"app-{variant}", {"QMCU_STD": 1, "QMCU_FLOAT": 0, **defines},
                           extra=extra, includes=[tmp_path])
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
        got = np.array(out.split(), dtype=np.int64).reshape(want.shape)
        assert np.array_equal(got, want), variant
        line = check_image_holds_model(exe, pc)
        assert "match intmodel.json" in line
    # A changed per-row requantizer is caught by the image check.
    first = pc.layers[0]
    assert isinstance(first, Dense) and first.multipliers is not None
    other = IntModel(pc.name, pc.input_size, pc.input_scale, pc.input_zero_point,
                     [replace(first, multipliers=[first.multipliers[0] ^ 1, *first.multipliers[1:]]), *pc.layers[1:]])
    with pytest.raises(QmcuError, match="per-row requantizers"):
        check_image_holds_model(exe, other)
