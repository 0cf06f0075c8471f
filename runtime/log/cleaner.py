"""Compaction of cleanup.policy=compact partitions.

A pass over one partition:
1. Cleanable segments: the non-active segments, oldest first, up to the first
   whose max timestamp is newer than now - min_compaction_lag_ms. The pass runs
   only if the dirty ones (past the offset the last pass reached, kept in memory:
   after a restart all are dirty) are at least min.cleanable.dirty.ratio of their
   bytes, or the first dirty one is older than max.compaction.lag.ms.
2. Map every key in them to its newest offset.
3. Rewrite each cleanable segment keeping a record if its key is null or it is
   the newest of its key, and dropping a tombstone (null value) whose timestamp
   is older than now - delete_retention_ms. A batch kept whole is copied as it
   is; a batch losing records is re-encoded (uncompressed) with the same offsets
   and timestamps. The result goes to `<base>.log.cleaned` (and
   `.index.cleaned`, `.timeindex.cleaned`), fsynced.
4. Swap under the partition lock: unlink the old indexes, rename the cleaned log
   over the old one, rename the cleaned indexes. A crash leaves either the old
   segment, or the new log with missing indexes (rebuilt on open); leftover
   `.cleaned` files are removed on open. Readers still holding the old segment
   keep reading its (now unlinked) file. A rewrite that fails (a full disk)
   removes its `.cleaned` files at once and raises StorageError; the old
   segment stays as it was.

Invariants: offsets, timestamps, the high watermark and the log start offset
never change; a segment emptied by cleaning is dropped, except the first (it
keeps the log start offset); the active segment is never touched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from runtime.errors import StorageError
from runtime.log.partition import Partition
from runtime.log.records import (
    Record,
    decode_batch,
    encode_batch_with_offsets,
    iter_batches,
    parse_header,
)
from runtime.log.segment import Segment, delete_segment_files, segment_name
from runtime.log.storage import FileStorage, MemoryStorage, fsync_dir

logger = logging.getLogger(__name__)


def clean_partition(
    partition: Partition, now_ms: float, should_stop: Callable[[], bool] = lambda: False
) -> int:
    """Compact one partition; returns the bytes reclaimed."""
    config = partition.config
    with partition.maintenance_lock:
        if partition.closed:
            return 0
        segments = partition.segments
        lag_horizon = now_ms - config.min_compaction_lag_ms
        cleanable: list[Segment] = []
        for segment in segments[:-1]:
            if segment.max_timestamp > lag_horizon:
                break
            cleanable.append(segment)
        if not cleanable or not _due(partition, cleanable, now_ms):
            return 0
        newest, tombstones = _newest_offsets(cleanable)
        tombstone_horizon = now_ms - config.delete_retention_ms
        kept = [ts for ts in tombstones.values() if ts >= tombstone_horizon]
        # the tombstones this pass keeps are due for removal by a later one
        partition.tombstones_due_ms = min(kept) + config.delete_retention_ms if kept else None
        reclaimed = 0
        for segment in cleanable:
            if should_stop() or partition.closed:
                break
            keep_empty = segment is partition.segments[0]
            reclaimed += _clean_segment(partition, segment, newest, tombstone_horizon, keep_empty)
        if not partition.closed:
            partition.cleaned_up_to = cleanable[-1].next_offset
        if reclaimed:
            logger.info(
                "compacted topic=%s partition=%d reclaimed_bytes=%d",
                partition.tp.topic,
                partition.tp.partition,
                reclaimed,
            )
        return reclaimed


def _due(partition: Partition, cleanable: list[Segment], now_ms: float) -> bool:
    """Whether the dirty part (the segments past the last pass) is worth a pass:
    at least min.cleanable.dirty.ratio of the cleanable bytes, or holding records
    older than max.compaction.lag.ms; or tombstones kept by a pass are due to go."""
    config = partition.config
    due = partition.tombstones_due_ms
    if due is not None and now_ms >= due:
        return True
    dirty = [s for s in cleanable if s.next_offset > partition.cleaned_up_to]
    if not dirty:
        return False
    total = sum(s.size for s in cleanable)
    if total and sum(s.size for s in dirty) / total >= config.min_cleanable_dirty_ratio:
        return True
    # a segment's newest timestamp stands for its records: lag is counted from it
    return now_ms - dirty[0].max_timestamp > config.max_compaction_lag_ms


def _newest_offsets(segments: list[Segment]) -> tuple[dict[bytes, int], dict[bytes, int]]:
    """Each key's newest offset, and the timestamp of each key whose newest record
    is a tombstone."""
    newest: dict[bytes, int] = {}
    tombstones: dict[bytes, int] = {}
    for segment in segments:
        data = segment.storage.read(0, segment.size)
        for pos, _ in iter_batches(data):
            for record in decode_batch(data, pos):
                if record.key is not None:
                    newest[record.key] = record.offset
                    if record.value is None:
                        tombstones[record.key] = record.timestamp_ms
                    else:
                        tombstones.pop(record.key, None)
    return newest, tombstones


def _clean_segment(
    partition: Partition,
    segment: Segment,
    newest: dict[bytes, int],
    tombstone_horizon: float,
    keep_empty: bool,
) -> int:
    data = segment.storage.read(0, segment.size)
    chunks: list[bytes | bytearray] = []
    changed = False
    for pos, header in iter_batches(data):
        if header.is_control:
            chunks.append(data[pos : pos + header.size])
            continue
        records = decode_batch(data, pos)
        kept = [r for r in records if _keep(r, newest, tombstone_horizon)]
        if len(kept) == len(records):
            chunks.append(data[pos : pos + header.size])
            continue
        changed = True
        if kept:
            chunks.append(
                encode_batch_with_offsets(
                    kept,
                    producer_id=header.producer_id,
                    producer_epoch=header.producer_epoch,
                )
            )
    if not changed:
        return 0
    if not chunks and not keep_empty:
        return _drop(partition, segment)
    try:
        cleaned = _write_cleaned(segment, chunks)
    except OSError as exc:
        raise StorageError.from_os_error(
            "compaction", exc, topic=partition.tp.topic, partition=partition.tp.partition
        ) from exc
    if not partition.swap_segment(segment, cleaned, lambda: _install(segment)):
        _discard(cleaned)
        return 0
    return segment.size - cleaned.size


def _keep(record: Record, newest: dict[bytes, int], tombstone_horizon: float) -> bool:
    if record.key is None:
        return True
    if newest.get(record.key) != record.offset:
        return False
    return record.value is not None or record.timestamp_ms >= tombstone_horizon


def _write_cleaned(old: Segment, chunks: list[bytes | bytearray]) -> Segment:
    directory = old.directory
    if directory is None:
        storage: FileStorage | MemoryStorage = MemoryStorage()
    else:
        path = directory / segment_name(old.base_offset, ".log.cleaned")
        path.unlink(missing_ok=True)
        storage = FileStorage(path)
    cleaned = Segment(old.base_offset, storage, directory)
    try:
        for chunk in chunks:
            pos = cleaned.size
            storage.write(chunk)
            cleaned.track(pos, parse_header(chunk))
        cleaned.next_offset = old.next_offset
        cleaned.created_ms = old.created_ms
        cleaned.time_index.maybe_append(cleaned.max_timestamp, old.next_offset - old.base_offset)
        if directory is not None:
            storage.sync()
            cleaned.write_indexes(sync=True, suffix=".cleaned")
    except BaseException:
        _discard(cleaned)  # on a full disk, the space it took is wanted back now
        raise
    return cleaned


def _install(old: Segment) -> None:
    directory = old.directory
    if directory is None:
        return
    name = old.base_offset
    (directory / segment_name(name, ".index")).unlink(missing_ok=True)
    (directory / segment_name(name, ".timeindex")).unlink(missing_ok=True)
    for suffix in (".log", ".index", ".timeindex"):
        os.replace(
            directory / segment_name(name, suffix + ".cleaned"),
            directory / segment_name(name, suffix),
        )
    fsync_dir(directory)


def _drop(partition: Partition, segment: Segment) -> int:
    def unlink() -> None:
        if segment.directory is not None:
            delete_segment_files(segment.directory, segment.base_offset)

    return segment.size if partition.swap_segment(segment, None, unlink) else 0


def _discard(cleaned: Segment) -> None:
    cleaned.close()
    if cleaned.directory is not None:
        for suffix in (".log", ".index", ".timeindex"):
            path = cleaned.directory / segment_name(cleaned.base_offset, suffix + ".cleaned")
            path.unlink(missing_ok=True)
