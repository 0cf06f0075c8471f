"""The record batch parser under arbitrary input: it raises CorruptRecordError
(the documented error) and nothing else, and valid batches round-trip exactly.

Three depths of garbage: bytes of any kind (stopped by the header checks),
valid batches mutated (stopped by the CRC, except in the fields the CRC does
not cover), and garbage records behind a correct header and CRC, which is
what a buggy or hostile client can send and what reaches the record decoder.

Two batches fuzzing found are pinned below: a header key that is not UTF-8,
and a negative header key length with a huge header count, which walked the
decoder backwards for 2**55 rounds (the CPU bound fails such an example rather
than hanging).
"""

from __future__ import annotations

import contextlib
import signal
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import CorruptRecordError
from runtime.log.records import (
    CRC_START,
    HEADER_SIZE,
    LOG_OVERHEAD,
    decode_batch,
    decode_batch_rows,
    decode_batches,
    encode_batch,
    encode_batch_with_offsets,
    iter_batches,
    parse_header,
    validate_batch,
)
from runtime.log.records import crc32c as crc

pytestmark = pytest.mark.slow  # the fault-injection suite; bounded, runs in CI

_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_bytes = st.one_of(st.none(), st.binary(max_size=80))
_headers = st.lists(st.tuples(st.text(max_size=10), _bytes), max_size=3)
_record = st.tuples(_bytes, _bytes, st.integers(0, 2**41), _headers)
_records = st.lists(_record, min_size=1, max_size=12)
PARSE_CPU_S = 2.0


def _parse_everything(data: bytes) -> None:
    """Every entry point of the parser on `data`: CorruptRecordError or a
    result, in a bounded time (a consumer decodes on its event loop)."""
    with _cpu_bound(PARSE_CPU_S, data):
        for parse in (parse_header, validate_batch, decode_batch, decode_batches):
            with _documented_errors():
                parse(data)
        with _documented_errors():
            for pos, header in iter_batches(data):
                decode_batch_rows(data, pos, header)


@contextlib.contextmanager
def _cpu_bound(seconds: float, data: bytes) -> Iterator[None]:
    """Fail if the block burns more than `seconds` of CPU. A virtual-time timer,
    so pytest-timeout's real-time SIGALRM is left alone."""

    def expire(signum: int, frame: object) -> None:
        raise AssertionError(f"the parser ran past {seconds}s of CPU on {data.hex()}")

    previous = signal.signal(signal.SIGVTALRM, expire)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


@contextlib.contextmanager
def _documented_errors() -> Iterator[None]:
    with contextlib.suppress(CorruptRecordError):
        yield


def _with_crc(batch: bytearray) -> bytes:
    struct.pack_into(">I", batch, 17, crc(memoryview(batch)[CRC_START:]))
    return bytes(batch)


@_settings
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_corrupt_record_error(data):
    _parse_everything(data)


@_settings
@given(_records, st.data())
def test_mutated_batches_are_rejected_or_decode_the_same_records(records, data):
    original = encode_batch(records)
    batch = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        at = data.draw(st.integers(0, len(batch)), label="at")
        how = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]), label="how")
        if how == "flip" and at < len(batch):
            batch[at] ^= data.draw(st.integers(1, 255), label="mask")
        elif how == "truncate":
            del batch[at:]
        elif how == "insert":
            batch[at:at] = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
        elif how == "delete":
            del batch[at : at + data.draw(st.integers(1, 8), label="deleted")]
    mutated = bytes(batch)
    _parse_everything(mutated)
    try:
        header = validate_batch(mutated)
    except CorruptRecordError:
        return
    # Passing the checks, it differs at most in the fields the CRC leaves out.
    assert len(mutated) >= header.size
    kept = bytearray(mutated[: header.size])
    kept[0:8], kept[12:16] = original[0:8], original[12:16]
    assert bytes(kept) == bytes(original)
    decoded = decode_batch(mutated)
    assert [(r.key, r.value, r.timestamp_ms, list(r.headers)) for r in decoded] == [
        (k, v, ts, list(h)) for k, v, ts, h in records
    ]


@st.composite
def _garbage_behind_a_valid_header(draw) -> bytes:
    """A batch whose header and CRC are right and whose records are not."""
    template = encode_batch([(None, b"v", 1, ())])
    body = draw(
        st.one_of(
            st.binary(max_size=300),
            _records.map(lambda rs: bytes(encode_batch(rs)[HEADER_SIZE:])).flatmap(
                lambda good: st.binary(max_size=8).map(lambda junk: good + junk)
            ),
        )
    )
    batch = bytearray(template[:HEADER_SIZE]) + body
    struct.pack_into(">i", batch, 8, len(batch) - LOG_OVERHEAD)
    struct.pack_into(">h", batch, 21, draw(st.integers(0, 7)))  # compression codecs, bogus too
    struct.pack_into(">i", batch, 23, draw(st.integers(0, 2**31 - 1)))  # last offset delta
    struct.pack_into(">i", batch, 57, draw(st.integers(0, 2**31 - 1)))  # record count
    return _with_crc(batch)


@_settings
@given(_garbage_behind_a_valid_header())
def test_garbage_records_behind_a_valid_crc_raise_only_corrupt_record_error(batch):
    validate_batch(batch)  # the checks pass: only the record decoder stands in the way
    _parse_everything(batch)


@_settings
@given(st.lists(_records, min_size=1, max_size=4), st.integers(0, 2**40))
def test_valid_batches_round_trip_byte_for_byte(batches, base_offset):
    encoded, offset = [], base_offset
    for records in batches:
        encoded.append(bytes(encode_batch(records, base_offset=offset)))
        offset += len(records)
    stream = b"".join(encoded)
    found = list(iter_batches(stream))
    assert [pos for pos, _ in found] == [sum(map(len, encoded[:i])) for i in range(len(encoded))]
    decoded = decode_batches(stream)
    assert [r.offset for r in decoded] == list(range(base_offset, offset))
    for (pos, header), batch, records in zip(found, encoded, batches, strict=True):
        assert validate_batch(stream, pos) == header
        assert header.record_count == len(
            records
        ) and header.next_offset == header.base_offset + len(records)
        rows = decode_batch_rows(stream, pos, header)
        again = encode_batch_with_offsets(decode_batch(batch))
        assert bytes(again) == batch  # re-encoding what was decoded gives the same bytes
        assert [(k, v, ts, list(h)) for _, ts, k, v, h in rows] == [
            (k, v, ts, list(h)) for k, v, ts, h in records
        ]


@pytest.mark.parametrize(
    "batch_hex",
    [
        # negative header key length, header count 2**55: looped instead of failing
        "00000000000000000000004100000000026958dbf200000000000000000000000000010000000000"
        "000001ffffffffffffffffffffffffffff000000011e000000010180808080808080800103",
        # a header key that is not UTF-8: raised UnicodeDecodeError
        "00000000000000000000003d0000000002fd43f52500000000000000000000000000010000000000"
        "000001ffffffffffffffffffffffffffff00000001160000000102310202ff0276",
    ],
)
def test_valid_crc_batches_with_broken_headers_are_corrupt(batch_hex):
    data = bytes.fromhex(batch_hex)
    validate_batch(data)  # the CRC is right: only the record decoder can tell
    with _cpu_bound(PARSE_CPU_S, data), pytest.raises(CorruptRecordError, match="header"):
        decode_batch(data)
