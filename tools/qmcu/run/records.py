"""The result protocol, host side: one parser for every console (QEMU semihosting, UART, a board's serial).

Every record is one ASCII line, ``QM <seq> <TYPE> <key>=<value> ... *<crc>``, where crc is the CRC-32
(zlib) of the bytes from the leading 'Q' up to but excluding the " *" separator, as 8 lowercase hex
digits. Any other line is free text and is kept. The firmware side is firmware/platform/records.hpp.

The parser is strict on purpose: a stream that is not complete and intact raises ProtocolError, so a
damaged or truncated run can never be judged as if it were whole. Two allowances, both before the
stream's first record only: non-printable bytes in front of the first ``QM `` (a glitch on a real
board's TX line during reset: 0xFF or 0x00) are skipped, and a StreamReader in restart mode (a board
whose port was open while its previous image still printed) starts over at a valid ``QM 0 BEGIN``.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from qmcu.codegen.vectors import MODES
from qmcu.errors import QmcuError
from qmcu.paths import FIRMWARE_DIR

logger = logging.getLogger(__name__)

# The firmware writes the records, so its header holds the protocol version; the host reads it from there.
RECORDS_HEADER = FIRMWARE_DIR / "platform" / "records.hpp"
_VERSION_RE = re.compile(r"^constexpr int32_t kProtocolVersion = ([1-9][0-9]*);$", re.M)


def protocol_version(header: Path = RECORDS_HEADER) -> int:
    """The record protocol's version: kProtocolVersion in the firmware's records.hpp."""
    try:
        text = header.read_text()
    except OSError as err:
        raise QmcuError(f"cannot read the record protocol's version from {header}: {err.strerror or err}",
                        "reinstall qmcu: its firmware files are incomplete") from err
    match = _VERSION_RE.search(text)
    if match is None:
        raise QmcuError(f"{header} has no line `constexpr int32_t kProtocolVersion = <n>;`",
                        "restore that line: the host reads the protocol version from it")
    return int(match.group(1))


PROTOCOL_VERSION = protocol_version()
PREFIX = "QM "
# The line a new stream starts with (the BEGIN record always has seq 0).
BEGIN_PREFIX = f"{PREFIX}0 BEGIN "
# The firmware's fault line (firmware/platform/cortexm/startup.cpp): "FAULT <what> [pc=.. lr=..]", and the
# statuses it exits with (firmware/platform/platform.hpp kStatusFault, kStatusStackOverflow).
FAULT_PREFIX = "FAULT "
STATUS_FAULT = 3
STATUS_STACK_OVERFLOW = 4
STATUS_ARENA_OVERRUN = 2  # the application's: a graph model's arena guard changed (app_records.hpp)
UNITS = ("instructions", "cycles", "none")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

_INT = r"(?:0|-?[1-9][0-9]*)"
_INT_RE = re.compile(_INT)
_LIST_RE = re.compile(rf"{_INT}(?:,{_INT})*")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_.-]+")
_KEY_RE = re.compile(r"[a-z][a-z0-9_]*")
_TYPE_RE = re.compile(r"[A-Z]+")
_SEQ_RE = re.compile(r"0|[1-9][0-9]*")
_CRC_RE = re.compile(r"[0-9a-f]{8}")
_NON_PRINTABLE = "".join(chr(c) for c in range(256) if not 0x20 <= c <= 0x7E)  # as latin-1 decodes bytes

Kind = Literal["int", "int8s", "token"]
# Keys of every record type and how their values read; a record must carry exactly these keys.
# LAYER (per-layer counter deltas for one inference) is an optional record the XOR app prints.
_SCHEMA: dict[str, dict[str, Kind]] = {
    "BEGIN": {"proto": "int", "model": "token", "mode": "token", "count": "int", "outputs": "int", "unit": "token"},
    "R": {"i": "int", "in": "int8s", "out": "int8s", "n": "int"},
    "SUM": {"correct": "int", "total": "int"},
    "LAYER": {"name": "token", "n": "int"},
    "END": {"status": "int", "records": "int", "stack": "int"},
}


class ProtocolError(ValueError):
    """The result stream is incomplete or damaged; str(err) is one line naming the record and the problem."""


@dataclass(frozen=True)
class Begin:
    proto: int
    model: str
    mode: str
    count: int
    outputs: int
    unit: str


@dataclass(frozen=True)
class Result:
    index: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    count: int


@dataclass(frozen=True)
class Summary:
    correct: int
    total: int


@dataclass(frozen=True)
class Layer:
    name: str
    count: int


@dataclass(frozen=True)
class End:
    status: int
    records: int
    stack: int


Record = Begin | Result | Summary | Layer | End


@dataclass
class RecordStream:
    begin: Begin
    results: list[Result]
    summary: Summary | None
    end: End
    text_lines: list[str]
    layers: dict[str, int] = field(default_factory=dict)


def crc32(data: bytes | str) -> int:
    """CRC-32 as the firmware computes it (IEEE 802.3, the zlib one); str is taken as latin-1 bytes."""
    return zlib.crc32(data.encode("latin-1") if isinstance(data, str) else data) & 0xFFFFFFFF


def skip_junk(line: str) -> str:
    """line without the non-printable bytes in front of a record (a TX glitch during reset), else line unchanged."""
    stripped = line.lstrip(_NON_PRINTABLE)
    return stripped if stripped != line and stripped.startswith(PREFIX) else line


def fault_line(text_lines: Iterable[str]) -> str | None:
    """The firmware's first FAULT line among text lines, if any."""
    return next((ln for ln in text_lines if ln.startswith(FAULT_PREFIX)), None)


