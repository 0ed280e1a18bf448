"""The reference record stream and its error helper, shared by the record tests."""

from __future__ import annotations

import shutil

import pytest

from qmcu.paths import FIRMWARE_DIR
from qmcu.run.records import (
    ProtocolError,
    parse_stream,
)

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
PLATFORM_DIR = FIRMWARE_DIR / "platform"
FREESTANDING = ["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-ffreestanding", "-fno-exceptions",
                "-fno-rtti"]


def error_of(text: str | bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_stream(text)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------- C++ writer


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


HEADER_ONLY = '#include "records.hpp"\nstatic_assert(qmcu::records::detail::kCrcTable.entry[255] == 0x2D02EF8Du, "");\n'
