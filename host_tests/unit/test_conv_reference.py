"""quant/conv_reference.py, the spec of the convolution kernels, against independent computations: the
accumulators of conv2d / conv1d / depthwise equal torch.nn.functional.conv2d in float64 on integer-valued tensors
(exact: every partial sum is an integer far below 2^53); the requantization equals fixedpoint.requantize per
channel; pooling and add follow TFLite's rules, checked element by element with plain Python integers.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from qmcu.quant import conv_reference as cr
from qmcu.quant import fixedpoint
from qmcu.quant.qmath import quantize_multiplier

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def _rand_x(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int64)


def _torch_conv(x: np.ndarray, zp: int, w_oihw: np.ndarray, bias: np.ndarray, stride: tuple[int, int],
                padding: tuple[int, int, int, int], groups: int = 1) -> np.ndarray:
    """float64 torch conv of (x - zp) zero-padded, NHWC in and out."""
    t = torch.tensor(x - zp, dtype=torch.float64).permute(0, 3, 1, 2)
    top, bottom, left, right = padding
    t = torch.nn.functional.pad(t, (left, right, top, bottom))  # zeros: a padded tap is the zero point
    out = torch.nn.functional.conv2d(t, torch.tensor(w_oihw, dtype=torch.float64),
                                     torch.tensor(bias, dtype=torch.float64), stride=stride, groups=groups)
    res = out.permute(0, 2, 3, 1).numpy()
    assert np.array_equal(res, np.round(res))
    return res.astype(np.int64)


CONV_CASES = [
    # (N, H, W, Cin, Cout, KH, KW, stride, padding)
    (2, 7, 9, 3, 5, 3, 3, (1, 1), (1, 1, 1, 1)),
    (1, 8, 8, 1, 4, 3, 3, (2, 2), (0, 1, 0, 1)),
    (1, 49, 10, 1, 8, 10, 4, (2, 2), (4, 5, 1, 1)),  # the KWS stem
    (3, 1, 17, 4, 6, 1, 5, (1, 2), (0, 0, 2, 3)),   # a Conv1d (H = 1)
    (1, 6, 5, 7, 3, 1, 1, (1, 1), (0, 0, 0, 0)),    # pointwise
    (1, 5, 6, 2, 2, 4, 2, (3, 1), (3, 0, 0, 1)),    # asymmetric padding, stride 3
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_conv2d_accumulators_equal_torch(case: tuple) -> None:
    n, h, w, cin, cout, kh, kw, stride, padding = case
    rng = np.random.default_rng(hash(case) & 0xFFFF)
    for zp in (-128, 0, 127, int(rng.integers(-128, 128))):
        x = _rand_x(rng, (n, h, w, cin))
        wt = rng.integers(-127, 128, size=(cout, kh, kw, cin))
        bias = rng.integers(-(1 << 20), 1 << 20, size=cout)
        acc = cr.conv2d_accumulators(x, wt, bias, input_zero_point=zp, stride=stride, padding=padding)
        want = _torch_conv(x, zp, wt.transpose(0, 3, 1, 2), bias, stride, padding)
        assert acc.shape == want.shape == (n, cr.output_size(h, kh, stride[0], *padding[:2]),
                                           cr.output_size(w, kw, stride[1], *padding[2:]), cout)
        assert np.array_equal(acc, want)


def test_conv2d_requantizes_each_channel_with_its_own_requantizer() -> None:
    rng = np.random.default_rng(5)
    x = _rand_x(rng, (2, 5, 4, 3))
    wt = rng.integers(-127, 128, size=(6, 3, 2, 3))
    bias = rng.integers(-5000, 5000, size=6)
    mults = [int(v) for v in rng.integers(1 << 30, I32_MAX, size=6)]
    shifts = [-9, -7, -12, -1, 0, 2]
    out = cr.conv2d(x, wt, bias, input_zero_point=-3, stride=(1, 2), padding=(1, 0, 1, 1), multipliers=mults,
                    shifts=shifts, output_zero_point=-20, qmin=-20, qmax=100)
    acc = cr.conv2d_accumulators(x, wt, bias, input_zero_point=-3, stride=(1, 2), padding=(1, 0, 1, 1))
    for idx in np.ndindex(acc.shape):
        c = idx[-1]
        assert out[idx] == fixedpoint.requantize(int(acc[idx]), mults[c], shifts[c], -20, -20, 100)


def test_conv1d_is_conv2d_with_one_row() -> None:
    rng = np.random.default_rng(11)
    x = _rand_x(rng, (2, 1, 20, 3))
    wt = rng.integers(-127, 128, size=(4, 1, 5, 3))
    bias = rng.integers(-100, 100, size=4)
    acc = cr.conv2d_accumulators(x, wt, bias, input_zero_point=7, stride=(1, 2), padding=(0, 0, 2, 2))
    t = torch.nn.functional.conv1d(torch.tensor(x[:, 0] - 7, dtype=torch.float64).permute(0, 2, 1),
                                   torch.tensor(wt[:, 0].transpose(0, 2, 1), dtype=torch.float64),
                                   torch.tensor(bias, dtype=torch.float64), stride=2, padding=2)
    assert np.array_equal(acc[:, 0], t.permute(0, 2, 1).numpy().astype(np.int64))


DW_CASES = [
    # (N, H, W, Cin, M, KH, KW, stride, padding)
    (1, 25, 5, 8, 1, 3, 3, (1, 1), (1, 1, 1, 1)),  # the KWS depthwise (fewer channels)
    (2, 6, 7, 3, 2, 3, 3, (2, 2), (1, 1, 1, 1)),
    (1, 9, 4, 5, 3, 2, 3, (1, 2), (0, 1, 2, 0)),
    (1, 1, 11, 4, 1, 1, 5, (1, 1), (0, 0, 2, 2)),  # 1-D
]


@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_depthwise_accumulators_equal_torch_grouped_conv(case: tuple) -> None:
    n, h, w, cin, m, kh, kw, stride, padding = case
    rng = np.random.default_rng(sum(case[:7]))
    for zp in (-128, 127, int(rng.integers(-128, 128))):
        x = _rand_x(rng, (n, h, w, cin))
        wt = rng.integers(-127, 128, size=(kh, kw, cin * m))  # TFLite layout
        bias = rng.integers(-(1 << 16), 1 << 16, size=cin * m)
        acc = cr.depthwise_accumulators(x, wt, bias, depth_multiplier=m, input_zero_point=zp, stride=stride,
                                        padding=padding)
        # PyTorch's depthwise: groups = Cin, weight (Cin*M, 1, KH, KW), output channel c*M + m reads channel c.
        want = _torch_conv(x, zp, wt.transpose(2, 0, 1)[:, None], bias, stride, padding, groups=cin)
        assert np.array_equal(acc, want)


def test_depthwise_requantizes_per_channel() -> None:
    rng = np.random.default_rng(3)
    x = _rand_x(rng, (1, 4, 4, 2))
    wt = rng.integers(-127, 128, size=(3, 3, 4))
    bias = rng.integers(-1000, 1000, size=4)
    mults, shifts = [1 << 30, 1518500250, I32_MAX, 1 << 29], [-6, -8, -10, -3]
    out = cr.depthwise_conv2d(x, wt, bias, depth_multiplier=2, input_zero_point=1, stride=1, padding=(1, 1, 1, 1),
                              multipliers=mults, shifts=shifts, output_zero_point=5, qmin=-128, qmax=127)
    acc = cr.depthwise_accumulators(x, wt, bias, depth_multiplier=2, input_zero_point=1, stride=1,
                                    padding=(1, 1, 1, 1))
    for idx in np.ndindex(acc.shape):
        assert out[idx] == fixedpoint.requantize(int(acc[idx]), mults[idx[-1]], shifts[idx[-1]], 5, -128, 127)


def test_max_pool_ignores_padded_taps() -> None:
    rng = np.random.default_rng(8)
    x = _rand_x(rng, (2, 7, 6, 5))
    x[0, 0, 0, :] = -128  # a corner that padding must not raise
    for kernel, stride, padding in (((2, 2), (2, 2), (0, 1, 0, 0)), ((3, 3), (1, 1), (1, 1, 1, 1)),
                                    ((3, 2), (2, 1), (1, 0, 0, 1)), ((1, 4), (1, 3), (0, 0, 2, 1))):
        got = cr.max_pool2d(x, kernel=kernel, stride=stride, padding=padding)
        top, _, left, _ = padding
        for n, oy, ox, c in np.ndindex(got.shape):
            taps = [int(x[n, y, xx, c]) for y in range(oy * stride[0] - top, oy * stride[0] - top + kernel[0])
                    for xx in range(ox * stride[1] - left, ox * stride[1] - left + kernel[1])
                    if 0 <= y < x.shape[1] and 0 <= xx < x.shape[2]]
            assert got[n, oy, ox, c] == max(taps)
    t = torch.nn.functional.max_pool2d(torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2), 3, 1, padding=1)
    assert np.array_equal(cr.max_pool2d(x, kernel=3, stride=1, padding=(1, 1, 1, 1)),
                          t.permute(0, 2, 3, 1).numpy().astype(np.int64))
    assert cr.max_pool2d(x, kernel=2, stride=2, qmin=0, qmax=50).min() >= 0
    with pytest.raises(ValueError, match="without a real tap"):
        cr.max_pool2d(x, kernel=2, stride=2, padding=(2, 0, 0, 0))


def _tflite_average(total: int, n: int, clamp: bool = True) -> int:
    t = total + (n // 2 if total > 0 else -(n // 2))
    q = abs(t) // n  # C division truncates toward zero
    q = q if t >= 0 else -q
    return max(-128, min(127, q)) if clamp else q


def test_average_rounding_is_tflite_s() -> None:
    for n in (1, 2, 3, 4, 9, 125, 1000):
        totals = np.arange(-128 * n, 127 * n + 1)
        want = [_tflite_average(int(t), n, clamp=False) for t in totals]
        assert cr.average_round(totals, n).tolist() == want
    # halves round away from zero: +2.5 -> 3, -2.5 -> -3, +-0.5 -> +-1; 1.5 -> 2
    assert cr.average_round(np.array([5, -5, 1, -1, 0, 3, -3]), 2).tolist() == [3, -3, 1, -1, 0, 2, -2]


def test_avg_pool_and_global_average() -> None:
    rng = np.random.default_rng(12)
    x = _rand_x(rng, (2, 25, 5, 6))
    g = cr.global_avg_pool(x)
    assert g.shape == (2, 1, 1, 6)
    for n, c in np.ndindex(2, 6):
        assert g[n, 0, 0, c] == _tflite_average(int(x[n, :, :, c].sum()), 125)
    got = cr.avg_pool2d(x, kernel=(3, 2), stride=(2, 2))
    for n, oy, ox, c in np.ndindex(got.shape):
        win = x[n, 2 * oy:2 * oy + 3, 2 * ox:2 * ox + 2, c]
        assert got[n, oy, ox, c] == _tflite_average(int(win.sum()), 6)
    assert np.array_equal(cr.avg_pool2d(x, kernel=(25, 5), stride=1), g)
    clamped = cr.avg_pool2d(x, kernel=2, stride=1, qmin=-10, qmax=10)
    assert clamped.min() >= -10 and clamped.max() <= 10


def _tflite_add(a: int, b: int, p: cr.AddParams, qmin: int, qmax: int) -> int:
    """TFLite's reference int8 Add for one element, on Python ints with the gemmlowp primitives."""
    def mbqm_smaller_than_one(x: int, m: int, shift: int) -> int:
        assert shift <= 0
        return fixedpoint.rounding_divide_by_pot(fixedpoint.saturating_rounding_doubling_high_mul(x, m), -shift)
    s1 = (a + p.input1_offset) * (1 << p.left_shift)
    s2 = (b + p.input2_offset) * (1 << p.left_shift)
    raw = mbqm_smaller_than_one(s1, p.input1_multiplier, p.input1_shift) + \
        mbqm_smaller_than_one(s2, p.input2_multiplier, p.input2_shift)
    out = mbqm_smaller_than_one(raw, p.output_multiplier, p.output_shift) + p.output_offset
    return max(qmin, min(qmax, out))


