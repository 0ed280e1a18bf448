"""The fast kernels' Python side (kernel_layout.py): the layout places every weight once, prepare_dense folds
the zero point exactly and checks its bounds, the textbook model prepares.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from kernel_checks import HOST_INPUTS, I32_MAX, I32_MIN, layer_inputs, random_layer, xor_model
from qmcu.codegen import kernel_layout
from qmcu.codegen.kernel_layout import prepare_dense, render_prepared
from qmcu.errors import QmcuError
from qmcu.quant.intmodel import Dense


def test_layout_places_every_weight_once_in_accumulation_order() -> None:
    for n_in in range(1, 18):
        for n_out in range(1, 10):
            slots = kernel_layout.layout_slots(n_in, n_out)
            real = [s for s in slots if s is not None]
            assert sorted(real) == [(o, i) for o in range(n_out) for i in range(n_in)]
            assert len(slots) == kernel_layout.weight_count(n_in, n_out) == n_out * kernel_layout.row_halves(n_in)
            assert len(slots) % 2 == 0  # whole words: the DSP path reads int16 pairs
            # within a row, the slots follow the accumulation order
            order = kernel_layout.accumulation_order(n_in)
            for o in range(n_out):
                assert [i for (r, i) in real if r == o] == order
    assert kernel_layout.groups(10) == [(0, 4), (4, 4), (8, 2)]


def test_prepare_dense_folds_the_zero_point_exactly() -> None:
    rng = random.Random(5)
    for n_in, n_out in ((1, 1), (7, 5), (16, 4), (17, 9)):
        layer = random_layer(rng, n_in, n_out)
        prep = prepare_dense(layer)
        x = layer_inputs(3, n_in, HOST_INPUTS)
        w = np.asarray(layer.weights, dtype=np.int64).reshape(n_out, n_in)
        # the folded accumulator equals reference.dense's accumulator
        acc_ref = (x - layer.input_zero_point) @ w.T + np.asarray(layer.bias)
        acc_fold = x @ w.T + np.asarray(prep.folded_biases)
        assert (acc_ref == acc_fold).all()
        # unpacking the layout gives back the weights
        back = np.zeros((n_out, n_in), dtype=np.int64)
        for slot, v in zip(kernel_layout.layout_slots(n_in, n_out), prep.weights, strict=True):
            if slot is None:
                assert v == 0
            else:
                back[slot] = v
        assert (back == w).all()
        assert prep.acc_min <= int((x @ w.T + np.asarray(prep.folded_biases)).min())
        assert prep.requantizer == (layer.multiplier, layer.shift, layer.output_zero_point, layer.act_min, layer.act_max)


def test_prepare_dense_bound_checks() -> None:
    base = Dense(name="fc", in_features=2, out_features=1, weights=[127, 127], bias=[0], weight_scale=1.0,
                 input_scale=1.0, input_zero_point=-128, output_scale=1.0, output_zero_point=0, multiplier=1 << 30,
                 shift=-1, act_min=-128, act_max=127)
    prepare_dense(base)
    # the folded bias leaves int32 although the bias does not
    with pytest.raises(QmcuError, match=r"layer fc: folded bias of output 0 is 2147516059 .*outside int32"):
        prepare_dense(replace(base, bias=[I32_MAX - 100]))
    # a partial sum can overflow for some int8 input: 127 * 127 * 2 on top of the folded bias
    folded = I32_MAX - 127 * 127 * 2 + 1 - 128 * 254
    with pytest.raises(QmcuError, match=r"partial sum of output 0 can reach 2147483648 .*int32 accumulator"):
        prepare_dense(replace(base, bias=[folded]))
    prepare_dense(replace(base, bias=[folded - 1]))  # exactly INT32_MAX is fine
    # input zero point 127: folded = bias - 127 * 254, lowest partial sum folded - 2 * 127 * 128
    low = I32_MIN + 127 * 254 + 2 * 127 * 128
    prepare_dense(replace(base, input_zero_point=127, bias=[low]))
    with pytest.raises(QmcuError, match="can reach -2147483649"):
        prepare_dense(replace(base, input_zero_point=127, bias=[low - 1]))
    for bad, match in ((dict(weights=[128, 0]), "weights value 128"), (dict(shift=31), "shift value 31"),
                       (dict(multiplier=-1), "multiplier value -1"), (dict(act_min=5, act_max=4), "empty range"),
                       (dict(input_zero_point=200), "zero points"), (dict(bias=[0, 0]), "wrong weight/bias lengths"),
                       (dict(weights=[1.5, 0]), "weights value 1.5"), (dict(in_features=0, weights=[]), "0 inputs")):
        with pytest.raises(QmcuError, match=match):
            prepare_dense(replace(base, **bad))
    text = render_prepared("kFc1", prepare_dense(base))
    assert "alignas(4) constexpr int16_t kFc1Weights[2] = {\n    127, 127};" in text
    assert "constexpr int32_t kFc1FoldedBiases[1] = {\n    32512};" in text
    assert "constexpr qmcu::Requantizer kFc1Requantizer{1073741824, -1, 0, -128, 127};" in text
    assert "qmcu::QDenseFast<2, 1>" in text
    with pytest.raises(QmcuError, match="not a C\\+\\+ identifier"):
        render_prepared("1bad", prepare_dense(base))


def test_textbook_model_prepares() -> None:
    model = xor_model()
    for layer in (model.dense("fc1"), model.dense("fc2")):
        prep = prepare_dense(layer)
        assert prep.kernel_type == f"qmcu::QDenseFast<{layer.in_features}, {layer.out_features}>"
        assert prep.weight_ctype == "int16_t" and len(prep.weights) == kernel_layout.weight_count(
            layer.in_features, layer.out_features)
