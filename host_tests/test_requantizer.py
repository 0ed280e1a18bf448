"""The requantizer: Python reference vs exact big-integer math vs the C++ compiled on the host (+UBSan)."""

from __future__ import annotations

import math
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
# Uniform int32 draws almost never give a rounding tie or a boundary value, and a full-range accumulator
# almost always saturates the int8 clamp: every strategy below mixes in ties, boundaries and accumulators
# in the window where the output is not clamped.
BOUNDARIES = sorted({v for k in range(32) for p in (1 << k,) for v in (p - 1, p, p + 1, -p - 1, -p, -p + 1)
                     if I32_MIN <= v <= I32_MAX} | {I32_MIN, I32_MAX, 0})
int32s = st.one_of(st.integers(I32_MIN, I32_MAX), st.sampled_from(BOUNDARIES), st.integers(-300, 300))
multipliers = st.one_of(st.integers(0, I32_MAX), st.integers(1 << 30, I32_MAX),
                        st.sampled_from([0, 1, 1 << 30, (1 << 30) + 1, I32_MAX - 1, I32_MAX, 1_082_196_480]))
shifts = st.integers(-31, 30)


@st.composite
def srdhm_ties(draw: st.DrawFn) -> tuple[int, int]:
    """(a, b) with a*b an odd multiple of 2^30: round(a*b / 2^31) is exactly halfway (either sign)."""
    k = draw(st.integers(0, 30))
    a = (2 * draw(st.integers(-(1 << (30 - k)), (1 << (30 - k)) - 1)) + 1) << k
    b = (2 * draw(st.integers(-(1 << k), (1 << k) - 1)) + 1) << (30 - k)
    return (a, b) if draw(st.booleans()) else (b, a)


@st.composite
def srdhm_near_ties(draw: st.DrawFn) -> tuple[int, int]:
    """(a, b) with a*b within 2 of an odd multiple of 2^30 (any odd b: a solves a*b = 2^30 + d mod 2^31)."""
    b = 2 * draw(st.integers(-(1 << 30), (1 << 30) - 1)) + 1
    d = draw(st.integers(-2, 2))
    a = ((1 << 30) + d) * pow(b % (1 << 31), -1, 1 << 31) % (1 << 31)
    a -= draw(st.sampled_from([0, 1 << 31]))  # both signs: a and a - 2^31 give the same residue
    return (a, b) if draw(st.booleans()) else (b, a)


@st.composite
def rdbpot_ties(draw: st.DrawFn) -> tuple[int, int]:
    """(x, e) with x / 2^e exactly halfway between two integers, e in [1, 31]."""
    e = draw(st.integers(1, 31))
    x = (2 * draw(st.integers(-(1 << (31 - e)), (1 << (31 - e)) - 1)) + 1) << (e - 1)
    return x, e


