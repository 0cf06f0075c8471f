"""Table sizes for the metrics: exact for small partitions, the store's estimate past that."""

from __future__ import annotations

from pathlib import Path

import pytest

from stores.memory import MemoryStore
from stores.rocksdb import RocksDBStore
from streams.web import metrics


def test_small_partitions_are_counted_exactly(tmp_path: Path) -> None:
    store = RocksDBStore(tmp_path / "s.rocksdb")
    store.apply({b"a": b"1", b"bb": b"22", b"a2": None}, 0)
    store.apply({b"a": b"333"}, 1)  # an overwrite: still two keys
    assert metrics.store_size(store) == (2, len(b"a333") + len(b"bb22"))
    store.close()
    assert metrics.store_size(store) == (0, 0)  # closed by a rebalance meanwhile


def test_large_partitions_are_estimated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "EXACT_SIZE_KEYS_MAX", 3)
    rocks = RocksDBStore(tmp_path / "s.rocksdb")
    rocks.apply({f"k{i}".encode(): b"v" * 100 for i in range(5)}, 0)
    keys, size = metrics.store_size(rocks)
    assert keys == 5 and size > 0  # RocksDB's estimate of its memtable
    rocks.close()
    memory = MemoryStore()  # no estimate: its length, the bytes scanned extrapolated
    memory.apply({f"k{i}".encode(): b"vv" for i in range(6)}, 0)
    assert metrics.store_size(memory) == (6, 6 * 4)
