"""Graph integer model -> model.hpp: conv/depthwise/pointwise/pool/add/dense/table layers over one arena.

The same API as the chain header (model_header.py) for the one application: kName, kInputs, kOutputs,
kInputScale, kInputZeroPoint, kLayerCount, kLayerNames, kMaxWidth, forward(in, out) and forwardLayer(k,
in, out) for the per-layer counts. Each layer's constants come from conv_layout.py (kernels/*.hpp) or
kernel_layout.py (dense); every kernel reads them through one mutable global (g_layers), so the image
check (build/image_model.py) finds each byte in flash. Intermediate tensors live in g_arena at the
offsets of the static memory plan (memory_plan.py); the input is the caller's buffer, the last layer
writes the caller's output. kArenaBytes is exact; a guard of kArenaGuardBytes follows the arena and
the application checks that it is intact after the run.
"""

from __future__ import annotations

import numpy as np

from qmcu.codegen import conv_layout as cl
from qmcu.codegen.cpp import banner, float_literal
from qmcu.codegen.memory_plan import MemoryPlan, check_plan, plan_memory
from qmcu.codegen.model_header import dense_state, lut_state
from qmcu.quant.graph_checks import tensor_sizes
from qmcu.quant.graph_reference import add_params_of
from qmcu.quant.intmodel import Add, Conv, Dense, IntModel, Layer, Lut, Pool

ARENA_GUARD_BYTES = 16  # a known pattern after the arena: an overrun by a kernel shows on the target

_CALL = {cl.PreparedConv2d: "qmcu::conv2d", cl.PreparedDepthwise: "qmcu::depthwiseConv2d",
         cl.PreparedPointwise: "qmcu::pointwise", cl.PreparedAdd: "qmcu::add"}


# Per-layer weight layouts: a depthwise layer's int8 weights cost no speed (half the flash), so always; a
# pointwise layer's int16 pre-widened weights save about 0.12 instructions per MAC but double the flash,
# so they are kept where the weights are small (below this many bytes as int8).
POINTWISE_INT8_FROM_BYTES = 4096


def weight_bits(lay: Conv) -> int:
    """The weight layout a conv layer is prepared with (16: int16 pre-widened, 8: int8)."""
    if lay.depth_multiplier:
        return 8
    if lay.pointwise and lay.in_shape[2] * lay.out_shape[2] >= POINTWISE_INT8_FROM_BYTES:
        return 8
    return 16


def prepare_layer(lay: Layer) -> cl.Prepared | None:
    """The kernel preparation of a conv, pool or add layer (None for dense and table layers)."""
    if isinstance(lay, Conv):
        common = {"input_zero_point": lay.input_zero_point, "multipliers": lay.multipliers, "shifts": lay.shifts,
                  "output_zero_point": lay.output_zero_point, "qmin": lay.act_min, "qmax": lay.act_max,
                  "name": lay.name}
        h, w, cin = lay.in_shape
        kh, kw = lay.kernel
        cout = lay.out_shape[2]
        if lay.depth_multiplier:
            weights = np.asarray(lay.weights, np.int64).reshape(kh, kw, cout)
            return cl.prepare_depthwise(weights, lay.bias, in_hw=(h, w), depth_multiplier=lay.depth_multiplier,
                                        stride=lay.stride, padding=lay.padding, weight_bits=weight_bits(lay), **common)
        weights = np.asarray(lay.weights, np.int64).reshape(cout, kh, kw, cin)
        if lay.pointwise:
            return cl.prepare_pointwise(weights, lay.bias, pixels=h * w, weight_bits=weight_bits(lay), **common)
        return cl.prepare_conv2d(weights, lay.bias, in_hw=(h, w), stride=lay.stride, padding=lay.padding, **common)
    if isinstance(lay, Pool):
        return cl.prepare_pool(lay.kind, in_hw=(lay.in_shape[0], lay.in_shape[1]), channels=lay.in_shape[2],
                               kernel=lay.kernel, stride=lay.stride, padding=lay.padding, name=lay.name)
    if isinstance(lay, Add):
        return cl.prepare_add(add_params_of(lay), count=lay.shape[0] * lay.shape[1] * lay.shape[2], qmin=lay.act_min,
                              qmax=lay.act_max, name=lay.name)
    return None


def prepare_all(model: IntModel) -> dict[str, cl.Prepared | None]:
    """Every layer's kernel preparation, by layer name (None for dense and table layers), computed once."""
    return {lay.name: prepare_layer(lay) for lay in model.layers}


def needs_exact(preps: dict[str, cl.Prepared | None]) -> bool:
    """Some conv layer has a shift outside the ChannelScale range: the kernels' exact fallback must be built."""
    return any(getattr(p, "requant", None) is not None and p.requant.exact is not None for p in preps.values())  # type: ignore


def _function(prep: cl.Prepared) -> str:
    if isinstance(prep, cl.PreparedPool):
        return prep.function
    return _CALL[type(prep)]


def scratch_of(preps: dict[str, cl.Prepared | None]) -> dict[str, int]:
    return {name: int(prep.scratch_bytes) for name, prep in preps.items() if prep is not None and prep.scratch_bytes}


def graph_plan(model: IntModel, preps: dict[str, cl.Prepared | None] | None = None) -> MemoryPlan:
    plan = plan_memory(model, scratch_of(preps if preps is not None else prepare_all(model)))
    check_plan(model, plan)
    return plan


