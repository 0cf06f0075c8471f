"""A read at the head of a segment (a consumer asking for the offset after the
last batch it got) touches the storage once: the bytes it returns, no scan of
the batches after the last index entry."""

from __future__ import annotations

from log_helpers import seq_batch

from runtime.log.records import decode_batches, validate_batch
from runtime.log.segment import RECENT_STARTS, Segment


class CountingStorage:
    """Counts the reads (and regions) asked of a segment's storage."""

    def __init__(self, storage) -> None:
        self._storage = storage
        self.reads = 0

    def read(self, pos: int, n: int) -> bytes:
        self.reads += 1
        return self._storage.read(pos, n)

    def region(self, pos: int, n: int):
        self.reads += 1
        return self._storage.region(pos, n)

    def __getattr__(self, name: str):
        return getattr(self._storage, name)


def _segment(batches: int) -> tuple[Segment, CountingStorage]:
    segment = Segment.create(None, 0)
    for i in range(batches):
        batch = seq_batch(i, records=2)
        segment.append(segment.next_offset, validate_batch(batch), memoryview(batch))
    counting = CountingStorage(segment.storage)
    segment.storage = counting  # type: ignore[assignment]
    return segment, counting


def test_a_read_from_a_recent_batch_start_reads_only_its_bytes():
    segment, storage = _segment(200)  # ~40 small batches per offset index entry
    for offset in (398, 300, 396 - 2 * 40):
        storage.reads = 0
        data, at_end = segment.read(offset, 1 << 20, first_whole=True)
        assert storage.reads == 1
        assert at_end
        assert [r.offset for r in decode_batches(data)] == list(range(offset, 400))


def test_reads_off_batch_starts_or_past_the_recent_ones_still_find_their_batch():
    segment, _ = _segment(RECENT_STARTS + 100)
    end = segment.next_offset
    data, _ = segment.read(5, 1 << 20, first_whole=True)  # the middle of batch 4..5
    assert decode_batches(data)[0].offset == 4
    data, _ = segment.read(2, 1, first_whole=True)  # an old batch: found by its index
    assert [r.offset for r in decode_batches(data)] == [2, 3]
    data, _ = segment.read(end - 1, 1 << 20, first_whole=True)
    assert [r.offset for r in decode_batches(data)] == [end - 2, end - 1]
    assert segment.read(end, 1 << 20, first_whole=True) == (b"", True)


def test_a_read_committed_end_inside_the_recent_batches_is_kept():
    segment, _ = _segment(50)
    data, _ = segment.read(90, 1 << 20, first_whole=True, end_offset=96)
    assert [r.offset for r in decode_batches(data)] == list(range(90, 96))
    assert segment.read(96, 1 << 20, first_whole=True, end_offset=96)[0] == b""
