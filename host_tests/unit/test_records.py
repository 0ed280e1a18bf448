"""The result protocol: the strict host parser and the incremental reader (the C++ writer: host_cpp/test_records_cpp.py)."""

from __future__ import annotations

import re
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmcu.run.records import (
    Begin,
    End,
    Layer,
    ProtocolError,
    RecordStream,
    Result,
    StreamReader,
    Summary,
    crc32,
    format_record,
    parse_stream,
)
from record_cases import I32_MAX, I32_MIN, error_of

# The reference stream; line numbers matter for the exact messages below.
VALID_LINES = [
    "qemu: boot banner",  # 1
    format_record(0, "BEGIN", [("proto", 1), ("model", "textbook"), ("mode", "xor"), ("count", 4), ("outputs", 1),
                               ("unit", "instructions")]),  # 2
    format_record(1, "R", [("i", 0), ("in", [-128, -128]), ("out", [-100]), ("n", 310)]),  # 3
    format_record(2, "R", [("i", 1), ("in", [-128, 127]), ("out", [98]), ("n", 311)]),  # 4
    format_record(3, "R", [("i", 2), ("in", [127, -128]), ("out", [97]), ("n", 311)]),  # 5
    format_record(4, "R", [("i", 3), ("in", [127, 127]), ("out", [-99]), ("n", 309)]),  # 6
    "int8 XOR accuracy: 4/4",  # 7
    format_record(5, "SUM", [("correct", 4), ("total", 4)]),  # 8
    format_record(6, "LAYER", [("name", "fc1"), ("n", 120)]),  # 9
    format_record(7, "END", [("status", 0), ("records", 4), ("stack", 412)]),  # 10
]
VALID_LINES = [ln if ln.endswith("\n") else ln + "\n" for ln in VALID_LINES]
VALID = "".join(VALID_LINES)


def joined(lines: list[str]) -> str:
    return "".join(lines)


def decoded(stream: RecordStream) -> tuple[object, ...]:
    """Everything the judge reads (free text excluded)."""
    return stream.begin, stream.results, stream.summary, stream.layers, stream.end


def minimal(count: int = 1, outputs: int = 1) -> list[str]:
    lines = [format_record(0, "BEGIN", [("proto", 1), ("model", "m"), ("mode", "test"), ("count", count),
                                        ("outputs", outputs), ("unit", "none")])]
    lines += [format_record(1 + i, "R", [("i", i), ("in", [i]), ("out", [0] * outputs), ("n", 0)]) for i in range(count)]
    lines.append(format_record(1 + count, "END", [("status", 0), ("records", count), ("stack", 0)]))
    return lines


# ---------------------------------------------------------------------------------------------- format


def test_crc32_is_zlib_crc32() -> None:
    assert crc32(b"123456789") == 0xCBF43926
    assert crc32("QM 0 R") == zlib.crc32(b"QM 0 R")


def test_format_record_layout() -> None:
    line = format_record(12, "R", [("i", -5), ("in", [-128, 0, 127]), ("out", [3]), ("n", 0), ("tag", "a.b-c_1")])
    body = "QM 12 R i=-5 in=-128,0,127 out=3 n=0 tag=a.b-c_1"
    assert line == f"{body} *{zlib.crc32(body.encode()):08x}\n"
    assert re.fullmatch(r"QM 12 R .* \*[0-9a-f]{8}\n", line)


# ---------------------------------------------------------------------------------------------- round trips


def test_round_trip_every_value() -> None:
    stream = parse_stream(VALID)
    assert stream.begin == Begin(proto=1, model="textbook", mode="xor", count=4, outputs=1, unit="instructions")
    assert stream.results == [
        Result(index=0, inputs=(-128, -128), outputs=(-100,), count=310),
        Result(index=1, inputs=(-128, 127), outputs=(98,), count=311),
        Result(index=2, inputs=(127, -128), outputs=(97,), count=311),
        Result(index=3, inputs=(127, 127), outputs=(-99,), count=309),
    ]
    assert stream.summary == Summary(correct=4, total=4)
    assert stream.layers == {"fc1": 120}
    assert stream.end == End(status=0, records=4, stack=412)
    assert stream.text_lines == ["qemu: boot banner", "int8 XOR accuracy: 4/4"]


