"""The fast int8 fully connected kernels (qmcu/qdense_fast.hpp) on the targets: bit-exact and measured.

(a) the headers build at every STD/FLOAT corner, freestanding, for the host and for DSP and non-DSP
    Cortex-M cores.
(b) QEMU: QDenseFast == reference.dense on every board with "dsp": true (the SMLAD path) and on the
    non-DSP boards (the scalar path), boards found by their data.
(c) instruction counts (QEMU plugin, exact) of a 64-32-10 MLP and the 2-4-1 XOR net on the Cortex-M4
    boards, asserted against the budgets in kernel_checks.py and printed (with the scalar cores for reference).

The Python side is unit/test_fast_kernel_prepare.py, the host g++ check host_cpp/test_fast_kernels_host.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import WARNINGS
from kernel_checks import (
    DSP_BOARDS,
    M4_BOARDS,
    MLP_BUDGET,
    MLP_MACS,
    MLP_RUNS,
    QEMU_BOARDS,
    QEMU_INPUTS,
    REQUANT_CHECK_CPP,
    RUN_TIMEOUT_S,
    SCALAR_BOARDS,
    XOR_BUDGET,
    XOR_RUNS,
    _parallel,
    _require_cross,
    assert_bit_exact,
    bench_source,
    build_target,
    check_bench_output,
    kernel_check_source,
    measure,
    parse_kernel_output,
    qemu_layers,
)
from qmcu.boards import Board
from qmcu.build import cross
from qmcu.codegen.kernel_layout import prepare_dense
from qmcu.paths import RUNTIME_INCLUDE
from qmcu.run import insn_plugin
from qmcu.run.qemu import run_qemu

# --- (a) the headers at every corner -----------------------------------------------------------------

def test_headers_build_at_every_corner(tmp_path: Path) -> None:
    """qdense_fast.hpp compiles with -Wall -Wextra -Wpedantic -Werror at every STD/FLOAT corner: on the host
    (hosted, and freestanding when STD=0) in both variants; with the project's flags (freestanding at STD=0)
    for a DSP and a non-DSP board, the DSP one also forced scalar and at -O0 and -Os; and for every other
    Cortex-M core of the boards at its first corner."""
    src = tmp_path / "corner.cpp"
    src.write_text(CORNER_CPP)
    jobs: list[tuple[str, list[str]]] = []
    for std in (0, 1):
        for flt in (0, 1):
            corner = {"QMCU_STD": str(std), "QMCU_FLOAT": str(flt)}
            free = ["-ffreestanding"] if std == 0 else []
            for variant in ("", "-DQMCU_DENSE_EMULATE_DSP=1"):
                cmd = ["g++", *WARNINGS, "-O2", *free, f"-I{RUNTIME_INCLUDE}", *[f"-D{k}={v}" for k, v in corner.items()],
                       *([variant] if variant else []), "-c", str(src), "-o", os.devnull]
                jobs.append((f"host std{std} float{flt} {variant or 'default'}", cmd))
    if shutil.which("arm-none-eabi-g++"):
        # Every corner on one DSP and one non-DSP board, the first corner on every other core.
        seen = set()
        for board in QEMU_BOARDS:
            if (board.cpu, board.dsp, board.fpu) in seen:
                continue
            seen.add((board.cpu, board.dsp, board.fpu))
            all_corners = board in (DSP_BOARDS[:1] + SCALAR_BOARDS[:1])
            for corner in board.corners if all_corners else board.corners[:1]:
                compiler = cross.target_compiler(board, corner)
                variants = [""] + (["-DQMCU_DENSE_FORCE_SCALAR=1", "-O0", "-Os"] if board.dsp and all_corners else [])
                for variant in variants:  # after the board's flags: a later -O wins
                    cmd = [*compiler.compile_argv(src, os.devnull), *([variant] if variant else [])]
                    jobs.append((f"{board.id} {corner.name} {variant or 'default'}", cmd))

    def run(job: tuple[str, list[str]]) -> str | None:
        proc = subprocess.run(job[1], capture_output=True, text=True, check=False)
        return None if proc.returncode == 0 else f"{job[0]}: {proc.stderr[-2000:]}"

    failures = [f for f in _parallel(jobs, run) if f]
    assert not failures, "\n".join(failures)
    print(f"qdense_fast.hpp: {len(jobs)} corner builds clean")


CORNER_CPP = r"""
#include <qmcu/qdense_fast.hpp>
// A few shapes of every kind: tails 0..3, one to four rows per group, a large layer.
template <size_t NIn, size_t NOut>
void run(const qmcu::QDenseFast<NIn, NOut>& k, const int8_t* in, int8_t* out) { k.forward(in, out); }
extern "C" void corner_entry(const int16_t* w, const int32_t* b, const qmcu::Requantizer* rq, const int8_t* in, int8_t* out) {
    run(qmcu::QDenseFast<2, 4>{w, b, *rq}, in, out);
    run(qmcu::QDenseFast<4, 1>{w, b, *rq}, in, out);
    run(qmcu::QDenseFast<5, 2>{w, b, *rq}, in, out);
    run(qmcu::QDenseFast<7, 3>{w, b, *rq}, in, out);
    run(qmcu::QDenseFast<17, 9>{w, b, *rq}, in, out);
    run(qmcu::QDenseFast<64, 32>{w, b, *rq}, in, out);
}
"""


# --- (b) QEMU: every DSP board and every non-DSP board ------------------------------------------------

REQUANT_QEMU_RANDOM = 400
QEMU_PRELUDE = REQUANT_CHECK_CPP.replace("#include <qmcu/qdense_fast.hpp>", "")
QEMU_FIRST = f"""
    {{
        uint32_t checked = 0;
        const uint32_t bad = checkRequant({REQUANT_QEMU_RANDOM}u, &checked);
        emitText("requant "); emitUint(bad); emitText(" "); emitUint(checked); emitText("\\n");
    }}
