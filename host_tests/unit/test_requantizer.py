"""The requantizer: Python reference vs exact big-integer math (the C++ on the host:
host_cpp/test_requantizer_cpp.py).
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmcu.quant import reference
from qmcu.quant.fixedpoint import multiply_by_quantized_multiplier, requantize, rounding_divide_by_pot
from qmcu.quant.fixedpoint import saturating_rounding_doubling_high_mul as srdhm
from requant_cases import I32_MAX, I32_MIN, acc_window, int32s, requant_cases, srdhm_near_ties, srdhm_ties, tie_table


@st.composite
def rdbpot_ties(draw: st.DrawFn) -> tuple[int, int]:
    """(x, e) with x / 2^e exactly halfway between two integers, e in [1, 31]."""
    e = draw(st.integers(1, 31))
    x = (2 * draw(st.integers(-(1 << (31 - e)), (1 << (31 - e)) - 1)) + 1) << (e - 1)
    return x, e


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
