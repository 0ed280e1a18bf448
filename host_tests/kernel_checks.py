"""Shared by the fast-kernel tests (unit/, host_cpp/, target/): random layers and their inputs (mirrored by
the generated C++), the generated kernel-check and bench programs, cross builds and instruction counts.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qmcu import boards
from qmcu.boards import Board, Corner
from qmcu.build import toolchain
from qmcu.codegen import linker_script
from qmcu.codegen.kernel_layout import PreparedDense, prepare_dense, render_prepared
from qmcu.paths import RUNTIME_INCLUDE, TEXTBOOK_HEADER
from qmcu.quant import intmodel, reference
from qmcu.quant.intmodel import Dense
from qmcu.run import insn_plugin
from qmcu.run.qemu import run_qemu

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
ALL_BOARDS = boards.load_all()
QEMU_BOARDS = [b for b in ALL_BOARDS if b.kind == "qemu"]
DSP_BOARDS = [b for b in QEMU_BOARDS if b.dsp]
SCALAR_BOARDS = [b for b in QEMU_BOARDS if not b.dsp]
M4_BOARDS = [b for b in DSP_BOARDS if b.cpu == "cortex-m4"]
CROSS_TOOLS = ("arm-none-eabi-g++", "arm-none-eabi-nm", "arm-none-eabi-objdump", "qemu-system-arm", "gcc")
CORNER0 = Corner(0, 0)
RUN_TIMEOUT_S = 60.0

# Budgets (instructions per inference on Cortex-M4, -O2, QEMU plugin counts of the whole call).
MLP_SHAPE = (64, 32, 10)
MLP_MACS = 64 * 32 + 32 * 10
MLP_BUDGET = 3600
XOR_BUDGET = 120


# --- random layers and their inputs (mirrored by the C++ generator below) ----------------------------

def random_layer(rng: random.Random, n_in: int, n_out: int, name: str = "L") -> Dense:
    """A random int8 layer whose worst-case partial sums fit int32, with varied requantizers and clamps."""
    weights = [rng.randint(-127, 127) for _ in range(n_in * n_out)]
    if rng.random() < 0.15:  # extreme weights
        weights = [rng.choice((-127, 127)) for _ in weights]
    in_zp = rng.choice((-128, 127, 0, rng.randint(-128, 127)))
    out_zp = rng.randint(-128, 127)
    # A scale that maps the typical accumulator (about 5400 * sqrt(n_in)) onto the int8 range, so that most
    # outputs are not clamped and every bit of the kernel shows.
    typical = -7 - round(math.log2(n_in) / 2)
    kind = rng.random()
    if kind < 0.6:  # the usual case
        multiplier, shift = rng.randint(1 << 30, I32_MAX), max(-23, min(-1, typical + rng.randint(-2, 1)))
    elif kind < 0.72:  # exact ties in both roundings
        multiplier, shift = rng.choice((1 << 30, 1 << 29, 3 << 28)), max(-23, min(-1, typical + rng.randint(-1, 2)))
    elif kind < 0.8:  # shifts >= 0 (a left shift, saturating) and below -23: the exact path
        multiplier, shift = rng.choice(((rng.randint(1 << 12, 1 << 20), rng.randint(0, 4)),
                                        (rng.randint(0, I32_MAX), rng.randint(5, 30)),
                                        (rng.randint(1 << 30, I32_MAX), rng.randint(-31, -24))))
    else:  # anything: edge multipliers, any shift
        multiplier, shift = rng.choice((0, 1, 1 << 30, I32_MAX, rng.randint(0, I32_MAX))), rng.randint(-31, 30)
    clamp = rng.random()
    if clamp < 0.4:
        act_min, act_max = out_zp, 127  # fused ReLU
    elif clamp < 0.7:
        act_min, act_max = -128, 127
    else:
        a, b = rng.randint(-128, 127), rng.randint(-128, 127)
        act_min, act_max = min(a, b), max(a, b)
    bias = random_bias(rng, weights, n_in, n_out, in_zp)
    layer = Dense(name=name, in_features=n_in, out_features=n_out, weights=weights, bias=bias, weight_scale=1.0,
                  input_scale=1.0, input_zero_point=in_zp, output_scale=1.0, output_zero_point=out_zp,
                  multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max,
                  activation="relu" if act_min == out_zp and act_max == 127 else "none")
    return layer


def random_bias(rng: random.Random, weights: list[int], n_in: int, n_out: int, in_zp: int) -> list[int]:
    """Biases that keep every partial sum inside int32 for any int8 input: mostly moderate (outputs inside
    the int8 range), some at the int32 limits, some anywhere in between."""
    w = np.asarray(weights, dtype=np.int64).reshape(n_out, n_in)
    row_sum = w.sum(axis=1)
    hi_term = np.maximum(w * -128, w * 127).sum(axis=1)
    lo_term = np.minimum(w * -128, w * 127).sum(axis=1)
    bias = []
    for o in range(n_out):
        # folded = bias - in_zp * row_sum must keep folded + [lo_term, hi_term] inside int32
        lo = max(int(I32_MIN - lo_term[o] + in_zp * row_sum[o]), I32_MIN)
        hi = min(int(I32_MAX - hi_term[o] + in_zp * row_sum[o]), I32_MAX)
        r = rng.random()
        if r < 0.04:
            bias.append(hi)  # partial sums touch INT32_MAX
        elif r < 0.08:
            bias.append(lo)  # ... and INT32_MIN
        elif r < 0.14:
            bias.append(rng.randint(lo, hi))
        else:
            bias.append(max(lo, min(hi, rng.randint(-(1 << 14), 1 << 14) + in_zp * int(row_sum[o]))))
    return bias


def with_input_zero_point(rng: random.Random, layer: Dense, zp: int) -> Dense:
    bias = random_bias(rng, layer.weights, layer.in_features, layer.out_features, zp)
    return replace(layer, input_zero_point=zp, bias=bias)


def layer_inputs(index: int, n_in: int, count: int) -> np.ndarray:
    """The inputs the C++ test program generates for layer `index` (see INPUTS_CPP): vector k < 256 puts
    every int8 value at every position; then all -128, all 127, zeros, alternating extremes; then an LCG."""
    out = np.zeros((count, n_in), dtype=np.int64)
    state = (index * 2654435761 + 12345) & 0xFFFFFFFF
    for k in range(count):
        for i in range(n_in):
            if k < 256:
                v = ((k + 73 * i + 11 * index) & 255) - 128
            elif k == 256:
                v = -128
            elif k == 257:
                v = 127
            elif k == 258:
                v = 0
            elif k == 259:
                v = -128 if i % 2 == 0 else 127
            else:
                state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
                v = ((state >> 24) & 255) - 128
            out[k, i] = v
    return out


INPUTS_CPP = r"""
// The test inputs of layer `index` (mirrors layer_inputs() in kernel_checks.py).
struct InputGen {
    uint32_t state;
    explicit InputGen(uint32_t index) : state(index * 2654435761u + 12345u) {}
    void fill(uint32_t index, uint32_t k, int8_t* x, size_t n) {
        for (size_t i = 0; i < n; ++i) {
            int32_t v;
            if (k < 256u) {
                v = static_cast<int32_t>((k + 73u * i + 11u * index) & 255u) - 128;
            } else if (k == 256u) {
                v = -128;
            } else if (k == 257u) {
                v = 127;
            } else if (k == 258u) {
                v = 0;
            } else if (k == 259u) {
                v = i % 2 == 0 ? -128 : 127;
            } else {
                state = state * 1664525u + 1013904223u;
                v = static_cast<int32_t>((state >> 24) & 255u) - 128;
            }
            x[i] = static_cast<int8_t>(v);
        }
    }
};
"""


# --- generated C++ programs --------------------------------------------------------------------------

def _layer_namespace(i: int, prep: PreparedDense) -> str:
    return f"namespace l{i} {{\n{render_prepared('k', prep)}}}  // namespace l{i}\n"


def kernel_check_source(preps: list[PreparedDense], count: int, target: bool, prelude: str = "",
                        first: str = "") -> str:
    """A program that runs every layer on `count` generated inputs and prints one hex line per output vector:
    "L<layer> <k> <bytes>", after "variant <name>". On a target it writes to the platform console.
    prelude: code placed before the program, first: statements run before the layers."""
    parts = ["#include <qmcu/qdense_fast.hpp>", "#include <stddef.h>", "#include <stdint.h>", prelude]
    parts += ['#include "platform.hpp"'] if target else ["#include <stdio.h>"]
    parts += [INPUTS_CPP, "namespace {"]
    if target:
        parts.append("void emit(const char* s, size_t n) { qmcu::platform::console_write(s, n); }")
    else:
        parts.append("void emit(const char* s, size_t n) { fwrite(s, 1, n, stdout); }")
    parts.append(r"""