"""
CHECK_BOARDS = DSP_BOARDS + SCALAR_BOARDS


@pytest.fixture(scope="module")
def qemu_kernel_apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The kernel check app built for every DSP and non-DSP QEMU board, in parallel."""
    _require_cross()
    work = tmp_path_factory.mktemp("fast_kernels_qemu")
    preps = [prepare_dense(layer) for layer in qemu_layers()]
    source = kernel_check_source(preps, QEMU_INPUTS, target=True, prelude=QEMU_PRELUDE, first=QEMU_FIRST)
    elfs = _parallel(CHECK_BOARDS, lambda b: build_target(b, source, work / b.id))
    return {b.id: elf for b, elf in zip(CHECK_BOARDS, elfs, strict=True)}


def test_there_are_dsp_and_scalar_boards() -> None:
    assert DSP_BOARDS and SCALAR_BOARDS and M4_BOARDS


@pytest.mark.parametrize("board", CHECK_BOARDS, ids=lambda b: f"{b.id}-{'dsp' if b.dsp else 'scalar'}")
def test_qemu_kernels_equal_the_reference(qemu_kernel_apps: dict[str, Path], board: Board) -> None:
    result = run_qemu(board, qemu_kernel_apps[board.id], RUN_TIMEOUT_S)
    text = result.output_text
    assert result.exit_code == 0, text[-2000:]
    assert text.splitlines()[0] == f"variant {'dsp' if board.dsp else 'scalar'}", text[:200]
    bad, checked = map(int, re.search(r"^requant (\d+) (\d+)$", text, re.M).groups())
    assert bad == 0 and checked > 1_000_000, (bad, checked)
    layers = qemu_layers()
    got = parse_kernel_output(text, [prepare_dense(layer) for layer in layers], QEMU_INPUTS)
    outputs = assert_bit_exact(got, layers, QEMU_INPUTS, board.id)
    print(f"{board.id} ({board.cpu}, {'dsp' if board.dsp else 'scalar'}): {outputs} outputs of {len(layers)} layers "
          f"bit-exact; RightShiftRequant {checked} comparisons, 0 mismatches")


# --- (c) instruction counts ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bench_apps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """The plugin and the bench app (64-32-10 MLP + 2-4-1 XOR) built for every QEMU board, in parallel."""
    _require_cross()
    work = tmp_path_factory.mktemp("fast_kernels_bench")
    so = insn_plugin.build_plugin(work)
    source, _, _ = bench_source()
    elfs = _parallel(QEMU_BOARDS, lambda b: build_target(b, source, work / b.id))
    return so, {b.id: elf for b, elf in zip(QEMU_BOARDS, elfs, strict=True)}


def _weights_are_data(elf: Path) -> None:
    """The MLP's weights are an array in the image (read through pointers), not constants folded into code."""
    out = subprocess.run(["arm-none-eabi-nm", "-C", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes = {line.split()[-1]: int(line.split()[1], 16) for line in out.splitlines()
             if len(line.split()) >= 4 and line.split()[-1].endswith("::kWeights")}
    assert sizes.get("mlp1::kWeights") == 2 * 64 * 32 and sizes.get("mlp2::kWeights") == 2 * 32 * 10, sizes


def _bench(board: Board, so: Path, elf: Path, work: Path) -> tuple[int, int]:
    _, mlp, xor = bench_source()
    work.mkdir(parents=True, exist_ok=True)
    counts = {}
    for func in ("mlp_infer", "xor_infer"):
        windows, text = measure(board, elf, so, func, work)
        check_bench_output(text, mlp, xor, board.id)
        assert len(windows) == (MLP_RUNS if func == "mlp_infer" else XOR_RUNS)
        counts[func] = max(windows)
        assert min(windows) == max(windows) or not board.dsp, f"{board.id} {func}: data-dependent counts {windows}"
    return counts["mlp_infer"], counts["xor_infer"]


@pytest.mark.parametrize("board", M4_BOARDS, ids=lambda b: b.id)
def test_m4_instruction_budgets(bench_apps: tuple[Path, dict[str, Path]], board: Board, tmp_path: Path) -> None:
    so, elfs = bench_apps
    _weights_are_data(elfs[board.id])
    mlp, xor = _bench(board, so, elfs[board.id], tmp_path)
    print(f"{board.id} ({board.cpu}, -O2): 64-32-10 MLP {mlp} instructions/inference ({mlp / MLP_MACS:.3f} per MAC, "
          f"budget {MLP_BUDGET}); 2-4-1 XOR {xor} (budget {XOR_BUDGET})")
    assert mlp <= MLP_BUDGET, f"64-32-10 MLP: {mlp} instructions, budget {MLP_BUDGET}"
    assert xor <= XOR_BUDGET, f"2-4-1 XOR: {xor} instructions, budget {XOR_BUDGET}"


def test_other_cores_for_reference(bench_apps: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    """The same networks on the other cores (scalar path on M0/M3), bit-exact; counts printed, not budgeted."""
    so, elfs = bench_apps
    rows = []
    for board in QEMU_BOARDS:
        if board in M4_BOARDS:
            continue
        mlp, xor = _bench(board, so, elfs[board.id], tmp_path / board.id)
        rows.append(f"{board.id} ({board.cpu}, {'dsp' if board.dsp else 'scalar'}): MLP {mlp} ({mlp / MLP_MACS:.2f}/MAC), "
                    f"XOR {xor}")
    print("\n".join(rows))
