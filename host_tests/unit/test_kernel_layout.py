"""kernel_layout's field checks at their exact boundaries (the requantizer's legal shift range is [-31, 30])."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qmcu.codegen.kernel_layout import prepare_dense
from qmcu.errors import QmcuError
from qmcu.quant.intmodel import Dense

BASE = Dense(name="fc", in_features=2, out_features=1, weights=[3, -5], bias=[7], weight_scale=1.0, input_scale=1.0,
             input_zero_point=-128, output_scale=1.0, output_zero_point=0, multiplier=1 << 30, shift=-1, act_min=-128,
             act_max=127)


@pytest.mark.parametrize("shift", [-31, -30, 0, 29, 30])
def test_every_legal_shift_prepares(shift: int) -> None:
    assert prepare_dense(replace(BASE, shift=shift)).shift == shift


@pytest.mark.parametrize("shift", [-32, 31, -33, 32, -(2**31)])
def test_a_shift_outside_the_contract_is_refused(shift: int) -> None:
    # -32 would make roundingDivideByPOT shift by 32: undefined in C++, so the bound must be exact.
    with pytest.raises(QmcuError, match=rf"^layer fc: shift value {shift} is outside \[-31, 30\]; re-run quantization$"):
        prepare_dense(replace(BASE, shift=shift))


@pytest.mark.parametrize(("field", "low", "high"), [
    ("multiplier", 0, 2**31 - 1), ("input_zero_point", -128, 127), ("output_zero_point", -128, 127),
])
def test_other_field_bounds_are_exact(field: str, low: int, high: int) -> None:
    for ok in (low, high):
        prepare_dense(replace(BASE, **{field: ok}))
    for bad in (low - 1, high + 1):
        with pytest.raises(QmcuError, match=rf"value {bad} is outside \[{low}, {high}\]"):
            prepare_dense(replace(BASE, **{field: bad}))
