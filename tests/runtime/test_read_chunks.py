"""Fetch-path reads: whole-batch extents, and chunks (file regions) that equal read()."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from log_helpers import ManualClock, make_batch

from runtime.log.config import FlushPolicy, TopicConfig
from runtime.log.partition import Partition
from runtime.log.records import validate_batch
from runtime.log.segment import Segment
from runtime.log.storage import SENDFILE_BYTES_MIN, FileRegion
from runtime.types import TopicPartition

TP = TopicPartition("c", 0)


def _partition(directory=None, **config) -> Partition:
    return Partition.open(TP, directory, TopicConfig(**config), FlushPolicy(), ManualClock())


def _batches(sizes: list[int]) -> list[bytearray]:
    return [make_batch([b"%d" % i + b"x" * size]) for i, size in enumerate(sizes)]


def _bytes(chunks: list) -> bytes:
    return b"".join(c.read() if isinstance(c, FileRegion) else bytes(c) for c in chunks)


def test_extent_ends_at_the_last_whole_batch_within_max_bytes():
    segment = Segment.create(None, 0)
    batches = _batches([3000] * 10)  # every batch is indexed (> 4 KiB apart or not)
    for batch in batches:
        segment.append(segment.next_offset, validate_batch(batch), memoryview(batch))
    size = len(batches[0])
    assert segment.extent(0, size * 3 + 10, first_whole=True) == (0, size * 3, False)
    assert segment.extent(0, 1, first_whole=True) == (0, size, False)
    assert segment.extent(0, 1, first_whole=False) == (0, 0, False)
    assert segment.extent(9, 1 << 20, first_whole=True) == (size * 9, size, True)
    assert segment.extent(10, 1 << 20, first_whole=True) is None


def test_large_reads_from_files_are_regions_with_the_same_bytes(tmp_path):
    partition = _partition(tmp_path)
    for batch in _batches([5000] * 40):
        partition.append(batch)
    chunks = partition.read_chunks(0, 1 << 20)
    assert len(chunks) == 1 and isinstance(chunks[0], FileRegion)
    assert len(chunks[0]) >= SENDFILE_BYTES_MIN
    assert _bytes(chunks) == partition.read(0, 1 << 20)
    small = partition.read_chunks(0, 10_000)
    assert isinstance(small[0], bytes) and small[0] == partition.read(0, 10_000)
    partition.close()


def test_region_stays_readable_after_its_partition_is_closed(tmp_path):
    partition = _partition(tmp_path)
    for batch in _batches([5000] * 40):
        partition.append(batch)
    expected = partition.read(0, 1 << 20)
    (region,) = partition.read_chunks(0, 1 << 20)
    partition.delete()
    assert region.read() == expected
    assert os.fstat(region.fileno()).st_size >= len(expected)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 30_000), min_size=1, max_size=30),
    st.integers(0, 200_000),
    st.integers(1, 200_000),
)
def test_chunks_equal_read_across_segments(tmp_path_factory, sizes, offset_pick, max_bytes):
    partition = _partition(tmp_path_factory.mktemp("log"), segment_bytes=40_000)
    try:
        batches = _batches(sizes)
        for batch in batches:
            partition.append(batch)
        offset = offset_pick % (len(sizes) + 1)
        data = partition.read(offset, max_bytes)
        assert _bytes(partition.read_chunks(offset, max_bytes)) == data
        # the first batch whole, then the ones that fit (one record a batch)
        expected = 0
        for i, batch in enumerate(batches[offset:]):
            if i and expected + len(batch) > max_bytes:
                break
            expected += len(batch)
        assert len(data) == expected
    finally:
        partition.close()