def format_record(seq: int, type: str, fields: Sequence[tuple[str, str | int | Sequence[int]]]) -> str:
    """One record line, newline included, byte for byte what the firmware's RecordWriter prints."""
    parts = [f"{PREFIX}{seq}", type]
    for key, value in fields:
        if isinstance(value, int):
            text = str(value)
        elif isinstance(value, str):
            text = value
        else:
            text = ",".join(str(v) for v in value)
        parts.append(f"{key}={text}")
    body = " ".join(parts)
    return f"{body} *{crc32(body):08x}\n"


# Allowances for what a run prints besides its R records: a free-text line per labelled input (the
# XOR app prints one), and BEGIN, SUM, LAYER, END and the accuracy line together.
TEXT_BYTES_PER_LABELLED = 100
FIXED_BYTES = 2048


def stream_bytes(inputs: Iterable[Sequence[int]], outputs: int, labelled: int) -> int:
    """An upper bound of the bytes a run over these inputs prints (each output and count at its longest)."""
    tail = len(f" out={','.join(['-128'] * outputs)} n={INT32_MIN} *00000000\n")
    total = FIXED_BYTES + TEXT_BYTES_PER_LABELLED * labelled
    for i, values in enumerate(inputs):
        total += len(f"{PREFIX}{i + 1} R i={i} in={','.join(str(int(v)) for v in values)}") + tail
    return total


@dataclass(frozen=True)
class _Line:
    """One record line that passed its CRC and syntax checks."""

    seq: int
    type: str
    record: Record
    lineno: int

    @property
    def where(self) -> str:
        return f"seq {self.seq} ({self.type}) at line {self.lineno}"


