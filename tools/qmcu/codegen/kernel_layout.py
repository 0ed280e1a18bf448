"""Host-side preparation of a Dense layer for the fast C++ kernel (firmware/runtime/qmcu/qdense_fast.hpp).

``prepare_dense`` folds the input zero point into the biases, widens the int8 weights to int16 and
reorders them into the kernel layout, and proves that no partial sum of the kernel's accumulation
order can leave int32 for any int8 input. ``render_prepared`` writes the C++ constants for one layer.

The kernel computes, per output o (``w`` row-major [out][in] as in the integer model):

    acc[o] = folded_bias[o] + sum_i in[i] * w[o][i]      folded_bias[o] = bias[o] - input_zero_point * sum_i w[o][i]
    out[o] = Requantizer{multiplier, shift, output_zero_point, act_min, act_max}.apply(acc[o])

which is the same integer as reference.dense's accumulator, so the outputs are the same bits.

Kernel layout (mirrors ``qmcu::dense_layout`` in the C++ header; both must change together): outputs
in groups of GROUP_ROWS consecutive rows, then one group of out % GROUP_ROWS rows; with C = in // 4 full
chunks and T = in % 4 tail inputs, a group of R rows starting at row o0 is

    for c in range(C): for r in range(R): w[o0+r][4c], w[o0+r][4c+2], w[o0+r][4c+1], w[o0+r][4c+3]
    for r in range(R): T=1: w[-1], 0 | T=2: w[-2], w[-1] | T=3: w[-3], w[-2], w[-1], 0   (of row o0+r)

Accumulation order of one row (both C++ variants): folded bias, then per chunk the products of inputs
4c, 4c+2, 4c+1, 4c+3, then the tail inputs in order.

Per-channel layers (Dense.multipliers set) use qmcu::QDenseFastPC<in, out>: the same layout, biases and
order, and one Requantizer per output row (``<name>Requantizers[out]``) instead of the layer's one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qmcu.codegen.cpp import int_array
from qmcu.errors import QmcuError
from qmcu.quant.intmodel import Dense
from qmcu.quant.qmath import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN

GROUP_ROWS = 4
WEIGHT_CTYPE = "int16_t"
BIAS_CTYPE = "int32_t"
KERNEL_TEMPLATE = "qmcu::QDenseFast"
KERNEL_TEMPLATE_PER_CHANNEL = "qmcu::QDenseFastPC"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class PreparedDense:
    """Everything QDenseFast<in_features, out_features> needs, as plain Python ints."""

    name: str
    in_features: int
    out_features: int
    weight_ctype: str           # "int16_t": the C type of ``weights``
    weights: list[int]          # the kernel layout (len == weight_count(in, out)); 0 marks padding
    folded_biases: list[int]    # int32, one per output
    multiplier: int             # the Requantizer, unchanged from the layer
    shift: int
    output_zero_point: int
    act_min: int
    act_max: int
    input_zero_point: int       # folded into folded_biases; kept for documentation
    acc_min: int                # the smallest / largest partial sum any int8 input can produce
    acc_max: int
    # Per-channel layers: Requantizer{multiplier, shift, zero_point, qmin, qmax} of every output row; None:
    # per-tensor (the single requantizer above).
    row_requantizers: tuple[tuple[int, int, int, int, int], ...] | None = None

    @property
    def kernel_type(self) -> str:
        template = KERNEL_TEMPLATE if self.row_requantizers is None else KERNEL_TEMPLATE_PER_CHANNEL
        return f"{template}<{self.in_features}, {self.out_features}>"

    @property
    def requantizer(self) -> tuple[int, int, int, int, int]:
        """Requantizer{multiplier, shift, zero_point, qmin, qmax} in the C++ field order."""
        return (self.multiplier, self.shift, self.output_zero_point, self.act_min, self.act_max)


def tail_halves(n_in: int) -> int:
    return (0, 2, 2, 4)[n_in % 4]


def row_halves(n_in: int) -> int:
    return 4 * (n_in // 4) + tail_halves(n_in)


def weight_count(n_in: int, n_out: int) -> int:
    return n_out * row_halves(n_in)


def groups(n_out: int) -> list[tuple[int, int]]:
    """(first row, rows) of each output group, in kernel order."""
    full = [(g * GROUP_ROWS, GROUP_ROWS) for g in range(n_out // GROUP_ROWS)]
    last = n_out % GROUP_ROWS
    return full + ([(n_out - last, last)] if last else [])


def accumulation_order(n_in: int) -> list[int]:
    """The input indices in the order one row accumulates them (see the module docstring)."""
    order = [i for c in range(n_in // 4) for i in (4 * c, 4 * c + 2, 4 * c + 1, 4 * c + 3)]
    return order + list(range(4 * (n_in // 4), n_in))


def layout_slots(n_in: int, n_out: int) -> list[tuple[int, int] | None]:
    """For every int16 slot of the kernel layout, the (row, input) weight it holds, or None for padding."""
    chunks, tail = divmod(n_in, 4)
    slots: list[tuple[int, int] | None] = []
    for first, rows in groups(n_out):
        for c in range(chunks):
            for r in range(rows):
                slots += [(first + r, 4 * c + k) for k in (0, 2, 1, 3)]
        for r in range(rows):
            o = first + r
            if tail == 1:
                slots += [(o, n_in - 1), None]
            elif tail == 2:
                slots += [(o, n_in - 2), (o, n_in - 1)]
            elif tail == 3:
                slots += [(o, n_in - 3), (o, n_in - 2), (o, n_in - 1), None]
    assert len(slots) == weight_count(n_in, n_out)
    return slots


def _fail(layer: Dense, what: str, fix: str) -> QmcuError:
    return QmcuError(f"layer {layer.name}: {what}", fix)


def _check_fields(layer: Dense) -> None:
    n_in, n_out = layer.in_features, layer.out_features
    if not (isinstance(n_in, int) and isinstance(n_out, int) and n_in > 0 and n_out > 0):
        raise _fail(layer, f"has {n_in} inputs and {n_out} outputs", "a dense layer needs at least one of each")
    if len(layer.weights) != n_in * n_out or len(layer.bias) != n_out:
        raise _fail(layer, "has wrong weight/bias lengths", "re-run quantization")
    checks = (
        ("weights", layer.weights, INT8_MIN, INT8_MAX),
        ("bias", layer.bias, INT32_MIN, INT32_MAX),
        ("multiplier", [layer.multiplier], 0, INT32_MAX),
        ("shift", [layer.shift], -31, 30),
        ("zero points and clamps",
         [layer.input_zero_point, layer.output_zero_point, layer.act_min, layer.act_max], INT8_MIN, INT8_MAX),
    )
    if layer.multipliers is not None or layer.shifts is not None:
        if layer.multipliers is None or layer.shifts is None or len(layer.multipliers) != n_out \
                or len(layer.shifts) != n_out:
            raise _fail(layer, "has per-row requantizers that are not one per output row", "re-run quantization")
        checks += (("per-row multiplier", layer.multipliers, 0, INT32_MAX), ("per-row shift", layer.shifts, -31, 30))
    for what, values, lo, hi in checks:
        for v in values:
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise _fail(layer, f"{what} value {v!r} is outside [{lo}, {hi}]", "re-run quantization")
    if layer.act_min > layer.act_max:
        raise _fail(layer, f"clamps to the empty range [{layer.act_min}, {layer.act_max}]", "re-run quantization")


def prepare_dense(layer: Dense) -> PreparedDense:
    """Fold, widen, reorder and bound-check one Dense layer for qmcu::QDenseFast (raises QmcuError)."""
    _check_fields(layer)
    n_in, n_out = layer.in_features, layer.out_features
    w = np.asarray(layer.weights, dtype=np.int64).reshape(n_out, n_in)
    bias = np.asarray(layer.bias, dtype=np.int64)
    folded = bias - layer.input_zero_point * w.sum(axis=1)
    for o, b in enumerate(folded.tolist()):
        if not INT32_MIN <= b <= INT32_MAX:
            raise _fail(layer, f"folded bias of output {o} is {b} (bias {layer.bias[o]} - input zero point "
                        f"{layer.input_zero_point} x row sum {int(w[o].sum())}), outside int32",
                        "reduce the bias or weight magnitudes (retrain with weight decay)")
    # Every partial sum, in the kernel's order, over all int8 inputs: each product w*x ranges over
    # [min(w*-128, w*127), max(...)] independently, so a prefix's extremes are sums of the per-term extremes.
    ordered = w[:, accumulation_order(n_in)]
    term_max = np.maximum(ordered * INT8_MIN, ordered * INT8_MAX)
    term_min = np.minimum(ordered * INT8_MIN, ordered * INT8_MAX)
    prefix_max = folded[:, None] + np.cumsum(term_max, axis=1)
    prefix_min = folded[:, None] + np.cumsum(term_min, axis=1)
    acc_max = int(max(folded.max(), prefix_max.max()))
    acc_min = int(min(folded.min(), prefix_min.min()))
    if acc_max > INT32_MAX or acc_min < INT32_MIN:
        row_max, row_min = prefix_max.max(axis=1), prefix_min.min(axis=1)
        o = int(np.nonzero((row_max > INT32_MAX) | (row_min < INT32_MIN))[0][0])
        bad = int(row_max[o]) if row_max[o] > INT32_MAX else int(row_min[o])
        raise _fail(layer, f"a partial sum of output {o} can reach {bad} for some int8 input, "
                    "overflowing the int32 accumulator of the fast kernel",
                    "reduce the layer's fan-in or bias magnitude (retrain with weight decay)")
    flat = w.tolist()
    weights = [0 if slot is None else flat[slot[0]][slot[1]] for slot in layout_slots(n_in, n_out)]
    return PreparedDense(name=layer.name, in_features=n_in, out_features=n_out, weight_ctype=WEIGHT_CTYPE,
                         weights=weights, folded_biases=[int(b) for b in folded.tolist()],
                         multiplier=layer.multiplier, shift=layer.shift, output_zero_point=layer.output_zero_point,
                         act_min=layer.act_min, act_max=layer.act_max, input_zero_point=layer.input_zero_point,
                         acc_min=acc_min, acc_max=acc_max, row_requantizers=_row_requantizers(layer))


def _row_requantizers(layer: Dense) -> tuple[tuple[int, int, int, int, int], ...] | None:
    if layer.multipliers is None or layer.shifts is None:
        return None
    return tuple((m, s, layer.output_zero_point, layer.act_min, layer.act_max)
                 for m, s in zip(layer.multipliers, layer.shifts, strict=True))


def render_prepared(name: str, prep: PreparedDense) -> str:
    """C++ definitions for one prepared layer, to be placed in a namespace of a generated header.

    Defines ``<name>Weights`` (alignas(4) int16_t, the kernel layout), ``<name>FoldedBiases`` (int32_t)
    and ``<name>Requantizer`` (qmcu::Requantizer); needs <qmcu/qdense_fast.hpp> included before. Wire
    them into a ``qmcu::QDenseFast<in, out>{weights, folded_biases, requantizer}`` at run time (not as
    a constexpr object, or the compiler may fold the weights into the code).
    """
    if not _IDENTIFIER.match(name):
        raise QmcuError(f"{name!r} is not a C++ identifier", "use letters, digits and underscores")
    if len(prep.weights) != weight_count(prep.in_features, prep.out_features) or len(prep.folded_biases) != prep.out_features:
        raise QmcuError(f"prepared layer {prep.name} has inconsistent array lengths", "prepare it with prepare_dense")
    if prep.row_requantizers is not None and len(prep.row_requantizers) != prep.out_features:
        raise QmcuError(f"prepared layer {prep.name} has inconsistent array lengths", "prepare it with prepare_dense")
    lines = [
        f"// {prep.name}: {prep.kernel_type}; input zero point {prep.input_zero_point} folded into the biases;",
        f"// every partial sum stays in [{prep.acc_min}, {prep.acc_max}] for any int8 input.",
        f"// Weights widened to int16 in the kernel layout of qdense_fast.hpp ({prep.out_features} rows x "
        f"{row_halves(prep.in_features)} values).",
        "alignas(4) " + int_array(prep.weight_ctype, f"{name}Weights", prep.weights),
        int_array(BIAS_CTYPE, f"{name}FoldedBiases", prep.folded_biases, per_line=8),
        f"// out = clamp(round(acc * {prep.multiplier} * 2^{prep.shift} / 2^31) + {prep.output_zero_point}, "
        f"{prep.act_min}, {prep.act_max}); shift > 0 is a left shift",
        f"constexpr qmcu::Requantizer {name}Requantizer{{{', '.join(str(v) for v in prep.requantizer)}}};",
    ]
    if prep.row_requantizers is not None:
        # Per-channel: the kernel reads one Requantizer per output row (the one above is not used).
        rows = ",\n".join(f"    {{{', '.join(str(v) for v in rq)}}}" for rq in prep.row_requantizers)
        lines[-2:] = ["// per-channel weights: row o: out = clamp(round(acc * multiplier[o] * 2^shift[o] / 2^31) + "
                      f"{prep.output_zero_point}, {prep.act_min}, {prep.act_max})",
                      f"constexpr qmcu::Requantizer {name}Requantizers[{prep.out_features}] = {{\n{rows}}};"]
    return "\n".join(lines) + "\n"
