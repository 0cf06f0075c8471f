"""Append-only byte stores behind a segment: one file, or one bytearray.

Invariants:
- Bytes are only ever appended, or cut off at the end by truncate() (recovery).
- read(pos, n) returns at most n bytes and never blocks appenders: files are read
  with os.pread on the same descriptor the appender writes through O_APPEND.
- A store that is no longer in a partition's segment list is not closed
  explicitly: readers that still hold it keep reading the old bytes (an unlinked
  file stays readable), and the descriptor is closed when the last reference
  goes away.
"""

from __future__ import annotations

import os
from pathlib import Path


class FileStorage:
    """Bytes of one segment file, written through O_APPEND, read with pread."""

    __slots__ = ("_fd", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def append(self, head: bytes, rest: memoryview) -> None:
        """Write head + rest as one write (head is the patched base offset)."""
        want = len(head) + len(rest)
        written = os.writev(self._fd, (head, rest))
        if written != want:  # short writes are rare: finish byte by byte
            data = memoryview(head + bytes(rest))[written:]
            while data:
                data = data[os.write(self._fd, data) :]

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def read(self, pos: int, n: int) -> bytes:
        return os.pread(self._fd, n, pos)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            self._fd = -1
            os.close(fd)


class MemoryStorage:
    """Bytes of one in-memory segment."""

    __slots__ = ("_buf", "path")

    def __init__(self, data: bytes | bytearray = b"") -> None:
        self.path = None
        self._buf = bytearray(data)

    def size(self) -> int:
        return len(self._buf)

    def append(self, head: bytes, rest: memoryview) -> None:
        self._buf += head
        self._buf += rest

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    def read(self, pos: int, n: int) -> bytes:
        return bytes(self._buf[pos : pos + n])

    def truncate(self, size: int) -> None:
        del self._buf[size:]

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


Storage = FileStorage | MemoryStorage


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
