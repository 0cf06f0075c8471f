"""A store held in a dict: for tests, notebooks and tables that recover from scratch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from stores.errors import StoreClosedError

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keys and the persisted offset in process memory; gone on close()."""

    __slots__ = ("_closed", "_data", "_offset")

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._offset: int | None = None
        self._closed = False

    def get(self, key: bytes) -> bytes | None:
        if self._closed:
            raise StoreClosedError("memory store is closed")
        return self._data.get(key)

    def apply(self, writes: Mapping[bytes, bytes | None], offset: int) -> None:
        if self._closed:
            raise StoreClosedError("memory store is closed")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        data = self._data
        for key, value in writes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self._offset = offset

    def persisted_offset(self) -> int | None:
        if self._closed:
            raise StoreClosedError("memory store is closed")
        return self._offset

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        if self._closed:
            raise StoreClosedError("memory store is closed")
        return iter(list(self._data.items()))

    def __len__(self) -> int:
        if self._closed:
            raise StoreClosedError("memory store is closed")
        return len(self._data)

    def clear(self) -> None:
        if self._closed:
            raise StoreClosedError("memory store is closed")
        self._data.clear()
        self._offset = None

    def close(self) -> None:
        self._closed = True
        self._data = {}
        self._offset = None

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"keys={len(self._data)} offset={self._offset}"
        return f"<MemoryStore {state}>"
