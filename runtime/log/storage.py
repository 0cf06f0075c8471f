"""Append-only byte stores behind a segment: one file, or one bytearray.

Invariants:
- Bytes are only ever appended, or cut off at the end by truncate() (recovery).
- append() is all or nothing: when a write (or the fsync asked with it) fails,
  the OSError propagates and the store is cut back to its size before the
  call; if even that cut fails, the store remembers it is dirty and cuts the
  garbage off before the next append, which refuses to write after garbage.
  size() is the size of the whole appends only, whatever the file holds beyond.
- read(pos, n) returns at most n bytes and never blocks appenders: files are read
  with os.pread on the same descriptor the appender writes through O_APPEND.
- A store that is no longer in a partition's segment list is not closed
  explicitly: readers that still hold it keep reading the old bytes (an unlinked
  file stays readable), and the descriptor is closed when the last reference
  goes away.
- A FileRegion reads through a descriptor of its own (a dup, shared by the
  regions of one file), closed when the last region and the store are gone: a
  region being sent stays valid even if its store is closed meanwhile.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

SENDFILE_BYTES_MIN = 64 * 1024
"""Reads at least this large become FileRegions (sent with sendfile); smaller
ones are read into bytes, which costs less than a sendfile round."""


class _Handle:
    """A read-only descriptor that closes itself when the last holder lets go."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __del__(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


class FileRegion:
    """`size` bytes at `position` of a segment file, to be sent without copying.

    Has what asyncio's loop.sendfile needs of a file (fileno); the bytes it
    names are whole stored batches, which are never rewritten in place."""

    __slots__ = ("_handle", "position", "size")

    def __init__(self, handle: _Handle, position: int, size: int) -> None:
        self._handle = handle
        self.position = position
        self.size = size

    def __len__(self) -> int:
        return self.size

    def fileno(self) -> int:
        return self._handle.fd

    def read(self) -> bytes:
        """The bytes themselves (where sendfile is not available)."""
        return os.pread(self._handle.fd, self.size, self.position)


class FileStorage:
    """Bytes of one segment file, written through O_APPEND, read with pread."""

    __slots__ = ("_dirty", "_fd", "_reader", "_size", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._reader: _Handle | None = None
        self._size = os.fstat(self._fd).st_size
        self._dirty = False  # the file may hold bytes past _size (a failed append)

    def size(self) -> int:
        return self._size

    def append(self, head: bytes, rest: memoryview, *, sync: bool = False) -> None:
        """Write head + rest as one write (head is the patched base offset), then
        fsync if asked; all or nothing (see the module invariants)."""
        if self._dirty:
            self._cut(self._size)  # raises while the garbage cannot be cut off
        start = self._size
        try:
            want = len(head) + len(rest)
            written = os.writev(self._fd, (head, rest))
            if written != want:  # a short write: a disk filling up, a signal
                data = memoryview(head + bytes(rest))[written:]
                while data:
                    data = data[os.write(self._fd, data) :]
            if sync:
                self.sync()
        except BaseException:
            self._roll_back(start)
            raise
        self._size = start + want

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append data (rewrites by the cleaner); all or nothing like append."""
        if self._dirty:
            self._cut(self._size)
        start = self._size
        view = memoryview(data).cast("B")
        total = view.nbytes
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except BaseException:
            self._roll_back(start)
            raise
        self._size = start + total

    def _roll_back(self, size: int) -> None:
        # Shrinking a file needs no space, so this succeeds on a full disk; if
        # it fails anyway, the next append retries it before writing.
        try:
            self._cut(size)
        except OSError as exc:
            logger.warning(
                "cannot cut a failed append off yet path=%s size=%d error=%r", self.path, size, exc
            )

    def _cut(self, size: int) -> None:
        self._dirty = True
        os.ftruncate(self._fd, size)
        self._dirty = False

    def read(self, pos: int, n: int) -> bytes:
        return os.pread(self._fd, n, pos)

    def region(self, pos: int, n: int) -> bytes | FileRegion:
        """Bytes [pos, pos + n) as a FileRegion if large, else read."""
        if n < SENDFILE_BYTES_MIN:
            return os.pread(self._fd, n, pos)
        if self._reader is None:
            if self._fd < 0:
                raise ValueError(f"{self.path} is closed")
            self._reader = _Handle(os.dup(self._fd))
        return FileRegion(self._reader, pos, n)

    def truncate(self, size: int) -> None:
        self._cut(size)
        self._size = size

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        self._reader = None  # regions still being sent keep it open
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

    def append(self, head: bytes, rest: memoryview, *, sync: bool = False) -> None:
        self._buf += head
        self._buf += rest

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    def read(self, pos: int, n: int) -> bytes:
        return bytes(self._buf[pos : pos + n])

    def region(self, pos: int, n: int) -> bytes:
        return self.read(pos, n)

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
