"""The C++ Requantizer built with the host g++ (with and without sanitizers) equals the Python reference
on cases that reach every region, and on fuzzed batches.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import compile_host
from qmcu.quant.fixedpoint import multiply_by_quantized_multiplier, requantize, rounding_divide_by_pot
from qmcu.quant.fixedpoint import saturating_rounding_doubling_high_mul as srdhm
from requant_cases import I32_MAX, I32_MIN, acc_window, int32s, requant_cases, srdhm_near_ties, srdhm_ties, tie_table

DRIVER = r"""
#include <qmcu/qmcu.hpp>
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {
    // Each stdin line: acc multiplier shift zp qmin qmax -> srdhm(acc,mult) rdbpot(acc,e) apply
    long long acc, m, s, zp, lo, hi;
    (void)argc; (void)argv;
    while (std::scanf("%lld %lld %lld %lld %lld %lld", &acc, &m, &s, &zp, &lo, &hi) == 6) {
        const qmcu::Requantizer r{int32_t(m), int32_t(s), int32_t(zp), int32_t(lo), int32_t(hi)};
        const int e = int(s < 0 ? -s : s) % 32;
        std::printf("%d %d %d\n", qmcu::saturatingRoundingDoublingHighMul(int32_t(acc), int32_t(m)),
                    qmcu::roundingDivideByPOT(int32_t(acc), e), r.apply(int32_t(acc)));
    }
    return 0;
}
"""


def _cases(n: int) -> list[tuple[int, int, int, int, int, int]]:
    rng = random.Random(7)
    edge_acc = [I32_MIN, I32_MIN + 1, -1, 0, 1, I32_MAX - 1, I32_MAX, 2**30, -(2**30)]
    edge_m = [I32_MIN, 0, 1, 1 << 30, I32_MAX - 1, I32_MAX, (1 << 31) - 2**8]  # I32_MIN: SRDHM's saturating case
    cases = [(a, m, s, zp, lo, 127) for a in edge_acc for m in edge_m for s in (-31, -1, 0, 1, 30)
             for zp in (-128, 127) for lo in (-128, zp)]
    # SRDHM ties of both signs (the driver prints srdhm(acc, m) directly), at every clamp.
    cases += [(a, b, 0, 0, rng.randint(-128, 0), rng.randint(0, 127)) for a, b in tie_table()]
    # RDBPOT ties: the driver also prints roundingDivideByPOT(acc, |shift| % 32).
    cases += [((2 * j + 1) << (e - 1), 1 << 30, -e, 0, -128, 127) for e in range(1, 32) for j in (0, 1, -1, -2)
              if I32_MIN <= (2 * j + 1) << (e - 1) <= I32_MAX]
    for _ in range(n):
        m = rng.choice([rng.randint(0, I32_MAX), rng.randint(1 << 30, I32_MAX)])
        # Real multipliers are mostly below 1; a large left shift leaves almost no accumulator unclamped.
        s = rng.choice([rng.randint(-31, 0)] * 7 + [rng.randint(1, 4)] * 2 + [rng.randint(5, 30)])
        zp = rng.randint(-128, 127)
        lo = rng.choice([-128, zp, rng.randint(-128, 127)])
        hi = rng.choice([127, min(max(lo + 1, 0), 127), rng.randint(lo, 127)])
        a_lo, a_hi = acc_window(m, s, zp, lo, hi)
        acc = rng.randint(a_lo, a_hi) if rng.random() < 0.85 else rng.randint(I32_MIN, I32_MAX)
        cases.append((acc, m, s, zp, lo, hi))
    return cases


def test_cpp_cases_reach_every_region() -> None:
    """The fixed C++ cases are not trivial: mostly unclamped, every qmin, ties, and MIN x MIN."""
    cases = _cases(20000)
    outs = [requantize(*c) for c in cases]
    inside = sum(lo <= multiply_by_quantized_multiplier(a, m, s) + zp <= hi for a, m, s, zp, lo, hi in cases)
    assert inside >= 0.6 * len(cases), f"only {inside} of {len(cases)} outputs are not decided by the clamp"
    assert len({c[4] for c in cases}) == 256 and len(set(outs)) == 256
    assert any(a == m == I32_MIN for a, m, *_ in cases)
    assert sum(a * m < 0 and (a * m) % (1 << 31) == 1 << 30 for a, m, *_ in cases) >= 300  # negative SRDHM ties


def _run(program: Path, cases: list[tuple[int, ...]]) -> list[tuple[int, int, int]]:
    stdin = "\n".join(" ".join(map(str, c)) for c in cases) + "\n"
    proc = subprocess.run([str(program)], input=stdin, capture_output=True, text=True, check=True)
    assert proc.stderr == "", proc.stderr  # UBSan reports land here
    return [tuple(map(int, line.split())) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("sanitize", [False, True], ids=["O2", "ubsan"])
def test_cpp_requantizer_equals_python_reference(tmp_path: Path, sanitize: bool) -> None:
    src = tmp_path / "driver.cpp"
    src.write_text(DRIVER)
    extra = ["-fsanitize=undefined,integer-divide-by-zero,shift", "-fno-sanitize-recover=all", "-O1"] if sanitize else []
    program = compile_host(src, tmp_path / "driver", {"QMCU_STD": 1, "QMCU_FLOAT": 0}, extra)
    cases = _cases(20000)
    for case, got in zip(cases, _run(program, cases), strict=True):
        acc, m, s, zp, lo, hi = case
        e = abs(s) % 32
        want = (srdhm(acc, m), rounding_divide_by_pot(acc, e), requantize(acc, m, s, zp, lo, hi))
        assert got == want, f"case {case}: C++ {got} Python {want}"


@settings(max_examples=300, deadline=None)
@given(st.lists(requant_cases(), min_size=1, max_size=50),
       st.lists(st.one_of(srdhm_ties(), srdhm_near_ties(), st.tuples(int32s, int32s), st.just((I32_MIN, I32_MIN))),
                max_size=20))
def test_cpp_requantizer_fuzzed(tmp_path_factory: pytest.TempPathFactory, batch: list[tuple[int, int, int, int, int, int]],
                                pairs: list[tuple[int, int]]) -> None:
    program = _fuzz_program(tmp_path_factory)
    cases = batch + [(a, b, 0, 0, -128, 127) for a, b in pairs]
    got = _run(program, cases)
    assert [g[2] for g in got] == [requantize(*c) for c in cases]
    assert [g[0] for g in got] == [srdhm(c[0], c[1]) for c in cases]


_PROGRAM: list[Path] = []


def _fuzz_program(factory: pytest.TempPathFactory) -> Path:
    if not _PROGRAM:
        d = factory.mktemp("fuzz")
        (d / "driver.cpp").write_text(DRIVER)
        _PROGRAM.append(compile_host(d / "driver.cpp", d / "driver", {"QMCU_STD": 1, "QMCU_FLOAT": 0},
                                     ["-fsanitize=undefined", "-fno-sanitize-recover=all"]))
    return _PROGRAM[0]