def _parse_line(line: str, lineno: int) -> _Line:
    """Parse one line that starts with PREFIX (already without its line ending)."""
    body, sep, crc_text = line.rpartition(" *")
    seq_text = line[len(PREFIX):].split(" ", 1)[0]
    seq_hint = f"seq {seq_text}" if _SEQ_RE.fullmatch(seq_text) else "seq unreadable"
    if not sep:
        raise ProtocolError(f"corrupt record at line {lineno} ({seq_hint}): no ' *<crc>' at the end of the line")
    if not _CRC_RE.fullmatch(crc_text):
        raise ProtocolError(f"corrupt record at line {lineno} ({seq_hint}): crc field {crc_text[:16]!r} "
                            "is not 8 lowercase hex digits")
    for col, ch in enumerate(body, start=1):
        if not " " <= ch <= "~":
            raise ProtocolError(f"corrupt record at line {lineno} ({seq_hint}): byte 0x{ord(ch):02x} at column "
                                f"{col} is not printable ASCII")
    actual = crc32(body)
    if actual != int(crc_text, 16):
        raise ProtocolError(f"corrupt record at line {lineno} ({seq_hint}): crc mismatch: line says {crc_text}, "
                            f"content gives {actual:08x}")

    # The CRC matched, so what follows is what the firmware printed: errors here are firmware bugs.
    words = body[len(PREFIX):].split(" ")
    if len(words) < 2 or not _SEQ_RE.fullmatch(words[0]):
        raise ProtocolError(f"bad record at line {lineno}: expected 'QM <seq> <TYPE>', got {body[:40]!r}")
    seq, rtype = int(words[0]), words[1]
    where = f"record seq {seq} ({rtype}) at line {lineno}"
    if not _TYPE_RE.fullmatch(rtype):
        raise ProtocolError(f"bad record at line {lineno} (seq {seq}): record type {rtype[:20]!r} is not upper-case "
                            "letters")
    if rtype == "OVERFLOW":
        raise ProtocolError(f"{where}: the firmware's record did not fit its line buffer; shorten the record or "
                            "enlarge RecordWriter's buffer")
    schema = _SCHEMA.get(rtype)
    if schema is None:
        raise ProtocolError(f"{where}: unknown record type {rtype!r} (known: {', '.join(_SCHEMA)})")

    raw: dict[str, str] = {}
    for word in words[2:]:
        key, eq, value = word.partition("=")
        if not eq or not _KEY_RE.fullmatch(key) or not value:
            raise ProtocolError(f"{where}: {word[:40]!r} is not key=value")
        if key not in schema:
            raise ProtocolError(f"{where}: unexpected key {key}=")
        if key in raw:
            raise ProtocolError(f"{where}: key {key}= given twice")
        raw[key] = value
    missing = [k for k in schema if k not in raw]
    if missing:
        raise ProtocolError(f"{where}: missing key {missing[0]}=")

    values: dict[str, int | str | tuple[int, ...]] = {}
    for key, kind in schema.items():
        values[key] = _value(raw[key], kind, f"{where}: {key}=")
    return _Line(seq=seq, type=rtype, record=_build(rtype, values, where), lineno=lineno)


def _value(text: str, kind: Kind, where: str) -> int | str | tuple[int, ...]:
    if kind == "token":
        if not _TOKEN_RE.fullmatch(text):
            raise ProtocolError(f"{where}{text[:40]} is not a token [A-Za-z0-9_.-]+")
        return text
    if kind == "int":
        if not _INT_RE.fullmatch(text):
            raise ProtocolError(f"{where}{text[:40]} is not a decimal integer")
        v = int(text)
        if not INT32_MIN <= v <= INT32_MAX:
            raise ProtocolError(f"{where}{v} is outside int32")
        return v
    if not _LIST_RE.fullmatch(text):
        raise ProtocolError(f"{where}{text[:40]} is not a comma-separated list of integers")
    items = tuple(int(t) for t in text.split(","))
    for pos, v in enumerate(items):
        if not -128 <= v <= 127:
            raise ProtocolError(f"{where} value {v} (item {pos}) is outside int8 [-128, 127]")
    return items


