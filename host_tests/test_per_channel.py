"""Per-channel weights (weights=per_channel): one symmetric weight scale and one requantizer per output row.

(a) the C++ kernel qmcu::QDenseFastPC == reference.dense for random per-channel layers of every shape
    remainder (in % 4 and out % 4 in {0, 1, 2, 3}), rows with their own (multiplier, shift) including the
    shifts RightShiftRequant does not cover: scalar variant under UBSan, DSP code path on the portable
    stand-ins (QMCU_DENSE_EMULATE_DSP=1);
(b) a generated model.hpp with per-channel layers (mixed with a per-tensor layer and a table) runs on the
    host bit-exact with reference.forward, and the image check walks its fields;
(c) per-channel accuracy >= per-tensor on a layer whose rows have very different magnitudes;
(d) per-tensor models are unchanged: no new keys in intmodel.json, the committed textbook and digits files
    still check, default == weights="per_tensor";
(e) the integer model's per-row fields are validated, sealed, and recorded by quantize_file_step.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import compile_host
from qmcu import intmodel, reference
from qmcu.emit_model import render_model_header
from qmcu.errors import QmcuError
from qmcu.image_model import check_image_holds_model
from qmcu.intmodel import Dense, IntModel
from qmcu.kernel_layout import PreparedDense, prepare_dense, render_prepared
from qmcu.paths import REPO_ROOT
from qmcu.pipeline import quantize_file_step
from qmcu.sequential import quantize_sequential

I32_MAX = 2**31 - 1
INPUTS_PER_LAYER = 48
HOST_VARIANTS = {
    "scalar": ({}, ["-Og", "-fsanitize=undefined", "-fno-sanitize-recover=all"]),
    "dsp-emulated": ({"QMCU_DENSE_EMULATE_DSP": 1}, ["-O1"]),
}
SHAPES = [(n_in, n_out) for n_in in (1, 2, 3, 4, 5, 6, 7, 8, 30, 31, 33, 34)
          for n_out in (1, 2, 3, 4, 5, 6, 7, 9)] + [(67, 37), (64, 32)]


def _row_requantizer(rng: random.Random, n_in: int) -> tuple[int, int]:
    typical = -7 - round(np.log2(n_in) / 2)
    kind = rng.random()
    if kind < 0.6:
        return rng.randint(1 << 30, I32_MAX), max(-23, min(-1, typical + rng.randint(-3, 2)))
    if kind < 0.72:  # exact ties
        return rng.choice((1 << 30, 1 << 29, 3 << 28)), max(-23, min(-1, typical + rng.randint(-1, 2)))
    if kind < 0.85:  # shifts RightShiftRequant does not cover: Requantizer::apply for that row
        return rng.choice(((rng.randint(1 << 12, 1 << 20), rng.randint(0, 4)),
                           (rng.randint(1 << 30, I32_MAX), rng.randint(-31, -24))))
    return rng.choice((0, 1, 1 << 30, I32_MAX, rng.randint(0, I32_MAX))), rng.randint(-31, 30)


def random_per_channel_layer(rng: random.Random, n_in: int, n_out: int) -> Dense:
    """Rows of very different magnitudes, each with its own requantizer; partial sums inside int32."""
    weights: list[int] = []
    for _ in range(n_out):
        peak = rng.choice((1, 3, 20, 127))
        weights += [rng.randint(-peak, peak) for _ in range(n_in)]
    in_zp = rng.choice((-128, 127, 0, rng.randint(-128, 127)))
    out_zp = rng.randint(-128, 127)
    w = np.asarray(weights, dtype=np.int64).reshape(n_out, n_in)
    bias = [int(rng.randint(-(1 << 14), 1 << 14) + in_zp * int(w[o].sum())) for o in range(n_out)]
    if rng.random() < 0.3:  # one row's bias near the int32 edge the kernel can still take
        o = rng.randrange(n_out)
        bias[o] = I32_MAX - int(np.maximum(w[o] * -128, w[o] * 127).sum()) + in_zp * int(w[o].sum())
    pairs = [_row_requantizer(rng, n_in) for _ in range(n_out)]
    clamp = rng.random()
    act_min, act_max = (out_zp, 127) if clamp < 0.4 else ((-128, 127) if clamp < 0.7 else sorted(
        (rng.randint(-128, 127), rng.randint(-128, 127))))
    return Dense(name="L", in_features=n_in, out_features=n_out, weights=weights, bias=bias, weight_scale=1.0,
                 input_scale=1.0, input_zero_point=in_zp, output_scale=1.0, output_zero_point=out_zp,
                 multiplier=pairs[0][0], shift=pairs[0][1], act_min=act_min, act_max=act_max,
                 weight_scales=[1.0] * n_out, multipliers=[m for m, _ in pairs], shifts=[s for _, s in pairs])


def layer_inputs(rng: np.random.Generator, n_in: int) -> np.ndarray:
    x = rng.integers(-128, 128, size=(INPUTS_PER_LAYER, n_in))
    x[0], x[1], x[2] = -128, 127, 0
    x[3, ::2], x[3, 1::2] = -128, 127
    return x


def _cpp_int8(name: str, values: np.ndarray) -> str:
    return f"constexpr int8_t {name}[{values.size}] = {{{', '.join(str(int(v)) for v in values.ravel())}}};"


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


def test_per_row_requantizers_are_really_per_row() -> None:
    """reference.dense on a per-channel layer == the per-tensor reference of each row alone."""
    rng = random.Random(3)
    lay = random_per_channel_layer(rng, 13, 7)
    x = layer_inputs(np.random.default_rng(1), 13)
    got = reference.dense(x, lay)
    for o in range(7):
        row = replace(lay, out_features=1, weights=lay.weights[o * 13:(o + 1) * 13], bias=[lay.bias[o]],
                      multiplier=lay.multipliers[o], shift=lay.shifts[o], weight_scales=None, multipliers=None,
                      shifts=None)
        assert np.array_equal(got[:, o:o + 1], reference.dense(x, row))


# --- models: quantize_sequential(weights=...) ---------------------------------------------------------

def skewed_model() -> nn.Sequential:
    """Layer 0's rows differ by 1000x: one huge row (always negative, so ReLU zeroes it on the data) sets the
    per-tensor weight scale, and the small rows carrying the information quantize to almost nothing."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))
    with torch.no_grad():
        model[0].weight[:7] *= 0.02
        model[0].weight[7] = 10.0
        model[0].bias[7] = -100.0
        model[0].bias[:7] *= 0.02
        model[2].weight *= 50.0  # the small rows carry the information
    return model.eval()