def test_bytes_and_crlf_parse_the_same() -> None:
    want = decoded(parse_stream(VALID))
    assert decoded(parse_stream(VALID.encode())) == want
    crlf = parse_stream(VALID.replace("\n", "\r\n").encode())
    assert decoded(crlf) == want
    assert crlf.text_lines == ["qemu: boot banner", "int8 XOR accuracy: 4/4"]


def test_empty_stream_with_no_results_is_complete() -> None:
    stream = parse_stream(joined(minimal(count=0)))
    assert stream.results == [] and stream.summary is None and stream.layers == {}


def test_noise_lines_interleaved_still_pass() -> None:
    noisy: list[str] = ["\x00\xff garbage from reset\n"]
    for line in VALID_LINES:
        noisy += [line, "semihosting: noise QM\n", "\n", "  QM 3 R indented is text\n"]
    noisy.append("trailing text without newline")
    stream = parse_stream(joined(noisy))
    assert decoded(stream) == decoded(parse_stream(VALID))
    assert stream.text_lines[0] == "\x00\xff garbage from reset"
    assert stream.text_lines[-1] == "trailing text without newline"


# ---------------------------------------------------------------------------------------------- exact errors


def test_missing_record() -> None:
    lines = VALID_LINES[:4] + VALID_LINES[5:]  # drop seq 3 (line 5)
    assert error_of(joined(lines)) == "missing record: seq 3 is absent (seq 2 (R) at line 4 is followed by seq 4 (R) at line 5)"


def test_duplicated_record() -> None:
    lines = VALID_LINES[:4] + [VALID_LINES[3]] + VALID_LINES[4:]
    assert error_of(joined(lines)) == "duplicated record: seq 2 at line 5 repeats seq 2 at line 4"


def test_swapped_records() -> None:
    lines = list(VALID_LINES)
    lines[3], lines[4] = lines[4], lines[3]
    assert error_of(joined(lines)) == "records out of order: seq 3 (R) at line 4 comes before seq 2 (R) at line 5"


def test_crc_bit_flip_in_content() -> None:
    line = VALID_LINES[3]
    body, crc = line[:-1].rsplit(" *", 1)
    flipped = body.replace("n=311", "n=301")  # '1' -> '0' is one bit
    want = f"{zlib.crc32(flipped.encode()):08x}"
    lines = VALID_LINES[:3] + [f"{flipped} *{crc}\n"] + VALID_LINES[4:]
    assert error_of(joined(lines)) == f"corrupt record at line 4 (seq 2): crc mismatch: line says {crc}, content gives {want}"


def test_crc_bit_flip_in_crc() -> None:
    line = VALID_LINES[5]
    body, crc = line[:-1].rsplit(" *", 1)
    bad = f"{int(crc, 16) ^ 0x10:08x}"
    lines = VALID_LINES[:5] + [f"{body} *{bad}\n"] + VALID_LINES[6:]
    assert error_of(joined(lines)) == f"corrupt record at line 6 (seq 4): crc mismatch: line says {bad}, content gives {crc}"


def test_missing_end() -> None:
    assert error_of(joined(VALID_LINES[:-1])) == "stream ended after seq 6: no END record (truncated output?)"


def test_missing_begin() -> None:
    lines = VALID_LINES[:1] + VALID_LINES[2:]
    assert error_of(joined(lines)) == "no BEGIN record: the first record is seq 1 (R) at line 2 (output started mid-stream?)"


def test_no_records_at_all() -> None:
    assert error_of("hello\nworld\n") == ("no BEGIN record: none of the 2 lines of output starts with 'QM' "
                                          "(wrong console, or the firmware never started?)")
    assert error_of(b"") == ("no BEGIN record: none of the 0 lines of output starts with 'QM' "
                             "(wrong console, or the firmware never started?)")


def test_cut_off_last_line() -> None:
    text = VALID[: VALID.index("QM 7 END") + 10]
    assert error_of(text) == ("stream ended inside the record at line 10 (after seq 6): the line has no newline "
                              "(truncated output?)")
    # Even a record that is whole except for its newline is not trusted.
    assert error_of(VALID[:-1]).startswith("stream ended inside the record at line 10 (after seq 6)")


