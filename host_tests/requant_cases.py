"""Requantizer test cases (hypothesis strategies, ties, exact rationals), shared by
unit/test_requantizer.py and host_cpp/test_requantizer_cpp.py.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import strategies as st

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