def _build(rtype: str, v: dict[str, int | str | tuple[int, ...]], where: str) -> Record:
    """The typed record, with the checks that need only this record."""

    def num(key: str, low: int = INT32_MIN) -> int:
        value = v[key]
        assert isinstance(value, int)
        if value < low:
            raise ProtocolError(f"{where}: {key}={value} must be >= {low}")
        return value

    def text(key: str, allowed: Iterable[str] | None = None) -> str:
        value = v[key]
        assert isinstance(value, str)
        if allowed is not None and value not in allowed:
            raise ProtocolError(f"{where}: {key}={value} is not one of {'|'.join(allowed)}")
        return value

    def int8s(key: str) -> tuple[int, ...]:
        value = v[key]
        assert isinstance(value, tuple)
        return value

    if rtype == "BEGIN":
        proto = num("proto")
        if proto != PROTOCOL_VERSION:
            raise ProtocolError(f"{where}: protocol version proto={proto}, this host reads proto={PROTOCOL_VERSION} "
                                "(firmware and host tools from different versions?)")
        return Begin(proto=proto, model=text("model"), mode=text("mode", MODES), count=num("count", 0),
                     outputs=num("outputs", 1), unit=text("unit", UNITS))
    if rtype == "R":
        return Result(index=num("i", 0), inputs=int8s("in"), outputs=int8s("out"), count=num("n", 0))
    if rtype == "SUM":
        summary = Summary(correct=num("correct", 0), total=num("total", 0))
        if summary.correct > summary.total:
            raise ProtocolError(f"{where}: correct={summary.correct} exceeds total={summary.total}")
        return summary
    if rtype == "LAYER":
        return Layer(name=text("name"), count=num("n", 0))
    return End(status=num("status"), records=num("records", 0), stack=num("stack", 0))


class _Checker:
    """The rules between records, applied one record at a time (shared by parse_stream and StreamReader)."""

    def __init__(self) -> None:
        self.lines: list[_Line] = []
        self.begin: Begin | None = None
        self.results: list[Result] = []
        self.summary: Summary | None = None
        self.layers: dict[str, int] = {}
        self.end: End | None = None
        self._after_results: _Line | None = None  # the first SUM/LAYER: no R may follow it
        self._seen_at: dict[int, int] = {}  # seq -> line, to name duplicates

    def add(self, line: _Line) -> Record:
        expected = len(self.lines)
        if line.seq != expected:
            if line.seq in self._seen_at:
                raise ProtocolError(f"duplicated record: seq {line.seq} at line {line.lineno} repeats seq "
                                    f"{line.seq} at line {self._seen_at[line.seq]}")
            if expected == 0:
                raise ProtocolError(_no_begin_message(line))
            raise ProtocolError(f"missing record: expected seq {expected} at line {line.lineno}, got seq {line.seq} "
                                f"(seq {expected} is lost or out of order)")
        rec = line.record
        if self.end is not None:
            raise ProtocolError(f"record {line.where} comes after END (seq {expected - 1})")
        if isinstance(rec, Begin):
            if self.begin is not None:
                raise ProtocolError(f"record {line.where}: a second BEGIN (firmware restarted?)")
            self.begin = rec
        elif self.begin is None:
            raise ProtocolError(_no_begin_message(line))
        elif isinstance(rec, Result):
            self._add_result(line, rec, self.begin)
        elif isinstance(rec, Summary):
            if self.summary is not None:
                raise ProtocolError(f"record {line.where}: a second SUM record")
            self.summary = rec
            self._after_results = self._after_results or line
        elif isinstance(rec, Layer):
            if rec.name in self.layers:
                raise ProtocolError(f"record {line.where}: layer {rec.name} reported twice")
            self.layers[rec.name] = rec.count
            self._after_results = self._after_results or line
        else:
            self._check_end(line, rec, self.begin)
            self.end = rec
        self.lines.append(line)
        self._seen_at[line.seq] = line.lineno
        return rec

    def _add_result(self, line: _Line, rec: Result, begin: Begin) -> None:
        if self._after_results is not None:
            raise ProtocolError(f"record {line.where} comes after {self._after_results.where}: results must come "
                                "first")
        expected = len(self.results)
        if rec.index != expected:
            what = "duplicated result index" if rec.index < expected else "result index gap"
            raise ProtocolError(f"{what}: record {line.where} has i={rec.index}, expected i={expected}")
        if rec.index >= begin.count:
            raise ProtocolError(f"record {line.where}: i={rec.index} is beyond BEGIN count={begin.count}")
        if len(rec.outputs) != begin.outputs:
            raise ProtocolError(f"record {line.where}: out= has {len(rec.outputs)} values, BEGIN says "
                                f"outputs={begin.outputs}")
        if self.results and len(rec.inputs) != len(self.results[0].inputs):
            raise ProtocolError(f"record {line.where}: in= has {len(rec.inputs)} values, the first result had "
                                f"{len(self.results[0].inputs)}")
        self.results.append(rec)

    def _check_end(self, line: _Line, rec: End, begin: Begin) -> None:
        got = len(self.results)
        if rec.records != got:
            raise ProtocolError(f"record {line.where} says records={rec.records} but {got} R records arrived")
        if begin.count != got:
            raise ProtocolError(f"record {line.where}: BEGIN count={begin.count} but {got} R records arrived "
                                f"(results {got}..{begin.count - 1} missing)")

    def finish(self, text_lines: list[str], total_lines: int) -> RecordStream:
        if self.begin is None:
            raise ProtocolError(f"no BEGIN record: none of the {total_lines} lines of output starts with "
                                f"{PREFIX.strip()!r} (wrong console, or the firmware never started?)")
        if self.end is None:
            raise ProtocolError(f"stream ended after seq {len(self.lines) - 1}: no END record (truncated output?)")
        return RecordStream(begin=self.begin, results=list(self.results), summary=self.summary, end=self.end,
                            text_lines=text_lines, layers=dict(self.layers))