void emitText(const char* s) { size_t n = 0; while (s[n] != '\0') { ++n; } emit(s, n); }
[[maybe_unused]] void emitUint(uint32_t v) {
    char digits[10];
    int d = 0;
    do { digits[d++] = static_cast<char>('0' + v % 10u); v /= 10u; } while (v != 0u);
    char out[10];
    for (int k = 0; k < d; ++k) { out[k] = digits[d - 1 - k]; }
    emit(out, static_cast<size_t>(d));
}
void emitLine(uint32_t layer, uint32_t k, const int8_t* out, size_t n) {
    static const char kHex[] = "0123456789abcdef";
    char line[24 + 2 * 256];
    size_t p = 0;
    line[p++] = 'L';
    uint32_t v = layer;
    char digits[10];
    int d = 0;
    do { digits[d++] = static_cast<char>('0' + v % 10u); v /= 10u; } while (v != 0u);
    while (d > 0) { line[p++] = digits[--d]; }
    line[p++] = ' ';
    v = k;
    do { digits[d++] = static_cast<char>('0' + v % 10u); v /= 10u; } while (v != 0u);
    while (d > 0) { line[p++] = digits[--d]; }
    line[p++] = ' ';
    for (size_t i = 0; i < n; ++i) {
        const uint8_t b = static_cast<uint8_t>(out[i]);
        line[p++] = kHex[b >> 4];
        line[p++] = kHex[b & 15u];
    }
    line[p++] = '\n';
    emit(line, p);
}
// noinline + noipa: the kernel runs on run-time weights, biases and requantizer, as in an application.
template <size_t NIn, size_t NOut>
__attribute__((noinline, noipa)) void runLayer(uint32_t index, const qmcu::QDenseFast<NIn, NOut>& kernel, uint32_t count) {
    InputGen gen(index);
    // Input and output at every alignment: the DSP path reads input words and stores output words unaligned.
    alignas(4) int8_t in_buf[NIn + 4];
    alignas(4) int8_t out_buf[NOut + 8];
    int8_t* in = in_buf + index % 4u;
    int8_t* out = out_buf + (index / 4u) % 4u;
    for (uint32_t k = 0; k < count; ++k) {
        gen.fill(index, k, in, NIn);
        out[NOut] = 0x5a;
        kernel.forward(in, out);
        if (out[NOut] != 0x5a) { emitText("OVERRUN\n"); }
        emitLine(index, k, out, NOut);
    }
}
}  // namespace
""")
    parts += [_layer_namespace(i, p) for i, p in enumerate(preps)]
    parts.append("namespace {")
    for i, p in enumerate(preps):
        parts.append(f"{p.kernel_type} g_k{i}{{l{i}::kWeights, l{i}::kFoldedBiases, l{i}::kRequantizer}};")
    parts.append("}  // namespace")
    body = [f"    runLayer({i}, g_k{i}, {count}u);" for i in range(len(preps))]
    head = 'emitText("variant "); emitText(qmcu::kDenseFastVariant); emitText("\\n");\n' + first
    if target:
        parts.append("extern \"C\" int app_main() {\n    " + head + "\n" + "\n".join(body) + "\n    emitText(\"done\\n\");\n"
                     "    return 0;\n}\n")
    else:
        parts.append("int main() {\n    " + head + "\n" + "\n".join(body) + "\n    emitText(\"done\\n\");\n"
                     "    return 0;\n}\n")
    return "\n".join(parts)


def parse_kernel_output(text: str, preps: list[PreparedDense], count: int) -> dict[int, np.ndarray]:
    got: dict[int, np.ndarray] = {i: np.full((count, p.out_features), 999, dtype=np.int64) for i, p in enumerate(preps)}
    assert "OVERRUN" not in text, "a kernel wrote past its outputs"
    for layer, k, hexes in re.findall(r"^L(\d+) (\d+) ([0-9a-f]*)$", text, re.M):
        values = np.frombuffer(bytes.fromhex(hexes), dtype=np.int8).astype(np.int64)
        got[int(layer)][int(k)] = values
    return got


def assert_bit_exact(got: dict[int, np.ndarray], layers: list[Dense], count: int, where: str) -> int:
    """Every output equals reference.dense; also checks that most outputs are not clamped (a test whose
    outputs all saturate would prove little)."""
    checked = 0
    inside = 0
    for i, layer in enumerate(layers):
        want = reference.dense(layer_inputs(i, layer.in_features, count), layer)
        inside += int(((want > layer.act_min) & (want < layer.act_max)).sum())
        diff = np.argwhere(got[i] != want)
        if diff.size:
            k, o = diff[0]
            raise AssertionError(f"{where}: layer {i} ({layer.in_features}x{layer.out_features}, shift {layer.shift}, "
                                 f"multiplier {layer.multiplier}, in_zp {layer.input_zero_point}) input {k} output {o}: "
                                 f"kernel {got[i][k, o]} reference {want[k, o]} ({len(diff)} mismatches)")
        checked += want.size
    assert inside > checked // 4, f"{where}: only {inside} of {checked} outputs are inside the clamp range"
    return checked


REQUANT_CHECK_CPP = r"""
#include <qmcu/qdense_fast.hpp>
// RightShiftRequant::apply == Requantizer::apply for every shift it covers ([-23, -1]), multipliers at the edges,
// powers of two (exact ties) and random, accumulators at the edges, near powers of two and random.
namespace {
uint32_t g_state = 0x12345678u;
uint32_t next() { g_state = g_state * 1664525u + 1013904223u; return g_state ^ (g_state >> 15); }
}  // namespace
// returns the number of mismatches; *checked counts the comparisons
__attribute__((noinline)) uint32_t checkRequant(uint32_t random_accs, uint32_t* checked) {
    int32_t mults[40 + 16];
    int nm = 0;
    const int32_t fixed[] = {0, 1, 2, 3, 0x40000000, 0x40000001, 0x7FFFFFFF, 0x7FFFFFFE, 0x60000000, 0x55555555};
    for (int32_t m : fixed) { mults[nm++] = m; }
    for (int k = 0; k < 31; k += 2) { mults[nm++] = static_cast<int32_t>(1u << k); }
    while (nm < static_cast<int>(sizeof mults / sizeof mults[0])) { mults[nm++] = static_cast<int32_t>(next() >> 1); }
    int32_t edges[8 + 31 * 6];
    int ne = 0;
    const int32_t fixed_accs[] = {qmcu::kInt32Min, qmcu::kInt32Min + 1, -1, 0, 1, qmcu::kInt32Max, qmcu::kInt32Max - 1, -2};
    for (int32_t a : fixed_accs) { edges[ne++] = a; }
    for (int k = 0; k < 31; ++k) {
        const int32_t p = static_cast<int32_t>(1u << k);
        edges[ne++] = p; edges[ne++] = p - 1; edges[ne++] = p + 1;
        edges[ne++] = -p; edges[ne++] = -p - 1; edges[ne++] = 1 - p;
    }
    uint32_t bad = 0;
    uint32_t n = 0;
    // covers() is exactly [-23, -1]
    for (int32_t shift = -31; shift <= 30; ++shift) {
        const qmcu::Requantizer rq{1 << 30, shift, 0, -128, 127};
        bad += qmcu::RightShiftRequant::covers(rq) != (shift >= -23 && shift <= -1) ? 1u : 0u;
    }
    for (int32_t shift = qmcu::RightShiftRequant::kMinShift; shift <= -1; ++shift) {
        for (int mi = 0; mi < nm; ++mi) {
            const qmcu::Requantizer rq{mults[mi], shift, static_cast<int32_t>(next() % 256u) - 128, -128, 127};
            const qmcu::RightShiftRequant fast = qmcu::RightShiftRequant::from(rq);
            const qmcu::Requantizer wide{rq.multiplier, rq.shift, 0, qmcu::kInt32Min, qmcu::kInt32Max};
            const qmcu::RightShiftRequant fast_wide = qmcu::RightShiftRequant::from(wide);
            for (uint32_t j = 0; j < static_cast<uint32_t>(ne) + random_accs; ++j) {
                int32_t acc;
                if (j < static_cast<uint32_t>(ne)) {
                    acc = edges[j];
                } else if (j % 2 == 0) {
                    acc = static_cast<int32_t>(next());
                } else {
                    acc = static_cast<int32_t>(next()) >> (next() % 31u);  // small magnitudes: many ties
                }
                bad += fast.apply(acc) != rq.apply(acc) ? 1u : 0u;
                bad += fast_wide.scale(acc) != wide.apply(acc) ? 1u : 0u;  // the unclamped scaled value
                n += 2;
            }
        }
    }
    *checked = n;
    return bad;
}
"""


# --- cross builds ------------------------------------------------------------------------------------

def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"command failed: {' '.join(cmd)}\n{proc.stderr[-4000:]}"


def build_target(board: Board, source: str, out: Path, defines: dict[str, str] | None = None,
                 opt: str = "-O2") -> Path:
    """Compile one application source for a board (corner std0-float0) with the project's flags and link it."""
    out.mkdir(parents=True, exist_ok=True)
    flags = toolchain.target_flags(board, CORNER0, opt)
    platform = toolchain.PLATFORM_DIR
    src = out / "app.cpp"
    src.write_text(source)
    objs = []
    for s in [src, *toolchain.platform_sources(board, CORNER0)]:
        obj = out / f"{s.stem}.o"
        _run(["arm-none-eabi-g++", *flags.cxxflags, *flags.define_flags(),
              *[f"-D{k}={v}" for k, v in (defines or {}).items()], f"-I{platform}", f"-I{RUNTIME_INCLUDE}",
              "-c", str(s), "-o", str(obj)])
        objs.append(obj)
    script = linker_script.write_linker_script(board, out / "link.ld")
    elf = out / "app.elf"
    _run(["arm-none-eabi-g++", *flags.linkflags, f"-T{script}", "-o", str(elf), *map(str, objs), *flags.lib_flags()])
    return elf