def test_add_params_follow_tflite() -> None:
    p = cr.add_params(0.05, 3, 0.1, -7, 0.12, -20)
    assert (p.left_shift, p.input1_offset, p.input2_offset, p.output_offset) == (20, -3, 7, -20)
    f32 = np.float32
    twice = 2.0 * float(f32(0.1))
    assert (p.input1_multiplier, p.input1_shift) == quantize_multiplier(float(f32(0.05)) / twice)
    assert (p.input2_multiplier, p.input2_shift) == (1 << 30, 0)  # the larger input: exactly 1/2
    assert (p.output_multiplier, p.output_shift) == quantize_multiplier(twice / (2**20 * float(f32(0.12))))
    assert p.input1_shift <= 0 and p.output_shift < 0


def test_add_equals_tflite_element_by_element() -> None:
    rng = random.Random(4)
    grid = np.array([(a, b) for a in range(-128, 128, 3) for b in range(-128, 128, 5)], dtype=np.int64)
    for _ in range(12):
        s1, s2 = 2.0 ** rng.uniform(-9, -2), 2.0 ** rng.uniform(-9, -2)
        so = (s1 + s2) * rng.uniform(0.4, 2.0)
        p = cr.add_params(s1, rng.randint(-128, 127), s2, rng.randint(-128, 127), so, rng.randint(-128, 127))
        qmin, qmax = rng.choice(((-128, 127), (p.output_offset, 127), (-50, 60)))
        got = cr.add(grid[:, 0], grid[:, 1], p, qmin, qmax)
        want = [_tflite_add(int(a), int(b), p, qmin, qmax) for a, b in grid]
        assert got.tolist() == want


