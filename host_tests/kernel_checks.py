"""Shared by the fast-kernel tests (unit/, host_cpp/, target/): random layers and their inputs (mirrored by
the generated C++), the kernel-check and bench programs (generated layers around the fixed parts in programs/),
cross builds and instruction counts.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from platform_apps import PROGRAMS
from qmcu import boards
from qmcu.boards import Board, Corner
from qmcu.build import cross
from qmcu.codegen.kernel_layout import PreparedDense, prepare_dense, render_prepared
from qmcu.paths import TEXTBOOK_HEADER
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
    """The inputs the C++ test program generates for layer `index` (see programs/kernel_inputs.hpp): vector k < 256 puts
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




# --- generated C++ programs --------------------------------------------------------------------------

def _include(name: str) -> str:
    """A generated source's line that pulls in a fixed part from host_tests/programs/ (by its full path: the
    host and target compiles of these sources search no test folder)."""
    return f'#include "{PROGRAMS / name}"'


def _layer_namespace(i: int, prep: PreparedDense) -> str:
    return f"namespace l{i} {{\n{render_prepared('k', prep)}}}  // namespace l{i}\n"


def kernel_check_source(preps: list[PreparedDense], count: int, target: bool, prelude: str = "",
                        first: str = "") -> str:
    """A program that runs every layer on `count` generated inputs and prints one hex line per output vector:
    "L<layer> <k> <bytes>", after "variant <name>". On a target it writes to the platform console.
    prelude: code placed before the program, first: statements run before the layers."""
    parts = ["#include <qmcu/qdense_fast.hpp>", "#include <stddef.h>", "#include <stdint.h>", prelude]
    parts += ['#include "platform.hpp"'] if target else ["#include <stdio.h>"]
    parts.append("namespace {")
    if target:
        parts.append("void emit(const char* s, size_t n) { qmcu::platform::console_write(s, n); }")
    else:
        parts.append("void emit(const char* s, size_t n) { fwrite(s, 1, n, stdout); }")
    parts += ["}  // namespace", _include("kernel_emit.hpp")]
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


# RightShiftRequant against Requantizer::apply: checkRequant(random_accs, &checked) returns the mismatches.
REQUANT_CHECK_CPP = _include("requant_check.hpp")


# --- cross builds ------------------------------------------------------------------------------------

def build_target(board: Board, source: str, out: Path, defines: dict[str, str] | None = None,
                 opt: str = "-O2") -> Path:
    """Compile one application source (C++ text, written to out/app.cpp) for a board (corner std0-float0) with the
    project's flags and link it: cross.cross_build."""
    out.mkdir(parents=True, exist_ok=True)
    src = out / "app.cpp"
    src.write_text(source)
    return cross.cross_build(board, CORNER0, [src], out / "app.elf", defines=defines, opt=opt)


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
    head = ["#include <qmcu/qdense_fast.hpp>", '#include "platform.hpp"', *blocks,
            f"#define MLP_RUNS {MLP_RUNS}u", f"#define XOR_RUNS {XOR_RUNS}u", _include("kernel_bench.hpp")]
    return "\n".join(head) + "\n", mlp, xor


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