def _require_cross() -> None:
    missing = [t for t in CROSS_TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs them)")


def _parallel(jobs: list, fn) -> list:
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return list(pool.map(fn, jobs))


# --- the measured networks ---------------------------------------------------------------------------

def mlp_layers(seed: int = 64) -> list[Dense]:
    """64-32-10 with random weights, a fused ReLU after both layers (the clamp bounds are run-time values, so
    the instruction count does not depend on them), typical requantizers (real multiplier about 2^-8)."""
    rng = random.Random(seed)
    layers = []
    zp = rng.randint(-20, 20)
    for idx, (n_in, n_out) in enumerate(zip(MLP_SHAPE, MLP_SHAPE[1:], strict=False)):
        out_zp = -128
        layer = random_layer(rng, n_in, n_out, name=f"fc{idx + 1}")
        row_sums = np.asarray(layer.weights).reshape(n_out, n_in).sum(axis=1)
        layers.append(replace(layer, input_zero_point=zp, output_zero_point=out_zp, act_min=out_zp, act_max=127,
                              activation="relu", multiplier=rng.randint(1 << 30, I32_MAX), shift=rng.randint(-10, -9),
                              bias=[rng.randint(-4000, 4000) + zp * int(s) for s in row_sums]))
        zp = out_zp
    return layers


