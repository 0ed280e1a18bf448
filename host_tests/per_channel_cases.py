"""Per-channel test layers, inputs and models, shared by unit/, host_cpp/ and target/ tests."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from qmcu.quant.intmodel import Dense

I32_MAX = 2**31 - 1
INPUTS_PER_LAYER = 48


def _row_requantizer(rng: random.Random, n_in: int) -> tuple[int, int]:
    typical = -7 - round(np.log2(n_in) / 2)
    kind = rng.random()
    if kind < 0.6:
        return rng.randint(1 << 30, I32_MAX), max(-23, min(-1, typical + rng.randint(-3, 2)))
    if kind < 0.72:  # exact ties
        return rng.choice((1 << 30, 1 << 29, 3 << 28)), max(-23, min(-1, typical + rng.randint(-1, 2)))
    if kind < 0.85:  # shifts RightShiftRequant does not cover: Requantizer::apply for that row
        return rng.choice(((rng.randint(1 << 12, 1 << 20), rng.randint(0, 4)),
                           (rng.randint(1 << 30, I32_MAX), rng.randint(-31, -24))))
    return rng.choice((0, 1, 1 << 30, I32_MAX, rng.randint(0, I32_MAX))), rng.randint(-31, 30)


def random_per_channel_layer(rng: random.Random, n_in: int, n_out: int) -> Dense:
    """Rows of very different magnitudes, each with its own requantizer; partial sums inside int32."""
    weights: list[int] = []
    for _ in range(n_out):
        peak = rng.choice((1, 3, 20, 127))
        weights += [rng.randint(-peak, peak) for _ in range(n_in)]
    in_zp = rng.choice((-128, 127, 0, rng.randint(-128, 127)))
    out_zp = rng.randint(-128, 127)
    w = np.asarray(weights, dtype=np.int64).reshape(n_out, n_in)
    bias = [int(rng.randint(-(1 << 14), 1 << 14) + in_zp * int(w[o].sum())) for o in range(n_out)]
    if rng.random() < 0.3:  # one row's bias near the int32 edge the kernel can still take
        o = rng.randrange(n_out)
        bias[o] = I32_MAX - int(np.maximum(w[o] * -128, w[o] * 127).sum()) + in_zp * int(w[o].sum())
    pairs = [_row_requantizer(rng, n_in) for _ in range(n_out)]
    clamp = rng.random()
    act_min, act_max = (out_zp, 127) if clamp < 0.4 else ((-128, 127) if clamp < 0.7 else sorted(
        (rng.randint(-128, 127), rng.randint(-128, 127))))
    return Dense(name="L", in_features=n_in, out_features=n_out, weights=weights, bias=bias, weight_scale=1.0,
                 input_scale=1.0, input_zero_point=in_zp, output_scale=1.0, output_zero_point=out_zp,
                 multiplier=pairs[0][0], shift=pairs[0][1], act_min=act_min, act_max=act_max,
                 weight_scales=[1.0] * n_out, multipliers=[m for m, _ in pairs], shifts=[s for _, s in pairs])


def layer_inputs(rng: np.random.Generator, n_in: int) -> np.ndarray:
    x = rng.integers(-128, 128, size=(INPUTS_PER_LAYER, n_in))
    x[0], x[1], x[2] = -128, 127, 0
    x[3, ::2], x[3, 1::2] = -128, 127
    return x


def _cpp_int8(name: str, values: np.ndarray) -> str:
    return f"constexpr int8_t {name}[{values.size}] = {{{', '.join(str(int(v)) for v in values.ravel())}}};"


# --- models: quantize_sequential(weights=...) ---------------------------------------------------------

def skewed_model() -> nn.Sequential:
    """Layer 0's rows differ by 1000x: one huge row (always negative, so ReLU zeroes it on the data) sets the
    per-tensor weight scale, and the small rows carrying the information quantize to almost nothing."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))
    with torch.no_grad():
        model[0].weight[:7] *= 0.02
        model[0].weight[7] = 10.0
        model[0].bias[7] = -100.0
        model[0].bias[:7] *= 0.02
        model[2].weight *= 50.0  # the small rows carry the information
    return model.eval()


def _data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 4)).astype(np.float32)
