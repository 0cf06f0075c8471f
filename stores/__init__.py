"""State stores behind tables: bytes in, bytes out, plus the changelog offset they reflect."""

from stores.base import Store, open_store, store_directory
from stores.errors import (
    InvalidStoreURLError,
    StoreClosedError,
    StoreError,
    StoreOpenError,
    StoreWriteError,
)
from stores.memory import MemoryStore
from stores.rocksdb import RocksDBStore

__all__ = [
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
