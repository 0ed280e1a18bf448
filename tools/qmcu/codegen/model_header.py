"""Integer model -> model.hpp: any chain of dense and LUT layers, with a generated forward pass.

Namespace qmcu_model. Layer k's constants are kL<k>*; the network's parameters sit in a mutable
global (g_layers) so the compiler reads the weights from memory instead of folding them into code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from qmcu import atomic
from qmcu.codegen.cpp import banner, float_literal, int_array
from qmcu.codegen.kernel_layout import prepare_dense, render_prepared
from qmcu.errors import QmcuError
from qmcu.quant.intmodel import Dense, IntModel, Lut

logger = logging.getLogger(__name__)


SEED_NOTE = "the seed tutorial's layer (firmware/app/seed_tutorial.hpp, weights.hpp) is added"


def seed_tutorial(model: IntModel) -> bool:
    """Quantized from a model file that declares `seed_tutorial = True` (examples/xor.py)."""
    return bool(model.provenance.get("seed_tutorial"))


def _dense_type(d: Dense) -> str:
    template = "qmcu::QDenseFastPC" if d.per_channel else "qmcu::QDenseFast"  # per-channel: a Requantizer per row
    return f"{template}<{d.in_features}, {d.out_features}>"


def dense_state(k: int, lay: Dense) -> tuple[str, str, str]:
    """Dense layer k's constants, its g_layers member and that member's initializer (chain and graph headers)."""
    requant = f"kL{k}Requantizers" if lay.per_channel else f"kL{k}Requantizer"
    return (render_prepared(f"kL{k}", prepare_dense(lay)), f"    {_dense_type(lay)} l{k};",
            f"    {{kL{k}Weights, kL{k}FoldedBiases, {requant}}},")


def lut_state(k: int, lay: Lut) -> tuple[str, str, str]:
    """Table layer k's constants, its g_layers member and that member's initializer."""
    return int_array("int8_t", f"kL{k}Table", lay.table), f"    const int8_t* l{k};", f"    kL{k}Table,"


def render_model_header(model: IntModel) -> str:
    if model.is_graph:  # convolutions, pools, adds: the arena-planned header
        from qmcu.codegen.graph_header import render_graph_header

        return render_graph_header(model)
    provenance = {**model.provenance, "model_sha256": model.digest()}
    widths = [lay.out_features if isinstance(lay, Dense) else None for lay in model.layers]
    w = model.input_size
    for i, v in enumerate(widths):
        widths[i] = w = v if v is not None else w
    lines = [
        banner(f"qmcu int8 model '{model.name}': {len(model.layers)} layers", provenance),
        "#pragma once", "", "#include <qmcu/qdense_fast.hpp>", "#include <qmcu/qmcu.hpp>", "",
        *([f"#define QMCU_SEED_TUTORIAL 1  // {SEED_NOTE}", ""] if seed_tutorial(model) else []),
        "namespace qmcu_model {", "",
        f"constexpr const char* kName = \"{model.name}\";",
        f"constexpr size_t kInputs = {model.input_size};",
        f"constexpr size_t kOutputs = {widths[-1]};",
        f"constexpr float kInputScale = {float_literal(model.input_scale)};",
        f"constexpr int32_t kInputZeroPoint = {model.input_zero_point};",
        f"constexpr size_t kLayerCount = {len(model.layers)};",
        "constexpr const char* kLayerNames[kLayerCount] = {" + ", ".join(f'"{lay.name}"' for lay in model.layers) + "};",
        f"constexpr size_t kMaxWidth = {max([model.input_size, *widths])};", "",
    ]
    members, inits, calls, straight = [], [], [], []
    last = len(model.layers) - 1
    for k, lay in enumerate(model.layers):
        src = "in" if k == 0 else f"buf[{(k - 1) % 2}]"
        dst = "out" if k == last else f"buf[{k % 2}]"
        if isinstance(lay, Dense):
            defs, member, init = dense_state(k, lay)
            lines += [f"// layer {k} '{lay.name}': dense {lay.in_features} -> {lay.out_features}, activation {lay.activation}",
                      defs]
            members.append(member)
            inits.append(init)
            calls.append(f"        case {k}: g_layers.l{k}.forward(in, out); break;")
            straight.append(f"    g_layers.l{k}.forward({src}, {dst});")
        else:
            assert isinstance(lay, Lut)
            defs, member, init = lut_state(k, lay)
            lines += [f"// layer {k} '{lay.name}': {lay.function} lookup table, index q + 128", defs, ""]
            members.append(member)
            inits.append(init)
            calls.append(f"        case {k}: for (size_t i = 0; i < {widths[k]}; ++i) "
                         f"out[i] = qmcu::qApplyLUT(in[i], g_layers.l{k}); break;")
            straight.append(f"    for (size_t i = 0; i < {widths[k]}; ++i) {dst}[i] = qmcu::qApplyLUT({src}[i], g_layers.l{k});")
    lines += ["struct Layers {", *members, "};", "", "// Mutable on purpose: see the file comment.",
              "inline Layers g_layers = {", *inits, "};", "",
              f"constexpr size_t kLayerWidths[kLayerCount] = {{{', '.join(str(v) for v in widths)}}};", "",
              "// One layer: in has the previous layer's width, out this layer's (kLayerWidths[k]).",
              "inline void forwardLayer(size_t k, const int8_t* in, int8_t* out) {", "    switch (k) {", *calls,
              "        default: break;", "    }", "}", "",
              "// The whole network, straight-line, ping-ponging between two activation buffers.",
              "inline void forward(const int8_t* in, int8_t* out) {",
              "    static int8_t buf[2][kMaxWidth];", "    (void)buf;  // unused by a one-layer model", *straight, "}", "",
              "}  // namespace qmcu_model", ""]
    return "\n".join(lines)


def header_renderers(model: IntModel) -> dict[str, Callable[[IntModel], str]]:
    """The headers a model's image includes, by file name: model.hpp, and weights.hpp for the seed tutorial."""
    from qmcu.codegen.seed_header import render_seed_header, seed_layers

    if model.is_graph:

        if seed_tutorial(model):
            raise QmcuError(f"model {model.name} is a graph model; the seed tutorial's layer needs its 2-4-1 MLP",
                            "remove seed_tutorial = True from the model file")
        return {"model.hpp": render_model_header}
    if not seed_tutorial(model):
        return {"model.hpp": render_model_header}
    seed_layers(model)  # refuse a model that is not the tutorial's network before writing anything
    return {"model.hpp": render_model_header, "weights.hpp": render_seed_header}


def header_names(seed: bool) -> list[str]:
    return ["model.hpp", "weights.hpp"] if seed else ["model.hpp"]


def emit_headers(model: IntModel, paths: list[Path]) -> None:
    """Write each header of `paths` (named as header_renderers names them) for `model`."""
    renderers = header_renderers(model)
    if sorted(p.name for p in paths) != sorted(renderers):
        raise QmcuError(f"model {model.name} has headers {', '.join(sorted(renderers))}, the build expected "
                        f"{', '.join(sorted(p.name for p in paths))}", "delete the build folder and rebuild")
    for path in paths:
        atomic.write_text(path, renderers[path.name](model))
        logger.info("wrote %s", path)
