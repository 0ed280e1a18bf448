"""Per-channel weights (weights=per_channel): one symmetric weight scale and one requantizer per output row.

(c) per-channel accuracy >= per-tensor on a layer whose rows have very different magnitudes;
(d) per-tensor models are unchanged: no new keys in intmodel.json, the committed textbook and digits files
    still check, default == weights="per_tensor";
(e) the integer model's per-row fields are validated, sealed, and recorded by quantize_file_step.

The C++ kernel and a generated per-channel model.hpp on the host: host_cpp/test_per_channel_host.py;
on every QEMU board: target/test_per_channel_qemu.py.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from per_channel_cases import _data, layer_inputs, random_per_channel_layer, skewed_model
from qmcu.codegen.model_header import render_model_header
from qmcu.codegen.quantize_step import quantize_file_step
from qmcu.errors import QmcuError
from qmcu.quant import intmodel, reference
from qmcu.quant.intmodel import Dense, IntModel
from qmcu.quant.quantize import quantize_sequential


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


def _accuracy(model: IntModel, float_model: nn.Module, x: np.ndarray) -> float:
    from qmcu.quant.reference import predictions, quantize_rows

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
    q_in = __import__("qmcu.codegen.vectors", fromlist=["quantize_rows"]).quantize_rows(pt, test)
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
    from qmcu.quant.qmath import f32, requant_multiplier

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
