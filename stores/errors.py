"""Errors raised by state stores.

    StoreError
    ├── InvalidStoreURLError   a store URL with an unknown scheme or a bad path (also ValueError)
    ├── StoreOpenError         the backend could not open the store: held by another
    │                          process, corrupt, not permitted
    ├── StoreWriteError        the backend refused a write (a full disk, an I/O error):
    │                          the store holds what it held before the call
    └── StoreClosedError       use of a store after close()

Each carries the `path` of the store when it has one, and the `table` and
`partition` it belongs to when it was opened for one.
"""

from __future__ import annotations

import os


class StoreError(Exception):
    path: str | None = None
    table: str | None = None
    partition: int | None = None

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        table: str | None = None,
        partition: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)
        self.table = table
        self.partition = partition


class InvalidStoreURLError(StoreError, ValueError):
    pass


class StoreOpenError(StoreError):
    pass


class StoreWriteError(StoreError):
    pass


class StoreClosedError(StoreError):
    pass
