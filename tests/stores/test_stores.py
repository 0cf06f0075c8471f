from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import stores
from stores import (
    InvalidStoreURLError,
    MemoryStore,
    RocksDBStore,
    Store,
    StoreClosedError,
    StoreOpenError,
    open_store,
    store_directory,
)


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else RocksDBStore(tmp_path / "t.rocksdb")
    yield s
    s.close()


def test_public_api_is_pinned() -> None:
    assert sorted(stores.__all__) == [
        "InvalidStoreURLError",
        "MemoryStore",
        "RocksDBStore",
        "Store",
        "StoreClosedError",
        "StoreError",
        "StoreOpenError",
        "StoreWriteError",
        "open_store",
        "store_directory",
    ]


def test_roundtrip(store: Store) -> None:
    assert isinstance(store, Store)
    assert store.get(b"k") is None
    assert store.persisted_offset() is None
    store.apply({b"k": b"v", b"\x00": b"", b"k2": b"v2"}, offset=7)
    assert store.get(b"k") == b"v"
    assert store.get(b"\x00") == b""
    assert sorted(store.items()) == [(b"\x00", b""), (b"k", b"v"), (b"k2", b"v2")]
    assert len(store) == 3
    assert store.persisted_offset() == 7


def test_none_value_deletes(store: Store) -> None:
    store.apply({b"a": b"1", b"b": b"2"}, offset=0)
    store.apply({b"a": None, b"missing": None}, offset=1)
    assert store.get(b"a") is None
    assert list(store.items()) == [(b"b", b"2")]
    assert len(store) == 1
    assert store.persisted_offset() == 1


def test_empty_apply_still_moves_offset(store: Store) -> None:
    store.apply({}, offset=42)
    assert store.persisted_offset() == 42
    assert len(store) == 0


def test_reserved_offset_key_not_in_items(store: Store) -> None:
    store.apply({b"offset": b"user value"}, offset=3)
    assert list(store.items()) == [(b"offset", b"user value")]
    assert store.persisted_offset() == 3


def test_clear_drops_keys_and_offset(store: Store) -> None:
    store.apply({b"a": b"1"}, offset=5)
    store.clear()
    assert store.get(b"a") is None
    assert list(store.items()) == []
    assert len(store) == 0
    assert store.persisted_offset() is None
    store.apply({b"b": b"2"}, offset=6)
    assert store.get(b"b") == b"2"


def test_negative_offset_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="offset"):
        store.apply({b"a": b"1"}, offset=-1)


def test_close_is_idempotent_and_use_after_close_raises(store: Store) -> None:
    store.close()
    store.close()
    with pytest.raises(StoreClosedError):
        store.get(b"a")
    with pytest.raises(StoreClosedError):
        store.apply({b"a": b"1"}, offset=0)


def test_rocksdb_offset_and_data_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "t.rocksdb"
    with RocksDBStore(path) as s:
        s.apply({b"a": b"1", b"b": b"2"}, offset=10)
        s.apply({b"b": None}, offset=2**40)
    with RocksDBStore(path) as s:
        assert s.persisted_offset() == 2**40
        assert list(s.items()) == [(b"a", b"1")]


def test_rocksdb_clear_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "t.rocksdb"
    with RocksDBStore(path) as s:
        s.apply({b"a": b"1"}, offset=1)
        s.clear()
    with RocksDBStore(path) as s:
        assert s.persisted_offset() is None
        assert len(s) == 0


def test_rocksdb_open_twice_is_a_store_open_error(tmp_path: Path) -> None:
    path = tmp_path / "t.rocksdb"
    with RocksDBStore(path), pytest.raises(StoreOpenError) as info:
        RocksDBStore(path)
    assert info.value.path == str(path)


def test_open_store_memory() -> None:
    s = open_store("memory://", name="t", partition=0, data_dir=None)
    assert isinstance(s, MemoryStore)


def test_open_store_rocksdb_under_data_dir(tmp_path: Path) -> None:
    with open_store("rocksdb://", name="demand", partition=3, data_dir=tmp_path) as s:
        assert isinstance(s, RocksDBStore)
        assert s.path == tmp_path / "stores" / "demand-3.rocksdb"
    assert (tmp_path / "stores" / "demand-3.rocksdb").is_dir()


def test_open_store_rocksdb_explicit_dir(tmp_path: Path) -> None:
    url = f"rocksdb://{tmp_path / 'elsewhere'}"
    assert url.startswith("rocksdb:///")
    with open_store(url, name="t", partition=0, data_dir=None) as s:
        assert s.path == tmp_path / "elsewhere" / "t-0.rocksdb"


def test_open_store_rocksdb_needs_data_dir() -> None:
    with pytest.raises(ValueError, match="data directory"):
        open_store("rocksdb://", name="t", partition=0, data_dir=None)


@pytest.mark.parametrize("url", ["redis://localhost", "rocksdb", "memory://x", "", "ROCKSDB://"])
def test_open_store_bad_url(url: str) -> None:
    with pytest.raises(ValueError, match=r"memory://.*rocksdb://") as info:
        open_store(url, name="t", partition=0, data_dir="/nonexistent")
    assert repr(url) in str(info.value)
    assert isinstance(info.value, InvalidStoreURLError)


def test_store_directory_is_where_the_url_opens_stores(tmp_path: Path) -> None:
    assert store_directory("memory://", data_dir=tmp_path) is None
    assert store_directory("rocksdb://", data_dir=tmp_path) == tmp_path / "stores"
    elsewhere = tmp_path / "elsewhere"
    assert store_directory(f"rocksdb://{elsewhere}", data_dir=None) == elsewhere
    with open_store("rocksdb://", name="t", partition=1, data_dir=tmp_path) as s:
        assert s.path.parent == store_directory("rocksdb://", data_dir=tmp_path)
    with pytest.raises(InvalidStoreURLError, match=r"memory://.*rocksdb://"):
        store_directory("redis://localhost", data_dir=tmp_path)
    with pytest.raises(InvalidStoreURLError, match="data directory"):
        store_directory("rocksdb://", data_dir=None)


@pytest.mark.parametrize("name", ["", "..", "a/b", "../x", "a b"])
def test_open_store_rejects_names_that_escape_the_directory(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name"):
        open_store("rocksdb://", name=name, partition=0, data_dir=tmp_path)
    assert not (tmp_path / "stores").exists()
