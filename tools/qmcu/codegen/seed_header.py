"""Integer model -> weights.hpp: the seed tutorial's header (names, types) for a 2-H-1 ReLU/sigmoid MLP.

Emitted beside model.hpp for a model quantized with `seed_tutorial = True` (examples/xor.py); the
seed tutorial's layer of the application (firmware/app/seed_tutorial.hpp) reads it. The float scale
constants are `constexpr float` at namespace scope: unused in a FLOAT=0 build, so they compile to nothing.
Everything the integer path needs is emitted as an integer.
"""

from __future__ import annotations

import logging

from qmcu.codegen.cpp import banner, float_literal, int_array
from qmcu.errors import QmcuError
from qmcu.quant.intmodel import Dense, IntModel, Lut

logger = logging.getLogger(__name__)

NAMESPACE = "pytorch_quant_xor"


def _act_min_note(d: Dense) -> str:
    return "fused ReLU: the output zero point" if d.activation == "relu" else "int8 min"


def seed_layers(model: IntModel) -> tuple[Dense, Dense, Lut]:
    """The tutorial's fc1, fc2 and sigmoid table; anything else is not the tutorial's network."""
    layers = model.layers
    ok = (len(layers) == 3 and isinstance(layers[0], Dense) and layers[0].activation == "relu"
          and isinstance(layers[1], Dense) and isinstance(layers[2], Lut) and layers[2].function == "sigmoid"
          and model.input_size == 2 and layers[1].out_features == 1
          and not layers[0].per_channel and not layers[1].per_channel)
    if not ok:
        raise QmcuError(f"model {model.name} declares seed_tutorial = True but is not the tutorial's network "
                        "(2 inputs, Linear + ReLU, Linear to 1 output, Sigmoid; per-tensor weights)",
                        "drop seed_tutorial from the model file")
    fc1, fc2, sig = layers
    assert isinstance(fc1, Dense) and isinstance(fc2, Dense) and isinstance(sig, Lut)
    return fc1, fc2, sig


def _requant_block(prefix: str, layer_name: str, d: Dense) -> list[str]:
    return [
        f"// {layer_name}: out = clamp(round(acc * {prefix}Multiplier * 2^{prefix}Shift / 2^31) + zp, "
        f"{prefix}ActMin, {prefix}ActMax); shift > 0 is a left shift",
        f"constexpr int32_t {prefix}Multiplier = {d.multiplier};",
        f"constexpr int32_t {prefix}Shift = {d.shift};",
        f"constexpr int32_t {prefix}OutputZeroPoint = {d.output_zero_point};",
        f"constexpr int32_t {prefix}ActMin = {d.act_min};  // {_act_min_note(d)}",
        f"constexpr int32_t {prefix}ActMax = {d.act_max};",
    ]


def render_seed_header(model: IntModel) -> str:
    fc1, fc2, sig = seed_layers(model)
    provenance = {**model.provenance, "model_sha256": model.digest()}
    lines = [
        banner(f"qmcu int8 XOR model '{model.name}' (2-{fc1.out_features}-1 MLP, ReLU, sigmoid LUT): the seed "
               "tutorial's names", provenance),
        "#pragma once",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        f"namespace {NAMESPACE} {{",
        "",
        f"constexpr size_t NumInputs = {fc1.in_features};",
        f"constexpr size_t HiddenSize = {fc1.out_features};",
        f"constexpr size_t NumOutputs = {fc2.out_features};",
        "",
        "// Affine activation parameters: real = (q - zero_point) * scale.",
        f"constexpr float kInputScale = {float_literal(model.input_scale)};",
        f"constexpr int32_t kInputZeroPoint = {model.input_zero_point};",
        f"constexpr float kHiddenScale = {float_literal(fc1.output_scale)};",
        f"constexpr int32_t kHiddenZeroPoint = {fc1.output_zero_point};",
        f"constexpr float kLogitScale = {float_literal(fc2.output_scale)};",
        f"constexpr int32_t kLogitZeroPoint = {fc2.output_zero_point};",
        f"constexpr float kSigmoidOutScale = {float_literal(sig.output_scale)};  // 1/256",
        f"constexpr int32_t kSigmoidOutZeroPoint = {sig.output_zero_point};  // covers (0, 1)",
        "",
        "// Symmetric per-tensor weights (zero point 0, values in [-127, 127]), row-major [out][in].",
        f"constexpr float kFc1WeightScale = {float_literal(fc1.weight_scale)};",
        f"constexpr float kFc2WeightScale = {float_literal(fc2.weight_scale)};",
        int_array("int8_t", "kFc1Weights", fc1.weights),
        "// int32 biases at input_scale * weight_scale.",
        int_array("int32_t", "kFc1Biases", fc1.bias),
        int_array("int8_t", "kFc2Weights", fc2.weights),
        int_array("int32_t", "kFc2Biases", fc2.bias),
        "",
        "// The integer requantizers computed on the host (what buildRequantizer returns; model.hpp uses these).",
        *_requant_block("kFc1", fc1.name, fc1),
        *_requant_block("kFc2", fc2.name, fc2),
        "",
        "// Sigmoid lookup table computed on the host (what buildQSigmoidLUT would fill): index q + 128.",
        int_array("int8_t", "kSigmoidLUT", sig.table),
        "",
        f"}}  // namespace {NAMESPACE}",
        "",
    ]
    return "\n".join(lines)
