"""The convolution kernel family (firmware/runtime/qmcu/kernels/) on the Cortex-M cores, and its speed.

(a) The headers compile cleanly (-Wall -Wextra -Wpedantic -Werror) for every Cortex-M core of the boards with
    the project's flags of every corner of the board (STD 0/1 x FLOAT 0/1) at -O2 and of both float ABIs at every
    other opt= level (qmcu.options.OPTS; FLOAT=1 is -mfloat-abi=hard with the board's -mfpu on an FPU core, where
    GCC may reload a spilled asm operand into r0-r7 only), DSP boards also forced scalar; one instance of every
    hand-scheduled asm path.
(b) QEMU: every op (conv2d, conv1d, pointwise, depthwise, max/avg/global-average pooling, add) equals
    quant/conv_reference.py bit for bit on qemu-m0, qemu-m3 (scalar variant), qemu-m4, qemu-m33, qemu-m7 (DSP
    variant), on random layers with the shape remainders that matter; on the DSP cores in the FLOAT=0 corner and
    in a hard-float corner (other register allocation around the asm).
(c) MLPerf Tiny's keyword-spotting DS-CNN on qemu-m4 at -O2: bit-exact, and the exact QEMU instruction count of
    every layer from call to return (plugin, as kernel_checks.measure), printed as a table (MACs, instructions,
    instructions per MAC) next to CMSIS-NN's counts from the issue; the whole network must stay within the
    issue's goal. Run ``python host_tests/target/test_conv_kernels_qemu.py`` to print the table alone.

The Python side is unit/test_conv_reference.py, the host g++ check host_cpp/test_conv_kernels_host.py.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

if __name__ == "__main__":  # run as a script: the test helpers beside conftest.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conv_cases import (
    KWS_BENCH,
    KWS_CALLS,
    KWS_MACS,
    KWS_TOTAL_MACS,
    Case,
    add_case,
    cases_header,
    check_kws_output,
    check_output,
    conv2d_case,
    depthwise_case,
    kws_header,
    kws_inputs,
    kws_network,
    pointwise_case,
    pool_case,
    program_source,
)

from conftest import WARNINGS
from kernel_checks import CORNER0, QEMU_BOARDS, RUN_TIMEOUT_S, _parallel, _require_cross, build_target, measure
from qmcu.boards import Board, Corner
from qmcu.build import cross
from qmcu.options import OPTS
from qmcu.paths import RUNTIME_INCLUDE
from qmcu.run import insn_plugin
from qmcu.run.qemu import run_qemu

CHECK_BOARD_IDS = ("qemu-m0", "qemu-m3", "qemu-m4", "qemu-m33", "qemu-m7")
CHECK_BOARDS = [b for b in QEMU_BOARDS if b.id in CHECK_BOARD_IDS]
M4 = next(b for b in QEMU_BOARDS if b.id == "qemu-m4")
KWS_RUNS = 2
KWS_GOAL = 3_200_000  # the whole-network goal on qemu-m4 (<= 1.2 instructions per MAC)
# CMSIS-NN (commit 99f736a, wrappers, GCC 12 -O2) per call on qemu-m4, from the issue.
CMSIS = {"kws_conv": 1_118_142, "kws_dw": 553_002, "kws_pw": 1_047_177, "kws_pool": 50_733}
CMSIS_TOTAL = 7_571_748


# --- (a) the headers at every core --------------------------------------------------------------------------

CORNER_CPP = r"""
#include <qmcu/kernels/add.hpp>
#include <qmcu/kernels/conv.hpp>
#include <qmcu/kernels/depthwise.hpp>
#include <qmcu/kernels/pointwise.hpp>
#include <qmcu/kernels/pool.hpp>
// One instance of every op and of every hand-scheduled asm path, tails included: conv2d through the widened column
// and the row-aligned column (KWS's first layer), pointwise int16 (groups of 4 rows and a last group of 1, 2 and 3
// rows) and int8 (groups of 4 pixels and a last group of 1, 2 and 3), depthwise int16 and int8 (3-row tiles of 4 and
// 5 outputs, a last shorter tile, the generic code), the pools and add.
extern "C" void corner_entry(void* s, const qmcu::ConvParams* c, const qmcu::DepthwiseParams* d,
                             const qmcu::DepthwiseParams8* d8, const qmcu::PointwiseParams* p,
                             const qmcu::PointwiseParams8* p8, const qmcu::PoolParams* q, const qmcu::AddParams* a,
                             const int8_t* in, int8_t* out) {
    qmcu::conv2d<qmcu::ConvShape<9, 7, 3, 5, 3, 2, 2, 1, 1, 0, 1, 1>>(s, *c, in, out);
    qmcu::conv2d<qmcu::ConvShape<49, 10, 1, 64, 10, 4, 2, 2, 4, 5, 1, 1>>(s, *c, in, out);
    qmcu::depthwiseConv2d<qmcu::DepthwiseShape<6, 5, 3, 2, 3, 3, 1, 2, 1, 1, 0, 2>>(s, *d, in, out);
    qmcu::depthwiseConv2d<qmcu::DepthwiseShape<25, 5, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1>>(s, *d, in, out);
    qmcu::depthwiseConv2d<qmcu::DepthwiseShape<9, 6, 3, 1, 3, 3, 1, 1, 1, 1, 0, 2>>(s, *d, in, out);
    qmcu::depthwiseConv2d<qmcu::DepthwiseShape<25, 5, 8, 1, 3, 3, 1, 1, 1, 1, 1, 1, 8>>(s, *d8, in, out);
    qmcu::depthwiseConv2d<qmcu::DepthwiseShape<9, 6, 3, 2, 3, 4, 1, 1, 1, 1, 1, 2, 8>>(s, *d8, in, out);
    qmcu::pointwise<qmcu::PointwiseShape<5, 13, 7>>(s, *p, in, out);
    qmcu::pointwise<qmcu::PointwiseShape<3, 9, 6>>(s, *p, in, out);
    qmcu::pointwise<qmcu::PointwiseShape<3, 16, 5>>(s, *p, in, out);
    qmcu::pointwise<qmcu::PointwiseShape<125, 64, 64>>(s, *p, in, out);
    qmcu::pointwise<qmcu::PointwiseShape<125, 64, 64, 8>>(s, *p8, in, out);
    qmcu::pointwise<qmcu::PointwiseShape<7, 13, 5, 8>>(s, *p8, in, out);
    qmcu::pointwise<qmcu::PointwiseShape<6, 24, 6, 8>>(s, *p8, in, out);
    qmcu::maxPool2d<qmcu::PoolShape<7, 6, 5, 3, 3, 2, 2, 1, 1, 1, 1>>(s, *q, in, out);
    qmcu::avgPool2d<qmcu::PoolShape<7, 6, 6, 2, 2, 2, 2, 0, 0, 0, 0>>(s, *q, in, out);
    qmcu::avgPool2d<qmcu::PoolShape<17, 17, 3, 17, 17, 1, 1, 0, 0, 0, 0>>(s, *q, in, out);
    qmcu::add<qmcu::AddShape<33>>(s, *a, in, in + 40, out);
}
"""


def hard_float(board: Board, corner: Corner) -> bool:
    """The corner builds with -mfloat-abi=hard (qmcu.build.toolchain: FLOAT=1 on a core with an FPU)."""
    return bool(corner.float and board.fpu)


def corner_jobs(src: Path) -> list[tuple[str, list[str]]]:
    """(label, compiler argv) of every header build: the host (both variants), then per core (boards with the same
    core, DSP extension and FPU compile alike) the project's flags of every corner of the board at -O2 and, for each
    float ABI of its corners (soft; hard: FLOAT=1 on an FPU core), at every other opt= level; on a DSP core also
    forced scalar. The FLOAT=1 corners of the FPU cores are the ones that matter for the hand-scheduled asm: with
    an FPU GCC may reload a spilled asm operand into r0-r7 only (kernels/common.hpp, strided:: note), so an asm
    statement that fixes too many low registers fails there ("'asm' operand has impossible constraints") and in
    no FLOAT=0 build."""
    jobs: list[tuple[str, list[str]]] = []
    for std, free in ((0, ["-ffreestanding"]), (1, [])):
        for variant in ("", "-DQMCU_KERNELS_EMULATE_DSP=1"):
            jobs.append((f"host std{std} {variant or 'default'}",
                         ["g++", *WARNINGS, "-O2", *free, f"-I{RUNTIME_INCLUDE}", f"-DQMCU_STD={std}",
                          *([variant] if variant else []), "-c", str(src), "-o", os.devnull]))
    seen = set()
    for board in QEMU_BOARDS:
        if (board.cpu, board.dsp, board.fpu) in seen:
            continue
        seen.add((board.cpu, board.dsp, board.fpu))
        per_abi: list[Corner] = []  # the first corner of each float ABI (hard: FLOAT=1 on an FPU core)
        for corner in board.corners:
            if all(hard_float(board, c) != hard_float(board, corner) for c in per_abi):
                per_abi.append(corner)
        variants = [(corner, "-O2", {}) for corner in board.corners]
        variants += [(corner, f"-{opt}", {}) for opt in OPTS if opt != "O2" for corner in per_abi]
        if board.dsp:
            variants += [(corner, "-O2", {"QMCU_KERNELS_FORCE_SCALAR": "1"}) for corner in per_abi]
        for corner, opt, defines in variants:
            compiler = cross.target_compiler(board, corner, opt, defines=defines)
            jobs.append((f"{board.id} {corner.name} {opt} {defines or ''}", compiler.compile_argv(src, os.devnull)))
    return jobs


def test_corner_jobs_cover_the_hard_float_corners(tmp_path: Path) -> None:
    """Every FPU core with the DSP extension is built with its -mfpu and -mfloat-abi=hard at every opt= level (the
    flags come from the boards' FLOAT=1 corners through qmcu.build.cross)."""
    jobs = [argv for _, argv in corner_jobs(tmp_path / "corner.cpp")]
    cores = {(b.cpu, b.fpu) for b in QEMU_BOARDS if b.dsp and b.fpu}
    assert cores, "no DSP board with an FPU among the QEMU boards"
    for cpu, fpu in sorted(cores):
        for opt in OPTS:
            assert any(f"-mcpu={cpu}" in argv and f"-mfpu={fpu}" in argv and "-mfloat-abi=hard" in argv
                       and f"-{opt}" in argv and not any("FORCE_SCALAR" in a for a in argv) for argv in jobs), \
                (cpu, fpu, opt)


def test_headers_build_for_every_core(tmp_path: Path) -> None:
    _require_cross()
    src = tmp_path / "corner.cpp"
    src.write_text(CORNER_CPP)

    def run(job: tuple[str, list[str]]) -> str | None:
        proc = subprocess.run(job[1], capture_output=True, text=True, check=False)
        return None if proc.returncode == 0 else f"{job[0]}: {proc.stderr[-2000:]}"

    failures = [f for f in _parallel(corner_jobs(src), run) if f]
    assert not failures, "\n".join(failures)


# --- (b) bit-exact on the cores -----------------------------------------------------------------------------

def qemu_cases() -> list[Case]:
    """Fewer and smaller shapes than on the host (each shape is a template instance; qemu-m0 has 16 KB of RAM)."""
    rng = random.Random(1313)
    cases = [pointwise_case(rng, 5, cin, cout) for cin, cout in ((1, 3), (3, 5), (5, 7), (7, 4), (8, 8), (64, 13))]
    cases += [pointwise_case(rng, 30, 64, 64), pointwise_case(rng, 4, 12, 6, exact=True),
              pointwise_case(rng, 6, 9, 9, in_place=True)]
    # int8 weights: pixel groups of 4 and every remainder, clamped and saturated only, in place
    cases += [pointwise_case(rng, 9, 64, 13, weight_bits=8, clamp=(-128, 127)),
              pointwise_case(rng, 7, 24, 6, weight_bits=8, clamp=(-30, 127)),
              pointwise_case(rng, 6, 13, 5, weight_bits=8),
              pointwise_case(rng, 5, 8, 8, weight_bits=8, in_place=True),
              pointwise_case(rng, 3, 9, 4, weight_bits=8, exact=True)]
    cases += [conv2d_case(rng, 49, 10, 1, 8, (10, 4), (2, 2), (4, 5, 1, 1)),
              conv2d_case(rng, 7, 6, 3, 5, (3, 3), (2, 2), (2, 0, 0, 0)),
              conv2d_case(rng, 6, 7, 5, 4, (2, 3), (1, 2), (0, 2, 0, 0)),
              conv2d_case(rng, 7, 5, 7, 3, (3, 2), (2, 1), (0, 0, 2, 0)),
              conv2d_case(rng, 5, 6, 2, 6, (2, 2), (1, 1), (0, 0, 0, 2)),
              conv2d_case(rng, 1, 21, 3, 7, (1, 5), (1, 2), (0, 0, 2, 2)),
              conv2d_case(rng, 5, 5, 3, 4, (3, 3), (1, 1), (1, 1, 1, 1), exact=True)]
    # depthwise: the hand-scheduled 3-row tiles (5 tall: OH 25; 4 tall with a last tile of 1..3: OH 8, 9, 11),
    # clamped and saturated only (clamp = all of int8), then the generic code
    full, relu = (-128, 127), (-20, 127)
    cases += [depthwise_case(rng, 25, 5, 16, 1, (3, 3), (1, 1), (1, 1, 1, 1), clamp=full),
              depthwise_case(rng, 25, 3, 8, 1, (3, 3), (1, 1), (1, 1, 1, 1), clamp=relu),
              depthwise_case(rng, 8, 4, 5, 2, (3, 4), (1, 2), (1, 1, 2, 1), clamp=full),
              depthwise_case(rng, 9, 6, 3, 1, (3, 3), (1, 1), (1, 1, 0, 2), clamp=relu),
              depthwise_case(rng, 13, 5, 7, 1, (3, 3), (1, 1), (1, 1, 1, 1), clamp=(-50, 40)),
              depthwise_case(rng, 11, 7, 4, 2, (3, 3), (1, 1), (0, 0, 1, 1), clamp=full),
              depthwise_case(rng, 7, 6, 3, 2, (3, 3), (2, 2), (1, 0, 1, 0)),
              depthwise_case(rng, 6, 7, 5, 1, (2, 3), (1, 2), (0, 1, 0, 1)),
              depthwise_case(rng, 8, 5, 7, 2, (10, 4), (2, 1), (4, 5, 1, 1)),
              depthwise_case(rng, 1, 17, 4, 1, (1, 5), (1, 1), (0, 0, 2, 2)),
              depthwise_case(rng, 6, 6, 3, 2, (3, 3), (1, 1), (1, 1, 1, 1), exact=True),
              # int8 weights: the hand-scheduled tiles (5 and 4 tall), a generic shape, the exact path
              depthwise_case(rng, 25, 5, 8, 1, (3, 3), (1, 1), (1, 1, 1, 1), clamp=full, weight_bits=8),
              depthwise_case(rng, 9, 6, 3, 2, (3, 4), (1, 1), (1, 1, 1, 2), clamp=relu, weight_bits=8),
              depthwise_case(rng, 7, 6, 5, 1, (2, 3), (2, 1), (0, 1, 1, 1), weight_bits=8),
              depthwise_case(rng, 5, 5, 3, 2, (3, 3), (1, 1), (1, 1, 1, 1), exact=True, weight_bits=8),
              depthwise_case(rng, 25, 5, 8, 1, (3, 3), (1, 1), (1, 1, 1, 1), in_place=True, weight_bits=8),
              depthwise_case(rng, 9, 8, 5, 1, (3, 3), (2, 2), (1, 1, 1, 1), in_place=True)]
    cases += [pool_case(rng, "max", 7, 6, 5, (3, 3), (2, 2), (1, 1, 1, 1)),
              pool_case(rng, "max", 6, 7, 8, (2, 2), (2, 2), (0, 1, 0, 1)),
              pool_case(rng, "avg", 7, 9, 7, (2, 2), (2, 2)),
              pool_case(rng, "avg", 25, 5, 16, (25, 5), (1, 1)),
              pool_case(rng, "avg", 17, 17, 3, (17, 17), (1, 1), clamp=(-128, 127))]
    cases += [add_case(rng, n) for n in (1, 7, 64)]
    cases += [add_case(rng, 50, in_place=True), add_case(rng, 40, scales=(0.02, 0.02, 0.04), clamp=(-128, 127))]
    return cases


# The check program on every check board in the FLOAT=0 corner, and on the DSP cores with an FPU also in their first
# hard-float corner (-mfloat-abi=hard: GCC allocates registers around the hand-scheduled asm differently there).
CHECK_BUILDS = [(b, CORNER0) for b in CHECK_BOARDS] + [
    (b, next(c for c in b.corners if c.float)) for b in CHECK_BOARDS if b.dsp and b.fpu]


def build_check(board: Board, corner: Corner, source: str, out: Path) -> Path:
    """The check program for one board and corner, with the project's flags (-O2), linked: cross.cross_build."""
    out.mkdir(parents=True, exist_ok=True)
    src = out / "app.cpp"
    src.write_text(source)
    return cross.cross_build(board, corner, [src], out / "app.elf")


@pytest.fixture(scope="module")
def qemu_apps(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Case], dict[tuple[str, str], Path]]:
    _require_cross()
    work = tmp_path_factory.mktemp("conv_kernels_qemu")
    cases = qemu_cases()
    header = work / "conv_cases.hpp"
    header.write_text(cases_header(cases))
    source = program_source(header, target=True)
    elfs = _parallel(CHECK_BUILDS, lambda bc: build_check(bc[0], bc[1], source, work / f"{bc[0].id}-{bc[1].name}"))
    return cases, {(b.id, c.name): elf for (b, c), elf in zip(CHECK_BUILDS, elfs, strict=True)}


