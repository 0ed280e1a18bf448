"""Integer model -> weights.hpp for the XOR network, with the seed's names and types.

The float scale constants are `constexpr float` at namespace scope: unused in a FLOAT=0 build,
so they compile to nothing. Everything the integer path needs is emitted as an integer.
"""

from __future__ import annotations

import logging
from pathlib import Path

from . import atomic
from .cpp import banner, float_literal, int_array
from .intmodel import Dense, IntModel
from .kernel_layout import prepare_dense, render_prepared

logger = logging.getLogger(__name__)

NAMESPACE = "pytorch_quant_xor"


def _act_min_note(d: Dense) -> str:
    return "fused ReLU: the output zero point" if d.activation == "relu" else "int8 min"


def _requant_block(prefix: str, layer_name: str, model: IntModel) -> list[str]:
    d = model.dense(layer_name)
    return [
        f"// {layer_name}: out = clamp(round(acc * {prefix}Multiplier * 2^{prefix}Shift / 2^31) + zp, "
        f"{prefix}ActMin, {prefix}ActMax); shift > 0 is a left shift",
        f"constexpr int32_t {prefix}Multiplier = {d.multiplier};",
        f"constexpr int32_t {prefix}Shift = {d.shift};",
        f"constexpr int32_t {prefix}OutputZeroPoint = {d.output_zero_point};",
        f"constexpr int32_t {prefix}ActMin = {d.act_min};  // {_act_min_note(d)}",
        f"constexpr int32_t {prefix}ActMax = {d.act_max};",
    ]


def render_xor_header(model: IntModel) -> str:
    fc1, fc2, sig = model.dense("fc1"), model.dense("fc2"), model.lut("sigmoid")
    provenance = {**model.provenance, "model_sha256": model.digest()}
    lines = [
        banner(f"qmcu int8 XOR model '{model.name}' (2-{fc1.out_features}-1 MLP, ReLU, sigmoid LUT)", provenance),
        "#pragma once",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "#include <qmcu/qdense_fast.hpp>",
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
        "// Integer requantizers computed on the host (what buildRequantizer would return).",
        *_requant_block("kFc1", "fc1", model),
        *_requant_block("kFc2", "fc2", model),
        "",
        "// Sigmoid lookup table computed on the host (what buildQSigmoidLUT would fill): index q + 128.",
        int_array("int8_t", "kSigmoidLUT", sig.table),
        "",
        "// The same layers prepared for qmcu::QDenseFast (zero point folded, weights in the kernel layout).",
        render_prepared("kFc1Fast", prepare_dense(fc1)),
        render_prepared("kFc2Fast", prepare_dense(fc2)),
        f"}}  // namespace {NAMESPACE}",
        "",
    ]
    return "\n".join(lines)


def emit_xor_header(model: IntModel, path: Path) -> None:
    atomic.write_text(path, render_xor_header(model))
    logger.info("wrote %s", path)
