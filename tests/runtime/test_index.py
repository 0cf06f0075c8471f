from __future__ import annotations

import pytest

from runtime.log.index import IndexCorruptError, OffsetIndex, TimeIndex


def test_offset_index_lookup_finds_last_entry_at_or_before():
    index = OffsetIndex()
    for offset, position in [(10, 4096), (20, 8192), (30, 12288)]:
        index.append(offset, position)
    assert index.lookup(0) == 0
    assert index.lookup(10) == 4096
    assert index.lookup(19) == 4096
    assert index.lookup(35) == 12288


def test_offset_index_roundtrips_through_bytes():
    index = OffsetIndex()
    index.append(3, 100)
    index.append(9, 5000)
    loaded = OffsetIndex.from_bytes(index.to_bytes(), segment_bytes=6000)
    assert list(loaded.offsets) == [3, 9] and list(loaded.positions) == [100, 5000]


def test_offset_index_with_position_past_segment_is_corrupt():
    index = OffsetIndex()
    index.append(3, 100)
    with pytest.raises(IndexCorruptError):
        OffsetIndex.from_bytes(index.to_bytes(), segment_bytes=50)


def test_offset_index_out_of_order_is_corrupt():
    data = OffsetIndex()
    data.append(9, 100)
    data.append(3, 200)
    with pytest.raises(IndexCorruptError):
        OffsetIndex.from_bytes(data.to_bytes(), segment_bytes=1000)


def test_index_with_partial_entry_is_corrupt():
    with pytest.raises(IndexCorruptError):
        OffsetIndex.from_bytes(b"\x00" * 7, segment_bytes=100)
    with pytest.raises(IndexCorruptError):
        TimeIndex.from_bytes(b"\x00" * 13)


def test_time_index_keeps_increasing_timestamps_only():
    index = TimeIndex()
    index.maybe_append(100, 0)
    index.maybe_append(100, 5)
    index.maybe_append(50, 6)
    index.maybe_append(200, 7)
    assert list(index.timestamps) == [100, 200]
    assert index.lookup(100) == 0  # nothing is known to be < 100
    assert index.lookup(150) == 0
    assert index.lookup(201) == 7
    assert TimeIndex.from_bytes(index.to_bytes()).timestamps == index.timestamps