def test_truncation_at_every_byte_offset_never_passes() -> None:
    ends = {len(joined(VALID_LINES[:k])): k for k in range(len(VALID_LINES))}
    for cut in range(len(VALID)):
        message = error_of(VALID[:cut])
        if cut in ends and ends[cut] >= 2:  # cut on a line boundary, after BEGIN
            last_seq = sum(ln.startswith("QM ") for ln in VALID_LINES[: ends[cut]]) - 1
            assert message == f"stream ended after seq {last_seq}: no END record (truncated output?)"
        else:
            assert re.fullmatch(r"no BEGIN record: .*|stream ended (after seq \d+: no END record|inside the record at "
                                r"line \d+ \((after seq \d+|before any record)\): the line has no newline) "
                                r"\(truncated output\?\)", message), (cut, message)


def test_record_after_end() -> None:
    lines = [*minimal(1), format_record(3, "SUM", [("correct", 0), ("total", 0)])]
    assert error_of(joined(lines)) == "record seq 3 (SUM) at line 4 comes after END (seq 2)"


def test_end_record_count_mismatch() -> None:
    lines = minimal(2)
    lines[-1] = format_record(3, "END", [("status", 0), ("records", 3), ("stack", 0)])
    assert error_of(joined(lines)) == "record seq 3 (END) at line 4 says records=3 but 2 R records arrived"


def test_begin_count_mismatch() -> None:
    lines = minimal(3)
    del lines[3]  # the last R, with END renumbered as if it never existed
    lines[-1] = format_record(3, "END", [("status", 0), ("records", 2), ("stack", 0)])
    assert error_of(joined(lines)) == ("record seq 3 (END) at line 4: BEGIN count=3 but 2 R records arrived "
                                       "(results 2..2 missing)")


def test_result_index_gap_and_duplicate() -> None:
    lines = minimal(3)
    lines[2] = format_record(2, "R", [("i", 2), ("in", [1]), ("out", [0]), ("n", 0)])
    assert error_of(joined(lines)) == "result index gap: record seq 2 (R) at line 3 has i=2, expected i=1"
    lines[2] = format_record(2, "R", [("i", 0), ("in", [1]), ("out", [0]), ("n", 0)])
    assert error_of(joined(lines)) == "duplicated result index: record seq 2 (R) at line 3 has i=0, expected i=1"


def test_result_index_beyond_count() -> None:
    lines = minimal(1)
    lines.insert(2, format_record(2, "R", [("i", 1), ("in", [1]), ("out", [0]), ("n", 0)]))
    lines[-1] = format_record(3, "END", [("status", 0), ("records", 2), ("stack", 0)])
    assert error_of(joined(lines)) == "record seq 2 (R) at line 3: i=1 is beyond BEGIN count=1"


def test_summary_correct_above_total() -> None:
    lines = minimal(1)
    lines.insert(2, format_record(2, "SUM", [("correct", 5), ("total", 4)]))
    lines[-1] = format_record(3, "END", [("status", 0), ("records", 1), ("stack", 0)])
    assert error_of(joined(lines)) == "record seq 2 (SUM) at line 3: correct=5 exceeds total=4"
    # The boundary: correct == total is a perfect score, not an error.
    lines[2] = format_record(2, "SUM", [("correct", 4), ("total", 4)])
    assert parse_stream(joined(lines)).summary == Summary(4, 4)
    lines[2] = format_record(2, "SUM", [("correct", 1), ("total", 0)])
    assert error_of(joined(lines)) == "record seq 2 (SUM) at line 3: correct=1 exceeds total=0"


def test_int8_out_of_range() -> None:
    lines = minimal(1)
    lines[1] = format_record(1, "R", [("i", 0), ("in", [0, 128]), ("out", [0]), ("n", 0)])
    assert error_of(joined(lines)) == "record seq 1 (R) at line 2: in= value 128 (item 1) is outside int8 [-128, 127]"


def test_int32_out_of_range() -> None:
    lines = minimal(1)
    lines[-1] = format_record(2, "END", [("status", I32_MIN - 1), ("records", 1), ("stack", 0)])
    assert error_of(joined(lines)) == "record seq 2 (END) at line 3: status=-2147483649 is outside int32"


def test_wrong_outputs_length() -> None:
    lines = minimal(1, outputs=2)
    lines[1] = format_record(1, "R", [("i", 0), ("in", [0]), ("out", [1, 2, 3]), ("n", 0)])
    assert error_of(joined(lines)) == "record seq 1 (R) at line 2: out= has 3 values, BEGIN says outputs=2"


def test_inputs_length_changes() -> None:
    lines = minimal(2)
    lines[2] = format_record(2, "R", [("i", 1), ("in", [1, 2]), ("out", [0]), ("n", 0)])
    assert error_of(joined(lines)) == "record seq 2 (R) at line 3: in= has 2 values, the first result had 1"


