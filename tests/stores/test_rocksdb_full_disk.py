"""RocksDB on a real full disk (a 2 MB tmpfs): a refused write is a StoreWriteError
naming the table and partition, applies nothing, and close() still closes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from disks import tmpfs

from stores import StoreClosedError, StoreWriteError, open_store


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path, "2m") as mount:
        yield mount


def test_write_on_a_full_disk_names_table_and_partition(small_disk: Path) -> None:
    store = open_store("rocksdb://", name="counts", partition=3, data_dir=small_disk)
    try:
        applied = -1
        with pytest.raises(StoreWriteError) as caught:
            for offset in range(10_000):  # 2 MB fill up long before
                store.apply({b"k%d" % offset: os.urandom(10_000)}, offset)
                applied = offset
        error = caught.value
        assert (error.table, error.partition) == ("counts", 3)
        assert "table 'counts' partition 3" in str(error)
        assert "No space left on device" in str(error)
        assert applied >= 0 and store.persisted_offset() == applied
    finally:
        store.close()  # RocksDB refuses to close cleanly after the error: still closed
    with pytest.raises(StoreClosedError):
        store.get(b"k0")
