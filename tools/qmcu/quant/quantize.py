"""Quantize any chain of supported PyTorch layers into the integer model.

Supported: nn.Linear, nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.Identity, nn.Flatten, in an
nn.Sequential (nested is fine) or a module whose forward is the chain of its children (checked
numerically on the calibration set). A ReLU/ReLU6 right after a Linear is fused into its clamp;
Sigmoid and Tanh become 256-entry LUTs built here; a ReLU anywhere else becomes an exact LUT.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from qmcu.errors import QmcuError
from qmcu.model.capture import Clamp, Elementwise
from qmcu.quant.calibrate import check_calibration_set
from qmcu.quant.intmodel import Dense, IntModel, Layer, Lut, validate
from qmcu.quant.qmath import (
    INT8_MAX,
    INT8_MIN,
    affine_asymmetric,
    clamp,
    f32,
    lround,
    quantize_bias,
    quantize_weights,
    requant_multiplier,
    symmetric_row_scales,
    symmetric_weight_scale,
)

logger = logging.getLogger(__name__)

SUPPORTED = (nn.Linear, nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.Identity, nn.Flatten, Clamp, Elementwise)
SUPPORTED_NAMES = ", ".join(t.__name__ for t in SUPPORTED[:7])
# Fixed output quantization of the LUT activations (TFLite's): they cover the function's range.
LUT_OUTPUT = {"sigmoid": (1.0 / 256.0, -128), "tanh": (1.0 / 128.0, 0)}
# A calibration value beyond this magnitude is a fault in the data, not a range to quantize.
ABSURD_CALIBRATION = 1e12
# Warn when more than this share of a tensor's nonzero values (or of a layer's weights) quantize to 0.
ZEROED_SHARE_WARN = 0.5
# Weight quantization schemes: one symmetric scale per layer (the seed's) or one per output row.
WEIGHT_SCHEMES = ("per_tensor", "per_channel")


def _sigmoid(x: float) -> float:
    """1 / (1 + exp(-x)) as C++ computes it in double: exp overflows to +inf for x < -709, giving 0."""
    try:
        return 1.0 / (1.0 + math.exp(-x))
    except OverflowError:
        return 0.0


_LUT_FN: dict[str, Callable[[float], float]] = {"sigmoid": _sigmoid, "tanh": math.tanh}


def chain_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model as a flat list of (name, layer); unsupported layers are refused by name."""
    out: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            out += [(f"{name}_{n}", m) for n, m in chain_of(child)]
        elif isinstance(child, SUPPORTED):
            out.append((name if name.isidentifier() else f"{type(child).__name__.lower()}{name}", child))
        else:
            raise QmcuError(f"layer {name!r} is a {type(child).__name__}, which qmcu cannot quantize",
                            f"use only {SUPPORTED_NAMES}")
    if not out:
        raise QmcuError(f"{type(model).__name__} has no layers", f"build it from {SUPPORTED_NAMES}")
    return out


def _check_parameters(model: nn.Module, chain: list[tuple[str, nn.Module]]) -> None:
    """float32 parameters only, and every weight and bias of every layer finite: each failure names the layer."""
    for pname, param in model.named_parameters():
        if param.dtype != torch.float32:
            raise QmcuError(f"parameter {pname} of {type(model).__name__} is {str(param.dtype).removeprefix('torch.')}, "
                            "qmcu quantizes float32 models", "convert the model with model.float() first")
    for lname, layer in chain:
        for pname, param in layer.named_parameters():
            values = param.detach()
            bad = ~torch.isfinite(values)
            if bool(bad.any()):
                index = tuple(int(i) for i in torch.nonzero(bad)[0])
                where = ", ".join(map(str, index))
                raise QmcuError(f"layer {lname}: {pname}[{where}] is {float(values[index])} ({int(bad.sum())} of "
                                f"{values.numel()} {pname} values are NaN or Inf)",
                                "retrain or reload the model; qmcu cannot quantize non-finite weights")


def _warn(notes: list[str], message: str, *args: object) -> None:
    logger.warning(message, *args)
    notes.append(message % args)


