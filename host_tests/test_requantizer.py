"""The requantizer: Python reference vs exact big-integer math vs the C++ compiled on the host (+UBSan)."""

from __future__ import annotations

import random
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import compile_host
from qmcu import reference
from qmcu.fixedpoint import multiply_by_quantized_multiplier, requantize, rounding_divide_by_pot
from qmcu.fixedpoint import saturating_rounding_doubling_high_mul as srdhm

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
int32s = st.integers(I32_MIN, I32_MAX)
multipliers = st.integers(0, I32_MAX)
shifts = st.integers(-31, 30)


def exact_srdhm(a: int, b: int) -> int:
    """round(a*b/2^31), ties toward +inf, from exact rationals; saturate at int32."""
    v = Fraction(a * b, 2**31)
    r = (v + Fraction(1, 2)).__floor__()
    return min(r, I32_MAX)


def exact_rdbpot(x: int, e: int) -> int:
    """x / 2^e rounded to nearest, ties away from zero."""
    v = Fraction(x, 2**e)
    mag = (abs(v) + Fraction(1, 2)).__floor__()
    return mag if v >= 0 else -mag


def exact_mbqm(acc: int, m: int, shift: int) -> int:
    shifted = max(I32_MIN, min(I32_MAX, acc * 2 ** max(shift, 0)))
    return exact_rdbpot(exact_srdhm(shifted, m), max(-shift, 0))


@given(int32s, int32s)
def test_srdhm_equals_exact_rational(a: int, b: int) -> None:
    assert srdhm(a, b) == exact_srdhm(a, b)


@given(int32s, st.integers(0, 31))
def test_rdbpot_equals_exact_rational(x: int, e: int) -> None:
    assert rounding_divide_by_pot(x, e) == exact_rdbpot(x, e)


@given(int32s, multipliers, shifts)
def test_multiply_by_quantized_multiplier_equals_exact(acc: int, m: int, shift: int) -> None:
    assert multiply_by_quantized_multiplier(acc, m, shift) == exact_mbqm(acc, m, shift)


def test_edge_cases() -> None:
    assert srdhm(I32_MIN, I32_MIN) == I32_MAX
    assert srdhm(I32_MAX, I32_MAX) == I32_MAX - 1
    assert srdhm(I32_MIN, I32_MAX) == -I32_MAX
    assert srdhm(-(2**30), 1) == 0  # -0.5 ties toward +inf
    assert srdhm(2**30, 1) == 1
    assert rounding_divide_by_pot(-1, 1) == -1 and rounding_divide_by_pot(1, 1) == 1
    assert rounding_divide_by_pot(I32_MIN, 31) == -1 and rounding_divide_by_pot(I32_MAX, 31) == 1
    assert multiply_by_quantized_multiplier(I32_MAX, I32_MAX, 30) == I32_MAX - 1  # left shift saturates first
    assert multiply_by_quantized_multiplier(I32_MIN, I32_MAX, 30) == -I32_MAX


def test_numpy_reference_matches_scalar() -> None:
    rng = random.Random(1)
    accs = np.array([I32_MIN, I32_MAX, 0, -1, 1] + [rng.randint(I32_MIN, I32_MAX) for _ in range(2000)])
    for m, s in [(I32_MAX, 30), (I32_MAX, -31), (1 << 30, 0), (1_082_196_480, -7), (0, 0), (1, -31)]:
        got = reference.requantize(accs, m, s, -3, -128, 127)
        want = [requantize(int(a), m, s, -3, -128, 127) for a in accs]
        assert got.tolist() == want


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
    edge_m = [0, 1, 1 << 30, I32_MAX - 1, I32_MAX, (1 << 31) - 2**8]
    cases = [(a, m, s, zp, -128, 127) for a in edge_acc for m in edge_m for s in (-31, -1, 0, 1, 30)
             for zp in (-128, 127)]
    for _ in range(n):
        cases.append((rng.randint(I32_MIN, I32_MAX), rng.randint(0, I32_MAX), rng.randint(-31, 30),
                      rng.randint(-128, 127), -128, rng.choice([127, 0, 5])))
    return cases


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
@given(st.lists(st.tuples(int32s, multipliers, shifts, st.integers(-128, 127)), min_size=1, max_size=50))
def test_cpp_requantizer_fuzzed(tmp_path_factory: pytest.TempPathFactory, batch: list[tuple[int, int, int, int]]) -> None:
    program = _fuzz_program(tmp_path_factory)
    cases = [(a, m, s, zp, -128, 127) for a, m, s, zp in batch]
    got = _run(program, cases)
    assert [g[2] for g in got] == [requantize(*c) for c in cases]


_PROGRAM: list[Path] = []


def _fuzz_program(factory: pytest.TempPathFactory) -> Path:
    if not _PROGRAM:
        d = factory.mktemp("fuzz")
        (d / "driver.cpp").write_text(DRIVER)
        _PROGRAM.append(compile_host(d / "driver.cpp", d / "driver", {"QMCU_STD": 1, "QMCU_FLOAT": 0},
                                     ["-fsanitize=undefined", "-fno-sanitize-recover=all"]))
    return _PROGRAM[0]