def _no_begin_message(line: _Line) -> str:
    if line.seq == 0:
        return f"no BEGIN record: the first record, {line.where}, should be BEGIN"
    return f"no BEGIN record: the first record is {line.where} (output started mid-stream?)"


def _sequence_problem(lines: list[_Line]) -> str | None:
    """With the whole stream at hand, say precisely which record is duplicated, missing or out of place."""
    first_at: dict[int, _Line] = {}
    for ln in lines:
        if ln.seq in first_at:
            return (f"duplicated record: seq {ln.seq} at line {ln.lineno} repeats seq {ln.seq} at line "
                    f"{first_at[ln.seq].lineno}")
        first_at[ln.seq] = ln
    for pos, ln in enumerate(lines):
        if ln.seq == pos:
            continue
        if pos in first_at:
            later = first_at[pos]
            return f"records out of order: {ln.where} comes before {later.where}"
        if pos == 0:
            return _no_begin_message(ln)
        prev = lines[pos - 1]
        return f"missing record: seq {pos} is absent ({prev.where} is followed by {ln.where})"
    return None


def _split_lines(text: str) -> tuple[list[str], str]:
    """Complete lines (one trailing '\\r' dropped) and the unterminated tail ('' if the text ends in '\\n')."""
    *lines, tail = text.split("\n")
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines], tail


def _cut_off(lineno: int, after: int | None) -> ProtocolError:
    last = f"after seq {after}" if after is not None else "before any record"
    return ProtocolError(f"stream ended inside the record at line {lineno} ({last}): the line has no newline "
                         "(truncated output?)")