def _check_calibration_outputs(chain: list[tuple[str, nn.Module]], x: torch.Tensor, outs: list[torch.Tensor],
                               notes: list[str]) -> None:
    """Refuse absurd or overflowing calibration ranges; warn on a set of one distinct sample."""
    values = x.numpy()
    peak = float(np.abs(values).max())
    if peak > ABSURD_CALIBRATION:
        row, col = (int(i) for i in np.argwhere(np.abs(values) == peak)[0])
        raise QmcuError(f"calibration value {float(values[row, col]):.3g} (row {row}, column {col}) is beyond "
                        f"+-{ABSURD_CALIBRATION:g}: a range that wide quantizes every ordinary input to one int8 value",
                        "remove the outlier; calibrate with samples from the range the model will see")
    for (lname, _), out in zip(chain, outs, strict=True):
        if not bool(torch.isfinite(out).all()):
            raise QmcuError(f"the calibration set (values in [{float(x.min()):.3g}, {float(x.max()):.3g}]) drives the "
                            f"output of layer {lname} to NaN or Inf",
                            "calibrate with samples from the range the model will see")
    distinct = len(np.unique(values, axis=0))
    if distinct < 2:
        _warn(notes, "calibration set: %d row(s) but only %d distinct sample, so every range is that of one point "
                     "and other inputs will quantize badly; calibrate with samples that cover the inputs the model "
                     "will see", len(values), distinct)


def _observed_params(tensor: str, values: torch.Tensor, notes: list[str], warn: bool = True) -> tuple[tuple[float, int], bool]:
    """affine_asymmetric over the observed range, and whether it warned that the range is degenerate."""
    v = values.detach().numpy().astype(np.float64).ravel()
    lo, hi = float(v.min()), float(v.max())
    scale, zp = affine_asymmetric(lo, hi)
    if not warn:
        return (scale, zp), False
    if lo == hi == 0.0:
        _warn(notes, "calibration range of %s is [0, 0] (all %d values are 0): its scale falls back to 1.0, so its "
                     "int8 values are meaningless; calibrate with samples that make %s nonzero", tensor, v.size,
                     tensor)
        return (scale, zp), True
    nonzero = v[v != 0.0]
    zeroed = int(np.count_nonzero(np.abs(nonzero / f32(scale)) < 0.5))
    if not nonzero.size or zeroed / nonzero.size <= ZEROED_SHARE_WARN:
        return (scale, zp), False
    _warn(notes, "calibration range of %s is [%.3g, %.3g]: %d of its %d nonzero values (%.0f%%) quantize to "
                 "the zero point, so a few outlying values set the range; calibrate with samples from the range "
                 "the model will see", tensor, lo, hi, zeroed, nonzero.size, 100.0 * zeroed / nonzero.size)
    return (scale, zp), True


def _warn_zeroed_weights(name: str, lin: nn.Linear, notes: list[str], per_channel: bool = False) -> bool:
    """Warn (and return True) when one huge weight sets a step that zeroes most of the layer's int8 weights."""
    w = lin.weight.detach().numpy().astype(np.float64)
    w_scale = f32(symmetric_weight_scale(w))
    nonzero = int(np.count_nonzero(w))
    if per_channel:  # each row's own largest weight sets its step
        scales = [f32(sc) for sc in symmetric_row_scales(w)]
        quantized = [q for o, sc in enumerate(scales) for q in quantize_weights(w[o], sc)]
        zeroed = sum(1 for q, v in zip(quantized, w.ravel(), strict=True) if q == 0 and v != 0.0)
        if not nonzero or zeroed / nonzero <= ZEROED_SHARE_WARN:
            return False
        _warn(notes, "layer %s: %d of its %d nonzero weights (%.0f%%) quantize to 0 even with one int8 step per "
                     "output row (each row's largest weight sets its step); check those weights (retrain, or clip "
                     "them) before trusting the int8 model", name, zeroed, nonzero, 100.0 * zeroed / nonzero)
        return True
    zeroed = sum(1 for q, v in zip(quantize_weights(w, w_scale), w.ravel(), strict=True) if q == 0 and v != 0.0)
    if not nonzero or zeroed / nonzero <= ZEROED_SHARE_WARN:
        return False
    _warn(notes, "layer %s: %d of its %d nonzero weights (%.0f%%) quantize to 0, because the largest, %.3g, sets "
                 "the int8 step to %.3g; check that weight (retrain, or clip the weights) before trusting the int8 "
                 "model", name, zeroed, nonzero, 100.0 * zeroed / nonzero, float(np.abs(w).max()), w_scale)
    return True


def _run_chain(chain: list[tuple[str, nn.Module]], x: torch.Tensor) -> list[torch.Tensor]:
    outs = []
    for _, layer in chain:
        x = layer(x)
        outs.append(x)
    return outs


