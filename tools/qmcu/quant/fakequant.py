"""Cross-check against PyTorch itself: the float model with torch.fake_quantize_per_tensor_affine at our
scales and zero points, compared element by element with our int8 reference outputs.

PyTorch requantizes in float (and rounds ties to even), so +-1 LSB is the bar here; bit-exactness
is checked against our own integer reference.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch
from torch import nn

from qmcu.quant import reference
from qmcu.quant.intmodel import Dense, IntModel, Layer
from qmcu.quant.quantize import chain_of
from qmcu.quant.reference import quantize_rows

# The table activations PyTorch has a float op for here; other tables are checked by the judge only.
FAKE_QUANT_FUNCTIONS = ("sigmoid", "tanh", "relu", "relu6")


def _fq(x: torch.Tensor, scale: float, zp: int, lo: int = -128, hi: int = 127) -> torch.Tensor:
    return torch.fake_quantize_per_tensor_affine(x, scale, zp, lo, hi)


def _torch_layer(layer: Layer, lin: nn.Linear | None, x: torch.Tensor) -> torch.Tensor:
    """One layer in float with fake-quantized weights, then fake-quantized output (PyTorch's own ops)."""
    if isinstance(layer, Dense):
        assert lin is not None
        w = _fq(lin.weight, layer.weight_scale, 0, -127, 127)
        y = x @ w.T + (lin.bias if lin.bias is not None else 0.0)
        y = {"relu": torch.relu, "relu6": lambda t: torch.clamp(t, 0.0, 6.0)}.get(layer.activation, lambda t: t)(y)
    else:
        fn = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
              "relu6": lambda t: torch.clamp(t, 0.0, 6.0)}[layer.function]
        y = fn(x)
    return _fq(y, layer.output_scale, layer.output_zero_point)


def compare_with_fake_quant(model: nn.Module, int_model: IntModel, x_float: np.ndarray) -> dict[str, Any]:
    """Per layer, fed the same int8 input as our reference: PyTorch's int8 output minus ours.

    Feeding each layer our own input isolates the one place the two may differ (float vs integer
    requantization); end to end, a 1-LSB difference early on is amplified by later weights.
    """
    linears = [m for _, m in chain_of(model) if isinstance(m, nn.Linear)]
    q_in = quantize_rows(int_model, x_float)
    ours = reference.forward_all(int_model, q_in)
    scale, zp, x_q = int_model.input_scale, int_model.input_zero_point, q_in
    per_layer: dict[str, dict[str, int]] = {}
    total: Counter[int] = Counter()
    with torch.no_grad():
        for k, layer in enumerate(int_model.layers):
            x = torch.from_numpy(((x_q - zp) * np.float64(scale)).astype(np.float32))
            lin = linears.pop(0) if isinstance(layer, Dense) else None
            y = _torch_layer(layer, lin, x)
            theirs = (torch.round(y / layer.output_scale) + layer.output_zero_point).to(torch.int64).numpy()
            hist = Counter(int(d) for d in (theirs - ours[k]).ravel())
            per_layer[layer.name] = {str(d): hist[d] for d in sorted(hist)}
            total += hist
            scale, zp, x_q = layer.output_scale, layer.output_zero_point, ours[k]
    worst = max((abs(d) for d in total), default=0)
    return {"elements": sum(total.values()), "histogram": {str(d): total[d] for d in sorted(total)},
            "per_layer": per_layer, "max_abs_diff": worst, "within_1_lsb": worst <= 1}