def test_unknown_type() -> None:
    lines = minimal(1)
    lines.insert(2, format_record(2, "PING", [("x", 1)]))
    assert error_of(joined(lines)) == ("record seq 2 (PING) at line 3: unknown record type 'PING' "
                                       "(known: BEGIN, R, SUM, LAYER, END)")


def test_firmware_buffer_overflow_is_named() -> None:
    lines = minimal(1)
    lines[1] = format_record(1, "OVERFLOW", [])
    assert error_of(joined(lines)) == ("record seq 1 (OVERFLOW) at line 2: the firmware's record did not fit its line "
                                       "buffer; shorten the record or enlarge RecordWriter's buffer")


@pytest.mark.parametrize(("fields", "message"), [
    ([("i", 0), ("in", [0]), ("out", [0])], "missing key n="),
    ([("i", 0), ("in", [0]), ("out", [0]), ("n", 0), ("n", 1)], "key n= given twice"),
    ([("i", 0), ("in", [0]), ("out", [0]), ("n", 0), ("extra", 1)], "unexpected key extra="),
    ([("i", "x1"), ("in", [0]), ("out", [0]), ("n", 0)], "i=x1 is not a decimal integer"),
    ([("i", "01"), ("in", [0]), ("out", [0]), ("n", 0)], "i=01 is not a decimal integer"),
    ([("i", 0), ("in", "1,,2"), ("out", [0]), ("n", 0)], "in=1,,2 is not a comma-separated list of integers"),
    ([("i", 0), ("in", [0]), ("out", []), ("n", 0)], "'out=' is not key=value"),
    ([("i", 0), ("in", [0]), ("out", [0]), ("n", -1)], "n=-1 must be >= 0"),
    ([("i", 0), ("in", [0]), ("out", [0]), ("N", 0)], "'N=0' is not key=value"),
])
def test_bad_key_value_syntax(fields: list[tuple[str, object]], message: str) -> None:
    lines = minimal(1)
    lines[1] = format_record(1, "R", fields)  # type: ignore[arg-type]
    assert error_of(joined(lines)) == f"record seq 1 (R) at line 2: {message}"


def test_bad_begin_values() -> None:
    lines = minimal(0)
    lines[0] = format_record(0, "BEGIN", [("proto", 2), ("model", "m"), ("mode", "test"), ("count", 0),
                                          ("outputs", 1), ("unit", "none")])
    assert error_of(joined(lines)) == ("record seq 0 (BEGIN) at line 1: protocol version proto=2, this host reads "
                                       "proto=1 (firmware and host tools from different versions?)")
    lines[0] = format_record(0, "BEGIN", [("proto", 1), ("model", "m"), ("mode", "fast"), ("count", 0),
                                          ("outputs", 1), ("unit", "none")])
    assert error_of(joined(lines)) == "record seq 0 (BEGIN) at line 1: mode=fast is not one of test|xor|exhaustive"
    lines[0] = format_record(0, "BEGIN", [("proto", 1), ("model", "m/x"), ("mode", "test"), ("count", 0),
                                          ("outputs", 1), ("unit", "none")])
    assert error_of(joined(lines)) == "record seq 0 (BEGIN) at line 1: model=m/x is not a token [A-Za-z0-9_.-]+"


def test_structure_errors() -> None:
    lines = minimal(1)
    sum_then_r = [lines[0], format_record(1, "SUM", [("correct", 1), ("total", 1)]),
                  format_record(2, "R", [("i", 0), ("in", [0]), ("out", [0]), ("n", 0)]),
                  format_record(3, "END", [("status", 0), ("records", 1), ("stack", 0)])]
    assert error_of(joined(sum_then_r)) == ("record seq 2 (R) at line 3 comes after seq 1 (SUM) at line 2: "
                                            "results must come first")
    two_sums = [lines[0], lines[1], format_record(2, "SUM", [("correct", 1), ("total", 1)]),
                format_record(3, "SUM", [("correct", 1), ("total", 1)]),
                format_record(4, "END", [("status", 0), ("records", 1), ("stack", 0)])]
    assert error_of(joined(two_sums)) == "record seq 3 (SUM) at line 4: a second SUM record"
    restart = [lines[0], lines[1], format_record(2, "BEGIN", [("proto", 1), ("model", "m"), ("mode", "test"),
                                                              ("count", 1), ("outputs", 1), ("unit", "none")])]
    assert error_of(joined(restart)) == "record seq 2 (BEGIN) at line 3: a second BEGIN (firmware restarted?)"
    not_begin = [format_record(0, "R", [("i", 0), ("in", [0]), ("out", [0]), ("n", 0)])]
    assert error_of(joined(not_begin)) == "no BEGIN record: the first record, seq 0 (R) at line 1, should be BEGIN"