def xor_model() -> intmodel.IntModel:
    return intmodel.load(TEXTBOOK_HEADER.with_name("intmodel.json"))


BENCH_CPP = r"""
#include <qmcu/qdense_fast.hpp>
#include "platform.hpp"
%(layers)s
namespace {
void put(const char* s) { size_t n = 0; while (s[n] != '\0') { ++n; } qmcu::platform::console_write(s, n); }
void putLine(const char* tag, uint32_t k, const int8_t* v, size_t n) {
    static const char kHex[] = "0123456789abcdef";
    char line[160];
    size_t p = 0;
    for (; tag[p] != '\0'; ++p) { line[p] = tag[p]; }
    line[p++] = ' ';
    line[p++] = static_cast<char>('0' + k / 10u);
    line[p++] = static_cast<char>('0' + k %% 10u);
    line[p++] = ' ';
    for (size_t i = 0; i < n; ++i) {
        line[p++] = kHex[static_cast<uint8_t>(v[i]) >> 4];
        line[p++] = kHex[static_cast<uint8_t>(v[i]) & 15u];
    }
    line[p++] = '\n';
    qmcu::platform::console_write(line, p);
}
struct Mlp {
    qmcu::QDenseFast<64, 32> fc1;
    qmcu::QDenseFast<32, 10> fc2;
};
struct XorNet {
    qmcu::QDenseFast<2, 4> fc1;
    qmcu::QDenseFast<4, 1> fc2;
    const int8_t* sigmoid_lut;
};
}  // namespace
// Filled at start-up (not constexpr), as the application does: the weights stay data in flash.
namespace fwd {
Mlp g_mlp;
XorNet g_xor;
int8_t g_hidden[32];
int8_t g_xor_hidden[4];
int8_t g_xor_logit[1];
}  // namespace fwd
using namespace fwd;

extern "C" __attribute__((noinline, noipa)) void mlp_infer(const int8_t* in, int8_t* out) {
    g_mlp.fc1.forward(in, g_hidden);
    g_mlp.fc2.forward(g_hidden, out);
}

// The XOR application's qmcu_infer with the fast kernels.
extern "C" __attribute__((noinline, noipa)) void xor_infer(const int8_t* in, int8_t* out) {
    g_xor.fc1.forward(in, g_xor_hidden);
    g_xor.fc2.forward(g_xor_hidden, g_xor_logit);
    out[0] = g_xor.sigmoid_lut[static_cast<int32_t>(g_xor_logit[0]) + 128];
}

extern "C" int app_main() {
    g_mlp = Mlp{{mlp1::kWeights, mlp1::kFoldedBiases, mlp1::kRequantizer},
                {mlp2::kWeights, mlp2::kFoldedBiases, mlp2::kRequantizer}};
    g_xor = XorNet{{xor1::kWeights, xor1::kFoldedBiases, xor1::kRequantizer},
                   {xor2::kWeights, xor2::kFoldedBiases, xor2::kRequantizer}, xorlut::kTable};
    put("variant "); put(qmcu::kDenseFastVariant); put("\n");
    uint32_t state = 99u;
    for (uint32_t k = 0; k < %(mlp_runs)du; ++k) {
        int8_t in[64];
        int8_t out[10];
        for (int i = 0; i < 64; ++i) {
            state = state * 1664525u + 1013904223u;
            in[i] = static_cast<int8_t>(static_cast<int32_t>(state >> 24) - 128);
        }
        mlp_infer(in, out);
        putLine("M", k, in, 64);
        putLine("m", k, out, 10);
    }
    for (uint32_t k = 0; k < %(xor_runs)du; ++k) {
        int8_t in[2];
        int8_t out[1];
        state = state * 1664525u + 1013904223u;
        in[0] = static_cast<int8_t>(k < 4u ? ((k & 1u) ? 127 : -128) : static_cast<int32_t>(state >> 24) - 128);
        in[1] = static_cast<int8_t>(k < 4u ? ((k & 2u) ? 127 : -128) : static_cast<int32_t>((state >> 16) & 255u) - 128);
        xor_infer(in, out);
        putLine("X", k, in, 2);
        putLine("x", k, out, 1);
    }
    put("done\n");
    return 0;
}
"""

