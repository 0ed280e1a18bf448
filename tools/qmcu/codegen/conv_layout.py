"""Host-side preparation of the convolution kernel family (firmware/runtime/qmcu/kernels/*.hpp).

For every op a ``prepare_*`` function takes the integer layer as quant/conv_reference.py specifies it (int8
weights in [-127, 127], int32 biases, one (multiplier, shift) per output channel, zero points, clamp) and
returns a frozen ``Prepared*`` with everything the kernel reads, as plain Python ints:

* zero-point folding: ``biases[o] = bias[o] - input_zero_point * sum(w[o])`` over all taps (a padded tap of a
  convolution holds the input zero point, so the kernels multiply the raw int8 values, padding included);
* the proof that no partial sum leaves int32 (``prove_int32``: every product's range contains 0, so checking
  bias + all maxima and bias + all minima covers every partial sum of every accumulation order);
* weights widened to int16 and reordered into the kernel's layout (``gemv_slots`` for pointwise and conv2d,
  ``depthwise_slots`` for depthwise; documented at the top of pointwise.hpp and depthwise.hpp);
* per-output-channel requantizer tables (``channel_requant``): ChannelScale (RightShiftRequant's constants)
  when every shift is in [-23, -1], else one Requantizer per channel (the kernels' exact path).

``render_layer(name, prepared)`` writes the C++ constants of one layer (arrays, the params object, the shape
type), to be placed in a namespace of a generated header that includes the kernel's header. The
``*_scratch_bytes`` functions mirror ``qmcu::conv_scratch`` in kernels/common.hpp: both must change together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qmcu.codegen.cpp import int_array
from qmcu.errors import QmcuError
from qmcu.quant.conv_reference import ADD_LEFT_SHIFT, AddParams, output_size
from qmcu.quant.qmath import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN

CHUNK = 8          # GEMV: inputs per chunk
GROUP_ROWS = 4     # GEMV: output rows per group
SLOT_INPUT = (0, 2, 1, 3, 4, 6, 5, 7)  # GEMV: slot s of a chunk holds input 8j + SLOT_INPUT[s]
FAST_SHIFTS = range(-23, 0)  # RightShiftRequant covers shifts -23..-1
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


# --- scratch sizes (mirror qmcu::conv_scratch in kernels/common.hpp) --------------------------------

def pointwise_scratch_bytes(cin: int, weight_bits: int = 16) -> int:
    """int16 weights: the pixel's inputs widened to int16, Cin rounded up to 8; int8 weights: four pixels'."""
    return (1 if weight_bits == 16 else 4) * 2 * _round_up(cin, CHUNK)


def conv2d_scratch_bytes(kh: int, kw: int, cin: int) -> int:
    """One im2col column (KH*KW*Cin rounded up to 8): widened (int16) and gathered (int8)."""
    return 3 * _round_up(kh * kw * cin, CHUNK)


def depthwise_plane_stride(w: int, pad_left: int, pad_right: int) -> int:
    return _round_up(w + pad_left + pad_right + 1, 2)


def depthwise8_channel_bytes(kh: int, kw: int) -> int:
    """int8 depthwise weights: one output channel's KH * ceil(KW/2) pairs, rounded up to even, 2 bytes each."""
    return 2 * _round_up(kh * ((kw + 1) // 2), 2)


def depthwise_scratch_bytes(h: int, w: int, padding: tuple[int, int, int, int], kernel: tuple[int, int] = (1, 1),
                            weight_bits: int = 16) -> int:
    """One padded input plane in int16: (H + pads) rows of (W + pads + 1, rounded up to even) values; with int8
    weights also one channel's pairs unpacked to int16."""
    top, bottom, left, right = padding
    plane = 2 * (h + top + bottom) * depthwise_plane_stride(w, left, right)
    return plane + (0 if weight_bits == 16 else 2 * depthwise8_channel_bytes(*kernel))


# --- shared checks and tables ------------------------------------------------------------------------

def _fail(name: str, what: str, fix: str = "re-run quantization") -> QmcuError:
    return QmcuError(f"layer {name}: {what}", fix)


def _ints(name: str, what: str, values: np.ndarray | Sequence[int], lo: int, hi: int) -> np.ndarray:
    a = np.asarray(values)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise _fail(name, f"{what} must be integers, got {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < lo or a.max() > hi):
        bad = int(a.min()) if a.min() < lo else int(a.max())
        raise _fail(name, f"{what} value {bad} is outside [{lo}, {hi}]")
    return a


def _int8_scalar(name: str, what: str, v: int) -> int:
    if not isinstance(v, int | np.integer) or isinstance(v, bool) or not INT8_MIN <= v <= INT8_MAX:
        raise _fail(name, f"{what} {v!r} is not an int8 value")
    return int(v)


@dataclass(frozen=True)
class ChannelRequantTable:
    """qmcu::ChannelRequant: exactly one of ``scales`` / ``exact`` is set, one entry per output channel."""

    scales: tuple[tuple[int, int, int, int], ...] | None          # ChannelScale{multiplier, post_shift, round_hi, round_lo}
    exact: tuple[tuple[int, int, int, int, int], ...] | None      # Requantizer{multiplier, shift, zero_point, qmin, qmax}
    qmin: int
    qmax: int

    @property
    def fast(self) -> bool:
        return self.scales is not None


def channel_scale(multiplier: int, shift: int, zero_point: int) -> tuple[int, int, int, int]:
    """RightShiftRequant::from (qdense_fast.hpp) without the clamp, for shift in [-23, -1]:
    post = -shift - 1, v = (2 * zero_point + 1) * 2^post, R = 2^30 + v * 2^31 = round_hi * 2^32 + round_lo."""
    if shift not in FAST_SHIFTS:
        raise ValueError(f"shift {shift} is outside [-23, -1]")
    post = -shift - 1
    v = (2 * zero_point + 1) << post
    return multiplier, post, v >> 1, 0x40000000 | ((v & 1) << 31)


def channel_requant(name: str, multipliers: Sequence[int], shifts: Sequence[int], output_zero_point: int,
                    qmin: int, qmax: int, channels: int) -> ChannelRequantTable:
    m = _ints(name, "multiplier", multipliers, 0, INT32_MAX)
    s = _ints(name, "shift", shifts, -31, 30)
    if m.shape != (channels,) or s.shape != (channels,):
        raise _fail(name, f"needs one multiplier and one shift per output channel ({channels}), got "
                          f"{m.size} and {s.size}")
    zp = _int8_scalar(name, "output zero point", output_zero_point)
    lo, hi = _int8_scalar(name, "qmin", qmin), _int8_scalar(name, "qmax", qmax)
    if lo > hi:
        raise _fail(name, f"clamps to the empty range [{lo}, {hi}]")
    if all(int(v) in FAST_SHIFTS for v in s):
        return ChannelRequantTable(tuple(channel_scale(int(a), int(b), zp) for a, b in zip(m, s, strict=True)),
                                   None, lo, hi)
    return ChannelRequantTable(None, tuple((int(a), int(b), zp, lo, hi) for a, b in zip(m, s, strict=True)), lo, hi)


def prove_int32(name: str, folded: np.ndarray, weights: np.ndarray) -> tuple[int, int]:
    """(smallest, largest) partial sum any int8 input can give, for accumulators folded[o] + sum_k x_k * w[o, k];
    raises QmcuError when one can leave int32. Every product x * w (x in [-128, 127]) ranges over an interval
    that contains 0, so the extremes of every partial sum, in any order, lie between folded + (sum of the
    products' minima) and folded + (sum of their maxima): checking those two per output covers every order."""
    w = np.asarray(weights, dtype=np.int64).reshape(len(folded), -1)
    hi = np.maximum(w * INT8_MIN, w * INT8_MAX).sum(axis=1) + folded
    lo = np.minimum(w * INT8_MIN, w * INT8_MAX).sum(axis=1) + folded
    bad = np.nonzero((hi > INT32_MAX) | (lo < INT32_MIN))[0]
    if bad.size:
        o = int(bad[0])
        reach = int(hi[o]) if hi[o] > INT32_MAX else int(lo[o])
        raise _fail(name, f"a partial sum of output channel {o} can reach {reach} for some int8 input, overflowing "
                          "the int32 accumulator", "reduce the layer's fan-in or bias magnitude (retrain with weight decay)")
    return int(lo.min()), int(hi.max())


def fold_biases(name: str, bias: np.ndarray | Sequence[int], weight_rows: np.ndarray, input_zero_point: int) -> np.ndarray:
    """bias[o] - input_zero_point * sum(weight_rows[o]) (int32, checked)."""
    b = _ints(name, "bias", bias, INT32_MIN, INT32_MAX)
    w = np.asarray(weight_rows, dtype=np.int64).reshape(len(b), -1)
    folded = b - input_zero_point * w.sum(axis=1)
    bad = np.nonzero((folded > INT32_MAX) | (folded < INT32_MIN))[0]
    if bad.size:
        o = int(bad[0])
        raise _fail(name, f"folded bias of output channel {o} is {int(folded[o])} (bias {int(b[o])} - input zero "
                          f"point {input_zero_point} x weight sum {int(w[o].sum())}), outside int32",
                    "reduce the bias or weight magnitudes (retrain with weight decay)")
    return folded


# --- GEMV layout (pointwise.hpp; conv2d's im2col columns) ---------------------------------------------

def gemv_groups(rows: int) -> list[tuple[int, int]]:
    """(first row, rows) of each output group, in kernel order."""
    full = [(g * GROUP_ROWS, GROUP_ROWS) for g in range(rows // GROUP_ROWS)]
    last = rows % GROUP_ROWS
    return full + ([(rows - last, last)] if last else [])


def gemv_slots(depth: int, rows: int) -> list[tuple[int, int] | None]:
    """For every int16 value of the GEMV layout, the (row, input) weight it holds, or None for zero padding."""
    padded = _round_up(depth, CHUNK)
    slots: list[tuple[int, int] | None] = []
    for first, count in gemv_groups(rows):
        for j in range(0, padded, CHUNK):
            for r in range(count):
                for s in SLOT_INPUT:
                    k = j + s
                    slots.append((first + r, k) if k < depth else None)
    return slots


def gemv_weights(w_rows: np.ndarray) -> list[int]:
    """Weights [rows][depth] in the GEMV layout (rows * depth rounded up to 8 values)."""
    rows, depth = w_rows.shape
    flat = w_rows.tolist()
    return [0 if slot is None else flat[slot[0]][slot[1]] for slot in gemv_slots(depth, rows)]


def _check_weights(name: str, weights: np.ndarray | Sequence[int], ndim: int, what: str) -> np.ndarray:
    w = _ints(name, "weight", weights, -127, 127)
    if w.ndim != ndim:
        raise _fail(name, f"weights must be {what}, got shape {w.shape}")
    return w


def _pair(name: str, what: str, v: int | Sequence[int]) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int | np.integer) else tuple(v)
    if len(t) != 2 or not all(isinstance(i, int | np.integer) and int(i) >= 1 for i in t):
        raise _fail(name, f"{what} must be two positive integers, got {v!r}", "fix the layer description")
    return int(t[0]), int(t[1])


def _padding(name: str, padding: Sequence[int]) -> tuple[int, int, int, int]:
    t = tuple(int(v) for v in padding)
    if len(t) != 4 or min(t) < 0:
        raise _fail(name, f"padding must be (top, bottom, left, right) >= 0, got {padding!r}", "fix the layer description")
    return t  # type: ignore[return-value]


# --- pointwise -----------------------------------------------------------------------------------------

def row_major_weights(w_rows: np.ndarray) -> list[int]:
    """int8 weights [rows][depth] row by row, each row zero padded to a multiple of 8 (pointwise, WeightBits 8)."""
    rows, depth = w_rows.shape
    padded = np.zeros((rows, _round_up(depth, CHUNK)), dtype=np.int64)
    padded[:, :depth] = w_rows
    return [int(v) for v in padded.reshape(-1)]


@dataclass(frozen=True)
class PreparedPointwise:
    """qmcu::pointwise<qmcu::PointwiseShape<pixels, cin, cout[, 8]>> (kernels/pointwise.hpp)."""

    name: str
    pixels: int
    cin: int
    cout: int
    weights: list[int]          # weight_bits 16: int16, the GEMV layout; 8: int8 [cout][cin rounded up to 8]
    biases: list[int]           # folded, int32
    requant: ChannelRequantTable
    input_zero_point: int       # folded into the biases
    acc_min: int
    acc_max: int
    weight_bits: int = 16

    @property
    def shape_type(self) -> str:
        bits = ", 8" if self.weight_bits == 8 else ""
        return f"qmcu::PointwiseShape<{self.pixels}, {self.cin}, {self.cout}{bits}>"

    @property
    def scratch_bytes(self) -> int:
        return pointwise_scratch_bytes(self.cin, self.weight_bits)

    @property
    def params_type(self) -> str:
        return "qmcu::PointwiseParams8" if self.weight_bits == 8 else "qmcu::PointwiseParams"

    @property
    def weight_ctype(self) -> str:
        return "int8_t" if self.weight_bits == 8 else "int16_t"

    header = "qmcu/kernels/pointwise.hpp"


def prepare_pointwise(weights: np.ndarray, bias: np.ndarray | Sequence[int], *, pixels: int, input_zero_point: int,
                      multipliers: Sequence[int], shifts: Sequence[int], output_zero_point: int, qmin: int, qmax: int,
                      name: str = "pointwise", weight_bits: int = 16) -> PreparedPointwise:
    """weights (Cout, Cin) or (Cout, 1, 1, Cin); pixels = N*H*W of the NHWC input. weight_bits 16 stores the
    weights pre-widened (the faster kernel), 8 stores them as int8 (half the flash)."""
    if weight_bits not in (8, 16):
        raise _fail(name, f"weight_bits must be 8 or 16, got {weight_bits!r}", "choose 16 (speed) or 8 (flash)")
    w = _ints(name, "weight", weights, -127, 127)
    if w.ndim == 4:
        if w.shape[1:3] != (1, 1):
            raise _fail(name, f"a pointwise layer has a 1x1 kernel, got weights {w.shape}", "use prepare_conv2d")
        w = w.reshape(w.shape[0], w.shape[3])
    if w.ndim != 2 or min(w.shape) < 1 or pixels < 1:
        raise _fail(name, f"weights must be (Cout, Cin) and pixels >= 1, got {w.shape} and {pixels}")
    zp = _int8_scalar(name, "input zero point", input_zero_point)
    folded = fold_biases(name, bias, w, zp)
    acc_min, acc_max = prove_int32(name, folded, w)
    cout, cin = w.shape
    layout = gemv_weights(w) if weight_bits == 16 else row_major_weights(w)
    return PreparedPointwise(name=name, pixels=int(pixels), cin=cin, cout=cout, weights=layout,
                             biases=[int(v) for v in folded],
                             requant=channel_requant(name, multipliers, shifts, output_zero_point, qmin, qmax, cout),
                             input_zero_point=zp, acc_min=acc_min, acc_max=acc_max, weight_bits=weight_bits)


# --- conv2d ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedConv2d:
    """qmcu::conv2d<qmcu::ConvShape<h, w, cin, cout, kh, kw, sh, sw, top, bottom, left, right>> (kernels/conv.hpp)."""

    name: str
    in_hw: tuple[int, int]
    cin: int
    cout: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]   # top, bottom, left, right
    out_hw: tuple[int, int]
    weights: list[int]          # int16, the GEMV layout with depth KH*KW*Cin in (ky, kx, ci) order
    biases: list[int]           # folded, int32
    requant: ChannelRequantTable
    input_zero_point: int       # folded into the biases; fills the padded taps
    acc_min: int
    acc_max: int

    @property
    def shape_type(self) -> str:
        dims = (*self.in_hw, self.cin, self.cout, *self.kernel, *self.stride, *self.padding)
        return f"qmcu::ConvShape<{', '.join(map(str, dims))}>"

    @property
    def scratch_bytes(self) -> int:
        return conv2d_scratch_bytes(*self.kernel, self.cin)

    params_type = "qmcu::ConvParams"
    weight_ctype = "int16_t"
    header = "qmcu/kernels/conv.hpp"


def prepare_conv2d(weights: np.ndarray, bias: np.ndarray | Sequence[int], *, in_hw: tuple[int, int],
                   stride: int | Sequence[int], padding: Sequence[int], input_zero_point: int,
                   multipliers: Sequence[int], shifts: Sequence[int], output_zero_point: int, qmin: int, qmax: int,
                   name: str = "conv") -> PreparedConv2d:
    """weights (Cout, KH, KW, Cin) as conv_reference.conv2d takes them; in_hw = (H, W) of the NHWC input."""
    w = _check_weights(name, weights, 4, "(Cout, KH, KW, Cin)")
    cout, kh, kw, cin = w.shape
    sh, sw = _pair(name, "stride", stride)
    pads = _padding(name, padding)
    h, wd = _pair(name, "input size", in_hw)
    try:
        out_hw = (output_size(h, kh, sh, pads[0], pads[1]), output_size(wd, kw, sw, pads[2], pads[3]))
    except ValueError as err:
        raise _fail(name, str(err), "fix the layer description") from err
    zp = _int8_scalar(name, "input zero point", input_zero_point)
    rows = w.reshape(cout, kh * kw * cin)
    folded = fold_biases(name, bias, rows, zp)
    acc_min, acc_max = prove_int32(name, folded, rows)
    return PreparedConv2d(name=name, in_hw=(h, wd), cin=cin, cout=cout, kernel=(kh, kw), stride=(sh, sw),
                          padding=pads, out_hw=out_hw, weights=gemv_weights(rows), biases=[int(v) for v in folded],
                          requant=channel_requant(name, multipliers, shifts, output_zero_point, qmin, qmax, cout),
                          input_zero_point=zp, acc_min=acc_min, acc_max=acc_max)


# --- depthwise ---------------------------------------------------------------------------------------------

def depthwise_slots(kh: int, kw: int, channels: int) -> list[tuple[int, int, int] | None]:
    """For every int16 value of the depthwise layout, the (ky, kx, channel) weight it holds, or None (zero)."""
    pairs = (kw + 1) // 2
    return [(ky, kx, o) if kx < kw else None
            for o in range(channels) for ky in range(kh) for kx in range(2 * pairs)]


def depthwise8_slots(kh: int, kw: int, channels: int) -> list[tuple[int, int, int] | None]:
    """The int8 depthwise layout (depthwise.hpp, depthwiseInt8Layout): per channel, the pairs of depthwise_slots
    (a zero pair added to an odd count), two pairs A, B per 4 bytes as A0, B0, A1, B1."""
    per_channel = 2 * kh * ((kw + 1) // 2)
    pairs16 = depthwise_slots(kh, kw, channels)
    out: list[tuple[int, int, int] | None] = []
    for o in range(channels):
        values = pairs16[o * per_channel:(o + 1) * per_channel]
        values += [None] * (-len(values) % 4)
        for g in range(0, len(values), 4):
            a0, a1, b0, b1 = values[g:g + 4]
            out += [a0, b0, a1, b1]
    return out


@dataclass(frozen=True)
class PreparedDepthwise:
    """qmcu::depthwiseConv2d<qmcu::DepthwiseShape<h, w, cin, m, kh, kw, sh, sw, top, bottom, left, right>>
    (kernels/depthwise.hpp)."""

    name: str
    in_hw: tuple[int, int]
    cin: int
    depth_multiplier: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    out_hw: tuple[int, int]
    weights: list[int]          # weight_bits 16: int16 pairs along the kernel rows, per output channel
    biases: list[int]           # (depthwise_slots); 8: the same pairs as int8 bytes (depthwise8_slots); folded, int32
    requant: ChannelRequantTable
    input_zero_point: int
    acc_min: int
    acc_max: int
    weight_bits: int = 16

    @property
    def cout(self) -> int:
        return self.cin * self.depth_multiplier

    @property
    def shape_type(self) -> str:
        dims = (*self.in_hw, self.cin, self.depth_multiplier, *self.kernel, *self.stride, *self.padding)
        bits = ", 8" if self.weight_bits == 8 else ""
        return f"qmcu::DepthwiseShape<{', '.join(map(str, dims))}{bits}>"

    @property
    def scratch_bytes(self) -> int:
        return depthwise_scratch_bytes(*self.in_hw, self.padding, self.kernel, self.weight_bits)

    @property
    def params_type(self) -> str:
        return "qmcu::DepthwiseParams8" if self.weight_bits == 8 else "qmcu::DepthwiseParams"

    @property
    def weight_ctype(self) -> str:
        return "int8_t" if self.weight_bits == 8 else "int16_t"

    header = "qmcu/kernels/depthwise.hpp"


def prepare_depthwise(weights: np.ndarray, bias: np.ndarray | Sequence[int], *, in_hw: tuple[int, int],
                      depth_multiplier: int, stride: int | Sequence[int], padding: Sequence[int], input_zero_point: int,
                      multipliers: Sequence[int], shifts: Sequence[int], output_zero_point: int, qmin: int, qmax: int,
                      name: str = "depthwise", weight_bits: int = 16) -> PreparedDepthwise:
    """weights (KH, KW, Cin*M) (TFLite layout, as conv_reference.depthwise_conv2d takes them). weight_bits 16
    stores the pairs as int16, 8 as int8 (half the flash; the kernel unpacks one channel at a time)."""
    if weight_bits not in (8, 16):
        raise _fail(name, f"weight_bits must be 8 or 16, got {weight_bits!r}", "choose 16 or 8 (flash)")
    w = _check_weights(name, weights, 3, "(KH, KW, Cin*M)")
    kh, kw, cout = w.shape
    m = int(depth_multiplier)
    if m < 1 or cout % m:
        raise _fail(name, f"{cout} output channels are not a multiple of the depth multiplier {depth_multiplier!r}")
    sh, sw = _pair(name, "stride", stride)
    pads = _padding(name, padding)
    h, wd = _pair(name, "input size", in_hw)
    try:
        out_hw = (output_size(h, kh, sh, pads[0], pads[1]), output_size(wd, kw, sw, pads[2], pads[3]))
    except ValueError as err:
        raise _fail(name, str(err), "fix the layer description") from err
    zp = _int8_scalar(name, "input zero point", input_zero_point)
    rows = w.reshape(kh * kw, cout).T  # [o][ky*kw + kx]
    folded = fold_biases(name, bias, rows, zp)
    acc_min, acc_max = prove_int32(name, folded, rows)
    slots = depthwise_slots(kh, kw, cout) if weight_bits == 16 else depthwise8_slots(kh, kw, cout)
    layout = [0 if s is None else int(w[s]) for s in slots]
    return PreparedDepthwise(name=name, in_hw=(h, wd), cin=cout // m, depth_multiplier=m, kernel=(kh, kw),
                             stride=(sh, sw), padding=pads, out_hw=out_hw, weights=layout,
                             biases=[int(v) for v in folded],
                             requant=channel_requant(name, multipliers, shifts, output_zero_point, qmin, qmax, cout),
                             input_zero_point=zp, acc_min=acc_min, acc_max=acc_max, weight_bits=weight_bits)


# --- pooling ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedPool:
    """qmcu::maxPool2d / qmcu::avgPool2d <qmcu::PoolShape<h, w, c, kh, kw, sh, sw, top, bottom, left, right>>
    (kernels/pool.hpp); kind "max" or "avg" (a global average is kind "avg" with kernel (h, w))."""

    name: str
    kind: str
    in_hw: tuple[int, int]
    channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    out_hw: tuple[int, int]
    qmin: int
    qmax: int

    @property
    def shape_type(self) -> str:
        dims = (*self.in_hw, self.channels, *self.kernel, *self.stride, *self.padding)
        return f"qmcu::PoolShape<{', '.join(map(str, dims))}>"

    @property
    def function(self) -> str:
        return "qmcu::maxPool2d" if self.kind == "max" else "qmcu::avgPool2d"

    scratch_bytes = 0
    params_type = "qmcu::PoolParams"
    header = "qmcu/kernels/pool.hpp"


def prepare_pool(kind: str, *, in_hw: tuple[int, int], channels: int, kernel: int | Sequence[int],
                 stride: int | Sequence[int], padding: Sequence[int] = (0, 0, 0, 0), qmin: int = INT8_MIN,
                 qmax: int = INT8_MAX, name: str = "pool") -> PreparedPool:
    """kind "max" (padded taps ignored; every window must hold a real tap) or "avg" (no padding)."""
    if kind not in ("max", "avg"):
        raise _fail(name, f"pooling kind {kind!r} is neither 'max' nor 'avg'", "fix the layer description")
    h, wd = _pair(name, "input size", in_hw)
    kh, kw = _pair(name, "kernel", kernel)
    sh, sw = _pair(name, "stride", stride)
    pads = _padding(name, padding)
    if kind == "avg" and any(pads):
        raise _fail(name, f"average pooling has no padding, got {pads}", "pad the input explicitly")
    if int(channels) < 1:
        raise _fail(name, f"needs channels, got {channels!r}", "fix the layer description")
    try:
        out_hw = (output_size(h, kh, sh, pads[0], pads[1]), output_size(wd, kw, sw, pads[2], pads[3]))
    except ValueError as err:
        raise _fail(name, str(err), "fix the layer description") from err
    if kind == "max" and (pads[0] >= kh or pads[2] >= kw or (out_hw[0] - 1) * sh - pads[0] >= h
                          or (out_hw[1] - 1) * sw - pads[2] >= wd):
        raise _fail(name, f"padding {pads} leaves a max-pool window without a real tap", "use less padding")
    lo, hi = _int8_scalar(name, "qmin", qmin), _int8_scalar(name, "qmax", qmax)
    if lo > hi:
        raise _fail(name, f"clamps to the empty range [{lo}, {hi}]")
    return PreparedPool(name=name, kind=kind, in_hw=(h, wd), channels=int(channels), kernel=(kh, kw), stride=(sh, sw),
                        padding=pads, out_hw=out_hw, qmin=lo, qmax=hi)


# --- add ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedAdd:
    """qmcu::add<qmcu::AddShape<count>> (kernels/add.hpp): TFLite's int8 ADD of two tensors of `count` values."""

    name: str
    count: int
    params: AddParams
    qmin: int
    qmax: int

    @property
    def shape_type(self) -> str:
        return f"qmcu::AddShape<{self.count}>"

    scratch_bytes = 0
    params_type = "qmcu::AddParams"
    header = "qmcu/kernels/add.hpp"


def prepare_add(params: AddParams, *, count: int, qmin: int = INT8_MIN, qmax: int = INT8_MAX,
                name: str = "add") -> PreparedAdd:
    """params from conv_reference.add_params; checked against the kernel's preconditions."""
    p = params
    checks = (("left shift", p.left_shift, ADD_LEFT_SHIFT, ADD_LEFT_SHIFT),
              ("input offset", p.input1_offset, -INT8_MAX, -INT8_MIN), ("input offset", p.input2_offset, -INT8_MAX, -INT8_MIN),
              ("output offset", p.output_offset, INT8_MIN, INT8_MAX),
              ("input multiplier", p.input1_multiplier, 0, INT32_MAX), ("input multiplier", p.input2_multiplier, 0, INT32_MAX),
              ("output multiplier", p.output_multiplier, 0, INT32_MAX),
              ("input shift", p.input1_shift, -31, 0), ("input shift", p.input2_shift, -31, 0),
              ("output shift", p.output_shift, -31, 30))
    for what, v, lo, hi in checks:
        if not isinstance(v, int) or not lo <= v <= hi:
            raise _fail(name, f"{what} {v!r} is outside [{lo}, {hi}]", "compute the parameters with add_params")
    if int(count) < 1:
        raise _fail(name, f"needs elements, got {count!r}", "fix the layer description")
    lo, hi = _int8_scalar(name, "qmin", qmin), _int8_scalar(name, "qmax", qmax)
    if lo > hi:
        raise _fail(name, f"clamps to the empty range [{lo}, {hi}]")
    return PreparedAdd(name=name, count=int(count), params=p, qmin=lo, qmax=hi)


# --- rendering -------------------------------------------------------------------------------------------

def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise QmcuError(f"{name!r} is not a C++ identifier", "use letters, digits and underscores")


def _render_requant(name: str, rq: ChannelRequantTable) -> tuple[list[str], str]:
    """The table definition and the ChannelRequant initializer."""
    if rq.scales is not None:
        rows = ",\n".join(f"    {{{m}, {p}, {h}, {lo}u}}" for m, p, h, lo in rq.scales)
        return ([f"// per output channel: RightShiftRequant constants {{multiplier, post_shift = -shift - 1, round_hi, "
                 f"round_lo}} (output zero point folded in), clamp [{rq.qmin}, {rq.qmax}]",
                 f"constexpr qmcu::ChannelScale {name}Scales[{len(rq.scales)}] = {{\n{rows}}};"],
                f"{{{name}Scales, nullptr, {rq.qmin}, {rq.qmax}}}")
    assert rq.exact is not None
    rows = ",\n".join(f"    {{{', '.join(str(v) for v in r)}}}" for r in rq.exact)
    return (["#if defined(QMCU_KERNELS_NO_EXACT_REQUANT) && QMCU_KERNELS_NO_EXACT_REQUANT",
             f"#error \"layer {name} has a shift outside [-23, -1]: it needs the exact requantization path; do not "
             "define QMCU_KERNELS_NO_EXACT_REQUANT\"", "#endif",
             "// per output channel: Requantizer{multiplier, shift, zero_point, qmin, qmax} (a shift outside [-23, -1]: "
             "the exact path)", f"constexpr qmcu::Requantizer {name}Exact[{len(rq.exact)}] = {{\n{rows}}};"],
            f"{{nullptr, {name}Exact, {rq.qmin}, {rq.qmax}}}")


def _agreement(name: str, scratch: int, weights: int | None = None) -> str:
    """A static_assert that the kernel's constexpr sizes equal this module's (they must change together)."""
    cond = f"{name}Shape::kScratchBytes == {scratch}"
    if weights is not None:
        cond += f" && {name}Shape::kWeightCount == {weights}"
    return f'static_assert({cond}, "conv_layout.py and the kernel header disagree; regenerate");'


def _render_pointwise(name: str, p: PreparedPointwise) -> str:
    if len(p.weights) != p.cout * _round_up(p.cin, CHUNK) or len(p.biases) != p.cout:
        raise QmcuError(f"prepared layer {p.name} has inconsistent array lengths", "prepare it with prepare_pointwise")
    table, init = _render_requant(name, p.requant)
    return "\n".join([
        f"// {p.name}: qmcu::pointwise<{p.shape_type}>; input zero point {p.input_zero_point} folded into the biases;",
        f"// every partial sum stays in [{p.acc_min}, {p.acc_max}]; scratch {p.scratch_bytes} bytes.",
        f"using {name}Shape = {p.shape_type};",
        _agreement(name, p.scratch_bytes, len(p.weights)),
        "alignas(4) " + int_array(p.weight_ctype, f"{name}Weights", p.weights),
        int_array("int32_t", f"{name}Biases", p.biases, per_line=8),
        *table,
        f"constexpr {p.params_type} {name}Params{{{name}Weights, {name}Biases, {init}}};",
    ]) + "\n"


def _render_weighted(name: str, p: PreparedConv2d | PreparedDepthwise, count: int, layout: str) -> str:
    if len(p.weights) != count or len(p.biases) != p.cout:
        raise QmcuError(f"prepared layer {p.name} has inconsistent array lengths", "prepare it with conv_layout")
    table, init = _render_requant(name, p.requant)
    op = "qmcu::conv2d" if isinstance(p, PreparedConv2d) else "qmcu::depthwiseConv2d"
    return "\n".join([
        f"// {p.name}: {op}<{p.shape_type}>; input zero point {p.input_zero_point} folded into the biases",
        f"// (and filling the padding); every partial sum stays in [{p.acc_min}, {p.acc_max}]; scratch "
        f"{p.scratch_bytes} bytes; weights: {layout}.",
        f"using {name}Shape = {p.shape_type};",
        _agreement(name, p.scratch_bytes, len(p.weights)),
        "alignas(4) " + int_array(p.weight_ctype, f"{name}Weights", p.weights),
        int_array("int32_t", f"{name}Biases", p.biases, per_line=8),
        *table,
        f"constexpr {p.params_type} {name}Params{{{name}Weights, {name}Biases, {init}, {p.input_zero_point}}};",
    ]) + "\n"


def _render_pool(name: str, p: PreparedPool) -> str:
    return "\n".join([
        f"// {p.name}: {p.function}<{p.shape_type}>; clamp [{p.qmin}, {p.qmax}]; no scratch.",
        f"using {name}Shape = {p.shape_type};",
        _agreement(name, 0),
        f"constexpr {p.params_type} {name}Params{{{p.qmin}, {p.qmax}}};",
    ]) + "\n"


def _render_add(name: str, p: PreparedAdd) -> str:
    a = p.params
    fields = (a.left_shift, a.input1_offset, a.input1_multiplier, a.input1_shift, a.input2_offset, a.input2_multiplier,
              a.input2_shift, a.output_multiplier, a.output_shift, a.output_offset, p.qmin, p.qmax)
    return "\n".join([
        f"// {p.name}: qmcu::add<{p.shape_type}>; TFLite ADD {{left_shift, input1 offset (-zp), multiplier, shift, "
        "input2 offset (-zp), multiplier, shift, output multiplier, shift, output offset (zp), qmin, qmax}.",
        f"using {name}Shape = {p.shape_type};",
        _agreement(name, 0),
        f"constexpr {p.params_type} {name}Params{{{', '.join(map(str, fields))}}};",
    ]) + "\n"


Prepared = PreparedPointwise | PreparedConv2d | PreparedDepthwise | PreparedPool | PreparedAdd


def render_layer(name: str, prepared: Prepared) -> str:
    """C++ definitions of one prepared layer (``<name>Shape``, its arrays, ``<name>Params``), for a namespace of
    a generated header that includes ``prepared.header``. Call it as
    ``qmcu::<op><<name>Shape>(scratch, <name>Params, in, out)`` (see the kernel's header)."""
    _check_identifier(name)
    if isinstance(prepared, PreparedPointwise):
        return _render_pointwise(name, prepared)
    if isinstance(prepared, PreparedConv2d):
        return _render_weighted(name, prepared, prepared.cout * _round_up(prepared.kernel[0] * prepared.kernel[1]
                                                                         * prepared.cin, CHUNK), "GEMV layout")
    if isinstance(prepared, PreparedDepthwise):
        kh, kw = prepared.kernel
        per_channel = 2 * kh * ((kw + 1) // 2) if prepared.weight_bits == 16 else depthwise8_channel_bytes(kh, kw)
        return _render_weighted(name, prepared, prepared.cout * per_channel,
                                "pairs along the kernel rows" + (" as int8 bytes" if prepared.weight_bits == 8 else ""))
    if isinstance(prepared, PreparedPool):
        return _render_pool(name, prepared)
    if isinstance(prepared, PreparedAdd):
        return _render_add(name, prepared)
    raise QmcuError(f"cannot render {type(prepared).__name__}", "prepare the layer with a conv_layout.prepare_* function")

