"""The C++ runtime compiled on the host: every corner builds with -Werror, the seed's snippet compiles
unchanged, and its integers and outputs equal the Python side exactly."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import compile_host
from qmcu.codegen.vectors import exhaustive_inputs
from qmcu.paths import TEXTBOOK_HEADER
from qmcu.quant import reference
from qmcu.quant.intmodel import IntModel
from qmcu.quant.quantize import lut_table

CORNERS = [{"QMCU_STD": s, "QMCU_FLOAT": f} for s, f in itertools.product((0, 1), (0, 1))]
MODEL_INC = [TEXTBOOK_HEADER.parent]

EXHAUSTIVE = r"""
#include <qmcu/qmcu.hpp>
#include <stdio.h>
#include "weights.hpp"
namespace pq = pytorch_quant_xor;
int main() {
    const qmcu::QDense<int8_t, int8_t, int32_t, int8_t, pq::NumInputs, pq::HiddenSize> fc1{
        pq::kFc1Weights, pq::kFc1Biases, static_cast<int8_t>(pq::kInputZeroPoint),
        {pq::kFc1Multiplier, pq::kFc1Shift, pq::kFc1OutputZeroPoint, pq::kFc1ActMin, pq::kFc1ActMax}};
    const qmcu::QDense<int8_t, int8_t, int32_t, int8_t, pq::HiddenSize, pq::NumOutputs> fc2{
        pq::kFc2Weights, pq::kFc2Biases, static_cast<int8_t>(pq::kHiddenZeroPoint),
        {pq::kFc2Multiplier, pq::kFc2Shift, pq::kFc2OutputZeroPoint, pq::kFc2ActMin, pq::kFc2ActMax}};
    static signed char out[65536];
    for (int a = -128; a <= 127; ++a) {
        for (int b = -128; b <= 127; ++b) {
            const int8_t in[2] = {static_cast<int8_t>(a), static_cast<int8_t>(b)};
            int8_t hidden[pq::HiddenSize], logit[pq::NumOutputs];
            fc1.forward(in, hidden);
            fc2.forward(hidden, logit);
            out[(a + 128) * 256 + (b + 128)] = qmcu::qApplyLUT(logit[0], pq::kSigmoidLUT);
        }
    }
    fwrite(out, 1, sizeof out, stdout);
    return 0;
}
"""


@pytest.mark.parametrize("corner", CORNERS, ids=lambda c: f"std{c['QMCU_STD']}-float{c['QMCU_FLOAT']}")
def test_all_65536_inputs_bit_exact_at_every_corner(tmp_path: Path, corner: dict[str, int],
                                                    textbook_model: IntModel) -> None:
    (tmp_path / "ex.cpp").write_text(EXHAUSTIVE)
    program = compile_host(tmp_path / "ex.cpp", tmp_path / "ex", corner, includes=MODEL_INC)
    got = np.frombuffer(subprocess.run([str(program)], capture_output=True, check=True).stdout, dtype=np.int8)
    want = reference.forward(textbook_model, exhaustive_inputs(2))[:, 0]
    diff = np.nonzero(got.astype(np.int64) != want)[0]
    assert diff.size == 0, f"{diff.size} differ; first index {diff[0]}: C++ {got[diff[0]]} Python {want[diff[0]]}"


SEED_SNIPPET = r"""
// The seed tutorial's inference code; only the include lines and the namespace name differ.
#include <qmcu/qmcu.hpp>
#include <cstdio>
#include "weights.hpp"
namespace pq = pytorch_quant_xor;
static const float kXOR[4][2] = {{0.f, 0.f}, {0.f, 1.f}, {1.f, 0.f}, {1.f, 1.f}};
int main() {
    typedef qmcu::QDense<int8_t, int8_t, int32_t, int8_t,
                         pq::NumInputs, pq::HiddenSize> QDenseFC1;
    typedef qmcu::QDense<int8_t, int8_t, int32_t, int8_t,
                         pq::HiddenSize, pq::NumOutputs> QDenseFC2;
    QDenseFC1 fc1;
    fc1.weights = pq::kFc1Weights;
    fc1.biases = pq::kFc1Biases;
    fc1.input_zero_point = static_cast<int8_t>(pq::kInputZeroPoint);
    fc1.requantizer = qmcu::buildRequantizer<int8_t>(
        pq::kInputScale, pq::kFc1WeightScale,
        pq::kHiddenScale, pq::kHiddenZeroPoint,
        -128, 127);
    QDenseFC2 fc2;
    fc2.weights = pq::kFc2Weights;
    fc2.biases = pq::kFc2Biases;
    fc2.input_zero_point = static_cast<int8_t>(pq::kHiddenZeroPoint);
    fc2.requantizer = qmcu::buildRequantizer<int8_t>(
        pq::kHiddenScale, pq::kFc2WeightScale,
        pq::kLogitScale, pq::kLogitZeroPoint,
        -128, 127);
    int8_t sigmoidLUT[qmcu::kQActivationLUTSize];
    qmcu::buildQSigmoidLUT(pq::kLogitScale, pq::kLogitZeroPoint,
                           pq::kSigmoidOutScale, pq::kSigmoidOutZeroPoint,
                           sigmoidLUT);
    std::printf("fc1 %d %d\nfc2 %d %d\n", fc1.requantizer.multiplier, fc1.requantizer.shift,
                fc2.requantizer.multiplier, fc2.requantizer.shift);
    for (std::size_t i = 0; i < 4; ++i) {
        int8_t input_q[2], hidden_q[4], logit_q[1], output_q[1];
        for (std::size_t k = 0; k < 2; ++k)
            input_q[k] = qmcu::quantize<int8_t>(
                kXOR[i][k], pq::kInputScale, pq::kInputZeroPoint, -128, 127);
        fc1.forward(input_q, hidden_q);
        qmcu::qreluBuffer(hidden_q, 4, static_cast<int8_t>(pq::kHiddenZeroPoint));
        fc2.forward(hidden_q, logit_q);
        output_q[0] = qmcu::qApplyLUT(logit_q[0], sigmoidLUT);
        std::printf("out %d %d %d\n", input_q[0], input_q[1], output_q[0]);
    }
    for (int q = 0; q < 256; ++q) std::printf("lut %d\n", sigmoidLUT[q]);
    return 0;
}
"""


def test_seed_snippet_compiles_and_matches_python(tmp_path: Path, textbook_model: IntModel) -> None:
    (tmp_path / "seed.cpp").write_text(SEED_SNIPPET)
    program = compile_host(tmp_path / "seed.cpp", tmp_path / "seed", {"QMCU_STD": 1, "QMCU_FLOAT": 1},
                           includes=MODEL_INC)
    lines = subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout.splitlines()
    fc1, fc2 = textbook_model.dense("fc1"), textbook_model.dense("fc2")
    assert lines[0] == f"fc1 {fc1.multiplier} {fc1.shift}"
    assert lines[1] == f"fc2 {fc2.multiplier} {fc2.shift}"
    inputs = np.array([[int(v) for v in ln.split()[1:3]] for ln in lines[2:6]])
    outputs = [int(ln.split()[3]) for ln in lines[2:6]]
    assert inputs.tolist() == [[-128, -128], [-128, 127], [127, -128], [127, 127]]
    assert outputs == reference.forward(textbook_model, inputs)[:, 0].tolist()
    assert [int(ln.split()[1]) for ln in lines[6:]] == textbook_model.lut("sigmoid").table


LUT_DRIVER = r"""
#include <qmcu/qmcu.hpp>
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {
    if (argc != 3) return 2;
    int8_t lut[qmcu::kQActivationLUTSize];
    qmcu::buildQSigmoidLUT(std::strtof(argv[1], nullptr), std::atoi(argv[2]), 1.0f / 256.0f, -128, lut);
    for (int8_t v : lut) std::printf("%d\n", v);
    return 0;
}
"""


def test_sigmoid_lut_cpp_equals_python_for_all_256_entries(tmp_path: Path) -> None:
    (tmp_path / "lut.cpp").write_text(LUT_DRIVER)
    program = compile_host(tmp_path / "lut.cpp", tmp_path / "lut", {"QMCU_STD": 1, "QMCU_FLOAT": 1})
    rng = np.random.default_rng(3)
    cases = [(4 / 255, -1), (1 / 16, 0), (0.1, 127), (0.002, -128)]
    cases += [(float(np.float32(s)), int(z)) for s, z in zip(rng.uniform(1e-3, 0.2, 12), rng.integers(-128, 128, 12),
                                                              strict=True)]
    for scale, zp in cases:
        s32 = float(np.float32(scale))
        out = subprocess.run([str(program), repr(s32), str(zp)], capture_output=True, text=True, check=True).stdout
        assert [int(v) for v in out.split()] == lut_table("sigmoid", s32, zp, 1 / 256, -128), f"scale {s32} zp {zp}"


def test_float_helpers_absent_at_float0(tmp_path: Path) -> None:
    """FLOAT=0 must not even declare quantize(): a use is a compile error, not silent float code."""
    src = tmp_path / "f.cpp"
    src.write_text("#include <qmcu/qmcu.hpp>\nint main() { return qmcu::quantize<int8_t>(1.0f, 1.0f, 0, -128, 127); }\n")
    with pytest.raises(AssertionError, match="compile failed"):
        compile_host(src, tmp_path / "f", {"QMCU_STD": 0, "QMCU_FLOAT": 0})


QRELU_DRIVER = r"""
#include <qmcu/qmcu.hpp>
#include <cstdio>
int main() {
    // For every zero point: all 256 int8 values through qreluBuffer, one line of 256 results.
    for (int zp = -128; zp <= 127; ++zp) {
        int8_t buf[256];
        for (int v = -128; v <= 127; ++v) buf[v + 128] = static_cast<int8_t>(v);
        qmcu::qreluBuffer(buf, 256, static_cast<int8_t>(zp));
        for (int k = 0; k < 256; ++k) std::printf("%d%c", buf[k], k == 255 ? '\n' : ' ');
    }
    // n limits the buffer: the element after it is untouched.
    int8_t two[3] = {-100, -100, -100};
    qmcu::qreluBuffer(two, 2, static_cast<int8_t>(0));
    std::printf("%d %d %d\n", two[0], two[1], two[2]);
    return 0;
}
"""


@pytest.mark.parametrize("corner", [CORNERS[0], CORNERS[-1]], ids=["std0-float0", "std1-float1"])
def test_qrelu_buffer_clamps_at_every_zero_point(tmp_path: Path, corner: dict[str, int]) -> None:
    """The seed's separate ReLU: max(x, zero point) for every int8 x and zero point (not only the no-op -128)."""
    (tmp_path / "relu.cpp").write_text(QRELU_DRIVER)
    program = compile_host(tmp_path / "relu.cpp", tmp_path / "relu", corner)
    lines = subprocess.run([str(program)], capture_output=True, text=True, check=True).stdout.splitlines()
    values = np.arange(-128, 128)
    changed = 0
    for zp, line in zip(range(-128, 128), lines[:256], strict=True):
        got = [int(v) for v in line.split()]
        assert got == np.maximum(values, zp).tolist(), f"zero point {zp}"
        changed += int((values < zp).sum())
    assert changed == 256 * 255 // 2  # the test really clamps: every value below its zero point moved
    assert lines[256] == "0 0 -100"
