"""The C++ record writer (firmware/platform/records.hpp) built with the host g++: its bytes equal
records.format_record and parse back; it needs no C++ standard library.
"""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest

from qmcu.run.records import (
    Begin,
    End,
    Result,
    Summary,
    format_record,
    parse_stream,
)
from record_cases import FREESTANDING, HEADER_ONLY, I32_MAX, I32_MIN, PLATFORM_DIR, error_of, need

# ---------------------------------------------------------------------------------------------- C++ writer

DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "records.hpp"

namespace {

struct FileSink {  // a sink with state: write() is a member
    FILE* f;
    void write(const char* p, size_t n) { fwrite(p, 1, n, f); }
};

struct StdoutSink {  // a sink without: write() is static
    static void write(const char* p, size_t n) { fwrite(p, 1, n, stdout); }
};

const int32_t kInts[] = {@INTS@};

}  // namespace

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "stream";
    if (strcmp(mode, "ints") == 0) {
        qmcu::records::RecordWriter<StdoutSink> w;
        for (size_t k = 0; k < sizeof(kInts) / sizeof(kInts[0]); ++k) {
            w.begin("T");
            w.field("v", kInts[k]);
            w.end();
        }
        return 0;
    }
    if (strcmp(mode, "overflow") == 0) {
        qmcu::records::RecordWriter<StdoutSink, 64> w;
        int8_t many[40];
        for (int k = 0; k < 40; ++k) {
            many[k] = static_cast<int8_t>(-128 + k);
        }
        w.begin("R");
        w.field("i", 0);
        w.field_list("in", many, 40);
        w.end();
        w.begin("END");
        w.field("status", 0);
        w.end();
        w.field("ignored", 1);  // outside begin()/end(): must print nothing
        w.end();
        return 0;
    }
    qmcu::records::RecordWriter<FileSink> w(FileSink{stdout});
    w.text("qmcu records test driver");
    w.begin("BEGIN");
    w.field("proto", qmcu::records::kProtocolVersion);
    w.field("model", "textbook-xor_v1.2");
    w.field("mode", "test");
    w.field("count", 4);
    w.field("outputs", 3);
    w.field("unit", "cycles");
    w.end();
    const int8_t in[4][2] = {{-128, 127}, {0, 0}, {-1, 1}, {127, -128}};
    const int8_t out[4][3] = {{0, -1, 1}, {-128, -128, -128}, {127, 127, 127}, {9, -10, 100}};
    const int32_t n[4] = {0, INT32_MAX, 1000000000, 9};
    for (int32_t i = 0; i < 4; ++i) {
        w.begin("R");
        w.field("i", i);
        w.field_list("in", in[i], 2);
        w.field_list("out", out[i], 3);
        w.field("n", n[i]);
        w.end();
    }
    w.text("int8 accuracy: 3/4");
    w.text("QM this is text, not a record");
    w.begin("SUM");
    w.field("correct", INT32_MAX);
    w.field("total", INT32_MAX);
    w.end();
    w.begin("LAYER");
    w.field("name", "fc1");
    w.field("n", INT32_MAX);
    w.end();
    w.begin("END");
    w.field("status", INT32_MIN);
    w.field("records", 4);
    w.field("stack", 2147483647);
    w.end();
    return 0;
}
"""

EXPECTED_STREAM = "".join([
    "qmcu records test driver\n",
    format_record(0, "BEGIN", [("proto", 1), ("model", "textbook-xor_v1.2"), ("mode", "test"), ("count", 4),
                               ("outputs", 3), ("unit", "cycles")]),
    format_record(1, "R", [("i", 0), ("in", [-128, 127]), ("out", [0, -1, 1]), ("n", 0)]),
    format_record(2, "R", [("i", 1), ("in", [0, 0]), ("out", [-128, -128, -128]), ("n", I32_MAX)]),
    format_record(3, "R", [("i", 2), ("in", [-1, 1]), ("out", [127, 127, 127]), ("n", 1000000000)]),
    format_record(4, "R", [("i", 3), ("in", [127, -128]), ("out", [9, -10, 100]), ("n", 9)]),
    "int8 accuracy: 3/4\n",
    "#QM this is text, not a record\n",
    format_record(5, "SUM", [("correct", I32_MAX), ("total", I32_MAX)]),
    format_record(6, "LAYER", [("name", "fc1"), ("n", I32_MAX)]),
    format_record(7, "END", [("status", I32_MIN), ("records", 4), ("stack", I32_MAX)]),
])


def int_cases() -> list[int]:
    edges = [0, 1, -1, I32_MIN, I32_MIN + 1, I32_MAX, I32_MAX - 1]
    for p in range(1, 10):
        edges += [10**p, 10**p - 1, -(10**p), -(10**p) + 1]
    rng = random.Random(1)
    return edges + [rng.randint(I32_MIN, I32_MAX) for _ in range(200)]


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("g++")
    tmp = tmp_path_factory.mktemp("records")
    # INT32_MIN has no literal in C++: write it as an expression.
    ints = ", ".join("INT32_MIN" if v == I32_MIN else str(v) for v in int_cases())
    src = tmp / "driver.cpp"
    src.write_text(DRIVER.replace("@INTS@", ints))
    exe = tmp / "driver"
    cmd = ["g++", *FREESTANDING, "-O2", f"-I{PLATFORM_DIR}", str(src), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    return exe


def run(exe: Path, *args: str) -> bytes:
    proc = subprocess.run([str(exe), *args], capture_output=True, check=True, timeout=30)
    assert proc.stderr == b""
    return proc.stdout


def test_cpp_writer_matches_format_record_and_parses(driver: Path) -> None:
    out = run(driver)
    assert out == EXPECTED_STREAM.encode()
    stream = parse_stream(out)
    assert stream.begin == Begin(proto=1, model="textbook-xor_v1.2", mode="test", count=4, outputs=3, unit="cycles")
    assert stream.results == [
        Result(0, (-128, 127), (0, -1, 1), 0),
        Result(1, (0, 0), (-128, -128, -128), I32_MAX),
        Result(2, (-1, 1), (127, 127, 127), 1000000000),
        Result(3, (127, -128), (9, -10, 100), 9),
    ]
    assert stream.summary == Summary(I32_MAX, I32_MAX)
    assert stream.layers == {"fc1": I32_MAX}
    assert stream.end == End(status=I32_MIN, records=4, stack=I32_MAX)
    assert stream.text_lines == ["qmcu records test driver", "int8 accuracy: 3/4", "#QM this is text, not a record"]


def test_cpp_decimal_conversion_and_crc(driver: Path) -> None:
    want = "".join(format_record(seq, "T", [("v", v)]) for seq, v in enumerate(int_cases()))
    assert run(driver, "ints").decode("ascii") == want


def test_cpp_overflow_is_reported_not_cut(driver: Path) -> None:
    out = run(driver, "overflow").decode("ascii")
    assert out == format_record(0, "OVERFLOW", []) + format_record(1, "END", [("status", 0)])
    assert error_of(out).startswith("record seq 0 (OVERFLOW) at line 1: the firmware's record did not fit")


def test_header_needs_no_standard_library(tmp_path: Path) -> None:
    """-nostdinc++ hides every C++ library header; only the compiler's stdint.h/stddef.h remain."""
    need("g++")
    src = tmp_path / "only.cpp"
    src.write_text(HEADER_ONLY)
    cmd = ["g++", *FREESTANDING, "-nostdinc++", f"-I{PLATFORM_DIR}", "-c", str(src), "-o", str(tmp_path / "only.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    for header, includes in (("records.hpp", ["<stddef.h>", "<stdint.h>", '"decimal.hpp"']),
                             ("decimal.hpp", ["<stddef.h>", "<stdint.h>"])):
        code = re.sub(r"//[^\n]*", "", (PLATFORM_DIR / header).read_text())
        assert re.findall(r"#include\s*(\S+)", code) == includes, header
        for banned in ("float", "double", "printf", "malloc", "new ", "<cstd"):
            assert banned not in code, (header, banned)
