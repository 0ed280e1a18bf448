"""The boards the platform tests run on, and the folder of the test programs (real C++ files, built with
qmcu.build.cross; their parameters are -D defines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmcu import boards

ALL_BOARDS = boards.load_all()
QEMU_BOARDS = [b for b in ALL_BOARDS if b.kind == "qemu"]
HOST_BOARDS = [b for b in ALL_BOARDS if b.kind == "host"]
PROGRAMS = Path(__file__).resolve().parent / "programs"


def _board_params() -> list:
    """Every corner of every QEMU board."""
    return [pytest.param(b, c, id=f"{b.id}-{c.name}") for b in QEMU_BOARDS for c in b.corners]