def test_corrupt_line_shapes() -> None:
    assert error_of("QM 0 BEGIN proto=1\n") == "corrupt record at line 1 (seq 0): no ' *<crc>' at the end of the line"
    assert error_of("QM x BEGIN *0000000G\n") == ("corrupt record at line 1 (seq unreadable): crc field '0000000G' is "
                                                  "not 8 lowercase hex digits")
    body = "QM 0 BEGIN\tproto=1"
    assert error_of(f"{body} *{crc32(body):08x}\n") == ("corrupt record at line 1 (seq 0): byte 0x09 at column 11 is "
                                                        "not printable ASCII")
    body = "QM 0  BEGIN"
    assert error_of(f"{body} *{crc32(body):08x}\n").startswith("bad record at line 1 (seq 0): record type ''")


def test_every_single_bit_flip_is_caught_or_harmless() -> None:
    """A flipped bit inside a record line (its newline included) always fails; one in free text never matters."""
    data = VALID.encode()
    want = decoded(parse_stream(data))
    record_bytes = set()
    pos = 0
    for line in VALID_LINES:
        if line.startswith("QM "):
            record_bytes.update(range(pos, pos + len(line)))
        pos += len(line)
    for i in range(len(data)):
        for bit in range(8):
            mutated = bytearray(data)
            mutated[i] ^= 1 << bit
            try:
                got = decoded(parse_stream(bytes(mutated)))
            except ProtocolError:
                continue
            assert i not in record_bytes, f"bit {bit} of byte {i} flipped and the stream still parsed"
            assert got == want


# ---------------------------------------------------------------------------------------------- StreamReader


def test_stream_reader_byte_by_byte() -> None:
    reader = StreamReader()
    got = []
    data = VALID.encode()
    for i in range(len(data)):
        got += reader.feed(data[i : i + 1])
        assert reader.done == (i == len(data) - 1)
    stream = parse_stream(VALID)
    assert got == [stream.begin, *stream.results, stream.summary, Layer("fc1", 120), stream.end]
    finished = reader.finish()
    assert decoded(finished) == decoded(stream)
    assert finished.text_lines == stream.text_lines


def test_stream_reader_errors() -> None:
    lines = list(VALID_LINES)
    lines[3], lines[4] = lines[4], lines[3]
    reader = StreamReader()
    with pytest.raises(ProtocolError, match=r"^missing record: expected seq 2 at line 4, got seq 3 \(seq 2 is lost or "
                                            r"out of order\)$"):
        reader.feed(joined(lines).encode())
    reader = StreamReader()
    reader.feed(joined(VALID_LINES[:4] + [VALID_LINES[3]]).encode()[:-1])
    with pytest.raises(ProtocolError, match="^duplicated record: seq 2 at line 5 repeats seq 2 at line 4$"):
        reader.feed(b"\n")
    reader = StreamReader()
    reader.feed(VALID.encode()[:-5])
    assert not reader.done
    with pytest.raises(ProtocolError, match=r"^stream ended inside the record at line 10 \(after seq 6\)"):
        reader.finish()
    reader = StreamReader()
    reader.feed(joined(VALID_LINES[:-1]).encode())
    with pytest.raises(ProtocolError, match=r"^stream ended after seq 6: no END record \(truncated output\?\)$"):
        reader.finish()


# ---------------------------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_pass(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_stream(data)
    reader = StreamReader()
    with pytest.raises(ProtocolError):
        reader.feed(data)
        reader.finish()


# Fragments that look like records, so random streams reach the deeper checks and not only the CRC.
FRAGMENTS = ["QM ", "0 ", "1 ", "BEGIN ", "R ", "END ", "i=0 ", "in=1,2 ", "*", " *", "00000000", "\n", "\r\n",
             "=", ",", "-", "\x00", "\xff"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=40))
def test_random_record_like_text_never_passes(parts: list[str]) -> None:
    with pytest.raises(ProtocolError):
        parse_stream("".join(parts))


NOISE_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=255, exclude_characters="\n"), max_size=30)