def test_the_check_boards_exist() -> None:
    assert [b.id for b in CHECK_BOARDS] == sorted(CHECK_BOARD_IDS, key=[b.id for b in QEMU_BOARDS].index)
    assert {b.dsp for b in CHECK_BOARDS} == {True, False}
    hard = [(b, c) for b, c in CHECK_BUILDS if c.float]
    assert hard and all(b.dsp and b.fpu for b, _ in hard)
    assert all(c.float and c.name in {k.name for k in b.corners} for b, c in hard)


@pytest.mark.parametrize("build", CHECK_BUILDS,
                         ids=lambda bc: f"{bc[0].id}-{'dsp' if bc[0].dsp else 'scalar'}"
                         + (f"-{bc[1].name}" if bc[1] != CORNER0 else ""))
def test_qemu_kernels_equal_the_reference(qemu_apps: tuple[list[Case], dict[tuple[str, str], Path]],
                                          build: tuple[Board, Corner]) -> None:
    board, corner = build
    cases, elfs = qemu_apps
    result = run_qemu(board, elfs[(board.id, corner.name)], RUN_TIMEOUT_S)
    assert result.exit_code == 0, result.output_text[-2000:]
    where = f"{board.id} {corner.name}"
    compared = check_output(result.output_text, cases, "dsp" if board.dsp else "scalar", where)
    print(f"{where} ({board.cpu}, {'dsp' if board.dsp else 'scalar'}): {len(cases)} cases, {compared} output "
          "bytes bit-exact")


