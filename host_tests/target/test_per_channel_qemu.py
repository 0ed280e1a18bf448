"""Per-channel weights on the targets: qmcu::QDenseFastPC == reference.dense on every DSP board (the SMLAD path)
and every non-DSP board (the scalar path) under QEMU, and its cost on the Cortex-M4 (QEMU plugin, exact counts):
the 64-32-10 MLP of target/test_fast_kernels.py with per-tensor and with per-channel requantizers.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kernel_checks import (
    DSP_BOARDS,
    M4_BOARDS,
    MLP_MACS,
    RUN_TIMEOUT_S,
    SCALAR_BOARDS,
    _parallel,
    _require_cross,
    build_target,
    measure,
    mlp_layers,
)
from per_channel_cases import INPUTS_PER_LAYER, _cpp_int8, layer_inputs, random_per_channel_layer
from qmcu.boards import Board
from qmcu.codegen.kernel_layout import prepare_dense, render_prepared
from qmcu.quant import reference
from qmcu.quant.intmodel import Dense
from qmcu.run import insn_plugin
from qmcu.run.qemu import run_qemu

I32_MAX = 2**31 - 1
CHECK_BOARDS = DSP_BOARDS + SCALAR_BOARDS
QEMU_SHAPES = [(n_in, n_out) for n_in in (1, 2, 3, 4, 7, 30, 33) for n_out in (1, 2, 3, 4, 5, 9)] + [(67, 37)]
BENCH_RUNS = 8

PRELUDE = r"""
#include <qmcu/qdense_fast.hpp>
#include <stddef.h>
#include <stdint.h>
#include "platform.hpp"
namespace {
void put(const char* s) { size_t n = 0; while (s[n] != '\0') { ++n; } qmcu::platform::console_write(s, n); }
void putLine(const char* tag, uint32_t k, const int8_t* v, size_t n) {
    static const char kHex[] = "0123456789abcdef";
    char line[16 + 2 * 256];
    size_t p = 0;
    for (size_t i = 0; tag[i] != '\0'; ++i) { line[p++] = tag[i]; }
    line[p++] = ' ';
    char digits[10];
    int d = 0;
    do { digits[d++] = static_cast<char>('0' + k % 10u); k /= 10u; } while (k != 0u);
    while (d > 0) { line[p++] = digits[--d]; }
    line[p++] = ' ';
    for (size_t i = 0; i < n; ++i) {
        const uint8_t b = static_cast<uint8_t>(v[i]);
        line[p++] = kHex[b >> 4];
        line[p++] = kHex[b & 15u];
    }
    line[p++] = '\n';
    qmcu::platform::console_write(line, p);
}
}  // namespace
"""


def check_source(layers: list[Dense], inputs: list[np.ndarray]) -> str:
    parts = [PRELUDE]
    preps = [prepare_dense(lay) for lay in layers]
    for k, (prep, x) in enumerate(zip(preps, inputs, strict=True)):
        parts += [f"namespace l{k} {{", render_prepared("k", prep), _cpp_int8("kIn", x), "}"]
    parts += ["extern \"C\" int app_main() {", '    put("variant "); put(qmcu::kDenseFastVariant); put("\\n");']
    for k, prep in enumerate(preps):
        parts += ["    {",
                  f"        static {prep.kernel_type} layer{{l{k}::kWeights, l{k}::kFoldedBiases, l{k}::kRequantizers}};",
                  f"        int8_t out[{prep.out_features}];",
                  f"        for (uint32_t n = 0; n < {INPUTS_PER_LAYER}u; ++n) {{",
                  f"            layer.forward(l{k}::kIn + n * {prep.in_features}u, out);",
                  f'            putLine("L{k}", n, out, {prep.out_features});',
                  "        }", "    }"]
    parts += ['    put("done\\n");', "    return 0;", "}", ""]
    return "\n".join(parts)


def qemu_layers() -> tuple[list[Dense], list[np.ndarray]]:
    rng = random.Random(4242)
    nrng = np.random.default_rng(11)
    layers = [random_per_channel_layer(rng, n_in, n_out) for n_in, n_out in QEMU_SHAPES]
    return layers, [layer_inputs(nrng, lay.in_features) for lay in layers]


@pytest.fixture(scope="module")
def check_apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _require_cross()
    work = tmp_path_factory.mktemp("per_channel_qemu")
    source = check_source(*qemu_layers())
    elfs = _parallel(CHECK_BOARDS, lambda b: build_target(b, source, work / b.id))
    return {b.id: elf for b, elf in zip(CHECK_BOARDS, elfs, strict=True)}


@pytest.mark.parametrize("board", CHECK_BOARDS, ids=lambda b: f"{b.id}-{'dsp' if b.dsp else 'scalar'}")
def test_qemu_per_channel_kernels_equal_the_reference(check_apps: dict[str, Path], board: Board) -> None:
    result = run_qemu(board, check_apps[board.id], RUN_TIMEOUT_S)
    text = result.output_text
    assert result.exit_code == 0, text[-2000:]
    assert text.splitlines()[0] == f"variant {'dsp' if board.dsp else 'scalar'}", text[:200]
    rows = {(int(k), int(n)): np.frombuffer(bytes.fromhex(h), dtype=np.int8).astype(np.int64)
            for k, n, h in re.findall(r"^L(\d+) (\d+) ([0-9a-f]+)$", text, re.M)}
    layers, inputs = qemu_layers()
    outputs = 0
    for k, (lay, x) in enumerate(zip(layers, inputs, strict=True)):
        got = np.stack([rows[(k, n)] for n in range(INPUTS_PER_LAYER)])
        assert np.array_equal(got, reference.dense(x, lay)), (board.id, k, lay.in_features, lay.out_features)
        outputs += got.size
    print(f"{board.id} ({board.cpu}, {'dsp' if board.dsp else 'scalar'}): {outputs} per-channel outputs of "
          f"{len(layers)} layers bit-exact")


# --- instruction counts: the 64-32-10 MLP, per-tensor vs per-channel --------------------------------------------

def per_channel_mlp() -> list[Dense]:
    """mlp_layers() with one (multiplier, shift) per row, in the usual range (shift -11..-8)."""
    rng = random.Random(7)
    return [replace(lay, weight_scales=[1.0] * lay.out_features,
                    multipliers=[rng.randint(1 << 30, I32_MAX) for _ in range(lay.out_features)],
                    shifts=[rng.randint(-11, -8) for _ in range(lay.out_features)]) for lay in mlp_layers()]


def bench_source(pt: list[Dense], pc: list[Dense], x: np.ndarray) -> str:
    blocks = [f"namespace {ns} {{\n{render_prepared('k', prepare_dense(lay))}}}"
              for ns, lay in (("pt1", pt[0]), ("pt2", pt[1]), ("pc1", pc[0]), ("pc2", pc[1]))]
    return PRELUDE + "\n".join(blocks) + _cpp_int8("kX", x) + BENCH_MAIN.replace("RUNS", str(BENCH_RUNS))


BENCH_MAIN = r"""
namespace fwd {
struct Pt { qmcu::QDenseFast<64, 32> fc1; qmcu::QDenseFast<32, 10> fc2; };
struct Pc { qmcu::QDenseFastPC<64, 32> fc1; qmcu::QDenseFastPC<32, 10> fc2; };
Pt g_pt{{nullptr, nullptr, {}}, {nullptr, nullptr, {}}};
Pc g_pc{{nullptr, nullptr, nullptr}, {nullptr, nullptr, nullptr}};
int8_t g_hidden[32];
}  // namespace fwd
using namespace fwd;
extern "C" __attribute__((noinline, noipa)) void pt_infer(const int8_t* in, int8_t* out) {
    g_pt.fc1.forward(in, g_hidden);
    g_pt.fc2.forward(g_hidden, out);
}
extern "C" __attribute__((noinline, noipa)) void pc_infer(const int8_t* in, int8_t* out) {
    g_pc.fc1.forward(in, g_hidden);
    g_pc.fc2.forward(g_hidden, out);
}
extern "C" int app_main() {
    g_pt = Pt{{pt1::kWeights, pt1::kFoldedBiases, pt1::kRequantizer}, {pt2::kWeights, pt2::kFoldedBiases, pt2::kRequantizer}};
    g_pc = Pc{{pc1::kWeights, pc1::kFoldedBiases, pc1::kRequantizers},
              {pc2::kWeights, pc2::kFoldedBiases, pc2::kRequantizers}};
    put("variant "); put(qmcu::kDenseFastVariant); put("\n");
    for (uint32_t k = 0; k < RUNSu; ++k) {
        int8_t out[10];
        pt_infer(kX + 64u * k, out);
        putLine("T", k, out, 10);
        pc_infer(kX + 64u * k, out);
        putLine("C", k, out, 10);
    }
    put("done\n");
    return 0;
}
"""


@pytest.mark.parametrize("board", M4_BOARDS[:1] + SCALAR_BOARDS[:1], ids=lambda b: b.id)
def test_per_channel_instruction_counts(board: Board, tmp_path: Path) -> None:
    _require_cross()
    pt, pc = mlp_layers(), per_channel_mlp()
    x = np.random.default_rng(5).integers(-128, 128, size=(BENCH_RUNS, 64))
    so = insn_plugin.build_plugin(tmp_path)
    elf = build_target(board, bench_source(pt, pc, x), tmp_path / board.id)
    counts = {}
    for func in ("pt_infer", "pc_infer"):
        windows, text = measure(board, elf, so, func, tmp_path)
        assert len(windows) == BENCH_RUNS
        counts[func] = max(windows)
        rows = {(t, int(k)): np.frombuffer(bytes.fromhex(h), dtype=np.int8).astype(np.int64)
                for t, k, h in re.findall(r"^([TC]) (\d+) ([0-9a-f]+)$", text, re.M)}
        for tag, layers in (("T", pt), ("C", pc)):
            got = np.stack([rows[(tag, k)] for k in range(BENCH_RUNS)])
            assert np.array_equal(got, reference.dense(reference.dense(x, layers[0]), layers[1])), (board.id, tag)
    t, c = counts["pt_infer"], counts["pc_infer"]
    print(f"{board.id} ({board.cpu}): 64-32-10 MLP per-tensor {t} instructions ({t / MLP_MACS:.3f}/MAC), "
          f"per-channel {c} ({c / MLP_MACS:.3f}/MAC, +{c - t}, {(c - t) / 42:.1f} per output row)")
    if board.dsp:
        # Measured: +718 (17.1 per output row: the row's Requantizer loaded, its shift checked, RightShiftRequant
        # built and applied, one store per row instead of one word per four rows).
        assert c <= t + 42 * 20, (t, c)