MLP_RUNS = 12
XOR_RUNS = 12


def bench_source() -> tuple[str, list[Dense], intmodel.IntModel]:
    mlp = mlp_layers()
    xor = xor_model()
    fc1, fc2, lut = xor.dense("fc1"), xor.dense("fc2"), xor.lut("sigmoid")
    blocks = [f"namespace {ns} {{\n{render_prepared('k', prepare_dense(layer))}}}"
              for ns, layer in (("mlp1", mlp[0]), ("mlp2", mlp[1]), ("xor1", fc1), ("xor2", fc2))]
    table = ", ".join(str(v) for v in lut.table)
    blocks.append(f"namespace xorlut {{\nconstexpr int8_t kTable[256] = {{{table}}};\n}}")
    return BENCH_CPP % {"layers": "\n".join(blocks), "mlp_runs": MLP_RUNS, "xor_runs": XOR_RUNS}, mlp, xor


def check_bench_output(text: str, mlp: list[Dense], xor: intmodel.IntModel, where: str) -> None:
    rows = {(tag, int(k)): np.frombuffer(bytes.fromhex(h), dtype=np.int8).astype(np.int64)
            for tag, k, h in re.findall(r"^([MmXx]) (\d+) ([0-9a-f]+)$", text, re.M)}
    assert len(rows) == 2 * (MLP_RUNS + XOR_RUNS), f"{where}: bench output incomplete:\n{text[-2000:]}"
    x = np.stack([rows[("M", k)] for k in range(MLP_RUNS)])
    want = reference.dense(reference.dense(x, mlp[0]), mlp[1])
    got = np.stack([rows[("m", k)] for k in range(MLP_RUNS)])
    assert (got == want).all(), f"{where}: MLP outputs differ from the reference"
    xi = np.stack([rows[("X", k)] for k in range(XOR_RUNS)])
    got = np.stack([rows[("x", k)] for k in range(XOR_RUNS)])
    assert (got == reference.forward(xor, xi)).all(), f"{where}: XOR outputs differ from the reference"