# --- (c) the KWS DS-CNN on qemu-m4 --------------------------------------------------------------------------

def kws_measure(work: Path, board: Board = M4, bits: int = 16) -> dict[str, list[int]]:
    """Build the KWS bench for the board (-O2), check it bit-exact, and return the instruction counts of every
    call of every kws_* function (one window per call). bits: the pointwise and depthwise weight layouts
    (16: int16, the fastest; 8: int8, half the flash)."""
    work.mkdir(parents=True, exist_ok=True)
    net = kws_network(pw_bits=bits, dw_bits=bits)
    inputs = kws_inputs(KWS_RUNS)
    header = work / "kws_layers.hpp"
    header.write_text(kws_header(net, inputs))
    source = f"#include \"{header}\"\n#include \"{KWS_BENCH}\"\n"
    elf = build_target(board, source, work / board.id)
    so = insn_plugin.build_plugin(work)
    counts: dict[str, list[int]] = {}
    for func in (*KWS_MACS, "kws_infer"):
        windows, text = measure(board, elf, so, func, work)
        assert text.splitlines()[0] == "variant dsp", text[:200]
        check_kws_output(text, net, inputs, f"{board.id} {func}")
        counts[func] = windows
    return counts


def kws_table(counts: dict[str, list[int]]) -> list[str]:
    rows = [f"{'layer':<24}{'MACs':>10}{'instructions':>14}{'per MAC':>9}{'CMSIS-NN':>11}{'per MAC':>9}"]
    for func, macs in KWS_MACS.items():
        n = max(counts[func])
        cmsis = CMSIS.get(func)
        ref = f"{cmsis:>11,}{cmsis / macs:>9.2f}" if cmsis else f"{'':>11}{'':>9}"
        calls = f" x{KWS_CALLS[func]}" if KWS_CALLS[func] > 1 else ""
        rows.append(f"{func + calls:<24}{macs:>10,}{n:>14,}{n / macs:>9.3f}{ref}")
    total = max(counts["kws_infer"])
    rows.append(f"{'whole network (kws_infer)':<24}{KWS_TOTAL_MACS:>10,}{total:>14,}{total / KWS_TOTAL_MACS:>9.3f}"
                f"{CMSIS_TOTAL:>11,}{CMSIS_TOTAL / KWS_TOTAL_MACS:>9.2f}")
    return rows


