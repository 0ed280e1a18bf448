"""The Python integer reference of the convolutional operators: numpy, int64 intermediates, no float.

It is the specification of the kernels in firmware/runtime/qmcu/kernels/ (conv.hpp, pointwise.hpp,
depthwise.hpp, pool.hpp, add.hpp): every target output is compared with it. Tensors are NHWC, batch first,
and hold int8 values (any integer dtype; results are int64 arrays holding int8 values). A Conv1d is a
conv2d with H = 1 (and KH = 1).

Padding is (top, bottom, left, right), zero padding in real terms: a padded tap of a convolution holds the
input zero point, so it contributes (zero_point - zero_point) * w = 0 to the accumulator. Pooling ignores
padded taps (max) or has no padding (average).

Requantization is reference.requantize (the gemmlowp SRDHM + RDBPOT contract, shift > 0 a left shift),
applied per output channel: ``multipliers[c], shifts[c]`` for channel c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from qmcu.quant.qmath import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, f32, quantize_multiplier
from qmcu.quant.reference import requantize

ADD_LEFT_SHIFT = 20  # TFLite's int8 ADD: inputs are shifted left by 20 bits before their scaling


def _int8_tensor(x: np.ndarray, what: str = "x") -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 4:
        raise ValueError(f"{what} must be NHWC (4 dimensions), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{what} must hold integers, got {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < INT8_MIN or a.max() > INT8_MAX):
        raise ValueError(f"{what} must hold int8 values")
    return a


def _pair(v: int | tuple[int, int] | list[int], what: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else tuple(v)
    if len(t) != 2 or not all(isinstance(i, int | np.integer) and i >= 1 for i in t):
        raise ValueError(f"{what} must be two positive integers, got {v!r}")
    return int(t[0]), int(t[1])


def _padding(p: tuple[int, int, int, int] | list[int]) -> tuple[int, int, int, int]:
    t = tuple(int(i) for i in p)
    if len(t) != 4 or min(t) < 0:
        raise ValueError(f"padding must be (top, bottom, left, right), each >= 0, got {p!r}")
    return t  # type: ignore[return-value]


def output_size(size: int, kernel: int, stride: int, pad_before: int = 0, pad_after: int = 0) -> int:
    """Output positions along one axis: floor((size + pads - kernel) / stride) + 1 (at least one is required)."""
    span = size + pad_before + pad_after - kernel
    if span < 0:
        raise ValueError(f"kernel {kernel} is larger than the padded input ({size} + {pad_before} + {pad_after})")
    return span // stride + 1


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's (and PyTorch's, for stride 1) 'same' padding of one axis: output ceil(size / stride); the
    odd pad goes after. E.g. 49 rows, kernel 10, stride 2: (4, 5) -> 25 rows."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _windows(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """(N, OH, OW, C, KH, KW) views of the padded NHWC tensor xp."""
    return sliding_window_view(xp, kernel, axis=(1, 2))[:, ::stride[0], ::stride[1]]


def requantize_per_channel(acc: np.ndarray, multipliers: list[int] | np.ndarray, shifts: list[int] | np.ndarray,
                           zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """reference.requantize of acc[..., c] with (multipliers[c], shifts[c]) for every channel c (last axis)."""
    acc = np.asarray(acc, dtype=np.int64)
    channels = acc.shape[-1]
    if len(multipliers) != channels or len(shifts) != channels:
        raise ValueError(f"need one multiplier and one shift per channel ({channels}), got "
                         f"{len(multipliers)} and {len(shifts)}")
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise ValueError("accumulators must be int32 values")
    out = np.empty_like(acc)
    for c, (m, s) in enumerate(zip(multipliers, shifts, strict=True)):
        out[..., c] = requantize(acc[..., c], int(m), int(s), zero_point, qmin, qmax)
    return out


def _check_bias(bias: np.ndarray, channels: int) -> np.ndarray:
    b = np.asarray(bias, dtype=np.int64).reshape(-1)
    if b.shape != (channels,):
        raise ValueError(f"bias must have {channels} values, got {b.shape}")
    if b.size and (b.min() < INT32_MIN or b.max() > INT32_MAX):
        raise ValueError("bias must hold int32 values")
    return b


def _check_weights(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=np.int64)
    if w.size and (w.min() < -127 or w.max() > 127):
        raise ValueError("weights must be symmetric int8 values in [-127, 127]")
    return w


def conv2d_accumulators(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, *, input_zero_point: int,
                        stride: tuple[int, int] | int, padding: tuple[int, int, int, int]) -> np.ndarray:
    """acc[n, oy, ox, c] = bias[c] + sum_{ky, kx, ci} (x_padded[n, oy*sh + ky, ox*sw + kx, ci] - zp) * w[c, ky, kx, ci]
    (int64; a padded tap holds zp, so it adds 0)."""
    x = _int8_tensor(x)
    w = _check_weights(weights)
    if w.ndim != 4 or w.shape[3] != x.shape[3]:
        raise ValueError(f"weights must be (Cout, KH, KW, Cin={x.shape[3]}), got {w.shape}")
    b = _check_bias(bias, w.shape[0])
    sh, sw = _pair(stride, "stride")
    top, bottom, left, right = _padding(padding)
    kh, kw = w.shape[1], w.shape[2]
    output_size(x.shape[1], kh, sh, top, bottom)  # raises for a kernel larger than the padded input
    output_size(x.shape[2], kw, sw, left, right)
    xp = np.pad(x - input_zero_point, ((0, 0), (top, bottom), (left, right), (0, 0)))
    win = _windows(xp, (kh, kw), (sh, sw))
    return np.einsum("nhwcij,oijc->nhwo", win, w, optimize=True) + b


def conv2d(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, *, input_zero_point: int,
           stride: tuple[int, int] | int, padding: tuple[int, int, int, int], multipliers: list[int] | np.ndarray,
           shifts: list[int] | np.ndarray, output_zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """Conv2d (and Conv1d with H = 1): x (N, H, W, Cin) int8; weights (Cout, KH, KW, Cin) int8 in [-127, 127];
    bias (Cout,) int32; returns (N, OH, OW, Cout) int8 values (int64 dtype)."""
    acc = conv2d_accumulators(x, weights, bias, input_zero_point=input_zero_point, stride=stride, padding=padding)
    return requantize_per_channel(acc, multipliers, shifts, output_zero_point, qmin, qmax)


def depthwise_accumulators(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, *, depth_multiplier: int,
                           input_zero_point: int, stride: tuple[int, int] | int,
                           padding: tuple[int, int, int, int]) -> np.ndarray:
    """acc[n, oy, ox, c*M + m] = bias[c*M + m] + sum_{ky, kx} (x_padded[n, oy*sh + ky, ox*sw + kx, c] - zp)
    * w[ky, kx, c*M + m] (int64)."""
    x = _int8_tensor(x)
    w = _check_weights(weights)
    m = int(depth_multiplier)
    if m < 1:
        raise ValueError(f"depth_multiplier must be >= 1, got {depth_multiplier!r}")
    cin = x.shape[3]
    if w.ndim != 3 or w.shape[2] != cin * m:
        raise ValueError(f"weights must be (KH, KW, Cin*M={cin * m}) (TFLite layout), got {w.shape}")
    b = _check_bias(bias, cin * m)
    sh, sw = _pair(stride, "stride")
    top, bottom, left, right = _padding(padding)
    kh, kw = w.shape[0], w.shape[1]
    output_size(x.shape[1], kh, sh, top, bottom)
    output_size(x.shape[2], kw, sw, left, right)
    xp = np.pad(x - input_zero_point, ((0, 0), (top, bottom), (left, right), (0, 0)))
    win = np.repeat(_windows(xp, (kh, kw), (sh, sw)), m, axis=3)  # channel c*M + m reads input channel c
    return np.einsum("nhwcij,ijc->nhwc", win, w, optimize=True) + b


def depthwise_conv2d(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, *, depth_multiplier: int,
                     input_zero_point: int, stride: tuple[int, int] | int, padding: tuple[int, int, int, int],
                     multipliers: list[int] | np.ndarray, shifts: list[int] | np.ndarray, output_zero_point: int,
                     qmin: int, qmax: int) -> np.ndarray:
    """Depthwise conv: weights (KH, KW, Cin*M) (TFLite layout); output channel c*M + m reads input channel c."""
    acc = depthwise_accumulators(x, weights, bias, depth_multiplier=depth_multiplier,
                                 input_zero_point=input_zero_point, stride=stride, padding=padding)
    return requantize_per_channel(acc, multipliers, shifts, output_zero_point, qmin, qmax)


def max_pool2d(x: np.ndarray, *, kernel: tuple[int, int] | int, stride: tuple[int, int] | int,
               padding: tuple[int, int, int, int] = (0, 0, 0, 0), qmin: int = INT8_MIN,
               qmax: int = INT8_MAX) -> np.ndarray:
    """The largest real tap of every window (padded taps are ignored; every window must hold a real tap), then
    clamped to [qmin, qmax] (a fused activation; the default clamps nothing). Same scale and zero point in/out."""
    x = _int8_tensor(x)
    kh, kw = _pair(kernel, "kernel")
    sh, sw = _pair(stride, "stride")
    top, bottom, left, right = _padding(padding)
    oh, ow = output_size(x.shape[1], kh, sh, top, bottom), output_size(x.shape[2], kw, sw, left, right)
    for size, k, s, before, out in ((x.shape[1], kh, sh, top, oh), (x.shape[2], kw, sw, left, ow)):
        if before >= k or (out - 1) * s - before >= size:
            raise ValueError(f"padding {padding!r} leaves a window without a real tap")
    low = np.int64(-(1 << 40))  # below every int8 value: a padded tap never wins
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=low)
    return np.clip(_windows(xp, (kh, kw), (sh, sw)).max(axis=(4, 5)), qmin, qmax)


def average_round(total: np.ndarray, count: int) -> np.ndarray:
    """TFLite's int8 average: (sum + (sum > 0 ? n/2 : -n/2)) / n, the division truncating toward zero."""
    total = np.asarray(total, dtype=np.int64)
    half = count // 2
    t = total + np.where(total > 0, half, -half)
    return np.where(t >= 0, t // count, -((-t) // count))


def avg_pool2d(x: np.ndarray, *, kernel: tuple[int, int] | int, stride: tuple[int, int] | int,
               qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> np.ndarray:
    """Average of every window (no padding; TFLite rounding, see average_round), clamped to [qmin, qmax] (int8 by
    default). Same scale and zero point in and out. A global average pool is kernel = (H, W)."""
    x = _int8_tensor(x)
    kh, kw = _pair(kernel, "kernel")
    sh, sw = _pair(stride, "stride")
    output_size(x.shape[1], kh, sh)
    output_size(x.shape[2], kw, sw)
    total = _windows(x, (kh, kw), (sh, sw)).sum(axis=(4, 5))
    return np.clip(average_round(total, kh * kw), qmin, qmax)


def global_avg_pool(x: np.ndarray, qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> np.ndarray:
    """avg_pool2d over the whole (H, W): (N, 1, 1, C)."""
    x = _int8_tensor(x)
    return avg_pool2d(x, kernel=(x.shape[1], x.shape[2]), stride=1, qmin=qmin, qmax=qmax)


@dataclass(frozen=True)
class AddParams:
    """TFLite's int8 ADD requantization (a residual add of two tensors with their own scales).

    Offsets follow TFLite: input offsets are the NEGATED input zero points (added to the raw int8 value), the
    output offset is the output zero point. Multipliers are Q0.31 in [0, 2^31), shifts use the project's
    convention (shift > 0 a left shift before the high multiply, shift < 0 a rounding right shift after it);
    the input shifts are <= 0 (their real multipliers are <= 1/2).
    """

    left_shift: int           # ADD_LEFT_SHIFT (20)
    input1_offset: int        # -zero_point of input 1
    input1_multiplier: int    # real scale1 / (2 * max(scale1, scale2))
    input1_shift: int
    input2_offset: int        # -zero_point of input 2
    input2_multiplier: int    # real scale2 / (2 * max(scale1, scale2))
    input2_shift: int
    output_multiplier: int    # real 2 * max(scale1, scale2) / (2^left_shift * out_scale)
    output_shift: int
    output_offset: int        # +zero_point of the output


def add_params(scale1: float, zp1: int, scale2: float, zp2: int, out_scale: float, out_zp: int) -> AddParams:
    """TFLite's ADD preparation from the three (float32) scales: twice_max_input_scale = 2 * max(scale1, scale2);
    input multipliers scale_i / twice_max (<= 1/2), output multiplier twice_max / (2^20 * out_scale), each split
    by qmath.quantize_multiplier. The ratios are computed in double from the float32 scales (exact here: the
    factors 2 and 2^20 are powers of two)."""
    for zp in (zp1, zp2, out_zp):
        if not INT8_MIN <= zp <= INT8_MAX:
            raise ValueError(f"zero point {zp} is not an int8 value")
    s1, s2, so = f32(scale1), f32(scale2), f32(out_scale)
    if not all(math.isfinite(s) and s > 0 for s in (s1, s2, so)):
        raise ValueError(f"scales must be finite and positive, got {scale1!r}, {scale2!r}, {out_scale!r}")
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * so))
    return AddParams(left_shift=ADD_LEFT_SHIFT, input1_offset=-zp1, input1_multiplier=m1, input1_shift=sh1,
                     input2_offset=-zp2, input2_multiplier=m2, input2_shift=sh2, output_multiplier=mo,
                     output_shift=sho, output_offset=out_zp)


def add(x1: np.ndarray, x2: np.ndarray, params: AddParams, qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> np.ndarray:
    """TFLite's reference int8 Add, element by element (x1 and x2 of one shape, int8 values; no broadcasting)."""
    a = np.asarray(x1, dtype=np.int64)
    b = np.asarray(x2, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"add needs two tensors of one shape, got {a.shape} and {b.shape}")
    for t in (a, b):
        if t.size and (t.min() < INT8_MIN or t.max() > INT8_MAX):
            raise ValueError("add inputs must hold int8 values")
    p = params
    # 1. Remove the zero points: input_val = offset + x, in [-255, 255].
    v1 = a + p.input1_offset
    v2 = b + p.input2_offset
    # 2. Shift left by left_shift (20) bits, so the scaling below keeps 20 fractional bits: |v << 20| < 2^28.
    s1 = v1 << p.left_shift
    s2 = v2 << p.left_shift
    # 3. Scale each input to the common scale 2 * max(scale1, scale2) / 2^20: MultiplyByQuantizedMultiplier
    #    (SRDHM, then a rounding right shift; the shifts are <= 0), i.e. requantize without zero point or clamp.
    wide = (INT32_MIN, INT32_MAX)
    r1 = requantize(s1, p.input1_multiplier, p.input1_shift, 0, *wide)
    r2 = requantize(s2, p.input2_multiplier, p.input2_shift, 0, *wide)
    # 4. The raw sum (|sum| < 2^28: no overflow).
    raw_sum = r1 + r2
    # 5. Scale the sum to the output scale, add the output zero point (output_offset) and clamp to [qmin, qmax].
    return requantize(raw_sum, p.output_multiplier, p.output_shift, p.output_offset, qmin, qmax)