def lut_table(function: str, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> list[int]:
    """table[q + 128] = quantized f(dequantized q), in double from the float32 scales (as buildQSigmoidLUT)."""
    s_in, s_out, fn = f32(in_scale), f32(out_scale), _LUT_FN[function]
    return [clamp(lround(fn((q - in_zp) * s_in) / s_out) + out_zp, INT8_MIN, INT8_MAX) for q in range(INT8_MIN, INT8_MAX + 1)]


def _relu_table(zp: int, q6: int | None) -> list[int]:
    return [clamp(q, zp, q6 if q6 is not None else INT8_MAX) for q in range(INT8_MIN, INT8_MAX + 1)]


def _q6(scale: float, zp: int) -> int:
    return min(INT8_MAX, zp + lround(6.0 / f32(scale)))


def _clamp_bounds(c: Clamp, scale: float, zp: int) -> tuple[int, int]:
    lo = INT8_MIN if c.lo is None else clamp(zp + lround(c.lo / f32(scale)), INT8_MIN, INT8_MAX)
    hi = INT8_MAX if c.hi is None else clamp(zp + lround(c.hi / f32(scale)), INT8_MIN, INT8_MAX)
    return lo, hi


def function_table(fn: Callable[[torch.Tensor], torch.Tensor], in_scale: float, in_zp: int, out_scale: float,
                   out_zp: int) -> list[int]:
    """table[q + 128] = quantized fn(dequantized q), fn evaluated by PyTorch in float64."""
    x = (torch.arange(INT8_MIN, INT8_MAX + 1, dtype=torch.float64) - in_zp) * f32(in_scale)
    with torch.no_grad():
        y = fn(x).double().tolist()
    return [clamp(lround(v / f32(out_scale)) + out_zp, INT8_MIN, INT8_MAX) for v in y]


def _dense(name: str, lin: nn.Linear, inp: tuple[float, int], out: tuple[float, int], act: nn.Module | None,
           per_channel: bool = False) -> Dense:
    w = lin.weight.detach().numpy().astype(np.float64)
    b = lin.bias.detach().numpy().astype(np.float64) if lin.bias is not None else np.zeros(w.shape[0])
    w_scale = f32(symmetric_weight_scale(w))
    in_scale, out_scale = f32(inp[0]), f32(out[0])
    multiplier, shift = requant_multiplier(in_scale, w_scale, out_scale)
    weights = quantize_weights(w, w_scale)
    bias = quantize_bias(b, in_scale, w_scale)
    per_row: dict[str, list] = {}
    if per_channel:  # one scale per output row; the bias of row o at input_scale * scale[o]
        scales = [f32(s) for s in symmetric_row_scales(w)]
        weights = [q for o, s in enumerate(scales) for q in quantize_weights(w[o], s)]
        bias = [quantize_bias(b[o:o + 1], in_scale, s)[0] for o, s in enumerate(scales)]
        pairs = [requant_multiplier(in_scale, s, out_scale) for s in scales]
        per_row = {"weight_scales": scales, "multipliers": [m for m, _ in pairs], "shifts": [sh for _, sh in pairs]}
    act_min, act_max, activation = INT8_MIN, INT8_MAX, "none"
    if isinstance(act, Clamp):  # relu (0, None), relu6 (0, 6), hardtanh (lo, hi): the clamp in int8
        act_min, act_max, activation = _clamp_bounds(act, out_scale, out[1]) + (act.kind,)
    elif isinstance(act, nn.ReLU6):
        act_min, act_max, activation = out[1], _q6(out_scale, out[1]), "relu6"
    elif isinstance(act, nn.ReLU):
        act_min, activation = out[1], "relu"
    return Dense(name=name, in_features=w.shape[1], out_features=w.shape[0], weights=weights,
                 bias=bias, weight_scale=w_scale, input_scale=in_scale,
                 input_zero_point=inp[1], output_scale=out_scale, output_zero_point=out[1], multiplier=multiplier,
                 shift=shift, act_min=act_min, act_max=act_max, activation=activation, **per_row)


def quantize_sequential(model: nn.Module, calibration: np.ndarray, name: str,
                        provenance: dict[str, object], weights: str = "per_tensor") -> IntModel:
    """The integer model of `model`; weights: "per_tensor" (one weight scale per layer) or "per_channel"
    (one per output row, each row with its own requantizer)."""
    if weights not in WEIGHT_SCHEMES:
        raise QmcuError(f"weights={weights!r} is not a weight quantization scheme", f"use one of {', '.join(WEIGHT_SCHEMES)}")
    chain = [(n, m) for n, m in chain_of(model) if not isinstance(m, nn.Identity | nn.Flatten)]
    first = next((m for _, m in chain if isinstance(m, nn.Linear)), None)
    width = first.in_features if first is not None else int(np.asarray(calibration).shape[-1])
    x = torch.from_numpy(check_calibration_set(calibration, width))
    _check_parameters(model, chain)
    notes: list[str] = []  # the warnings, also kept in the model's provenance for the verdict to repeat
    with torch.no_grad():
        outs = _run_chain(chain, x)
        _check_calibration_outputs(chain, x, outs, notes)
        if not torch.allclose(model(x), outs[-1], atol=1e-5):
            raise QmcuError(f"{type(model).__name__}.forward is not the chain of its children in order",
                            "wrap the layers in nn.Sequential (qmcu quantizes a chain of layers)")
    # Only the first degenerate range is reported: the ranges after it follow from it.
    cur, warned = _observed_params("the input", x, notes)
    input_params = cur
    layers: list[Layer] = []
    i = 0
    while i < len(chain):
        lname, mod = chain[i]
        if isinstance(mod, nn.Linear):
            act = chain[i + 1][1] if i + 1 < len(chain) and isinstance(chain[i + 1][1], nn.ReLU | nn.ReLU6 | Clamp) else None
            step = 2 if act is not None else 1
            # A range skewed by the layer's own huge weight is reported as that, not as a calibration fault.
            skewed = _warn_zeroed_weights(lname, mod, notes, per_channel=weights == "per_channel")
            out, seen = _observed_params(f"layer {lname}'s output", outs[i + step - 1], notes,  # post-activation
                                         warn=not (skewed or warned))
            warned = warned or seen or skewed
            layers.append(_dense(lname, mod, cur, out, act, per_channel=weights == "per_channel"))
            cur, i = out, i + step
        elif isinstance(mod, Elementwise) and mod.function not in LUT_OUTPUT:
            # Any other activation: output quantized over its observed range, the table computed here.
            out, seen = _observed_params(f"layer {lname}'s output", outs[i], notes, warn=not warned)
            warned = warned or seen
            layers.append(Lut(name=lname, function=mod.function, input_scale=f32(cur[0]), input_zero_point=cur[1],
                              output_scale=f32(out[0]), output_zero_point=out[1],
                              table=function_table(mod.fn, cur[0], cur[1], out[0], out[1])))
            cur, i = out, i + 1
        elif isinstance(mod, Clamp):  # not after a Linear: exact as a table on the same quantization
            lo, hi = _clamp_bounds(mod, cur[0], cur[1])
            layers.append(Lut(name=lname, function=mod.kind, input_scale=f32(cur[0]), input_zero_point=cur[1],
                              output_scale=f32(cur[0]), output_zero_point=cur[1],
                              table=[clamp(q, lo, hi) for q in range(INT8_MIN, INT8_MAX + 1)]))
            i += 1
        elif isinstance(mod, nn.Sigmoid | nn.Tanh | Elementwise):
            fn = mod.function if isinstance(mod, Elementwise) else type(mod).__name__.lower()
            out_scale, out_zp = LUT_OUTPUT[fn]
            layers.append(Lut(name=lname, function=fn, input_scale=f32(cur[0]), input_zero_point=cur[1],
                              output_scale=out_scale, output_zero_point=out_zp,
                              table=lut_table(fn, cur[0], cur[1], out_scale, out_zp)))
            cur, i = (out_scale, out_zp), i + 1
        else:  # ReLU / ReLU6 not after a Linear: exact as a table on the same quantization
            q6 = _q6(cur[0], cur[1]) if isinstance(mod, nn.ReLU6) else None
            layers.append(Lut(name=lname, function=type(mod).__name__.lower(), input_scale=f32(cur[0]),
                              input_zero_point=cur[1], output_scale=f32(cur[0]), output_zero_point=cur[1],
                              table=_relu_table(cur[1], q6)))
            i += 1
    int_model = IntModel(name=name, input_size=width, input_scale=f32(input_params[0]),
                         input_zero_point=input_params[1], layers=layers,
                         provenance=dict(provenance) | ({"quantizer_warnings": notes} if notes else {}))
    validate(int_model)
    return int_model
