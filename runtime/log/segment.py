"""One segment: a file of record batches plus its offset and time indexes.

File format: `<base>.log` (base = 20-digit zero-padded base offset) is record
batches v2 back to back, exactly as appended except for the patched base
offset. Indexes are described in index.py.

Invariants:
- base_offset <= the base offset of every batch in this segment, and every
  offset in it is below the base offset of the next segment.
- Batch offsets strictly increase; in a segment that was never compacted they
  are contiguous (each batch starts at the previous batch's next offset).
- `size` bytes are whole, valid batches: readers never look past `size`, and the
  appender moves `size` only after a write completed.
- Relative offsets and positions fit int32 (the partition rolls before they would not).
- `_starts` maps the base offset of each of the last RECENT_STARTS batches
  tracked to its (position, size): a consumer at the head asks for the offset
  after the last batch it got, which is the next batch's base offset, and
  is then found without scanning the batches after an index entry.
"""

from __future__ import annotations

import logging
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path

from runtime.errors import CorruptRecordError
from runtime.log.index import (
    INDEX_INTERVAL_BYTES,
    IndexCorruptError,
    OffsetIndex,
    TimeIndex,
    write_file_atomically,
)
from runtime.log.records import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    decode_batch,
    parse_header,
    validate_batch,
)
from runtime.log.storage import FileRegion, FileStorage, MemoryStorage, Storage

logger = logging.getLogger(__name__)

SCAN_CHUNK_BYTES = 64 * 1024
RECENT_STARTS = 512
RECOVERY_CHUNK_BYTES = 1 << 20
_MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD
_OFFSET_LENGTH = struct.Struct(">qi")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_LAST_OFFSET_DELTA_AT = 23
_MAX_TIMESTAMP_AT = 35


def segment_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


def delete_segment_files(directory: Path, base_offset: int) -> None:
    for suffix in (".log", ".index", ".timeindex"):
        (directory / segment_name(base_offset, suffix)).unlink(missing_ok=True)