def test_add_rounds_like_real_arithmetic_within_one_lsb() -> None:
    """A sanity check of the scheme: within one LSB of the real-valued sum."""
    p = cr.add_params(0.02, 5, 0.03, -4, 0.04, 1)
    a = np.arange(-128, 128)
    b = np.arange(127, -129, -1)
    got = cr.add(a, b, p)
    real = ((a - 5) * float(np.float32(0.02)) + (b + 4) * float(np.float32(0.03))) / float(np.float32(0.04)) + 1
    inside = (real > -127) & (real < 126)
    assert np.abs(got[inside] - real[inside]).max() <= 1.0


def test_same_padding_and_bad_arguments() -> None:
    assert cr.same_padding(49, 10, 2) == (4, 5) and cr.same_padding(10, 4, 2) == (1, 1)
    assert cr.same_padding(25, 3, 1) == (1, 1) and cr.same_padding(8, 1, 1) == (0, 0)
    x = np.zeros((1, 3, 3, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="int8 values"):
        cr.conv2d_accumulators(x + 200, np.zeros((1, 1, 1, 2)), [0], input_zero_point=0, stride=1,
                               padding=(0, 0, 0, 0))
    with pytest.raises(ValueError, match=r"\[-127, 127\]"):
        cr.conv2d_accumulators(x, np.full((1, 1, 1, 2), -128), [0], input_zero_point=0, stride=1,
                               padding=(0, 0, 0, 0))
    with pytest.raises(ValueError, match="larger than the padded input"):
        cr.conv2d_accumulators(x, np.zeros((1, 4, 1, 2)), [0], input_zero_point=0, stride=1, padding=(0, 0, 0, 0))
    with pytest.raises(ValueError, match="one multiplier and one shift per channel"):
        cr.requantize_per_channel(np.zeros((2, 3)), [1], [0], 0, -128, 127)
