"""A test set of any size: split over as many images as the board's flash needs, every row judged.

Each image (a "part") holds a contiguous slice of the test set's rows, compiled in as constants like a
one-part test set. Rows are planned from the board's flash size, the integer model's size and what one
row costs in the image; the run step runs the parts one after another and judges them as one set.
The plan is conservative: a part that still does not fit is refused at link time with one line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qmcu.boards import Board, Corner
from qmcu.quant.intmodel import Add, Conv, Dense, IntModel, Lut, Pool

# The firmware's code, runtime, start-up and libraries: under 23 KB in every image the matrix builds.
CODE_RESERVE = 48 * 1024


@dataclass(frozen=True)
class Part:
    index: int   # 0, 1, ...
    start: int   # first row of the test set this image runs
    stop: int    # one past its last row

    @property
    def count(self) -> int:
        return self.stop - self.start


def model_bytes(model: IntModel) -> int:
    """An upper bound of the model's constants in an image (weights widened to int16 for the DSP kernel)."""
    total = 0
    for lay in model.layers:
        if isinstance(lay, Dense):
            total += 2 * len(lay.weights) + 4 * len(lay.bias) + 20 * lay.out_features
        elif isinstance(lay, Lut):
            total += 256
        elif isinstance(lay, Conv):  # weights at most widened to int16, biases, a requantizer per channel
            cout = len(lay.bias)
            total += 2 * len(lay.weights) + 4 * cout + 20 * cout
        elif isinstance(lay, Add | Pool):
            total += 64
    return total


def row_bytes(width: int, corner: Corner, seed_tutorial: bool) -> int:
    """What one labelled row costs in flash: its int8 inputs and label, float inputs in a FLOAT=1 image,
    and the display values the seed tutorial's lines print."""
    return width + 1 + (4 * width if corner.float else 0) + (4 * width if seed_tutorial else 0)


def rows_per_image(board: Board, corner: Corner, model: IntModel, seed_tutorial: bool) -> int | None:
    """How many rows one image holds on this board; None: no limit (the host), or no room for any row
    (the model alone is too large: one image, which the link refuses in one line)."""
    if not board.is_target or board.flash is None:
        return None
    free = board.flash.size - CODE_RESERVE - model_bytes(model)
    rows = free // row_bytes(model.input_size, corner, seed_tutorial)
    return rows if rows >= 1 else None


def plan(rows: int, per_image: int | None) -> list[Part]:
    """Contiguous slices of `rows` rows, at most per_image each (one part when it all fits)."""
    if per_image is None or rows <= per_image:
        return [Part(0, 0, rows)]
    n = math.ceil(rows / per_image)
    size = math.ceil(rows / n)  # balanced: no tiny last part
    return [Part(k, k * size, min(rows, (k + 1) * size)) for k in range(n)]