@st.composite
def valid_streams(draw: st.DrawFn) -> tuple[bytes, tuple[object, ...]]:
    """A random complete stream with free text between records, and what it must decode to."""
    n_in, n_out, count = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(0, 5))
    int8 = st.integers(-128, 127)
    begin = Begin(1, draw(st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)), draw(st.sampled_from(["xor", "test"])),
                  count, n_out, draw(st.sampled_from(["instructions", "cycles", "none"])))
    results = [Result(i, tuple(draw(st.lists(int8, min_size=n_in, max_size=n_in))),
                      tuple(draw(st.lists(int8, min_size=n_out, max_size=n_out))), draw(st.integers(0, I32_MAX)))
               for i in range(count)]
    total = draw(st.integers(0, count))
    summary = draw(st.none() | st.just(Summary(draw(st.integers(0, total)), total)))
    layers = {f"l{k}": draw(st.integers(0, I32_MAX)) for k in range(draw(st.integers(0, 2)))}
    end = End(draw(st.integers(I32_MIN, I32_MAX)), count, draw(st.integers(0, 65536)))

    records = [("BEGIN", [("proto", 1), ("model", begin.model), ("mode", begin.mode), ("count", count),
                          ("outputs", n_out), ("unit", begin.unit)])]
    records += [("R", [("i", r.index), ("in", list(r.inputs)), ("out", list(r.outputs)), ("n", r.count)])
                for r in results]
    if summary is not None:
        records.append(("SUM", [("correct", summary.correct), ("total", summary.total)]))
    records += [("LAYER", [("name", name), ("n", n)]) for name, n in layers.items()]
    records.append(("END", [("status", end.status), ("records", count), ("stack", end.stack)]))
    lines: list[str] = []
    for seq, (rtype, fields) in enumerate(records):
        lines += [t + "\n" for t in draw(st.lists(NOISE_TEXT.filter(lambda t: not t.startswith("QM ")), max_size=2))]
        lines.append(format_record(seq, rtype, fields))  # type: ignore[arg-type]
    return "".join(lines).encode("latin-1"), (begin, results, summary, layers, end)


def split_lines(data: bytes) -> list[bytes]:
    *lines, tail = data.split(b"\n")
    return [ln + b"\n" for ln in lines] + ([tail] if tail else [])


MUTATIONS = st.tuples(st.sampled_from(["flip", "delete", "duplicate", "swap", "truncate", "noise", "insert"]),
                      st.integers(0, 10**6), st.integers(0, 10**6), st.binary(max_size=12) | st.sampled_from(
                          [b"QM ", b"\r", b"\n", b"QM 1 R i=0 *00000000\n", b"hello\n"]))


def mutate(data: bytes, op: str, a: int, b: int, blob: bytes) -> bytes:
    lines = split_lines(data)
    if op == "flip" and data:
        out = bytearray(data)
        out[a % len(data)] ^= 1 << (b % 8)
        return bytes(out)
    if op == "truncate":
        return data[: a % (len(data) + 1)]
    if op == "insert":
        at = a % (len(data) + 1)
        return data[:at] + blob + data[at:]
    if op == "noise":
        at = a % (len(lines) + 1)
        return b"".join(lines[:at] + [blob.replace(b"\n", b"") + b"\n"] + lines[at:])
    if not lines:
        return data
    i, j = a % len(lines), b % len(lines)
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


def outcome(data: bytes, chunk: int) -> tuple[object, ...] | None:
    """Decoded records, or None for ProtocolError; parse_stream and StreamReader must agree."""
    try:
        whole: tuple[object, ...] | None = decoded(parse_stream(data))
    except ProtocolError:
        whole = None
    reader = StreamReader()
    try:
        for k in range(0, len(data), chunk):
            reader.feed(data[k : k + chunk])
        incremental: tuple[object, ...] | None = decoded(reader.finish())
    except ProtocolError:
        incremental = None
    assert incremental == whole
    return whole


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_streams(), st.lists(MUTATIONS, min_size=1, max_size=4), st.integers(1, 64))
def test_mutations_fail_or_change_nothing(stream: tuple[bytes, tuple[object, ...]],
                                          mutations: list[tuple[str, int, int, bytes]], chunk: int) -> None:
    data, want = stream
    assert outcome(data, chunk) == want
    for op, a, b, blob in mutations:
        data = mutate(data, op, a, b, blob)
    got = outcome(data, chunk)
    assert got is None or got == want
