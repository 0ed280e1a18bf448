"""One place per fact (issue 12 item 4): each fact below is defined once, and everything else uses it."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from qmcu import cli
from qmcu.build import toolchain
from qmcu.codegen import vectors
from qmcu.errors import QmcuError
from qmcu.options import DEFAULTS
from qmcu.paths import FIRMWARE_DIR, PACKAGE_DIR
from qmcu.run import records

FIRMWARE_SOURCES = sorted(p for p in FIRMWARE_DIR.rglob("*.?pp") if "models" not in p.parts)


def _code(path: Path) -> str:
    """C++ source without its comments."""
    return re.sub(r"//[^\n]*", "", path.read_text())


def test_the_cross_prefix_is_defined_in_toolchain_only() -> None:
    defined = [p.name for p in sorted(PACKAGE_DIR.rglob("*.py"))
               if re.search(r'^\w*PREFIX\w* = "arm-none-eabi-"', p.read_text(), re.M)]
    assert defined == ["toolchain.py"]
    assert toolchain.TARGET_PREFIX == "arm-none-eabi-"


def test_one_register_accessor_in_the_firmware() -> None:
    defining = [p.name for p in FIRMWARE_SOURCES if re.search(r"reg32\s*\(\s*uintptr_t", _code(p))]
    assert defining == ["mmio.hpp"]
    volatile_casts = [p.name for p in FIRMWARE_SOURCES if "reinterpret_cast<volatile" in _code(p)]
    assert volatile_casts == ["mmio.hpp"]


def test_one_decimal_formatter_in_the_firmware() -> None:
    """A digit loop (value % 10 into a digit buffer) lives in decimal.hpp only; the others call it."""
    loops = [p.name for p in FIRMWARE_SOURCES if re.search(r"'0'\s*\+\s*\w+\s*%\s*10u", _code(p))]
    assert loops == ["decimal.hpp"]
    for name in ("records.hpp", "cortexm/startup.cpp"):
        assert "decimal::put_" in _code(FIRMWARE_DIR / "platform" / name), name
    assert "decimal::put_signed" in _code(FIRMWARE_DIR / "app" / "text_line.hpp")


def test_the_protocol_version_is_the_firmware_header_s() -> None:
    header = (FIRMWARE_DIR / "platform" / "records.hpp").read_text()
    assert re.findall(r"kProtocolVersion = (\d+);", header) == [str(records.PROTOCOL_VERSION)]
    app = _code(FIRMWARE_DIR / "app" / "app_records.hpp")
    assert 'w.field("proto", records::kProtocolVersion);' in app
    assert not re.search(r'"proto",\s*\d', app)


@pytest.mark.parametrize(("text", "error"), [
    ("// nothing here\n", "has no line `constexpr int32_t kProtocolVersion = <n>;`"),
    ("constexpr int32_t kProtocolVersion = 0;\n", "has no line `constexpr int32_t kProtocolVersion = <n>;`"),
])
def test_a_header_without_the_version_is_one_line(tmp_path: Path, text: str, error: str) -> None:
    header = tmp_path / "records.hpp"
    header.write_text(text)
    with pytest.raises(QmcuError) as info:
        records.protocol_version(header)
    assert error in str(info.value) and "\n" not in str(info.value)
    assert records.protocol_version(FIRMWARE_DIR / "platform" / "records.hpp") == records.PROTOCOL_VERSION
    with pytest.raises(QmcuError, match="cannot read the record protocol's version"):
        records.protocol_version(tmp_path / "missing.hpp")


def test_the_parser_accepts_exactly_the_modes_vectors_makes() -> None:
    assert records.MODES is vectors.MODES
    begin = records.format_record(0, "BEGIN", [("proto", records.PROTOCOL_VERSION), ("model", "m"), ("mode", "grid"),
                                               ("count", 0), ("outputs", 1), ("unit", "none")])
    end = records.format_record(1, "END", [("status", 0), ("records", 0), ("stack", 0)])
    with pytest.raises(records.ProtocolError, match=r"mode=grid is not one of test\|xor\|exhaustive"):
        records.parse_stream(begin + end)


def test_cli_options_named_like_build_options_take_their_defaults_from_options() -> None:
    """An argparse option named like a key of options.DEFAULTS defaults to None (or is a flag, absent unless
    given): parse_options fills in options.DEFAULTS, so no default is written twice."""
    def actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
        found = list(parser._actions)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += actions(sub)
        return found

    shared = [a for a in actions(cli.build_parser()) if a.dest in DEFAULTS]
    assert shared, "expected --model/--data to share names with options.DEFAULTS"
    assert [a.dest for a in shared if a.default is not None and not isinstance(a, argparse._StoreTrueAction)] == []
