"""The compiled record reader (_crecords.c) against its pure-Python reference.

Every case runs each public reader twice, compiled and pure, and requires the
same outcome: the same rows, columns and key -> value writes, or the same
CorruptRecordError (message and offset) with the caller's columns as they
were. Batches are built here record by record, so they hold what encode_batch
never writes: negative timestamp and offset deltas, 10-byte varints, bogus
lengths and header counts. Any other exception, or a crash of the
interpreter, fails the run.
"""

from __future__ import annotations

import collections
import functools
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import CorruptRecordError
from runtime.log import records
from runtime.log.compression import compress
from runtime.log.key_values import key_values_into
from runtime.log.record_columns import RecordColumns, decode_batch_columns
from runtime.log.records import (
    CRC_START,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    TIMESTAMP_LOG_APPEND,
    BatchHeader,
    Record,
    crc32c,
    decode_batch,
    decode_batch_rows,
    decode_batches,
    encode_batch,
    encode_batch_with_offsets,
    parse_header,
)

_HEADER = struct.Struct(">qiibIhiqqqhii")
needs_compiled = pytest.mark.skipif(
    not records.compiled(), reason="the compiled reader is off (STREAMS_PURE_PYTHON)"
)
_settings = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def test_the_extension_is_built_and_used() -> None:
    # CI has a C compiler: a silent fallback would hide the speedup.
    from runtime.log import _crecords  # noqa: F401

    if os.environ.get("STREAMS_PURE_PYTHON"):
        assert not records.compiled()
    else:
        assert records.compiled()


def test_a_build_of_other_source_is_not_used() -> None:
    # An in-place build left from older source (no rebuild after a pull) would
    # lack functions or differ in them: the pure-Python reader takes over.
    code = (
        "import sys, types; sys.modules['runtime.log._crecords'] = types.ModuleType('x');"
        "from runtime.log import records; print(records.compiled())"
    )
    env = {k: v for k, v in os.environ.items() if k != "STREAMS_PURE_PYTHON"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.stdout.strip() == "False", done.stderr
    assert "built from other source" in done.stderr


# --- batches built by hand -------------------------------------------------------


def _varint(value: int) -> bytes:
    zz = ((value << 1) ^ (value >> 63)) & (2**64 - 1)
    out = bytearray()
    while zz > 0x7F:
        out.append((zz & 0x7F) | 0x80)
        zz >>= 7
    out.append(zz)
    return bytes(out)


def _blob(data: bytes | None) -> bytes:
    return _varint(-1) if data is None else _varint(len(data)) + data


def _record(ts_delta: int, offset_delta: int, key: bytes | None, value: bytes | None,
            headers: list[tuple[bytes, bytes | None]]) -> bytes:  # fmt: skip
    body = b"\x00" + _varint(ts_delta) + _varint(offset_delta) + _blob(key) + _blob(value)
    body += _varint(len(headers)) + b"".join(_blob(k) + _blob(v) for k, v in headers)
    return _varint(len(body)) + body


def _batch(records_part: bytes, count: int, *, base_offset: int = 0, base_ts: int = 0,
           attributes: int = 0, max_ts: int = 0) -> bytes:  # fmt: skip
    out = bytearray(HEADER_SIZE) + records_part
    _HEADER.pack_into(out, 0, base_offset, len(out) - LOG_OVERHEAD, 0, MAGIC, 0, attributes,
                      max(count - 1, 0), base_ts, max_ts, -1, -1, -1, count)  # fmt: skip
    struct.pack_into(">I", out, 17, crc32c(memoryview(out)[CRC_START:]))
    return bytes(out)


# --- running both ------------------------------------------------------------------


def _outcome(read: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("ok", read())
    except CorruptRecordError as exc:
        return ("corrupt", str(exc), exc.offset)


def _readers(buf: bytes, header: BatchHeader, pos: int = 0) -> dict[str, tuple[Any, ...]]:
    """Each reader's outcome, and what it left in its caller's containers."""
    columns = RecordColumns([-1], [-1], [b"earlier"], [None], [()])
    writes: dict[bytes, bytes | None] = {b"earlier": b"value"}
    min_offset = min(header.base_offset + 2, 2**63 - 1)
    return {
        "rows": _outcome(lambda: decode_batch_rows(buf, pos, header)),
        "columns": (
            _outcome(lambda: decode_batch_columns(buf, pos, header, columns, min_offset)),
            columns,
        ),
        "key_values": (_outcome(lambda: key_values_into(writes, buf, pos, header)), writes),
    }


def _agree(buf: bytes, header: BatchHeader | None = None, pos: int = 0) -> dict[str, Any]:
    header = header or parse_header(buf, pos)
    compiled = _readers(buf, header, pos)
    saved = records._crecords
    records._crecords = None
    try:
        pure = _readers(buf, header, pos)
    finally:
        records._crecords = saved
    assert compiled == pure
    return compiled


# --- valid batches -------------------------------------------------------------------

_size = st.sampled_from([0, 1, 63, 64, 127, 128, 8191, 8192, 20_000])
_data = st.one_of(st.none(), st.binary(max_size=40), _size.map(lambda n: b"v" * n))
_hkey = st.text(max_size=6).map(str.encode)
_headers = st.lists(st.tuples(_hkey, st.one_of(st.none(), st.binary(max_size=20))), max_size=3)
_delta = st.one_of(st.integers(-70, 70), st.integers(-(2**63), 2**63 - 1))
_records = st.lists(st.tuples(_delta, _delta, _data, _data, _headers), min_size=1, max_size=8)


@needs_compiled
@_settings
@given(
    _records,
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, TIMESTAMP_LOG_APPEND]),
)
def test_compiled_and_pure_agree_on_valid_batches(recs, base_offset, base_ts, attributes) -> None:
    part = b"".join(_record(*r) for r in recs)
    batch = _batch(part, len(recs), base_offset=base_offset, base_ts=base_ts,
                   attributes=attributes, max_ts=12345)  # fmt: skip
    result = _agree(batch)
    status, rows = result["rows"]
    assert status == "ok"
    assert [row[2:4] for row in rows] == [(key, value) for _, _, key, value, _ in recs]
    assert [row[0] for row in rows] == [base_offset + r[1] for r in recs]


