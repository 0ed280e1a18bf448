"""Quiet output without a build: verbose= stays out of the graph; the epoch bar, durations and the
matrix's done/total progress with its estimate.
"""

from __future__ import annotations

import io
import re

import pytest

from qmcu.matrix import cells
from qmcu.model.train import epoch_bar
from qmcu.options import DEFAULTS, HELP, output_options, parse_options


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_verbose_is_an_option_kept_out_of_the_graph() -> None:
    assert DEFAULTS["verbose"] == "0" and "full command lines" in HELP["verbose"]
    assert output_options({"board": "host", "verbose": "1"}) == (True, {"board": "host"})
    assert output_options({"board": "host"}) == (False, {"board": "host"})
    assert parse_options({"verbose": "1"}) == parse_options({})  # not part of BuildOptions


# --- progress ----------------------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_epoch_bar_is_silent_off_a_terminal_and_erased_on_one() -> None:
    pipe = io.StringIO()
    assert list(epoch_bar(5, "training XOR (seed 42)", pipe)) == [0, 1, 2, 3, 4]
    assert pipe.getvalue() == ""
    tty = _Terminal()
    assert list(epoch_bar(5, "training XOR (seed 42)", tty)) == [0, 1, 2, 3, 4]
    drawn = tty.getvalue()
    assert "training XOR (seed 42)" in drawn and "epoch" in drawn
    assert drawn.split("\r")[-1].strip() == ""  # leave=False: the last write clears the line


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (8.4, "8 s"), (59.6, "1 min 00 s"), (125, "2 min 05 s"), (3599, "59 min 59 s"), (3725, "1 h 02 min"),
])
def test_duration_text(seconds: float, text: str) -> None:
    assert cells.duration_text(seconds) == text


@pytest.mark.parametrize(("done", "total", "elapsed", "text"), [
    (0, 4, 0.0, "0/4"),
    (1, 4, 10.0, "1/4, about 30 s left"),
    (3, 40, 30.0, "3/40, about 6 min 10 s left"),
    (39, 40, 0.1, "39/40, about 1 s left"),
    (4, 4, 100.0, "4/4"),
])
def test_matrix_progress_estimates_time_left_from_the_average(done: int, total: int, elapsed: float, text: str) -> None:
    assert cells.progress_text(done, total, elapsed) == text


def test_cell_finished_prints_progress_then_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    cells.start_progress(2)
    cells.cell_finished("host/std0-float0/semihosting/xor", None, "boom")
    cells.cell_finished("host/std0-float0/semihosting/exhaustive", None, "bang")
    first, last = _lines(capsys.readouterr().out)
    assert re.fullmatch(r"\[1/2, about \d+ s left\] host/std0-float0/semihosting/xor: FAIL boom", first)
    assert last == "[2/2] host/std0-float0/semihosting/exhaustive: FAIL bang"
