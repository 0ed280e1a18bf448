"""Where accuracy is lost: every int8 layer compared with its float original on the test set.

For each layer of the integer model, both the float module(s) it came from and the integer layer are
fed the same input (the integer reference's dequantized input to that layer); the table gives

  sqnr_db          10 log10(sum f^2 / sum (f - d)^2), f the float output, d the dequantized int8 one
                   (None when the two are equal: no quantization noise at all)
  max_err_lsb      max |f - d| in units of the layer's output scale
  float_accuracy   the test accuracy with only this layer in float: the integer reference up to it, the
                   float module on the dequantized input, its output quantized with the layer's output
                   scale and zero point, then the integer reference again

and the worst layer (lowest SQNR) is named. Integer layers map to the captured chain's modules:
Dense <- Linear (+ the ReLU/ReLU6/Clamp fused into it), Lut <- the Elementwise/Clamp/Sigmoid/Tanh module.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from qmcu.errors import QmcuError
from qmcu.model.capture import Clamp
from qmcu.quant import reference
from qmcu.quant.intmodel import Dense, IntModel, Layer
from qmcu.quant.qmath import f32
from qmcu.quant.reference import predictions, quantize_array, quantize_rows

logger = logging.getLogger(__name__)

_FUSED = (nn.ReLU, nn.ReLU6, Clamp)
SQNR_FLOOR = -99.99  # a silent float output with a noisy int8 one (JSON has no -inf)


@dataclass
class Stage:
    """One integer layer and the float modules it was quantized from."""

    layer: Layer
    modules: list[nn.Module]

    @property
    def origin(self) -> str:
        return " + ".join(_module_name(m) for m in self.modules)


def _module_name(m: nn.Module) -> str:
    if isinstance(m, nn.Linear):
        return f"Linear({m.in_features}->{m.out_features})"
    kind = getattr(m, "function", None) or getattr(m, "kind", None)
    return str(kind) if kind else type(m).__name__


def stages(chain: nn.Module, model: IntModel) -> list[Stage]:
    """Pair every integer layer with its chain modules (by the names the quantizer gave them)."""
    names = [n for n, m in chain.named_children() if not isinstance(m, nn.Identity | nn.Flatten)]
    mods = dict(chain.named_children())
    out = []
    for layer in model.layers:
        if layer.name not in mods:
            raise QmcuError(f"layer {layer.name} of {model.name} has no module in the captured chain",
                            "diagnose the model that was quantized from this chain")
        modules = [mods[layer.name]]
        k = names.index(layer.name)
        if isinstance(layer, Dense) and k + 1 < len(names) and isinstance(mods[names[k + 1]], _FUSED):
            modules.append(mods[names[k + 1]])
        out.append(Stage(layer, modules))
    return out


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.float64) - zero_point) * f32(scale)).astype(np.float32)


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return quantize_array(x, f32(scale), zero_point)


def _int_layer(layer: Layer, x: np.ndarray) -> np.ndarray:
    return reference.dense(x, layer) if isinstance(layer, Dense) else reference.lut(x, layer)


def _float_stage(stage: Stage, x: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.no_grad():
        for m in stage.modules:
            t = m(t)
    return t.numpy().astype(np.float64)


def _input_scale(model: IntModel, k: int) -> tuple[float, int]:
    if k == 0:
        return model.input_scale, model.input_zero_point
    prev = model.layers[k - 1]
    return prev.output_scale, prev.output_zero_point


def sqnr_db(signal: np.ndarray, approx: np.ndarray) -> float | None:
    """None when approx equals signal exactly (no noise)."""
    noise = float(np.sum((signal - approx) ** 2))
    if noise == 0.0:
        return None
    power = float(np.sum(signal ** 2))
    return round(10.0 * math.log10(power / noise), 2) if power > 0.0 else SQNR_FLOOR


def _accuracy(model: IntModel, outputs: np.ndarray, labels: np.ndarray) -> float:
    return float((predictions(model, outputs) == labels).mean())


def run_mixed(model: IntModel, chain_stages: list[Stage], q_in: np.ndarray, in_float: set[int]) -> np.ndarray:
    """The integer reference, except layers in `in_float` run in float on the dequantized input and their
    output is quantized with that layer's output scale and zero point."""
    x = q_in
    for k, stage in enumerate(chain_stages):
        if k in in_float:
            scale, zp = _input_scale(model, k)
            out = _float_stage(stage, dequantize(x, scale, zp))
            x = quantize(out, stage.layer.output_scale, stage.layer.output_zero_point)
        else:
            x = _int_layer(stage.layer, x)
    return x


def _row(model: IntModel, chain_stages: list[Stage], k: int, q_in: np.ndarray, int_outs: list[np.ndarray],
         y: np.ndarray) -> dict[str, Any]:
    stage = chain_stages[k]
    layer = stage.layer
    x = q_in if k == 0 else int_outs[k - 1]
    f = _float_stage(stage, dequantize(x, *_input_scale(model, k)))
    d = dequantize(int_outs[k], layer.output_scale, layer.output_zero_point).astype(np.float64)
    return {"layer": layer.name, "op": "dense" if isinstance(layer, Dense) else "table", "from": stage.origin,
            "sqnr_db": sqnr_db(f, d), "max_err_lsb": round(float(np.max(np.abs(f - d))) / f32(layer.output_scale), 2),
            "float_accuracy": _accuracy(model, run_mixed(model, chain_stages, q_in, {k}), y)}


def worst_layer(rows: list[dict[str, Any]]) -> str | None:
    """The layer with the lowest SQNR (None if every layer is exact)."""
    noisy = [r for r in rows if r["sqnr_db"] is not None]
    return min(noisy, key=lambda r: r["sqnr_db"])["layer"] if noisy else None


def diagnose(chain: nn.Module, model: IntModel, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    """The per-layer diagnosis of `model` (quantized from `chain`) on the test set."""
    chain_stages = stages(chain, model)
    x = np.asarray(x_test, dtype=np.float32)
    y = np.asarray(y_test, dtype=np.int64)
    q_in = quantize_rows(model, x)  # exactly the image's input quantization
    int_outs = reference.forward_all(model, q_in)
    rows = [_row(model, chain_stages, k, q_in, int_outs, y) for k in range(len(chain_stages))]
    everything = set(range(len(chain_stages)))
    doc = {"set": f"test set, {len(x)} samples", "int8_accuracy": _accuracy(model, int_outs[-1], y),
           "all_float_accuracy": _accuracy(model, run_mixed(model, chain_stages, q_in, everything), y),
           "input_sqnr_db": sqnr_db(x.astype(np.float64), dequantize(q_in, model.input_scale, model.input_zero_point)
                                    .astype(np.float64)),
           "layers": rows, "worst": worst_layer(rows)}
    logger.debug("diagnosis of %s: worst layer %s", model.name, doc["worst"])
    return doc