def acc_window(m: int, shift: int, zp: int = 0, qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """The accumulators whose output lands in [qmin, qmax] (a little wider): where the clamp does not decide."""
    gain = Fraction(m, 2**31) * Fraction(2) ** shift
    if gain == 0:
        return I32_MIN, I32_MAX
    a, b = sorted((Fraction(qmin - zp - 2) / gain, Fraction(qmax - zp + 2) / gain))
    return min(max(math.floor(a), I32_MIN), I32_MAX), max(min(math.ceil(b), I32_MAX), I32_MIN)


@st.composite
def requant_cases(draw: st.DrawFn) -> tuple[int, int, int, int, int, int]:
    """(acc, multiplier, shift, zero point, qmin, qmax): any clamp (a fused ReLU's too), mostly unclamped."""
    m, shift, zp = draw(multipliers), draw(shifts), draw(st.integers(-128, 127))
    qmin = draw(st.one_of(st.just(-128), st.just(zp), st.integers(-128, 127)))
    qmax = draw(st.one_of(st.just(127), st.integers(qmin, 127)))
    lo, hi = acc_window(m, shift, zp, qmin, qmax)
    acc = draw(st.one_of(st.integers(lo, hi), st.integers(lo, hi), int32s))
    return acc, m, shift, zp, qmin, qmax


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


@settings(max_examples=400)
@given(st.one_of(st.tuples(int32s, int32s), srdhm_ties(), srdhm_near_ties()))
def test_srdhm_equals_exact_rational(ab: tuple[int, int]) -> None:
    assert srdhm(*ab) == exact_srdhm(*ab)


@settings(max_examples=400)
@given(st.one_of(st.tuples(int32s, st.integers(0, 31)), rdbpot_ties()))
def test_rdbpot_equals_exact_rational(xe: tuple[int, int]) -> None:
    assert rounding_divide_by_pot(*xe) == exact_rdbpot(*xe)


@settings(max_examples=400)
@given(requant_cases())
def test_multiply_by_quantized_multiplier_equals_exact(case: tuple[int, int, int, int, int, int]) -> None:
    acc, m, shift = case[:3]
    assert multiply_by_quantized_multiplier(acc, m, shift) == exact_mbqm(acc, m, shift)


def tie_table() -> list[tuple[int, int]]:
    """Deterministic SRDHM ties of both signs at every power-of-two split, plus the extreme ones."""
    pairs = []
    for k in range(31):
        for a_odd in (1, 3, -1, -3, (1 << (31 - k)) - 1, -((1 << (31 - k)) - 1)):
            for b_odd in (1, -1, (1 << (k + 1)) - 1, -((1 << (k + 1)) - 1)):
                a, b = a_odd << k, b_odd << (30 - k)
                if I32_MIN <= a <= I32_MAX and I32_MIN <= b <= I32_MAX:
                    pairs.append((a, b))
    return pairs


def test_srdhm_ties_of_both_signs_round_toward_plus_infinity() -> None:
    pairs = tie_table()
    assert sum(a * b < 0 for a, b in pairs) >= 300 and sum(a * b > 0 for a, b in pairs) >= 300
    for a, b in pairs:
        assert (a * b) % (1 << 31) == 1 << 30  # really a tie
        assert srdhm(a, b) == exact_srdhm(a, b) == (a * b + (1 << 30)) >> 31, (a, b)
    assert srdhm(-(3 << 29), 1 << 1) == -1 and srdhm(-(1 << 30), 3) == -1  # -1.5 -> -1
    assert srdhm(3 << 29, 2) == 2 and srdhm(-1, 1 << 30) == 0  # 1.5 -> 2, -0.5 -> 0


def test_rdbpot_ties_of_both_signs_round_away_from_zero() -> None:
    for e in range(1, 32):
        for j in (0, 1, 2, -1, -2, -3, (1 << (31 - e)) - 1, -(1 << (31 - e))):
            x = (2 * j + 1) << (e - 1)
            want = exact_rdbpot(x, e)
            assert abs(want) == abs(2 * j + 1) // 2 + 1  # halves away from zero
            assert rounding_divide_by_pot(x, e) == want, (x, e)


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


# (multiplier, shift): real gains from 2^-23 (still 256 reachable outputs) to 2^30, ties built in below.
UNSATURATED_CONFIGS = [(1 << 30, 0), (1 << 30, -1), (1 << 30, -7), (1 << 30, -20), (1_082_196_480, -7),
                       (I32_MAX, -22), (1_518_500_250, -12), (1 << 30, 3), (1_431_655_765, 2), (I32_MAX, 0),
                       (1_073_741_825, -3)]
SATURATED_CONFIGS = [(1_431_655_765, 8), (I32_MAX, 30), (I32_MAX, -31), (0, 0), (1, -31), (I32_MIN, 0), (I32_MIN, -5)]


def config_accs(m: int, s: int, zp: int, qmin: int, qmax: int, rng: random.Random, n: int = 1500) -> np.ndarray:
    """Accumulators for one requantizer: the unclamped window, ties, the int32 boundaries."""
    lo, hi = acc_window(m, s, zp, qmin, qmax)
    accs = [rng.randint(lo, hi) for _ in range(n)] + [I32_MIN, I32_MAX, 0, -1, 1, lo, hi]
    tz = (abs(m) & -abs(m)).bit_length() - 1 if m else 0
    left = max(s, 0)
    if m and 30 - tz - left >= 0:  # acc * m * 2^left an odd multiple of 2^30: an SRDHM tie
        step = 1 << (30 - tz - left)
        accs += [j * step for j in range(-41, 42, 2) if I32_MIN <= j * step <= I32_MAX]
    if s < 0:  # SRDHM result an odd multiple of 2^(e-1): an RDBPOT tie (exact for m = 2^30)
        accs += [j << (-s) for j in range(-41, 42, 2) if I32_MIN <= j << (-s) <= I32_MAX]
    return np.array(accs, dtype=np.int64)


@pytest.mark.parametrize(("m", "s"), UNSATURATED_CONFIGS + SATURATED_CONFIGS)
@pytest.mark.parametrize(("zp", "qmin", "qmax"), [(-3, -128, 127), (-128, -128, 127), (20, 20, 127), (5, -50, 60)])
def test_numpy_reference_matches_scalar(m: int, s: int, zp: int, qmin: int, qmax: int) -> None:
    accs = config_accs(m, s, zp, qmin, qmax, random.Random(m ^ s))
    got = reference.requantize(accs, m, s, zp, qmin, qmax)
    want = [requantize(int(a), m, s, zp, qmin, qmax) for a in accs]
    assert got.tolist() == want
    if (m, s) in UNSATURATED_CONFIGS:
        # The test is only worth something where the output is not clamped: demand most of the clamp range.
        inside = [v for v in want if qmin < v < qmax]
        gain = Fraction(m, 2**31) * Fraction(2) ** s
        reachable = min(qmax - qmin + 1, math.ceil((qmax - qmin + 1) / gain))  # a gain above 1 skips outputs
        assert len(set(want)) >= reachable * 3 // 4, f"only {len(set(want))} distinct outputs of {reachable}"
        assert len(inside) >= len(want) // 2, f"{len(want) - len(inside)} of {len(want)} outputs clamped"


def test_numpy_srdhm_and_rdbpot_ties_match_scalar() -> None:
    a, b = np.array([p[0] for p in tie_table()], dtype=np.int64), [p[1] for p in tie_table()]
    for ai, bi, got in zip(a.tolist(), b, [int(reference._srdhm(np.array([x]), y)[0]) for x, y in zip(a, b, strict=True)],
                           strict=True):
        assert got == srdhm(ai, bi), (ai, bi)
    assert reference._srdhm(np.array([I32_MIN, I32_MIN + 1, I32_MAX]), I32_MIN).tolist() == [
        I32_MAX, srdhm(I32_MIN + 1, I32_MIN), srdhm(I32_MAX, I32_MIN)]
    for e in range(1, 32):
        xs = np.array([(2 * j + 1) << (e - 1) for j in (0, 1, -1, -2, 5, -6)], dtype=np.int64)
        assert reference._rdbpot(xs, e).tolist() == [rounding_divide_by_pot(int(x), e) for x in xs]


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
