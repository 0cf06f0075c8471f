"""The state store interface behind tables, and `open_store` to pick one by URL.

A store maps bytes keys to bytes values for one table partition, and remembers the
changelog offset its contents reflect, so recovery replays the changelog only from
there.

Invariants:
- `apply(writes, offset)` is atomic: after a crash, a store holds either all of a
  call's writes and its offset, or none of them.
- `persisted_offset()` is the `offset` of the last `apply()`, or None if there was
  none since the store was created or cleared.
- `items()` yields only table keys, never the store's own bookkeeping.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from stores.errors import InvalidStoreURLError
from stores.memory import MemoryStore
from stores.rocksdb import RocksDBStore

__all__ = ["SCHEMES", "Store", "open_store", "store_directory", "store_path"]

SCHEMES = ("memory://", "rocksdb://")

_NAME = re.compile(r"[A-Za-z0-9._-]+")


@runtime_checkable
class Store(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def apply(self, writes: Mapping[bytes, bytes | None], offset: int) -> None:
        """Put each key (a None value deletes it) and persist `offset`, atomically.

        `offset` is the last changelog offset these writes came from.
        """
        ...

    def persisted_offset(self) -> int | None: ...

    def items(self) -> Iterator[tuple[bytes, bytes]]: ...

    def __len__(self) -> int: ...

    def clear(self) -> None:
        """Drop every key and the persisted offset."""
        ...

    def close(self) -> None:
        """Release the store; calling it again does nothing."""
        ...


def open_store(
    url: str,
    *,
    name: str,
    partition: int,
    data_dir: str | os.PathLike[str] | None,
) -> Store:
    """Open the store for partition `partition` of table `name`.

    - ``memory://``: a `MemoryStore`, nothing on disk.
    - ``rocksdb://``: a `RocksDBStore` at ``<data_dir>/stores/<name>-<partition>.rocksdb``.
    - ``rocksdb://DIR`` (e.g. ``rocksdb:///var/lib/app``): at ``DIR/<name>-<partition>.rocksdb``.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme == "memory" and not rest:
        return MemoryStore()
    if sep and scheme == "rocksdb":
        path = store_path(rest, name=name, partition=partition, data_dir=data_dir)
        return RocksDBStore(path, table=name, partition=partition)
    raise _unsupported(url)


def store_path(
    directory: str,
    *,
    name: str,
    partition: int,
    data_dir: str | os.PathLike[str] | None,
) -> Path:
    """Where a file-backed store of `name`/`partition` lives (see `open_store`)."""
    if not _NAME.fullmatch(name) or set(name) == {"."}:
        raise InvalidStoreURLError(
            f"store name {name!r} must be made of [a-zA-Z0-9._-] and not only dots"
        )
    if partition < 0:
        raise InvalidStoreURLError(f"partition must be >= 0, got {partition}")
    return _directory(directory, data_dir) / f"{name}-{partition}.rocksdb"


def store_directory(url: str, *, data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The directory that holds every store `url` opens (None: nothing on disk),
    which one process at a time may own."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme == "memory" and not rest:
        return None
    if sep and scheme == "rocksdb":
        return _directory(rest, data_dir)
    raise _unsupported(url)


def _unsupported(url: str) -> InvalidStoreURLError:
    return InvalidStoreURLError(
        f"unsupported store URL {url!r}: expected one of "
        "'memory://', 'rocksdb://' or 'rocksdb://DIR'"
    )


def _directory(directory: str, data_dir: str | os.PathLike[str] | None) -> Path:
    if directory:
        return Path(directory)
    if data_dir is not None:
        return Path(data_dir) / "stores"
    raise InvalidStoreURLError(
        "store URL 'rocksdb://' needs a data directory (or give one: 'rocksdb:///DIR')"
    )
