"""codegen/conv_layout.py, the host-side preparation of the convolution kernels: the per-channel RightShiftRequant
tables equal the requantizer contract for every covered shift; the layouts hold every weight exactly once, in the
order the headers document, and the kernels' arithmetic replayed in Python on the prepared data gives the
reference's accumulators; the int32 proof is exact at its boundary; bad layers are refused with one line.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from qmcu.codegen import conv_layout as cl
from qmcu.errors import QmcuError
from qmcu.quant import conv_reference as cr
from qmcu.quant import fixedpoint

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def _scale(entry: tuple[int, int, int, int], acc: int) -> int:
    """ChannelScale::scale (RightShiftRequant::scale) on Python ints: ((acc*m + R - [acc<0]*2^31) >> 32) >> post."""
    m, post, hi, lo = entry
    x = acc * m + (hi << 32) + lo - (1 << 31 if acc < 0 else 0)
    return (x >> 32) >> post


def test_channel_scale_is_the_requantizer_for_every_covered_shift() -> None:
    rng = random.Random(1)
    accs = [I32_MIN, I32_MIN + 1, -1, 0, 1, I32_MAX, I32_MAX - 1]
    accs += [s * (1 << k) + d for k in range(31) for s in (1, -1) for d in (-1, 0, 1)]
    accs += [rng.randint(I32_MIN, I32_MAX) for _ in range(200)] + [rng.randint(-5000, 5000) for _ in range(200)]
    accs = [a for a in accs if I32_MIN <= a <= I32_MAX]
    for shift in range(-23, 0):
        for m in (0, 1, 1 << 30, 3 << 28, I32_MAX, rng.randint(1 << 30, I32_MAX)):
            for zp in (-128, 127, 0, rng.randint(-128, 127)):
                entry = cl.channel_scale(m, shift, zp)
                assert entry[1] == -shift - 1 and 0 <= entry[3] < 2**32
                for a in accs:
                    assert _scale(entry, a) == fixedpoint.multiply_by_quantized_multiplier(a, m, shift) + zp, \
                        (shift, m, zp, a)
    for shift in (0, 1, -24, -31):
        with pytest.raises(ValueError):
            cl.channel_scale(1 << 30, shift, 0)


def test_channel_requant_picks_the_fast_table_only_when_every_shift_is_covered() -> None:
    fast = cl.channel_requant("L", [1 << 30] * 3, [-1, -23, -9], 5, 5, 127, 3)
    assert fast.fast and fast.exact is None and len(fast.scales) == 3 and (fast.qmin, fast.qmax) == (5, 127)
    exact = cl.channel_requant("L", [1 << 30] * 3, [-1, 0, -9], 5, -128, 127, 3)
    assert not exact.fast and exact.scales is None
    assert exact.exact == ((1 << 30, -1, 5, -128, 127), (1 << 30, 0, 5, -128, 127), (1 << 30, -9, 5, -128, 127))
    with pytest.raises(QmcuError, match=r"^layer L: clamps to the empty range \[10, 9\]; re-run quantization$"):
        cl.channel_requant("L", [1], [-1], 0, 10, 9, 1)
    with pytest.raises(QmcuError, match="one multiplier and one shift per output channel"):
        cl.channel_requant("L", [1, 2], [-1], 0, -128, 127, 2)
    with pytest.raises(QmcuError, match=r"shift value 31 is outside \[-31, 30\]"):
        cl.channel_requant("L", [1], [31], 0, -128, 127, 1)
    with pytest.raises(QmcuError, match="output zero point 128 is not an int8 value"):
        cl.channel_requant("L", [1], [-1], 128, -128, 127, 1)


def test_gemv_layout_holds_every_weight_once_in_the_documented_order() -> None:
    for depth in (1, 3, 7, 8, 9, 40, 64):
        for rows in (1, 3, 4, 5, 8, 13):
            slots = cl.gemv_slots(depth, rows)
            padded = -(-depth // 8) * 8
            assert len(slots) == rows * padded
            real = [s for s in slots if s is not None]
            assert sorted(real) == [(r, k) for r in range(rows) for k in range(depth)]
            # a group of R rows: chunk-major, then row, then the slots 0,2,1,3,4,6,5,7 of the chunk
            first, count = cl.gemv_groups(rows)[-1]
            base = first * padded
            for j in range(padded // 8):
                for r in range(count):
                    at = base + (j * count + r) * 8
                    for s, k in enumerate((0, 2, 1, 3, 4, 6, 5, 7)):
                        want = (first + r, 8 * j + k) if 8 * j + k < depth else None
                        assert slots[at + s] == want


def _gemv_accumulators(prep: cl.PreparedPointwise | cl.PreparedConv2d, columns: np.ndarray) -> np.ndarray:
    """The GEMV kernels' sums on the prepared data: folded bias + sum over the layout of column[input] * weight."""
    depth = columns.shape[1]
    padded = -(-depth // 8) * 8
    x = np.zeros((columns.shape[0], padded), dtype=np.int64)
    x[:, :depth] = columns
    acc = np.tile(np.asarray(prep.biases, dtype=np.int64), (columns.shape[0], 1))
    w = iter(prep.weights)
    for first, count in cl.gemv_groups(prep.cout):
        for j in range(0, padded, 8):
            for r in range(count):
                for k in (0, 2, 1, 3, 4, 6, 5, 7):
                    acc[:, first + r] += x[:, j + k] * next(w)
    return acc


def test_pointwise_layouts_replayed_give_the_reference_accumulators() -> None:
    rng = np.random.default_rng(3)
    for cin, cout in ((1, 1), (5, 3), (8, 4), (13, 9), (64, 12)):
        w = rng.integers(-127, 128, size=(cout, cin))
        bias = rng.integers(-10000, 10000, size=cout)
        x = rng.integers(-128, 128, size=(1, 1, 6, cin))
        zp = int(rng.integers(-128, 128))
        kwargs = dict(input_zero_point=zp, multipliers=[1 << 30] * cout, shifts=[-8] * cout, output_zero_point=0,
                      qmin=-128, qmax=127)
        want = cr.conv2d_accumulators(x, w.reshape(cout, 1, 1, cin), bias, input_zero_point=zp, stride=1,
                                      padding=(0, 0, 0, 0)).reshape(6, cout)
        p16 = cl.prepare_pointwise(w, bias, pixels=6, **kwargs)
        assert np.array_equal(_gemv_accumulators(p16, x.reshape(6, cin)), want)
        p8 = cl.prepare_pointwise(w, bias, pixels=6, weight_bits=8, **kwargs)
        rows = np.asarray(p8.weights, dtype=np.int64).reshape(cout, -1)
        assert rows.shape[1] % 8 == 0 and not rows[:, cin:].any()
        assert np.array_equal(x.reshape(6, cin) @ rows[:, :cin].T + np.asarray(p8.biases), want)
        assert p8.shape_type.endswith(", 8>") and p8.params_type == "qmcu::PointwiseParams8"
        assert p8.scratch_bytes == 4 * p16.scratch_bytes == 4 * 2 * (-(-cin // 8) * 8)


def test_conv2d_layout_replayed_on_im2col_columns_gives_the_reference() -> None:
    rng = np.random.default_rng(4)
    h, wd, cin, cout, kh, kw, stride, pads = 9, 7, 3, 5, 3, 2, (2, 1), (1, 2, 0, 1)
    w = rng.integers(-127, 128, size=(cout, kh, kw, cin))
    bias = rng.integers(-10000, 10000, size=cout)
    x = rng.integers(-128, 128, size=(1, h, wd, cin))
    zp = -7
    prep = cl.prepare_conv2d(w, bias, in_hw=(h, wd), stride=stride, padding=pads, input_zero_point=zp,
                             multipliers=[1 << 30] * cout, shifts=[-9] * cout, output_zero_point=0, qmin=-128, qmax=127)
    want = cr.conv2d_accumulators(x, w, bias, input_zero_point=zp, stride=stride, padding=pads)
    assert prep.out_hw == want.shape[1:3]
    # the kernel's im2col: raw values, zp at padded taps, in (ky, kx, ci) order
    xp = np.pad(x[0], ((pads[0], pads[1]), (pads[2], pads[3]), (0, 0)), constant_values=zp)
    cols = np.stack([xp[oy * stride[0]:oy * stride[0] + kh, ox * stride[1]:ox * stride[1] + kw].reshape(-1)
                     for oy in range(prep.out_hw[0]) for ox in range(prep.out_hw[1])])
    assert np.array_equal(_gemv_accumulators(prep, cols), want.reshape(-1, cout))
    assert prep.scratch_bytes == cl.conv2d_scratch_bytes(kh, kw, cin) == 3 * 24


def test_depthwise_layout_replayed_on_the_plane_gives_the_reference() -> None:
    rng = np.random.default_rng(5)
    h, wd, cin, m, kh, kw, stride, pads = 7, 6, 3, 2, 3, 3, (1, 2), (1, 1, 2, 0)
    w = rng.integers(-127, 128, size=(kh, kw, cin * m))
    bias = rng.integers(-1000, 1000, size=cin * m)
    x = rng.integers(-128, 128, size=(1, h, wd, cin))
    zp = 11
    prep = cl.prepare_depthwise(w, bias, in_hw=(h, wd), depth_multiplier=m, stride=stride, padding=pads,
                                input_zero_point=zp, multipliers=[1 << 30] * cin * m, shifts=[-6] * cin * m,
                                output_zero_point=0, qmin=-128, qmax=127)
    want = cr.depthwise_accumulators(x, w, bias, depth_multiplier=m, input_zero_point=zp, stride=stride, padding=pads)
    stride_cols = cl.depthwise_plane_stride(wd, pads[2], pads[3])
    pairs = (kw + 1) // 2
    wl = np.asarray(prep.weights, dtype=np.int64).reshape(cin * m, kh, 2 * pairs)
    # int8 weights: the same pairs after the kernel's unpacking (bytes A0, B0, A1, B1 -> pairs A, B)
    p8 = cl.prepare_depthwise(w, bias, in_hw=(h, wd), depth_multiplier=m, stride=stride, padding=pads,
                              input_zero_point=zp, multipliers=[1 << 30] * cin * m, shifts=[-6] * cin * m,
                              output_zero_point=0, qmin=-128, qmax=127, weight_bits=8)
    per_channel = cl.depthwise8_channel_bytes(kh, kw)
    assert len(p8.weights) == cin * m * per_channel and p8.biases == prep.biases
    for o in range(cin * m):
        raw = p8.weights[o * per_channel:(o + 1) * per_channel]
        unpacked = [v for g in range(0, per_channel, 4) for v in (raw[g], raw[g + 2], raw[g + 1], raw[g + 3])]
        assert unpacked[:2 * kh * pairs] == wl[o].reshape(-1).tolist() and not any(unpacked[2 * kh * pairs:])
    assert p8.scratch_bytes == prep.scratch_bytes + 2 * per_channel and p8.shape_type.endswith(", 8>")
    for c in range(cin):
        plane = np.zeros((h + pads[0] + pads[1], stride_cols), dtype=np.int64)  # the slack columns hold 0
        plane[:, :wd + pads[2] + pads[3]] = zp
        plane[pads[0]:pads[0] + h, pads[2]:pads[2] + wd] = x[0, :, :, c]
        for mi in range(m):
            o = c * m + mi
            for oy in range(prep.out_hw[0]):
                for ox in range(prep.out_hw[1]):
                    win = plane[oy * stride[0]:oy * stride[0] + kh, ox * stride[1]:ox * stride[1] + 2 * pairs]
                    assert prep.biases[o] + int((win * wl[o]).sum()) == want[0, oy, ox, o]
    assert prep.scratch_bytes == cl.depthwise_scratch_bytes(h, wd, pads) == 2 * 9 * 10


def test_the_int32_proof_is_exact_at_its_boundary() -> None:
    w = np.array([[127, -127, 5]])
    top = int(np.maximum(w * -128, w * 127).sum())
    assert cl.prove_int32("L", np.array([I32_MAX - top]), w)[1] == I32_MAX
    with pytest.raises(QmcuError, match=r"^layer L: a partial sum of output channel 0 can reach 2147483648 for some"):
        cl.prove_int32("L", np.array([I32_MAX - top + 1]), w)
    bottom = int(np.minimum(w * -128, w * 127).sum())
    assert cl.prove_int32("L", np.array([I32_MIN - bottom]), w)[0] == I32_MIN
    with pytest.raises(QmcuError, match="can reach -2147483649"):
        cl.prove_int32("L", np.array([I32_MIN - bottom - 1]), w)
    with pytest.raises(QmcuError, match=r"folded bias of output channel 0 is 2147483775 \(bias 2147483647 - input zero "
                                        r"point -128 x weight sum 1\), outside int32"):
        cl.fold_biases("L", [I32_MAX], np.array([[1]]), -128)


def test_bad_layers_are_refused_with_one_line() -> None:
    ok = dict(input_zero_point=0, multipliers=[1 << 30], shifts=[-8], output_zero_point=0, qmin=-128, qmax=127)
    with pytest.raises(QmcuError, match=r"weight value -128 is outside \[-127, 127\]"):
        cl.prepare_pointwise(np.array([[-128]]), [0], pixels=1, **ok)
    with pytest.raises(QmcuError, match="weight_bits must be 8 or 16"):
        cl.prepare_pointwise(np.array([[1]]), [0], pixels=1, weight_bits=4, **ok)
    with pytest.raises(QmcuError, match="a pointwise layer has a 1x1 kernel"):
        cl.prepare_pointwise(np.ones((1, 3, 3, 1), dtype=np.int64), [0], pixels=1, **ok)
    with pytest.raises(QmcuError, match="larger than the padded input"):
        cl.prepare_conv2d(np.ones((1, 5, 1, 1), dtype=np.int64), [0], in_hw=(3, 3), stride=1, padding=(0, 0, 0, 0),
                          **ok)
    with pytest.raises(QmcuError, match="not a multiple of the depth multiplier"):
        cl.prepare_depthwise(np.ones((3, 3, 5), dtype=np.int64), [0] * 5, in_hw=(4, 4), depth_multiplier=2, stride=1,
                             padding=(1, 1, 1, 1), **{**ok, "multipliers": [1] * 5, "shifts": [-1] * 5})
    with pytest.raises(QmcuError, match="leaves a max-pool window without a real tap"):
        cl.prepare_pool("max", in_hw=(4, 4), channels=2, kernel=2, stride=2, padding=(2, 0, 0, 0))
    with pytest.raises(QmcuError, match="average pooling has no padding"):
        cl.prepare_pool("avg", in_hw=(4, 4), channels=2, kernel=2, stride=2, padding=(1, 0, 0, 0))
    params = cr.add_params(0.1, 0, 0.2, 0, 0.3, 0)
    with pytest.raises(QmcuError, match=r"left shift 19 is outside \[20, 20\]"):
        cl.prepare_add(cr.AddParams(**{**params.__dict__, "left_shift": 19}), count=4)
    with pytest.raises(QmcuError, match="is not a C\\+\\+ identifier"):
        cl.render_layer("2bad", cl.prepare_pool("avg", in_hw=(2, 2), channels=1, kernel=2, stride=1))


def test_rendered_layers_name_their_constants_and_check_the_headers_agree() -> None:
    ok = dict(input_zero_point=3, multipliers=[1 << 30] * 2, shifts=[-8, 0], output_zero_point=1, qmin=1, qmax=127)
    text = cl.render_layer("kL0", cl.prepare_pointwise(np.array([[1, -2, 3], [4, 5, -6]]), [7, 8], pixels=5, **ok))
    assert "using kL0Shape = qmcu::PointwiseShape<5, 3, 2>;" in text
    assert "static_assert(kL0Shape::kScratchBytes == 16 && kL0Shape::kWeightCount == 16," in text
    assert "constexpr qmcu::Requantizer kL0Exact[2]" in text  # shift 0: the exact path
    assert "constexpr qmcu::PointwiseParams kL0Params{kL0Weights, kL0Biases, {nullptr, kL0Exact, 1, 127}};" in text
    fast = cl.render_layer("k", cl.prepare_conv2d(np.ones((2, 1, 1, 1), dtype=np.int64), [0, 0], in_hw=(2, 2), stride=1,
                                                  padding=(0, 0, 0, 0), **{**ok, "shifts": [-8, -9]}))
    assert "constexpr qmcu::ChannelScale kScales[2]" in fast and "{kScales, nullptr, 1, 127}, 3};" in fast
    pool = cl.render_layer("p", cl.prepare_pool("max", in_hw=(4, 4), channels=3, kernel=2, stride=2, qmin=-5))
    assert "qmcu::PoolShape<4, 4, 3, 2, 2, 2, 2, 0, 0, 0, 0>" in pool and "pParams{-5, 127};" in pool
    add = cl.render_layer("a", cl.prepare_add(cr.add_params(0.1, 2, 0.1, -3, 0.2, 4), count=10))
    assert "using aShape = qmcu::AddShape<10>;" in add and "aParams{20, -2, 1073741824, 0, 3, 1073741824, 0," in add
