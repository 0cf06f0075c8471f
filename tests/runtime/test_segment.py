from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from log_helpers import make_batch, seq_batch

from runtime.log.records import decode_batch, decode_batches, iter_batches, validate_batch
from runtime.log.segment import Segment
from runtime.log.storage import MemoryStorage


def _segment_with(batches: list[bytearray], base_offset: int = 0) -> Segment:
    segment = Segment.create(None, base_offset)
    for batch in batches:
        segment.append(segment.next_offset, validate_batch(batch), memoryview(batch))
    return segment


def test_append_assigns_contiguous_offsets_and_tracks_size():
    batches = [seq_batch(i) for i in range(4)]
    segment = _segment_with(batches, base_offset=10)
    assert segment.next_offset == 22
    assert segment.size == sum(len(b) for b in batches)
    data, at_end = segment.read(10, 1 << 20, first_whole=True)
    assert at_end
    assert [r.offset for r in decode_batches(data)] == list(range(10, 22))


def test_read_mid_batch_returns_containing_batch():
    segment = _segment_with([seq_batch(i) for i in range(4)])
    data, _ = segment.read(7, 1, first_whole=True)
    records = decode_batches(data)
    assert [r.offset for r in records] == [6, 7, 8]


def test_read_stops_at_whole_batches_within_max_bytes():
    batches = [seq_batch(i) for i in range(4)]
    segment = _segment_with(batches)
    data, at_end = segment.read(0, len(batches[0]) * 2 + 5, first_whole=True)
    assert len(data) == len(batches[0]) * 2 and not at_end


def test_offset_index_is_sparse_and_used_for_lookup():
    big = [make_batch([b"x" * 1500]) for _ in range(20)]
    segment = _segment_with(big)
    assert 0 < len(segment.offset_index) < 20
    data, _ = segment.read(15, 1, first_whole=True)
    assert decode_batch(data)[0].offset == 15


def test_offset_for_timestamp_finds_first_record_at_or_after():
    batches = [make_batch([b"a", b"b"], timestamp_ms=1000 + 10 * i) for i in range(50)]
    segment = _segment_with(batches)
    assert segment.offset_for_timestamp(0) == 0
    assert segment.offset_for_timestamp(1001) == 1
    assert segment.offset_for_timestamp(1005) == 2  # the next batch starts at 1010
    assert segment.offset_for_timestamp(1491) == 99
    assert segment.offset_for_timestamp(1492) is None


def test_recovery_of_intact_segment_truncates_nothing():
    batches = [seq_batch(i) for i in range(5)]
    original = _segment_with(batches)
    copy = Segment(0, MemoryStorage(original.storage.read(0, original.size)), None)
    assert copy.recover(contiguous=True) == 0
    assert copy.next_offset == original.next_offset and copy.size == original.size
    assert list(copy.offset_index.offsets) == list(original.offset_index.offsets)


def _records_per_batch(data: bytes) -> list[list]:
    return [decode_batch(data, pos) for pos, _ in iter_batches(data)]


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 8),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
    st.integers(0, 200),
)
def test_byte_flips_in_tail_recover_to_a_prefix(count, flips, cut):
    batches = [
        make_batch([b"value-%d-%d" % (i, j) for j in range(1 + i % 3)]) for i in range(count)
    ]
    original = _segment_with(batches)
    data = bytearray(original.storage.read(0, original.size))
    tail_start = len(data) - len(batches[-1]) - len(batches[-2])
    for where, mask in flips:
        data[tail_start + where % (len(data) - tail_start)] ^= mask
    if cut % 7:  # sometimes also tear the end off
        del data[-(cut % 7) :]

    damaged = Segment(0, MemoryStorage(data), None)
    truncated = damaged.recover(contiguous=True)

    kept = damaged.storage.read(0, damaged.size)
    assert truncated == len(data) - damaged.size
    assert damaged.size >= tail_start
    recovered = _records_per_batch(kept)
    assert (
        recovered
        == _records_per_batch(bytes(original.storage.read(0, original.size)))[: len(recovered)]
    )
    for pos, _ in iter_batches(kept):
        validate_batch(kept, pos)
    assert damaged.next_offset == (recovered[-1][0].offset + len(recovered[-1]) if recovered else 0)