def measure(board: Board, elf: Path, so: Path, func: str, work: Path) -> tuple[list[int], str]:
    entry, rets = insn_plugin.call_window_args(elf, func)
    counts = work / f"{func}.counts"
    result = run_qemu(board, elf, RUN_TIMEOUT_S, insn_plugin.plugin_argv(so, entry, rets, counts))
    assert result.exit_code == 0, result.output_text
    windows, _ = insn_plugin.read_counts(counts)
    return windows, result.output_text


# --- the layer sets ----------------------------------------------------------------------------------

HOST_INPUTS = 276   # 256 sweeps + 4 extremes + 16 random
QEMU_INPUTS = 264


def host_layers() -> list[Dense]:
    """Every NIn in 1..17 with every NOut in 1..9, a few large layers, and one shape with all 256 input
    zero points (the input zero point cycles through its edges in the others)."""
    rng = random.Random(2024)
    layers = []
    edges = (-128, 127, 0, -1, 1)
    for n_in in range(1, 18):
        for n_out in range(1, 10):
            layer = random_layer(rng, n_in, n_out, name=f"h{n_in}x{n_out}")
            if len(layers) % 2 == 0:
                layer = with_input_zero_point(rng, layer, edges[len(layers) // 2 % len(edges)])
            layers.append(layer)
    for n_in, n_out in ((64, 32), (32, 10), (100, 13), (255, 7), (33, 70)):
        layers.append(random_layer(rng, n_in, n_out, name=f"big{n_in}x{n_out}"))
    for zp in range(-128, 128):
        layers.append(with_input_zero_point(rng, random_layer(rng, 5, 3, name=f"zp{zp}"), zp))
    return layers


def qemu_layers() -> list[Dense]:
    """A smaller set for the emulated cores (each shape is a template instance, so few shapes, each used by
    three random layers): every input tail (NIn % 4) with every size of the last group (NOut % 4), with
    and without full chunks and full groups; large layers, and a chunk loop with a remainder (45 inputs:
    one unrolled block of 8 chunks, 3 more chunks, 1 tail input)."""
    rng = random.Random(7)
    shapes = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 6), (6, 7), (7, 5), (8, 1), (9, 8), (10, 4), (11, 2), (12, 7),
              (15, 8), (2, 1), (3, 5), (1, 7), (64, 32), (32, 10), (19, 9), (45, 6)]
    assert {(i % 4, o % 4) for i, o in shapes} == {(t, g) for t in range(4) for g in range(4)}
    return [random_layer(rng, n_in, n_out, name=f"q{n_in}x{n_out}") for n_in, n_out in shapes for _ in range(3)]
