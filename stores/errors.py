"""Errors raised by state stores.

    StoreError
    ├── InvalidStoreURLError   a store URL with an unknown scheme or a bad path (also ValueError)
    ├── StoreOpenError         the backend could not open the store: held by another
    │                          process, corrupt, not permitted
    └── StoreClosedError       use of a store after close()

Each carries the `path` of the store when it has one.
"""

from __future__ import annotations

import os


class StoreError(Exception):
    path: str | None = None

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)


class InvalidStoreURLError(StoreError, ValueError):
    pass


class StoreOpenError(StoreError):
    pass


class StoreClosedError(StoreError):
    pass