@needs_compiled
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(_data, _data, st.integers(0, 2**41)), min_size=1, max_size=20),
       st.sampled_from([1, 2, 3, 4]))  # fmt: skip
def test_compressed_batches_agree_through_the_public_readers(recs, codec) -> None:
    plain = encode_batch([(k, v, ts, ()) for k, v, ts in recs], base_offset=7)
    part = compress(codec, bytes(plain[HEADER_SIZE:]))
    header = parse_header(plain)
    batch = _batch(part, len(recs), base_offset=7, base_ts=header.base_timestamp,
                   attributes=codec, max_ts=header.max_timestamp)  # fmt: skip
    result = _agree(batch)
    assert result["rows"] == ("ok", decode_batch_rows(bytes(plain), 0, header))
    compiled = decode_batches(batch + batch)
    records._crecords, saved = None, records._crecords
    try:
        assert decode_batches(batch + batch) == compiled
        assert decode_batch(batch) == compiled[: len(recs)]
    finally:
        records._crecords = saved


@needs_compiled
def test_columns_hold_the_records_at_or_past_min_offset() -> None:
    batch = bytes(encode_batch([(b"k", b"%d" % i, 100 + i, ()) for i in range(5)], base_offset=10))
    columns = RecordColumns()
    assert decode_batch_columns(batch, 0, parse_header(batch), columns, 12) == 3
    assert columns.rows() == decode_batch_rows(batch, 0, parse_header(batch))[2:]


# --- corrupt batches ------------------------------------------------------------------


def _sample_batch() -> bytes:
    recs = [
        (0, 0, b"key", b"value", []),
        (-5, 1, None, b"", [(b"h", None), ("é".encode(), b"x")]),
        (300, 2, b"k" * 70, None, []),
        (2**40, 9000, b"", b"v" * 200, [(b"", b"")]),
    ]
    return _batch(b"".join(_record(*r) for r in recs), len(recs), base_offset=1000)


@needs_compiled
def test_every_truncation_fails_the_same_way() -> None:
    batch = _sample_batch()
    header = parse_header(batch)
    outcomes = set()
    for end in range(HEADER_SIZE, len(batch)):
        result = _agree(batch[:end], header)
        outcomes.add(result["rows"][:2] if result["rows"][0] == "corrupt" else "ok")
        assert result["rows"][0] == "corrupt"
        assert result["columns"][1] == RecordColumns([-1], [-1], [b"earlier"], [None], [()])
    assert len(outcomes) > 1  # the cut lands in records and in their ends


@needs_compiled
def test_bogus_lengths_counts_and_varints_fail_the_same_way() -> None:
    cases = [
        _varint(2**40) + b"\x00" * 8,  # a record longer than the batch
        _varint(-3) + b"\x00\x00\x00\x02\x02\x00",  # a negative record length
        b"\x0c\x00\x00\x00" + _varint(2**40) + b"k",  # a key past the end
        b"\x0c\x00\x00\x00\x02k" + _varint(2**40),  # a value past the end
        b"\x0c\x00\x00\x00\x00\x00" + _varint(2**30) + b"\x00\x00",  # a header count
        b"\x0e\x00\x00\x00\x00\x00\x02" + _varint(-4) + b"\x00\x00\x00",  # a header key length
        b"\x0e\x00\x00\x00\x00\x00\x02\x02\xff\x00\x00\x00",  # a header key not UTF-8
        b"\x0e\x00\x00\x00\x00\x00\x02\x00" + _varint(99) + b"\x00",  # a header value past
        b"\x0c\x00" + b"\xff" * 10 + b"\x00",  # an 11-byte varint
        b"\x0c\x00" + b"\xff" * 9 + b"\x7f",  # a 10-byte varint past 64 bits
        b"\x0c\x00" + b"\x80" * 9 + b"\x02",  # the same, by one bit
        b"\x0c\x00" + b"\xff" * 9 + b"\x01" + b"\x00\x00\x00\x00",  # 10 bytes, 64 bits: fine
    ]
    errors = set()
    for part in cases:
        for count in (1, 2, 3):
            result = _agree(_batch(part, count, base_offset=2**63 - 2))
            errors.update(str(o[1]) for o in (result["rows"], result["key_values"][0]))
    assert len(errors) >= 8