def render_graph_header(model: IntModel) -> str:
    provenance = {**model.provenance, "model_sha256": model.digest()}
    sizes = tensor_sizes(model)
    preps = prepare_all(model)
    plan = graph_plan(model, preps)
    last = len(model.layers) - 1
    headers = sorted({prep.header for prep in preps.values() if prep is not None})
    lines = [
        banner(f"qmcu int8 graph model '{model.name}': {len(model.layers)} layers, arena {plan.arena_bytes} bytes",
               provenance),
        "#pragma once", "",
        "#define QMCU_MODEL_ARENA 1  // the application fills and checks the guard after the arena",
        *(["// Every layer requantizes with ChannelScale tables: leave the exact fallback out (about 3 KB).",
           "#define QMCU_KERNELS_NO_EXACT_REQUANT 1"] if not needs_exact(preps) else []), "",
        "#include <qmcu/qdense_fast.hpp>", "#include <qmcu/qmcu.hpp>", *(f"#include <{h}>" for h in headers), "",
        "namespace qmcu_model {", "",
        f"constexpr const char* kName = \"{model.name}\";",
        f"constexpr size_t kInputs = {model.input_size};",
        f"constexpr size_t kOutputs = {model.output_size};",
        f"constexpr float kInputScale = {float_literal(model.input_scale)};",
        f"constexpr int32_t kInputZeroPoint = {model.input_zero_point};",
        f"constexpr size_t kLayerCount = {len(model.layers)};",
        "constexpr const char* kLayerNames[kLayerCount] = {" + ", ".join(f'"{lay.name}"' for lay in model.layers) + "};",
        f"constexpr size_t kMaxWidth = {max(model.input_size, model.output_size)};  // the caller's buffers",
        "// The static memory plan: every intermediate tensor and scratch area at a fixed offset (exact size).",
        f"constexpr size_t kArenaBytes = {plan.arena_bytes};",
        f"constexpr size_t kArenaGuardBytes = {ARENA_GUARD_BYTES};", "",
    ]
    members, inits, calls = [], [], []

    def tensor(name: str, k: int) -> str:
        if name == "input":
            return "@IN@"  # the caller's input: in (forward) or g_input (forwardLayer)
        return f"(g_arena + {plan.offsets[name]})"

    for k, lay in enumerate(model.layers):
        assert lay.inputs
        src = tensor(lay.inputs[0], k)
        dst = "out" if k == last else tensor(lay.name, k)
        where = f"{lay.inputs} -> {lay.name}" + (f" (in place over {plan.in_place[lay.name]})" if lay.name in
                                                 plan.in_place else "")
        prep = preps[lay.name]
        if prep is not None:
            lines += [f"// layer {k}: {where}", cl.render_layer(f"kL{k}", prep)]
            members.append(f"    {prep.params_type} l{k};")
            inits.append(f"    kL{k}Params,")
            scratch = f"(g_arena + {plan.offsets[lay.name + '.scratch']})" if prep.scratch_bytes else "nullptr"
            if isinstance(prep, cl.PreparedAdd):
                calls.append(f"{_function(prep)}<kL{k}Shape>({scratch}, g_layers.l{k}, {src}, "
                             f"{tensor(lay.inputs[1], k)}, {dst});")
            else:
                calls.append(f"{_function(prep)}<kL{k}Shape>({scratch}, g_layers.l{k}, {src}, {dst});")
        elif isinstance(lay, Dense):
            defs, member, init = dense_state(k, lay)
            lines += [f"// layer {k}: {where}: dense {lay.in_features} -> {lay.out_features}, activation "
                      f"{lay.activation}", defs]
            members.append(member)
            inits.append(init)
            calls.append(f"g_layers.l{k}.forward({src}, {dst});")
        else:
            assert isinstance(lay, Lut)
            defs, member, init = lut_state(k, lay)
            lines += [f"// layer {k}: {where}: {lay.function} lookup table, index q + 128", defs, ""]
            members.append(member)
            inits.append(init)
            calls.append(f"for (size_t i = 0; i < {sizes[lay.name]}; ++i) {dst}[i] = qmcu::qApplyLUT({src}[i], "
                         f"g_layers.l{k});")
    profile = [c.replace("@IN@", "g_input") for c in calls]
    calls = [c.replace("@IN@", "in") for c in calls]
    lines += [
        "struct Layers {", *members, "};", "", "// Mutable on purpose: the kernels read every constant through it.",
        "inline Layers g_layers = {", *inits, "};", "",
        "// The arena and, after it, the guard the application checks after the run.",
        "alignas(4) inline int8_t g_arena[kArenaBytes + kArenaGuardBytes];",
        "inline const int8_t* g_input = nullptr;  // forwardLayer's input (set by layer 0)", "",
        "inline int8_t guardByte(size_t i) { return static_cast<int8_t>(0xA5 ^ (i * 29)); }",
        "inline void arenaGuardFill() {",
        "    for (size_t i = 0; i < kArenaGuardBytes; ++i) g_arena[kArenaBytes + i] = guardByte(i);", "}",
        "inline bool arenaGuardIntact() {",
        "    for (size_t i = 0; i < kArenaGuardBytes; ++i) {",
        "        if (g_arena[kArenaBytes + i] != guardByte(i)) return false;", "    }", "    return true;", "}", "",
        "// One layer, for the per-layer counts: layer 0 takes the input; the last writes out; the others",
        "// read and write the arena (in and out are not theirs).",
        "inline void forwardLayer(size_t k, const int8_t* in, int8_t* out) {",
        "    if (k == 0) {", "        g_input = in;", "    }", "    (void)out;", "    switch (k) {",
        *(f"        case {k}: {c} break;" for k, c in enumerate(profile)),
        "        default: break;", "    }", "}", "",
        "// The whole network, straight-line.",
        "inline void forward(const int8_t* in, int8_t* out) {", *(f"    {c}" for c in calls), "}", "",
        "}  // namespace qmcu_model", "",
    ]
    return "\n".join(lines)