class Segment:
    """A segment of a partition: its bytes, indexes and what is known of them."""

    __slots__ = (
        "_bytes_since_index",
        "_starts",
        "base_offset",
        "created_ms",
        "directory",
        "max_timestamp",
        "next_offset",
        "offset_index",
        "size",
        "storage",
        "time_index",
    )

    def __init__(self, base_offset: int, storage: Storage, directory: Path | None) -> None:
        self.base_offset = base_offset
        self.storage = storage
        self.directory = directory
        self.offset_index = OffsetIndex()
        self.time_index = TimeIndex()
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.created_ms: float | None = None
        self._bytes_since_index = 0
        self._starts: dict[int, tuple[int, int]] = {}

    # --- lifecycle -----------------------------------------------------------

    @classmethod
    def create(cls, directory: Path | None, base_offset: int) -> Segment:
        if directory is None:
            return cls(base_offset, MemoryStorage(), None)
        return cls(
            base_offset, FileStorage(directory / segment_name(base_offset, ".log")), directory
        )

    @classmethod
    def open_sealed(cls, directory: Path, base_offset: int, next_base: int) -> Segment:
        """Open a segment that is not the last, trusting its index files if they are sane.

        Raises IndexCorruptError (with the segment left open as `.args[1]`) otherwise."""
        segment = cls.create(directory, base_offset)
        segment.size = segment.storage.size()
        segment.next_offset = next_base
        try:
            segment._load_indexes()
        except (OSError, IndexCorruptError, CorruptRecordError) as exc:
            raise IndexCorruptError(str(exc), segment) from None
        return segment

    def _load_indexes(self) -> None:
        assert self.directory is not None
        data = (self.directory / segment_name(self.base_offset, ".index")).read_bytes()
        offset_index = OffsetIndex.from_bytes(data, self.size)
        data = (self.directory / segment_name(self.base_offset, ".timeindex")).read_bytes()
        time_index = TimeIndex.from_bytes(data)
        if self.size and not time_index:
            raise IndexCorruptError("time index is empty for a non-empty segment")
        if offset_index:  # the last entry must point at the batch it names
            position = offset_index.positions[-1]
            base, _ = _OFFSET_LENGTH.unpack_from(self.storage.read(position, 12))
            if base != self.base_offset + offset_index.offsets[-1]:
                raise IndexCorruptError("last offset index entry does not match the log")
        self.offset_index, self.time_index = offset_index, time_index
        self.max_timestamp = time_index.last_timestamp

    def recover(
        self,
        *,
        contiguous: bool,
        next_base: int | None = None,
        on_batch: Callable[[BatchHeader, memoryview], None] | None = None,
    ) -> int:
        """Validate every batch, truncate at the first bad one, rebuild the indexes.

        contiguous: batches must follow each other without offset gaps (true for a
        segment that was never compacted); next_base: the next segment's base
        offset, which no batch may reach; on_batch: called with each batch kept,
        in order. Returns the number of bytes truncated."""
        storage = self.storage
        size = storage.size()
        self.offset_index, self.time_index = OffsetIndex(), TimeIndex()
        self.size, self.next_offset, self.max_timestamp = 0, self.base_offset, -1
        self._bytes_since_index = 0
        self._starts = {}
        buf, buf_pos, pos = b"", 0, 0
        while pos < size:
            rel = pos - buf_pos
            if len(buf) - rel < HEADER_SIZE:
                buf, buf_pos, rel = storage.read(pos, RECOVERY_CHUNK_BYTES), pos, 0
            if len(buf) - rel < HEADER_SIZE:
                break
            (length,) = _INT32.unpack_from(buf, rel + 8)
            total = length + LOG_OVERHEAD
            if length < _MIN_BATCH_LENGTH or total > size - pos:
                break
            if len(buf) - rel < total:
                buf, buf_pos, rel = storage.read(pos, max(RECOVERY_CHUNK_BYTES, total)), pos, 0
            try:
                header = validate_batch(buf, rel)
            except CorruptRecordError:
                break
            if header.base_offset < self.next_offset or (
                contiguous and header.base_offset != self.next_offset
            ):
                break
            if next_base is not None and header.next_offset > next_base:
                break
            self.track(pos, header)
            if on_batch is not None:
                on_batch(header, memoryview(buf)[rel : rel + total])
            pos = self.size
        truncated = size - self.size
        if truncated:
            storage.truncate(self.size)
        return truncated

    def track(self, pos: int, header: BatchHeader) -> None:
        """Account for the batch just stored at `pos` (indexes, size, offsets)."""
        if self._bytes_since_index >= INDEX_INTERVAL_BYTES:
            self.offset_index.append(header.base_offset - self.base_offset, pos)
            self.time_index.maybe_append(self.max_timestamp, header.base_offset - self.base_offset)
            self._bytes_since_index = 0
        self._bytes_since_index += header.size
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
        self.size = pos + header.size
        self.next_offset = header.next_offset
        starts = self._starts
        starts[header.base_offset] = (pos, header.size)
        if len(starts) > RECENT_STARTS:
            del starts[next(iter(starts))]

    def append(
        self, base_offset: int, header: BatchHeader, batch: memoryview, *, sync: bool = False
    ) -> None:
        """Store one validated batch whose base offset becomes `base_offset`, fsynced
        if `sync`. On an OSError nothing changed: the storage cut its bytes off."""
        pos = self.size
        self.storage.append(_INT64.pack(base_offset), batch[8:], sync=sync)
        self.track(pos, _Rebased(header, base_offset))  # type: ignore[arg-type]

    def seal(self, *, sync: bool) -> None:
        """Finish the indexes and, on disk, write them and fsync (roll, close)."""
        self.time_index.maybe_append(self.max_timestamp, self.next_offset - self.base_offset)
        if self.directory is None:
            return
        if sync:
            self.storage.sync()
        self.write_indexes(sync=sync)

    def write_indexes(self, *, sync: bool, suffix: str = "") -> None:
        assert self.directory is not None
        base = self.base_offset
        write_file_atomically(
            self.directory / segment_name(base, ".index" + suffix),
            self.offset_index.to_bytes(),
            sync=sync,
        )
        write_file_atomically(
            self.directory / segment_name(base, ".timeindex" + suffix),
            self.time_index.to_bytes(),
            sync=sync,
        )

    def close(self) -> None:
        self.storage.close()

    def delete_files(self) -> None:
        """Unlink this segment's files; readers holding it keep reading the old bytes."""
        if self.directory is not None:
            delete_segment_files(self.directory, self.base_offset)

    # --- reads ---------------------------------------------------------------

    def batches(self, pos: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
        """Yield (position, size, base_offset, last_offset, max_timestamp) from pos to end."""
        storage = self.storage
        while end - pos >= HEADER_SIZE:
            chunk = storage.read(pos, min(SCAN_CHUNK_BYTES, end - pos))
            p, n = 0, len(chunk)
            while n - p >= HEADER_SIZE:
                base, length = _OFFSET_LENGTH.unpack_from(chunk, p)
                if length < _MIN_BATCH_LENGTH:
                    raise CorruptRecordError(
                        f"batch at position {pos + p} of segment {self.base_offset} "
                        f"has length {length}",
                        offset=base,
                    )
                (delta,) = _INT32.unpack_from(chunk, p + _LAST_OFFSET_DELTA_AT)
                (max_ts,) = _INT64.unpack_from(chunk, p + _MAX_TIMESTAMP_AT)
                yield pos + p, length + LOG_OVERHEAD, base, base + delta, max_ts
                p += length + LOG_OVERHEAD
            pos += p

    def headers(self) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of every batch stored here, in order (a read per
        chunk, not per batch)."""
        storage, pos, end = self.storage, 0, self.size
        while end - pos >= HEADER_SIZE:
            chunk = storage.read(pos, min(SCAN_CHUNK_BYTES, end - pos))
            p, n = 0, len(chunk)
            while n - p >= HEADER_SIZE:
                header = parse_header(chunk, p)
                if header.batch_length < _MIN_BATCH_LENGTH:
                    raise CorruptRecordError(
                        f"batch at position {pos + p} of segment {self.base_offset} "
                        f"has length {header.batch_length}",
                        offset=header.base_offset,
                    )
                yield pos + p, header
                p += header.size
            pos += p

    def locate(self, offset: int, end: int) -> tuple[int, int] | None:
        """(position, size) of the first batch holding an offset >= `offset`."""
        recent = self._starts.get(offset)
        if recent is not None and recent[0] + recent[1] <= end:
            return recent
        start = self.offset_index.lookup(offset - self.base_offset)
        for pos, size, _, last, _ in self.batches(start, end):
            if last >= offset:
                return pos, size
        return None

    def extent(
        self, offset: int, max_bytes: int, *, first_whole: bool, end_offset: int | None = None
    ) -> tuple[int, int, bool] | None:
        """Where the whole batches from the one holding `offset`, up to max_bytes, are.

        first_whole: include the first batch even if it is larger than max_bytes;
        end_offset: stop before the batch that starts there (a batch boundary).
        Returns (position, size, reached_end_of_segment), or None when no batch
        here holds an offset >= `offset`."""
        end = self.size
        if end_offset is not None and end_offset < self.next_offset:
            stop = self.locate(end_offset, end)
            if stop is not None:
                end = stop[0]
        found = self.locate(offset, end)
        if found is None:
            return None
        pos, first_size = found
        limit = pos + min(max(first_size, max_bytes) if first_whole else max_bytes, end - pos)
        # `end` is a batch boundary (the size, or a batch's start): nothing to scan up to it
        stop = end if limit == end else self._whole_batches_end(pos, limit)
        return pos, stop - pos, stop >= end

    def _whole_batches_end(self, pos: int, limit: int) -> int:
        """End of the last whole batch in [pos, limit), pos being a batch start.

        Starts from the last indexed batch before `limit`, so only the batches
        after it are read (a header each), not the bytes in between."""
        positions = self.offset_index.positions
        i = bisect_right(positions, limit) - 1
        if i >= 0 and positions[i] > pos:
            pos = positions[i]
        storage = self.storage
        while limit - pos >= LOG_OVERHEAD:
            chunk = storage.read(pos, min(SCAN_CHUNK_BYTES, limit - pos))
            p, n = 0, len(chunk)
            while n - p >= LOG_OVERHEAD:
                size = _INT32.unpack_from(chunk, p + 8)[0] + LOG_OVERHEAD
                if size < HEADER_SIZE:
                    raise CorruptRecordError(
                        f"batch at position {pos + p} of segment {self.base_offset} "
                        f"has length {size - LOG_OVERHEAD}"
                    )
                if pos + p + size > limit:
                    return pos + p
                p += size
            pos += p
        return pos

    def read(
        self, offset: int, max_bytes: int, *, first_whole: bool, end_offset: int | None = None
    ) -> tuple[bytes, bool]:
        """Whole batches from the one holding `offset`, up to max_bytes (see extent).

        Returns (data, reached_end_of_segment)."""
        found = self.extent(offset, max_bytes, first_whole=first_whole, end_offset=end_offset)
        if found is None:
            return b"", True
        pos, size, at_end = found
        return (self.storage.read(pos, size) if size else b""), at_end

    def read_chunk(
        self, offset: int, max_bytes: int, *, first_whole: bool, end_offset: int | None = None
    ) -> tuple[bytes | FileRegion, bool]:
        """Like read, but a large answer from a file is a FileRegion, not bytes."""
        found = self.extent(offset, max_bytes, first_whole=first_whole, end_offset=end_offset)
        if found is None:
            return b"", True
        pos, size, at_end = found
        return (self.storage.region(pos, size) if size else b""), at_end

    def offset_for_timestamp(self, timestamp_ms: int) -> int | None:
        """Earliest offset in this segment whose record timestamp >= timestamp_ms."""
        if self.max_timestamp < timestamp_ms:
            return None
        start = self.offset_index.lookup(self.time_index.lookup(timestamp_ms))
        for pos, size, _, _, max_ts in self.batches(start, self.size):
            if max_ts >= timestamp_ms:
                for record in decode_batch(self.storage.read(pos, size)):
                    if record.timestamp_ms >= timestamp_ms:
                        return record.offset
        return None


class _Rebased:
    """A batch header seen with a new base offset (what `track` needs of it)."""

    __slots__ = ("base_offset", "max_timestamp", "next_offset", "size")

    def __init__(self, header: BatchHeader, base_offset: int) -> None:
        self.base_offset = base_offset
        self.size = header.size
        self.max_timestamp = header.max_timestamp
        self.next_offset = base_offset + header.last_offset_delta + 1
