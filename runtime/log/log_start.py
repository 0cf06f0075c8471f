"""The log start offset a partition was moved to (DeleteRecords), retention's choice
of segments to delete, and the record with the newest timestamp (ListOffsets
MAX_TIMESTAMP).

File format: `<partition dir>/log-start-offset`, the offset in ASCII decimal,
replaced atomically (index.write_file_atomically). Without the file the log
starts at its first segment's base offset.

Invariant: a partition's log start offset is max(this file, first segment's base
offset), never above the high watermark: what a reader below it gets is
OFFSET_OUT_OF_RANGE, what ListOffsets EARLIEST answers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from runtime.log.config import TopicConfig
from runtime.log.index import write_file_atomically
from runtime.log.records import decode_batch
from runtime.log.segment import Segment

LOG_START_FILE = "log-start-offset"


def load_log_start(directory: Path | None) -> int:
    """The stored log start offset, or 0 when there is none (or it does not parse)."""
    if directory is None:
        return 0
    with contextlib.suppress(FileNotFoundError, ValueError):
        return max(int((directory / LOG_START_FILE).read_text("ascii").strip()), 0)
    return 0


def save_log_start(directory: Path | None, offset: int) -> None:
    """Persist the log start offset; OSError if the disk refuses (then nothing changed)."""
    if directory is not None:
        write_file_atomically(directory / LOG_START_FILE, str(offset).encode("ascii"))


def retention_doomed(segments: Sequence[Segment], config: TopicConfig, now_ms: float) -> int:
    """How many of the oldest segments retention deletes: those whose newest record
    is past retention.ms, or that take the partition over retention.bytes. The
    active (last) segment is never one of them."""
    candidates = segments[:-1]
    doomed = 0
    if config.retention_ms >= 0:
        horizon = now_ms - config.retention_ms
        while doomed < len(candidates) and candidates[doomed].max_timestamp < horizon:
            doomed += 1
    if config.retention_bytes >= 0:
        excess = sum(s.size for s in segments) - config.retention_bytes
        by_size = 0
        for segment in candidates:
            if excess - segment.size < 0:
                break
            excess -= segment.size
            by_size += 1
        doomed = max(doomed, by_size)
    return doomed


def wholly_below(segments: Sequence[Segment], offset: int) -> int:
    """How many of the oldest non-active segments hold only offsets below `offset`."""
    count = 0
    for segment in segments[:-1]:
        if segment.next_offset > offset:
            break
        count += 1
    return count


def max_timestamp_offset(segments: Sequence[Segment], start: int) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record at or after `start` with the newest
    timestamp, or None for an empty log."""
    live = [s for s in segments if s.size and s.next_offset > start]
    if not live:
        return None
    newest = max(s.max_timestamp for s in live)
    segment = next(s for s in live if s.max_timestamp == newest)
    for pos, size, _, last, max_ts in segment.batches(0, segment.size):
        if max_ts == newest and last >= start:
            for record in decode_batch(segment.storage.read(pos, size)):
                if record.timestamp_ms == newest and record.offset >= start:
                    return record.offset, newest
    return None
