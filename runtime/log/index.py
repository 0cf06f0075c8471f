"""Sparse offset index and time index of one segment.

File formats (big-endian, one fixed-size entry after another, no header):

    <base>.index      relative_offset int32, position int32          (8 bytes)
    <base>.timeindex  timestamp_ms int64, relative_offset int32      (12 bytes)

Offsets are relative to the segment's base offset. An offset entry points at
the start of a batch whose base offset is base + relative_offset; entries are
added at most every index_interval_bytes of log. A time entry (t, o) says every
record at an offset <= base + o has a timestamp <= t.

Invariants (checked by `load`, which rejects a file that breaks them):
- relative offsets strictly increase; positions strictly increase and are
  below the segment's size.
- timestamps strictly increase; relative offsets never decrease.

Indexes live in memory while a segment is open and are written whole, when a
segment is sealed (roll, close) or rewritten (compaction). The active segment's
indexes are rebuilt from the log on open.
"""

from __future__ import annotations

import contextlib
import os
import struct
from array import array
from bisect import bisect_right
from pathlib import Path

INDEX_INTERVAL_BYTES = 4096
_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")


class IndexCorruptError(ValueError):
    """An index file that breaks its invariants (it is then rebuilt)."""


class OffsetIndex:
    """Relative offset -> file position, sparse."""

    __slots__ = ("offsets", "positions")

    def __init__(self) -> None:
        self.offsets = array("i")
        self.positions = array("i")

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, relative_offset: int, position: int) -> None:
        self.offsets.append(relative_offset)
        self.positions.append(position)

    def lookup(self, relative_offset: int) -> int:
        """Position of the last indexed batch starting at or before the offset (else 0)."""
        i = bisect_right(self.offsets, relative_offset)
        return self.positions[i - 1] if i else 0

    def to_bytes(self) -> bytes:
        out = bytearray()
        for entry in zip(self.offsets, self.positions, strict=True):
            out += _OFFSET_ENTRY.pack(*entry)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes, segment_bytes: int) -> OffsetIndex:
        if len(data) % _OFFSET_ENTRY.size:
            raise IndexCorruptError(f"offset index size {len(data)} is not a multiple of 8")
        index = cls()
        last_offset = last_position = -1
        for offset, position in _OFFSET_ENTRY.iter_unpack(data):
            if offset <= last_offset or position <= last_position or position >= segment_bytes:
                raise IndexCorruptError(f"offset index entry ({offset}, {position}) out of order")
            index.append(offset, position)
            last_offset, last_position = offset, position
        return index


class TimeIndex:
    """Timestamp -> relative offset, sparse; timestamps strictly increase."""

    __slots__ = ("offsets", "timestamps")

    def __init__(self) -> None:
        self.timestamps = array("q")
        self.offsets = array("i")

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def last_timestamp(self) -> int:
        return self.timestamps[-1] if self.timestamps else -1

    def maybe_append(self, timestamp_ms: int, relative_offset: int) -> None:
        if timestamp_ms > self.last_timestamp:
            self.timestamps.append(timestamp_ms)
            self.offsets.append(relative_offset)

    def lookup(self, timestamp_ms: int) -> int:
        """Relative offset from which a scan for timestamp_ms may start (else 0).

        Every record before the returned offset has a timestamp < timestamp_ms."""
        i = bisect_right(self.timestamps, timestamp_ms - 1)
        return self.offsets[i - 1] if i else 0

    def to_bytes(self) -> bytes:
        out = bytearray()
        for entry in zip(self.timestamps, self.offsets, strict=True):
            out += _TIME_ENTRY.pack(*entry)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> TimeIndex:
        if len(data) % _TIME_ENTRY.size:
            raise IndexCorruptError(f"time index size {len(data)} is not a multiple of 12")
        index = cls()
        last_offset = 0
        for timestamp, offset in _TIME_ENTRY.iter_unpack(data):
            if timestamp <= index.last_timestamp or offset < last_offset:
                raise IndexCorruptError(f"time index entry ({timestamp}, {offset}) out of order")
            index.maybe_append(timestamp, offset)
            last_offset = offset
        return index


def write_file_atomically(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Write data to path via a temporary file and a rename.

    On any failure (a full disk, EIO) the OSError propagates, `path` is left as
    it was and the temporary file is removed: it would hold space a full disk
    needs back."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
