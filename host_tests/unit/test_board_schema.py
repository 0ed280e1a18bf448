"""boards/schema.json: a valid JSON Schema that every committed board file meets, and one clear line per bad file."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from qmcu import boards
from qmcu.boards import SCHEMA_PATH, Corner, Counter, board_names, load_board, make_corner, parse_board
from qmcu.build import toolchain
from qmcu.errors import QmcuError
from qmcu.paths import BOARDS_DIR


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator


@pytest.mark.parametrize("name", board_names())
def test_every_committed_board_file_meets_the_schema(name: str) -> None:
    raw = json.loads((BOARDS_DIR / f"{name}.json").read_text())
    jsonschema.Draft202012Validator(_schema()).validate(raw)  # the plain library, no qmcu code in between
    assert load_board(name).id == name


def test_the_schema_is_not_a_board() -> None:
    assert "schema" not in board_names() and len(board_names()) == len(list(BOARDS_DIR.glob("*.json"))) - 1
    with pytest.raises(QmcuError, match=r"^unknown board 'schema'; valid boards: "):
        load_board("schema")


def _error(raw: Any, name: str = "qemu-m4") -> str:
    """The message for a bad board file: one line, the file first, then the problem and, after "; ", the fix."""
    path = Path("/boards") / f"{name}.json"
    with pytest.raises(QmcuError) as info:
        parse_board(path, raw)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"board file {path}: ") and "; " in text, text
    return text.removeprefix(f"board file {path}: ")


def _qemu_m4() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((BOARDS_DIR / "qemu-m4.json").read_text())
    return raw


def _edited(edit: str, value: Any = None, drop: bool = False) -> dict[str, Any]:
    raw = copy.deepcopy(_qemu_m4())
    *parents, last = edit.split(".")
    node: Any = raw
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if drop:
        del node[last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return raw


UNKNOWN_KEYS = [
    ("colour", "red", r"^unknown key\(s\) colour; valid keys are clock, consoles, corners, counter, cpu, description, "
                      r"dsp, exit, flash, fpu, id, kind, memory, qemu, uart, usb$"),
    ("counter.offset", 3, r"^unknown key\(s\) counter\.offset; valid keys of counter are enable_bit, enable_register, "
                          r"kind, timer_base, unit$"),
    ("memory.flash.end", "0x08100000", r"^unknown key\(s\) memory\.flash\.end; valid keys of memory\.flash are origin, size$"),
    ("corners.0.double", 1, r"^unknown key\(s\) corners\[0\]\.double; valid keys of corners\[0\] are float, std$"),
    ("uart.enable.0.mask", 1, r"^unknown key\(s\) uart\.enable\[0\]\.mask; valid keys of uart\.enable\[0\] are bit, register$"),
]


@pytest.mark.parametrize(("key", "value", "message"), UNKNOWN_KEYS, ids=[k for k, _, _ in UNKNOWN_KEYS])
def test_unknown_keys_are_refused(key: str, value: Any, message: str) -> None:
    assert re.search(message, _error(_edited(key, value)))


WRONG_TYPES = [
    ("dsp", "yes", r"^dsp must be true or false, not 'yes'; true only for cores with the DSP extension$"),
    ("consoles", "uart", r"^consoles must be a list, not 'uart'; the consoles the results can be read from"),
    ("memory.flash.size", "1 MB", r"^memory\.flash\.size='1 MB' is not an integer; write a number or a hex string like "
                                   r"\"0x20000000\""),
    ("memory.ram.origin", 1.5, r"^memory\.ram\.origin=1\.5 is not an integer; write a number or a hex string like "
                               r"\"0x20000000\""),
    ("counter", 3, r"^counter must be an object, not 3; see boards/qemu-m4\.json"),
    ("uart.baud", True, r"^uart\.baud=true is not an integer; write a number or a hex string"),
    ("qemu.machine", 42, r"^qemu\.machine must be a string, not 42; name the qemu-system-arm -M machine$"),
    ("kind", "fpga", r"^kind='fpga' is not one of host, qemu, hardware; host: native g\+\+"),
    ("fpu", "vfpv3", r"^fpu='vfpv3' is not one of fpv4-sp-d16, fpv5-sp-d16, fpv5-d16, null; null for a core without"),
    ("uart.enable.0.bit", "0x20", r"^uart\.enable\[0\]\.bit=0x20 is outside \[0x0, 0x1f\]; a bit number 0-31$"),
]


@pytest.mark.parametrize(("key", "value", "message"), WRONG_TYPES, ids=[k for k, _, _ in WRONG_TYPES])
def test_wrong_types_and_values_are_refused(key: str, value: Any, message: str) -> None:
    assert re.search(message, _error(_edited(key, value)))


MISSING_KEYS = [
    ("counter", r"^missing key\(s\) counter; add them \(see boards/qemu-m4\.json\)$"),
    ("uart.baud", r"^uart lacks baud; the console UART: the driver names the register layout"),
    ("memory.ram", r"^memory lacks ram; add them \(keys of memory: flash, ram\)$"),
    ("counter.unit", r"^counter lacks unit; see boards/qemu-m4\.json \(stm32-tim\)"),
    ("corners.0.float", r"^corners\[0\] lacks float; each corner is \{\"std\": 0\|1, \"float\": 0\|1\}$"),
    ("qemu.machine", r"^qemu lacks machine; add them \(keys of qemu: machine\)$"),
    ("qemu", r"^a qemu board needs 'qemu'; add it \(see boards/qemu-m4\.json\)$"),  # a rule across keys: kind -> section
    ("counter.timer_base", r"^counter\.kind stm32-tim needs counter\.timer_base; add the timer's register addresses$"),
]


@pytest.mark.parametrize(("key", "message"), MISSING_KEYS, ids=[k for k, _ in MISSING_KEYS])
def test_missing_keys_are_named(key: str, message: str) -> None:
    assert re.search(message, _error(_edited(key, drop=True)))


def test_the_top_level_must_be_an_object() -> None:
    assert _error([1, 2]) == "top level is not a JSON object; see boards/qemu-m4.json for the format"


def test_ranges_apply_to_what_a_hex_string_spells() -> None:
    assert _error(_edited("uart.pins", [{"gpio_base": "0x40020000", "pin": "0x10", "af": 7}])).startswith(
        "uart.pins[0].pin=0x10 is outside [0x0, 0xf];")
    assert _error(_edited("uart.base", "0x40011002")).startswith("uart.base=0x40011002 is not word aligned;")
    # The same value written twice, once as a number and once as hex, is a repeat.
    hardware = json.loads((BOARDS_DIR / "nucleo-f401re.json").read_text())
    hardware["usb"]["pids"] = ["0x374b", 0x374B]
    assert _error(hardware, "nucleo-f401re").startswith("usb.pids lists an entry twice;")


def test_text_that_looks_like_a_number_stays_text() -> None:
    board = parse_board(BOARDS_DIR / "qemu-m4.json", {**_qemu_m4(), "description": "1234"})
    assert board.description == "1234"


def test_counter_is_a_typed_view() -> None:
    assert load_board("qemu-m4").counter == Counter("stm32-tim", "instructions", 0x40000000, 0x40023840, 0)
    assert load_board("qemu-m3").counter == Counter("none", "instructions")
    assert load_board("qemu-m3").counter_unit == "instructions"


def test_corners_are_checked_in_one_place(tmp_path: Path) -> None:
    raw = {**_qemu_m4(), "corners": [{"std": 0, "float": 0}]}
    (tmp_path / "qemu-m4.json").write_text(json.dumps(raw))
    one_corner = boards.load_board("qemu-m4", tmp_path)
    assert make_corner("1", "0") == make_corner(1, 0) == Corner(1, 0)
    assert make_corner(0, 0, one_corner) == Corner(0, 0)
    for std, flt, name in (("2", "0", "STD='2'"), (0, True, "FLOAT=True"), (0, "x", "FLOAT='x'")):
        with pytest.raises(QmcuError, match=rf"^{re.escape(name)} is not valid; use one of 0, 1$"):
            make_corner(std, flt)
    with pytest.raises(QmcuError, match=r"^board qemu-m4 does not list corner STD=1 FLOAT=0; use one of std0-float0$"):
        make_corner(1, 0, one_corner)
    # The toolchain asks the same question.
    with pytest.raises(QmcuError, match=r"^board qemu-m4 does not list corner STD=1 FLOAT=0"):
        toolchain.target_flags(one_corner, Corner(1, 0))
    with pytest.raises(QmcuError, match=r"^STD=2 is not valid"):
        toolchain.host_flags(Corner(2, 0))