def _data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 4)).astype(np.float32)


def _accuracy(model: IntModel, float_model: nn.Module, x: np.ndarray) -> float:
    from qmcu.vectors import predictions, quantize_rows

    with torch.no_grad():
        labels = float_model(torch.from_numpy(x)).argmax(1).numpy()
    return float((predictions(model, reference.forward(model, quantize_rows(model, x))) == labels).mean())


def test_per_channel_beats_per_tensor_on_rows_of_very_different_magnitudes() -> None:
    float_model = skewed_model()
    cal, test = _data(512, 1), _data(400, 2)
    pt = quantize_sequential(float_model, cal, name="skew", provenance={})
    pc = quantize_sequential(float_model, cal, name="skew", provenance={}, weights="per_channel")
    first = pc.layers[0]
    assert isinstance(first, Dense) and first.per_channel and first.weight_scales is not None
    assert max(first.weight_scales) / min(first.weight_scales) > 100
    assert first.weight_scale == max(first.weight_scales)  # the tensor-level scale, for information
    acc_pt, acc_pc = _accuracy(pt, float_model, test), _accuracy(pc, float_model, test)
    print(f"skewed layer: per-tensor {acc_pt:.3f}, per-channel {acc_pc:.3f}")
    assert acc_pc >= acc_pt and acc_pc >= 0.9 and acc_pc > acc_pt + 0.1
    # The first layer's output error, in LSB of its output, row by row: per-channel never worse on average.
    q_in = __import__("qmcu.vectors", fromlist=["quantize_rows"]).quantize_rows(pt, test)
    with torch.no_grad():
        f = torch.relu(float_model[0](torch.from_numpy(test))).numpy()
    err = {}
    for label, m in (("pt", pt), ("pc", pc)):
        lay = m.layers[0]
        assert isinstance(lay, Dense)
        deq = (reference.dense(q_in, lay) - lay.output_zero_point) * lay.output_scale
        err[label] = float(np.abs(deq - f)[:, :7].mean())
    assert err["pc"] < err["pt"]


def test_per_channel_bias_and_requantizer_per_row() -> None:
    float_model = skewed_model()
    pc = quantize_sequential(float_model, _data(256, 1), name="skew", provenance={}, weights="per_channel")
    from qmcu.qmath import f32, requant_multiplier

    for lay in pc.layers:
        if not isinstance(lay, Dense):
            continue
        assert lay.weight_scales is not None and lay.multipliers is not None and lay.shifts is not None
        w = np.asarray(lay.weights).reshape(lay.out_features, lay.in_features)
        assert all(int(np.abs(row).max()) == 127 for row in w)  # every row uses the full int8 range
        for o, s in enumerate(lay.weight_scales):
            assert (lay.multipliers[o], lay.shifts[o]) == requant_multiplier(lay.input_scale, s, lay.output_scale)
            assert s == f32(s)
        b = float_model[0].bias.detach().double().numpy() if lay.name == pc.layers[0].name else None
        if b is not None:
            for o, s in enumerate(lay.weight_scales):
                assert abs(lay.bias[o] * lay.input_scale * s - b[o]) <= lay.input_scale * s


def test_all_zero_row_gets_scale_one() -> None:
    model = nn.Sequential(nn.Linear(3, 3))
    with torch.no_grad():
        model[0].weight[1] = 0.0
    pc = quantize_sequential(model, _data(64, 3)[:, :3], name="z", provenance={}, weights="per_channel")
    lay = pc.layers[0]
    assert isinstance(lay, Dense) and lay.weight_scales is not None and lay.weight_scales[1] == 1.0
    assert lay.weights[3:6] == [0, 0, 0]


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(QmcuError, match="per_tensor, per_channel"):
        quantize_sequential(skewed_model(), _data(16, 1), name="x", provenance={}, weights="per_row")