@pytest.mark.parametrize("bits", [16, 8], ids=lambda b: f"int{b}-weights")
def test_kws_dscnn_is_bit_exact_and_within_the_goal(bits: int, tmp_path: Path) -> None:
    """Both weight layouts of the pointwise and depthwise layers (int16: fastest; int8: half the flash) meet the
    goal."""
    _require_cross()
    counts = kws_measure(tmp_path, M4, bits)
    print(f"\nqemu-m4, pointwise and depthwise weights int{bits}:\n" + "\n".join(kws_table(counts)))
    for func, calls in KWS_CALLS.items():
        assert len(counts[func]) == 2 * calls * KWS_RUNS, (func, counts[func])  # the trace and kws_infer
        assert min(counts[func]) == max(counts[func]), f"{func}: data-dependent counts {counts[func]}"
    total = max(counts["kws_infer"])
    layers = sum(max(counts[f]) * KWS_CALLS[f] for f in KWS_MACS)
    assert layers <= total, (layers, total)
    assert total <= KWS_GOAL, f"KWS DS-CNN: {total} instructions per inference, goal {KWS_GOAL}"


if __name__ == "__main__":
    import tempfile

    for bits in (16, 8):
        with tempfile.TemporaryDirectory() as tmp:
            print(f"qemu-m4, pointwise and depthwise weights int{bits}:")
            print("\n".join(kws_table(kws_measure(Path(tmp), M4, bits))))
