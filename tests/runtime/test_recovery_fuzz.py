"""Crash recovery under arbitrary damage to a segment's tail.

Valid batches, then any of: garbage, zeros (a preallocated tail), a stale or
misplaced but well-formed batch, a torn batch, truncation, bit flips. Recovery
must keep exactly the longest prefix of the original batches left intact, so
it is compared with a segment built fresh from that prefix: same bytes, same
offsets, same indexes. Nothing corrupt is served afterwards and appends go on
at the right offset, in memory and through a Log on disk across reopens.

Bit flips skip the leader epoch (bytes 12..15 of a batch): like the base
offset it is outside the CRC, by the format's design, but unlike the base
offset nothing else checks it, so a flip there is undetectable by anyone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from runtime.log import Log
from runtime.log.records import decode_batch, decode_batches, encode_batch, validate_batch
from runtime.log.segment import Segment, segment_name
from runtime.log.storage import MemoryStorage
from runtime.types import TopicPartition

pytestmark = pytest.mark.slow  # the fault-injection suite; bounded, runs in CI


def _settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


_LEADER_EPOCH = range(12, 16)
TP = TopicPartition("t", 0)

# Values up to 1500 bytes: a few batches cross INDEX_INTERVAL_BYTES, so the
# sparse offset index and the time index get entries to rebuild.
_value = st.one_of(st.binary(max_size=40), st.binary(min_size=1000, max_size=1500))
_batch_records = st.lists(
    st.tuples(st.one_of(st.none(), st.binary(max_size=8)), _value, st.integers(0, 10_000)),
    min_size=1,
    max_size=4,
)


def _encode(records: list[tuple[bytes | None, bytes, int]]) -> bytes:
    return bytes(encode_batch([(k, v, 1_000_000 + ts, ()) for k, v, ts in records]))


@st.composite
def _tails(draw, stored: list[bytes], end_offset: int) -> bytes:
    """What a crash can leave after the last whole batch. `stored`: the batches
    as the segment holds them; `end_offset`: the offset after the last one."""
    stale = draw(st.sampled_from(stored))  # a batch again, at its own old offset
    ahead = bytearray(stored[-1])  # a well-formed batch past the end: a gap
    ahead[0:8] = (end_offset + draw(st.integers(1, 5))).to_bytes(8, "big")
    torn = stored[-1][: draw(st.integers(1, len(stored[-1]) - 1))]
    zeros = b"\x00" * draw(st.integers(1, 5000))  # a preallocated, never written tail
    return draw(st.sampled_from([b"", stale, bytes(ahead), torn, zeros]) | st.binary(max_size=300))


@st.composite
def _damaged(draw, base_offset: int | None = None):
    """(batches, stored, damaged bytes, base offset): the batches, the segment's
    bytes for them, and those bytes after a crash."""
    if base_offset is None:
        base_offset = draw(st.sampled_from([0, 7, 2**33]))
    batches = [_encode(r) for r in draw(st.lists(_batch_records, min_size=1, max_size=8))]
    stored = _rebased(batches, base_offset)
    data = b"".join(stored)
    flips = draw(
        st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)), max_size=3)
    )
    damaged = bytearray(data)
    for at, mask in flips:
        if not _in_leader_epoch(stored, at):
            damaged[at] ^= mask
    cut = draw(st.sampled_from([0, 0, draw(st.integers(0, len(data)))]))
    del damaged[len(damaged) - cut :]
    end_offset = base_offset + sum(validate_batch(b).record_count for b in batches)
    damaged += draw(_tails(stored, end_offset))
    return batches, stored, bytes(damaged), base_offset


def _in_leader_epoch(batches: list[bytes], at: int) -> bool:
    start = 0
    for batch in batches:
        if at < start + len(batch):
            return at - start in _LEADER_EPOCH
        start += len(batch)
    return False


def _intact_prefix(batches: list[bytes], damaged: bytes) -> int:
    """How many leading original batches are still there, byte for byte."""
    start = 0
    for count, batch in enumerate(batches):
        if damaged[start : start + len(batch)] != batch:
            return count
        start += len(batch)
    return len(batches)


def _fresh(batches: list[bytes], base_offset: int) -> Segment:
    segment = Segment.create(None, base_offset)
    for batch in batches:
        segment.append(segment.next_offset, validate_batch(batch), memoryview(batch))
    return segment


def _rebased(batches: list[bytes], base_offset: int) -> list[bytes]:
    """The batches as a segment at base_offset stores them (offsets patched)."""
    segment = _fresh(batches, base_offset)
    data = segment.storage.read(0, segment.size)
    out, pos = [], 0
    for batch in batches:
        out.append(data[pos : pos + len(batch)])
        pos += len(batch)
    return out


def _index_state(segment: Segment) -> tuple:
    return (
        segment.size,
        segment.next_offset,
        segment.max_timestamp,
        list(segment.offset_index.offsets),
        list(segment.offset_index.positions),
        list(segment.time_index.timestamps),
        list(segment.time_index.offsets),
    )


def _assert_serves_only_whole_batches(segment: Segment) -> list:
    """Read everything from the base offset; every batch served checks out and
    every index entry points at the batch it names."""
    data, at_end = segment.read(segment.base_offset, 1 << 30, first_whole=True)
    assert at_end and len(data) == segment.size
    records, pos = [], 0
    while pos < len(data):
        header = validate_batch(data, pos)
        records += decode_batch(data, pos)
        pos += header.size
    for rel, position in zip(
        segment.offset_index.offsets, segment.offset_index.positions, strict=True
    ):
        assert validate_batch(data, position).base_offset == segment.base_offset + rel
    assert [r.offset for r in records] == list(range(segment.base_offset, segment.next_offset))
    return records


@_settings(max_examples=200)
@given(_damaged())
def test_segment_recovery_keeps_exactly_the_intact_prefix(case):
    batches, stored, damaged, base_offset = case
    kept = _intact_prefix(stored, damaged)
    expected = _fresh(batches[:kept], base_offset)

    segment = Segment(base_offset, MemoryStorage(damaged), None)
    truncated = segment.recover(contiguous=True)
    event("every batch kept" if kept == len(batches) else "batches lost")
    event("tail truncated" if truncated else "nothing truncated")

    assert truncated == len(damaged) - expected.size
    assert segment.storage.size() == expected.size
    assert _index_state(segment) == _index_state(expected)
    assert segment.storage.read(0, segment.size) == b"".join(stored[:kept])
    assert _assert_serves_only_whole_batches(segment) == _assert_serves_only_whole_batches(expected)

    more = _encode([(b"k", b"after recovery", 1)])
    segment.append(segment.next_offset, validate_batch(more), memoryview(more))
    expected.append(expected.next_offset, validate_batch(more), memoryview(more))
    assert _index_state(segment) == _index_state(expected)
    assert _assert_serves_only_whole_batches(segment)[-1].value == b"after recovery"


@_settings(max_examples=40)
@given(_damaged(base_offset=0))
def test_log_reopened_after_damage_serves_the_prefix_and_appends_after_it(case):
    batches, stored, damaged, _ = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        with Log.open(path) as log:
            log.create_topic("t", 1)
            for batch in batches:
                log.append(TP, batch)
        segment_file = path / "t-0" / segment_name(0, ".log")
        assert segment_file.read_bytes() == b"".join(stored)
        segment_file.write_bytes(damaged)
        kept = _intact_prefix(stored, damaged)
        prefix = decode_batches(b"".join(stored[:kept]))

        with Log.open(path) as log:
            assert log.offsets(TP) == (0, len(prefix))
            assert log._partitions["t"][0].recovered_bytes == len(damaged) - sum(
                map(len, batches[:kept])
            )
            assert _read_all(log) == prefix
            assert log.append(TP, _encode([(None, b"after", 1)])) == len(prefix)
        with Log.open(path) as log:  # the truncation and the append both stay
            assert log.offsets(TP) == (0, len(prefix) + 1)
            records = _read_all(log)
            assert records[:-1] == prefix and records[-1].value == b"after"


def _read_all(log: Log) -> list:
    start, end = log.offsets(TP)
    data = log.read(TP, start, 1 << 30) if end > start else b""
    pos = 0
    while pos < len(data):  # nothing torn or corrupt is served
        pos += validate_batch(data, pos).size
    return decode_batches(data)