_small = st.one_of(st.none(), st.binary(max_size=10), st.sampled_from([b"v" * 70, b"w" * 130]))
_small_records = st.lists(
    st.tuples(_delta, _delta, _small, _small, _headers), min_size=1, max_size=4
)
_valid_part = _small_records.map(lambda recs: (b"".join(_record(*r) for r in recs), len(recs)))


@needs_compiled
@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(_valid_part, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
       st.integers(-2, 3))  # fmt: skip
def test_random_byte_flips_fail_or_decode_the_same_way(part_count, flips, extra) -> None:
    part, count = part_count
    data = bytearray(part)
    for where, byte in flips:
        data[where % len(data)] = byte
    _agree(_batch(bytes(data), max(count + extra, 0), base_offset=50))


@needs_compiled
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=60), st.integers(0, 5))
def test_garbage_records_fail_or_decode_the_same_way(part, count) -> None:
    _agree(_batch(part, count, base_offset=3))


# --- encoding --------------------------------------------------------------------------


def _encoded_both(recs: list) -> tuple[Any, Any]:
    def encode() -> Any:
        try:
            return bytes(encode_batch(recs, base_offset=5, producer_id=9, base_sequence=3))
        except Exception as exc:  # the reference's error, whatever it is
            return (type(exc), str(exc))

    compiled = encode()
    records._crecords, saved = None, records._crecords
    try:
        return compiled, encode()
    finally:
        records._crecords = saved


_out_data = st.one_of(_data, st.binary(max_size=20).map(bytearray))
_out_headers = st.one_of(
    st.none(),
    st.lists(
        st.tuples(st.text(max_size=6), st.one_of(st.none(), st.binary(max_size=9))), max_size=3
    ),
    st.lists(st.tuples(st.text(max_size=6), st.binary(max_size=9)), max_size=2).map(tuple),
)
_out_ts = st.one_of(st.integers(0, 2**41), st.integers(-(2**61), 2**61))
_out_records = st.lists(
    st.tuples(_out_data, _out_data, _out_ts, _out_headers), min_size=1, max_size=10
)


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_out_records)
def test_compiled_and_pure_encoders_write_the_same_bytes(recs) -> None:
    assert records._crecords.encode_records(recs, None) is not None  # not left to Python
    compiled, pure = _encoded_both(recs)
    assert isinstance(compiled, bytes) and compiled == pure
    assert [r.value for r in decode_batch(compiled)] == [
        None if v is None else bytes(v) for _, v, _, _ in recs
    ]


@needs_compiled
@pytest.mark.parametrize(
    "record",
    [
        (b"k", b"v", 1.5, ()),  # a float timestamp
        (b"k", b"v", 2**64, ()),  # past int64
        (memoryview(b"k"), b"v", 1, ()),  # other bytes-likes
        ("k", b"v", 1, ()),  # a str key
        (b"k", b"v", 1, [("\ud800", b"x")]),  # a header key UTF-8 cannot encode
        (b"k", b"v", 1, [(b"h", b"x")]),  # a bytes header key
        (b"k", b"v", 1, [["h", b"x"]]),  # a header as a list
        (b"k", b"v", 1, {"h": b"x"}),  # headers as a dict
        [b"k", b"v", 1, ()],  # a record as a list
        (b"k", b"v", 1),  # three fields
    ],
)
def test_what_the_compiled_encoder_leaves_to_python_comes_out_the_same(record) -> None:
    recs = [(b"first", None, 0, ()), record]
    assert records._crecords.encode_records(recs, None) is None
    compiled, pure = _encoded_both(recs)
    assert compiled == pure


@needs_compiled
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(_out_records, st.lists(st.integers(1, 1000), min_size=10, max_size=10))
def test_batches_keeping_offsets_come_out_the_same(recs, gaps) -> None:
    offsets = [sum(gaps[: i + 1]) for i in range(len(recs))]
    kept = [
        Record(o, ts, k, v, tuple(h or ())) for o, (k, v, ts, h) in zip(offsets, recs, strict=True)
    ]
    encode = functools.partial(encode_batch_with_offsets, kept, producer_id=4)
    compiled = bytes(encode())
    records._crecords, saved = None, records._crecords
    try:
        assert bytes(encode()) == compiled
    finally:
        records._crecords = saved
    assert decode_batch(compiled) == kept


@needs_compiled
def test_records_in_another_sequence_are_left_to_python() -> None:
    recs = collections.deque([(b"k", b"v", 1, ())])
    assert records._crecords.encode_records(recs, None) is None
    assert _encoded_both(recs)[0] == _encoded_both([(b"k", b"v", 1, ())])[1]


@needs_compiled
def test_timestamps_more_than_int64_apart_come_out_the_same() -> None:
    compiled, pure = _encoded_both([(b"a", b"1", -(2**63), ()), (b"b", b"2", 2**63 - 1, ())])
    assert compiled == pure