def parse_stream(text: str | bytes) -> RecordStream:
    """Parse a whole console capture; raises ProtocolError unless it holds one complete, intact stream."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")  # every byte maps to one char: random bytes never crash the decoder
    lines, tail = _split_lines(text)
    records: list[_Line] = []
    text_lines: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        if not records:
            line = skip_junk(line)
        if line.startswith(PREFIX):
            records.append(_parse_line(line, lineno))
        else:
            text_lines.append(line)
    total = len(lines)
    if tail:
        total += 1
        if tail.startswith(PREFIX):
            raise _cut_off(total, records[-1].seq if records else None)
        text_lines.append(tail)
    problem = _sequence_problem(records)
    if problem is not None:
        raise ProtocolError(problem)
    checker = _Checker()
    for rec in records:
        checker.add(rec)
    stream = checker.finish(text_lines, total)
    logger.debug("parsed %d results, %d text lines", len(stream.results), len(text_lines))
    return stream


class StreamReader:
    """Incremental parser for a console read as bytes arrive (a UART or a board's serial port).

    feed() returns the records completed by the new bytes and raises ProtocolError as soon as the
    stream is known to be damaged; done turns True with END; finish() returns the whole RecordStream.

    With restart=True (a board flashed while its port is read: bytes of the image it ran before may
    still arrive), a valid ``QM 0 BEGIN`` record anywhere in a line starts the stream over: what came
    before it is dropped, stream_start says where in the fed bytes the new stream begins, and a
    damaged record does not raise but is kept in damage until a restart clears it (the caller decides
    when waiting for one is over). fault holds the firmware's FAULT line once one has arrived.
    """

    def __init__(self, restart: bool = False) -> None:
        self._restart = restart
        self._pending = b""
        self._fed = 0  # bytes fed before _pending
        self._lineno = 0
        self._checker = _Checker()
        self.text_lines: list[str] = []
        self.damage: ProtocolError | None = None
        self.fault: str | None = None
        self.stream_start = 0
        self.restarts = 0
        self._seen_records = False  # any record line (intact or not) in the current stream

    @property
    def done(self) -> bool:
        return self._checker.end is not None and self.damage is None

    def feed(self, data: bytes) -> list[Record]:
        *complete, self._pending = (self._pending + data).split(b"\n")
        new: list[Record] = []
        for raw in complete:
            start = self._fed
            self._fed += len(raw) + 1
            self._lineno += 1
            line = raw.decode("latin-1")
            line = line[:-1] if line.endswith("\r") else line
            if self._restart:
                at = self._restart_at(line)
                # A BEGIN after records (an old stream), or inside a line (cut into an old one), starts over.
                if at is not None and (at > 0 or self._seen_records):
                    self._start_over(start + at)
                    line = line[at:]
            if not self._checker.lines:
                line = skip_junk(line)
            if not line.startswith(PREFIX):
                self.text_lines.append(line)
                if self.fault is None and line.startswith(FAULT_PREFIX):
                    self.fault = line
                continue
            self._seen_records = True
            if self.damage is not None:
                continue  # a damaged stream: only a restart helps
            try:
                new.append(self._checker.add(_parse_line(line, self._lineno)))
            except ProtocolError as err:
                if not self._restart:
                    raise
                logger.debug("damaged record, waiting for a restart: %s", err)
                self.damage = err
        return new

    def _restart_at(self, line: str) -> int | None:
        """Where a valid BEGIN record starts in line, if one does."""
        at = line.rfind(BEGIN_PREFIX)
        if at < 0:
            return None
        try:
            _parse_line(line[at:], self._lineno)
        except ProtocolError:
            return None
        return at

    def _start_over(self, offset: int) -> None:
        if offset > self.stream_start:
            logger.info("dropped %d bytes before the new stream's BEGIN (the previous image's output)",
                        offset - self.stream_start)
        self._checker = _Checker()
        self.text_lines = []
        self.damage = None
        self.fault = None
        self._seen_records = False
        self.stream_start = offset
        self.restarts += 1
        self._lineno = 1  # the BEGIN line is line 1 of the new stream, as parse_stream counts it

    def finish(self) -> RecordStream:
        """The complete stream once the console has closed; raises ProtocolError if it is not complete."""
        if self.damage is not None:
            raise self.damage
        text_lines = list(self.text_lines)
        total = self._lineno
        if self._pending:
            total += 1
            tail = self._pending.decode("latin-1")
            if tail.startswith(PREFIX):
                seen = self._checker.lines
                raise _cut_off(total, seen[-1].seq if seen else None)
            text_lines.append(tail)
        return self._checker.finish(text_lines, total)
