"""A RocksDB store (through rocksdict), one database directory per table partition.

Layout of the database:
- column family ``default``: the table, raw key bytes -> raw value bytes.
- column family ``streams-meta``: bookkeeping; key ``offset`` holds the last applied
  changelog offset as a big-endian signed 64-bit int.

`apply()` writes both column families in one WriteBatch, so the offset never runs
ahead of or behind the data it describes; a write RocksDB refuses (a full disk,
an I/O error) applies nothing and raises StoreWriteError naming the table and
partition: the caller stops, and recovery replays the changelog from the offset
that was persisted. The write-ahead log is on and writes are
not fsynced one by one: a crash loses at most the tail of the WAL, and recovery
replays the changelog from the offset that survived.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

from rocksdict import ColumnFamily, Options, Rdict, WriteBatch

from stores.errors import StoreClosedError, StoreOpenError, StoreWriteError

__all__ = ["RocksDBStore"]

logger = logging.getLogger(__name__)

META_COLUMN_FAMILY = "streams-meta"
_OFFSET_KEY = b"offset"
_OFFSET = struct.Struct(">q")


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_keep_log_file_num(2)
    return options


class RocksDBStore:
    """A table partition in a RocksDB database at `path` (created if missing).

    `table` and `partition` only name the store in errors."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str | None = None,
        partition: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.table = table
        self.partition = partition
        self._closed = False
        self._open()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = Rdict(
                str(self.path),
                _options(),
                column_families={META_COLUMN_FAMILY: Options(raw_mode=True)},
            )
        except Exception as exc:  # rocksdict raises bare Exception for IO errors and locks
            raise StoreOpenError(
                f"cannot open store at {self.path}: {exc}", path=self.path
            ) from exc
        self._meta: ColumnFamily | None = self._db.get_column_family_handle(META_COLUMN_FAMILY)
        raw = self._db.get_column_family(META_COLUMN_FAMILY).get(_OFFSET_KEY)
        self._offset: int | None = None if raw is None else _OFFSET.unpack(raw)[0]
        logger.debug("store opened path=%s offset=%s", self.path, self._offset)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store at {self.path} is closed", path=self.path)

    def get(self, key: bytes) -> bytes | None:
        if self._closed:
            self._check_open()
        return self._db.get(key)

    def apply(self, writes: Mapping[bytes, bytes | None], offset: int) -> None:
        self._check_open()
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        batch = WriteBatch(raw_mode=True)
        put = batch.put
        if None in writes.values():
            for key, value in writes.items():
                if value is None:
                    batch.delete(key)
                else:
                    put(key, value)
        else:  # no tombstone: the loop runs in C (put returns None, any() goes on)
            any(map(put, writes.keys(), writes.values()))
        batch.put(_OFFSET_KEY, _OFFSET.pack(offset), self._meta)
        try:
            self._db.write(batch)
        except Exception as exc:  # rocksdict raises bare Exception for IO errors
            raise self._write_error(exc) from exc
        self._offset = offset

    def _write_error(self, exc: Exception) -> StoreWriteError:
        where = "" if self.table is None else f"table {self.table!r} partition {self.partition}: "
        return StoreWriteError(
            f"{where}write to the store at {self.path} failed: {exc}",
            path=self.path,
            table=self.table,
            partition=self.partition,
        )

    def persisted_offset(self) -> int | None:
        self._check_open()
        return self._offset

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value; finish or drop the iterator before close()."""
        self._check_open()
        return iter(self._db.items())

    def __len__(self) -> int:
        self._check_open()
        return sum(1 for _ in self._db.keys())  # noqa: SIM118 (an Rdict is not iterable)

    def size_estimate(self) -> tuple[int, int]:
        """RocksDB's own estimates, at no cost: (keys, bytes in files and memtables).
        Overwrites and deletes not compacted yet count until they are."""
        self._check_open()
        db = self._db
        keys = db.property_int_value("rocksdb.estimate-num-keys") or 0
        files = db.property_int_value("rocksdb.total-sst-files-size") or 0
        memtables = db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0
        return keys, files + memtables

    def clear(self) -> None:
        """Delete the database directory and start an empty one in its place."""
        self._check_open()
        self._closed = True  # stays closed if the reopen below fails
        self._release()
        Rdict.destroy(str(self.path), _options())
        self._open()
        self._closed = False
        logger.info("store cleared path=%s", self.path)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._release()

    def _release(self) -> None:
        # RocksDB stays open (and locked) while any column family handle or iterator
        # on it lives: drop ours before closing.
        self._meta = None
        try:
            self._db.close()
        except Exception as exc:  # after a refused write RocksDB will not close cleanly
            logger.warning("store closed with an error path=%s error=%s", self.path, exc)

    def __enter__(self) -> RocksDBStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"offset={self._offset}"
        return f"<RocksDBStore {self.path} {state}>"
