"""The ordered segments of one topic partition: append, read, roll, retention.

Directory format: `<data dir>/<topic>-<partition>/` holding, per segment,
`<base>.log`, `<base>.index` and `<base>.timeindex` (see segment.py, index.py),
and `<base>.snapshot`, the idempotent producers' state as of the active
segment's base offset (producer_snapshots.py), and `log-start-offset` once
DeleteRecords moved it (log_start.py). Opening one is loader.py's.

Invariants:
- `segments` is never empty and sorted by base offset; the last one is the
  active segment, the only one appended to, never deleted nor compacted.
- segments[0].base_offset <= log_start_offset <= high_watermark == active.next_offset;
  the log start offset moves up only (retention, DeleteRecords: log_start.py), and
  no segment but the one holding it (or the active one) lies wholly below it.
- The segment list is replaced, never changed in place, under `_lock`; readers
  take the current list without locking and read from it, so retention and
  compaction never block them and never pull bytes from under them.
- `_lock` covers appends and segment-list swaps; `maintenance_lock` keeps
  retention and compaction of the partition one at a time.
- `producers` reflects every idempotent batch in the log: the sequence check
  and the append happen under `_lock` together, so a retried batch is never
  stored twice, also after a restart (the state is rebuilt on open); a batch
  that could not be stored changes no producer state.
- A write, fsync or roll that fails (OSError: ENOSPC, EIO) raises StorageError
  and changes nothing: the segment is cut back to its size before the append
  (storage.py), a failed roll leaves the old active segment active and no file
  of the new one behind. The next append tries again, so a partition takes
  writes again as soon as the disk does, without a restart.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path

from runtime.errors import (
    LogClosedError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    ProducerFencedError,
    StorageError,
)
from runtime.log.append_checks import check_client_batch
from runtime.log.config import FlushPolicy, TopicConfig
from runtime.log.loader import load_partition
from runtime.log.log_start import (
    load_log_start,
    max_timestamp_offset,
    retention_doomed,
    save_log_start,
    wholly_below,
)
from runtime.log.producer_snapshots import (
    write_snapshot,
)
from runtime.log.producer_state import (
    ProducerStates,
    Verdict,
    is_idempotent,
)
from runtime.log.records import (
    CONTROL_ABORT,
    CONTROL_COMMIT,
    BatchHeader,
    encode_control_batch,
    validate_batch,
)
from runtime.log.segment import Segment, delete_segment_files
from runtime.log.storage import FileRegion, fsync_dir
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

_INT32_MAX = 2**31 - 1


class Partition:
    """One topic partition: the ordered segments of its log."""

    def __init__(
        self,
        tp: TopicPartition,
        directory: Path | None,
        config: TopicConfig,
        flush: FlushPolicy,
        clock: Callable[[], float],
    ) -> None:
        self.tp = tp
        self.directory = directory
        self.config = config
        self._flush = flush
        self._clock = clock
        self._lock = threading.Lock()
        self.maintenance_lock = threading.Lock()
        self._closed = False
        self._last_flush_ms = clock() * 1000
        self.recovered_bytes = 0
        self._segments: list[Segment] = []
        self._log_start = 0  # as DeleteRecords moved it; see log_start_offset
        self.cleaned_up_to = 0  # where the cleaner's last pass ended (cleaner.py)
        self.tombstones_due_ms: float | None = None  # when kept tombstones may go
        self.producers = ProducerStates()

    @classmethod
    def open(
        cls,
        tp: TopicPartition,
        directory: Path | None,
        config: TopicConfig,
        flush: FlushPolicy,
        clock: Callable[[], float],
    ) -> Partition:
        partition = cls(tp, directory, config, flush, clock)
        if directory is None:
            partition._segments = [Segment.create(None, 0)]
        else:
            directory.mkdir(parents=True, exist_ok=True)
            loaded = load_partition(tp, directory, clock)
            partition._segments, partition.producers = loaded.segments, loaded.producers
            partition.recovered_bytes = loaded.recovered_bytes
            partition._log_start = min(load_log_start(directory), partition.offsets()[1])
        return partition

    def _write_producer_snapshot(self, active: Segment, *, sync: bool) -> None:
        if self.directory is not None:
            self.producers.expire(int(self._clock() * 1000))
            write_snapshot(self.directory, self.producers, active.base_offset, sync, self.tp)

    # --- state -----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def segments(self) -> list[Segment]:
        """The current segment list (a snapshot: never changed in place)."""
        return self._segments

    def offsets(self) -> tuple[int, int]:
        """(log start offset, high watermark)."""
        segments = self._segments
        return max(self._log_start, segments[0].base_offset), segments[-1].next_offset

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"partition {self.tp} is closed", **self._coords())

    def _coords(self) -> dict[str, object]:
        return {"topic": self.tp.topic, "partition": self.tp.partition}

    # --- append ------------------------------------------------------------------

    def append(self, batch: bytes | bytearray | memoryview) -> int:
        """Append exactly one record batch; returns the base offset assigned to it.

        An idempotent producer's retry of a batch already stored is not stored
        again: the answer is the offset it was stored at. A batch that breaks its
        producer's sequence raises OutOfOrderSequenceError; one of an older
        producer epoch, ProducerFencedError. The checks before it are
        append_checks.py's."""
        view = memoryview(batch).cast("B")
        view, header = check_client_batch(view, self.tp, self.config, int(self._clock() * 1000))
        idempotent = is_idempotent(header)
        with self._lock:
            self._check_open()
            if idempotent:
                duplicate_of = self._check_sequence(header)
                if duplicate_of >= 0:
                    return duplicate_of
            now_ms = self._clock() * 1000
            base_offset = self._write(header, view, now_ms)
            self.producers.stored(header, base_offset, int(now_ms))
            return base_offset

    def _write(self, header: BatchHeader, view: memoryview, now_ms: float) -> int:
        """Store a validated batch (rolling first if due, fsynced if the flush policy
        says so); returns its base offset. Holds `_lock`. StorageError if the disk
        refused: then nothing changed."""
        active = self._segments[-1]
        sync = self._sync_due(now_ms)
        try:
            if active.size and self._should_roll(
                active, header.size, header.last_offset_delta, now_ms
            ):
                active = self._roll(active)
            base_offset = active.next_offset
            active.append(base_offset, header, view, sync=sync)
        except OSError as exc:
            raise self._storage_error("append", exc) from exc
        if active.created_ms is None:
            active.created_ms = now_ms
        if sync:
            self._last_flush_ms = now_ms
        return base_offset

    def append_marker(self, producer_id: int, producer_epoch: int, *, commit: bool) -> int:
        """Write a transaction's commit or abort marker (a control batch) and end the
        transaction here; returns the marker's offset. Only the coordinator calls this."""
        now_ms = self._clock() * 1000
        batch = encode_control_batch(
            producer_id, producer_epoch, commit=commit, timestamp_ms=int(now_ms)
        )
        header = validate_batch(batch)
        with self._lock:
            self._check_open()
            offset = self._write(header, memoryview(batch), now_ms)
            self.producers.ended(
                _at(header, offset), offset, CONTROL_COMMIT if commit else CONTROL_ABORT
            )
            return offset

    def last_stable_offset(self) -> int:
        """Below it every transaction is decided: what read_committed readers see."""
        first_open = self.producers.first_unstable_offset()
        end = self._segments[-1].next_offset
        return end if first_open is None else min(first_open, end)

    def aborted_transactions(self, start: int, end: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of the aborted transactions in [start, end)."""
        return self.producers.aborted_between(start, end)

    def _check_sequence(self, header: BatchHeader) -> int:
        """-1 to append the batch, or the offset of the stored batch it repeats."""
        verdict, offset = self.producers.check(header)
        if verdict is Verdict.DUPLICATE:
            return offset
        if verdict is Verdict.OUT_OF_ORDER:
            raise OutOfOrderSequenceError(
                f"{self.tp}: producer {header.producer_id} sent sequence "
                f"{header.base_sequence} out of order",
                **self._coords(),
            )
        if verdict is Verdict.FENCED:
            raise ProducerFencedError(
                f"{self.tp}: producer {header.producer_id} epoch {header.producer_epoch} "
                "is older than the partition's",
                **self._coords(),
            )
        return -1

    def _should_roll(
        self, active: Segment, size: int, last_offset_delta: int, now_ms: float
    ) -> bool:
        config = self.config
        return (
            active.size + size > config.segment_bytes
            or (active.created_ms is not None and now_ms - active.created_ms > config.segment_ms)
            or active.next_offset + last_offset_delta - active.base_offset >= _INT32_MAX
        )

    def _roll(self, active: Segment) -> Segment:
        on_disk = self.directory is not None
        active.seal(sync=on_disk)
        segment = Segment.create(self.directory, active.next_offset)
        if self.directory is not None:
            try:
                fsync_dir(self.directory)
            except OSError:
                # an empty segment file left behind would become a base that the
                # old active segment, appended to on, grows past
                segment.close()
                delete_segment_files(self.directory, segment.base_offset)
                raise
        self._segments = [*self._segments, segment]
        self._write_producer_snapshot(segment, sync=on_disk)
        logger.debug(
            "rolled segment topic=%s partition=%d base_offset=%d",
            *self._tp_fields(),
            segment.base_offset,
        )
        return segment

    def _tp_fields(self) -> tuple[str, int]:
        return self.tp.topic, self.tp.partition

    def _sync_due(self, now_ms: float) -> bool:
        """Whether the flush policy wants this append fsynced (before it is answered)."""
        mode = self._flush.mode
        return mode == "batch" or (
            mode == "interval" and now_ms - self._last_flush_ms >= self._flush.flush_interval_ms
        )

    def _storage_error(self, what: str, exc: OSError) -> StorageError:
        return StorageError.from_os_error(
            what, exc, topic=self.tp.topic, partition=self.tp.partition
        )

    # --- reads -------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, end_offset: int | None = None) -> bytes:
        """Whole stored batches from the one containing `offset` (see Log.read),
        none at or past end_offset (a batch boundary: the last stable offset)."""
        parts = self._read(offset, max_bytes, Segment.read, end_offset)
        return parts[0] if len(parts) == 1 else b"".join(parts)  # type: ignore[arg-type]

    def read_chunks(
        self, offset: int, max_bytes: int, end_offset: int | None = None
    ) -> list[bytes | FileRegion]:
        """What read returns, as chunks to send back to back: large reads from
        files are FileRegions (for sendfile), never copied into memory."""
        return self._read(offset, max_bytes, Segment.read_chunk, end_offset)

    def _read(
        self,
        offset: int,
        max_bytes: int,
        take: Callable[..., tuple[bytes | FileRegion, bool]],
        end_offset: int | None,
    ) -> list[bytes | FileRegion]:
        self._check_open()
        segments = self._segments
        start, end = max(self._log_start, segments[0].base_offset), segments[-1].next_offset
        if offset < start or offset > end:
            raise OffsetOutOfRangeError(
                f"offset {offset} of {self.tp} is out of range [{start}, {end}]",
                offset=offset,
                **self._coords(),
            )
        parts: list[bytes | FileRegion] = []
        if end_offset is not None and end_offset < end:
            end = end_offset
        if offset >= end:
            return parts
        i = bisect_right(segments, offset, key=_base_offset) - 1
        budget = max_bytes
        for segment in segments[i:]:
            if segment.base_offset >= end:
                break
            data, at_end = take(
                segment, offset, budget, first_whole=not parts, end_offset=end_offset
            )
            if data:
                parts.append(data)
                budget -= len(data)
            if not at_end or budget <= 0:
                break
        return parts

    def offset_for_timestamp(self, timestamp_ms: int) -> int | None:
        self._check_open()
        start = self.offsets()[0]
        for segment in self._segments:
            if segment.next_offset <= start:
                continue
            found = segment.offset_for_timestamp(timestamp_ms)
            if found is not None:
                return max(found, start)
        return None

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the record with the newest timestamp (the first such)."""
        self._check_open()
        return max_timestamp_offset(self._segments, self.offsets()[0])

    def delete_records(self, offset: int) -> int:
        """Move the log start offset up to `offset` (-1: the high watermark), persisted,
        and delete the segments wholly below it; returns the new log start offset.
        OffsetOutOfRangeError past the high watermark; StorageError if it cannot be
        persisted (then nothing changed)."""
        with self.maintenance_lock, self._lock:
            self._check_open()
            start, end = self.offsets()
            target = end if offset == -1 else offset
            if not 0 <= target <= end:
                raise OffsetOutOfRangeError(
                    f"cannot delete records of {self.tp} below {offset}: the log ends at {end}",
                    offset=offset,
                    **self._coords(),
                )
            if target <= start:
                return start
            try:
                save_log_start(self.directory, target)
            except OSError as exc:
                raise self._storage_error("delete records", exc) from exc
            self._log_start = target
            removed = self._drop_oldest(wholly_below(self._segments, target))
        for segment in removed:
            segment.delete_files()
        logger.info(
            "records deleted topic=%s partition=%d log_start_offset=%d segments_deleted=%d",
            *self._tp_fields(),
            target,
            len(removed),
        )
        return target

    def _drop_oldest(self, count: int) -> list[Segment]:
        """Take the `count` oldest segments out of the list (holding `_lock`)."""
        removed = self._segments[:count]
        if removed:
            self._segments = self._segments[count:]
            self.producers.forget_aborted_below(self._segments[0].base_offset)
        return removed

    # --- maintenance -------------------------------------------------------------

    def enforce_retention(self, now_ms: float) -> int:
        """Delete whole non-active segments past retention; returns how many."""
        config = self.config
        if not config.deletes or self._closed:
            return 0
        with self.maintenance_lock:
            doomed = retention_doomed(self._segments, config, now_ms)
            if not doomed:
                return 0
            with self._lock:
                if self._closed:  # deleted meanwhile
                    return 0
                removed = self._drop_oldest(doomed)
            for segment in removed:
                segment.delete_files()
            logger.info(
                "retention deleted segments topic=%s partition=%d count=%d log_start_offset=%d",
                *self._tp_fields(),
                doomed,
                self._segments[0].base_offset,
            )
            return doomed

    def swap_segment(self, old: Segment, new: Segment | None, install: Callable[[], None]) -> bool:
        """Replace a non-active segment by `new` (None: drop it), running `install`
        (the file renames) under the lock. False if `old` is gone or active."""
        with self._lock:
            if self._closed:
                return False
            segments = self._segments
            i = next((i for i, s in enumerate(segments) if s is old), -1)
            if i < 0 or i == len(segments) - 1:
                return False
            install()
            self._segments = [*segments[:i], *([new] if new else []), *segments[i + 1 :]]
            return True

    def flush(self) -> None:
        with self._lock:
            self._check_open()
            try:
                self._segments[-1].storage.sync()
            except OSError as exc:
                raise self._storage_error("flush", exc) from exc
            self._last_flush_ms = self._clock() * 1000

    def close(self, *, seal: bool = True) -> None:
        """Close every segment; `seal` first fsyncs the active one and writes its
        indexes (not worth it for a partition about to be deleted)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            segments = self._segments
            try:
                if seal and self.directory is not None:
                    segments[-1].seal(sync=True)
            except OSError as exc:  # the active segment's indexes are rebuilt on open
                logger.warning(
                    "cannot seal the active segment at close topic=%s partition=%d error=%r",
                    *self._tp_fields(),
                    exc,
                )
            finally:
                for segment in segments:
                    segment.close()

    def delete(self) -> None:
        """Close and remove the directory (the Log deletes topics crash-safely instead)."""
        self.close(seal=False)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def _base_offset(segment: Segment) -> int:
    return segment.base_offset


def _at(header: BatchHeader, offset: int) -> BatchHeader:
    return dataclasses.replace(header, base_offset=offset)