# --- per-tensor unchanged -------------------------------------------------------------------------------

def test_per_tensor_json_has_no_per_row_keys_and_default_is_per_tensor() -> None:
    model, cal = skewed_model(), _data(128, 1)
    default = quantize_sequential(model, cal, name="m", provenance={})
    explicit = quantize_sequential(model, cal, name="m", provenance={}, weights="per_tensor")
    assert default.to_json() == explicit.to_json() and default.digest() == explicit.digest()
    for raw in json.loads(default.to_json())["layers"]:
        assert not {"weight_scales", "multipliers", "shifts"} & raw.keys()
    header = render_model_header(default)
    assert "QDenseFastPC" not in header and "Requantizers" not in header


@pytest.mark.parametrize("cmd", [["qmcu.cli", "freeze", "examples/xor_textbook.py", "firmware/models/textbook", "--check"]])
def test_committed_per_tensor_models_still_check(cmd: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True, check=False, timeout=600,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the integer model's per-row fields -----------------------------------------------------------------

def test_per_channel_model_round_trips_sealed(tmp_path: Path) -> None:
    pc = quantize_sequential(skewed_model(), _data(128, 1), name="m", provenance={}, weights="per_channel")
    path = tmp_path / "intmodel.json"
    pc.save(path)
    back = intmodel.load(path)
    assert back.to_json() == pc.to_json() and back.digest() == pc.digest()
    assert back.digest() != quantize_sequential(skewed_model(), _data(128, 1), name="m", provenance={}).digest()


@pytest.mark.parametrize("edit, message", [
    (lambda d: replace(d, shifts=None), "only some of"),
    (lambda d: replace(d, multipliers=d.multipliers[:-1]), "one value per output row"),
    (lambda d: replace(d, shifts=[31] * d.out_features), "outside"),
    (lambda d: replace(d, multipliers=[-1] * d.out_features), "outside"),
    (lambda d: replace(d, weight_scales=[0.0] * d.out_features), "positive finite"),
])
def test_per_row_fields_are_validated(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    pc = quantize_sequential(skewed_model(), _data(128, 1), name="m", provenance={}, weights="per_channel")
    pc.layers[0] = edit(pc.layers[0])
    with pytest.raises(QmcuError, match=message):
        intmodel.validate(pc)


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
    from qmcu.vectors import quantize_rows

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


# --- quantize_file_step(weights=...) ----------------------------------------------------------------------------

_MODEL_FILE = '''
import numpy as np
import torch
from torch import nn

def model():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))
    with torch.no_grad():
        m[0].weight[:7] *= 0.02
        m[0].weight[7] = 10.0
        m[0].bias[7] = -100.0
        m[0].bias[:7] *= 0.02
        m[2].weight *= 50.0
    return m.eval()

def calibration():
    return np.random.default_rng(1).uniform(-1, 1, (512, 4)).astype(np.float32)

def test():
    x = np.random.default_rng(2).uniform(-1, 1, (300, 4)).astype(np.float32)
    with torch.no_grad():
        y = model()(torch.from_numpy(x)).argmax(1).numpy()
    return x, y
'''


def test_quantize_file_step_records_the_scheme_and_both_accuracies(tmp_path: Path) -> None:
    path = tmp_path / "skew.py"
    path.write_text(_MODEL_FILE)
    pc = quantize_file_step(path, None, tmp_path / "pc.json", tmp_path / "pc.npz", weights="per_channel")
    pt = quantize_file_step(path, None, tmp_path / "pt.json", tmp_path / "pt.npz")
    assert pc.provenance["weights"] == "per_channel" and pt.provenance["weights"] == "per_tensor"
    assert pc.provenance["weights_comparison"] == pt.provenance["weights_comparison"]
    comparison = pc.provenance["weights_comparison"]
    assert list(comparison) == ["per_tensor", "per_channel"]
    assert comparison["per_channel"] == pc.provenance["diagnosis"]["int8_accuracy"]
    assert comparison["per_tensor"] == pt.provenance["diagnosis"]["int8_accuracy"]
    assert comparison["per_channel"] > comparison["per_tensor"]
    assert pc.provenance["inputs_sha256"] != pt.provenance["inputs_sha256"]
    saved = intmodel.load(tmp_path / "pc.json")
    assert saved.provenance["weights_comparison"] == comparison and saved.layers[0].per_channel  # type: ignore[union-attr]
    print(f"quantize_file_step: float {pc.provenance['float_test_accuracy']:.3f}, "
          f"per-tensor {comparison['per_tensor']:.3f}, per-channel {comparison['per_channel']:.3f}")
    with pytest.raises(QmcuError, match="not a weight quantization scheme"):
        quantize_file_step(path, None, tmp_path / "x.json", tmp_path / "x.npz", weights="per_row")
