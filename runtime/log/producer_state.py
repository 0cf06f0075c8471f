"""Idempotent and transactional producers of one partition, rebuilt on every open.

An idempotent producer numbers its records per partition (base_sequence in
each batch header). The log appends a batch only when it continues the
producer's sequence; a retried batch that was already appended is answered
with its original base offset instead of being stored twice.

Transactional producers' batches also open a transaction on the partition
(its first offset holds the last stable offset back) until the coordinator's
control batch (a commit or abort marker) ends it; aborted transactions are
listed (producer id, first offset, marker offset) for read_committed fetches.

The state is rebuilt on open, as Kafka does: from the newest snapshot file
(state as of a segment's base offset, written when that segment was rolled
in) plus the batch headers of the segments after it, which recovery scans
anyway. Without a usable snapshot every segment's headers are scanned.

Snapshot file format: `<base>.snapshot` (base = 20-digit zero-padded offset),
big-endian:

    magic b"SPS1", crc uint32 (CRC-32C of everything after it), count int32,
    count x (producer_id int64, epoch int16, last_append_ms int64, n int8,
             n x (first_seq int32, last_seq int32, base_offset int64)),
    open int32, open x (producer_id int64, first_offset int64),
    aborted int32, aborted x (producer_id int64, first_offset int64, last_offset int64)

Invariants:
- per producer id: its newest epoch and the last `BATCHES_KEPT` batches
  appended in that epoch (first and last sequence, base offset), oldest first;
- the first batch of an unknown producer id or of a newer epoch is accepted at
  any sequence; a batch of an older epoch is fenced;
- a snapshot at offset B covers exactly the batches below B;
- `open` holds a producer id from its first transactional batch until its
  marker; `aborted` is in marker-offset order.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from runtime.log.records import CONTROL_ABORT, BatchHeader, crc32c

BATCHES_KEPT = 5  # what a Kafka producer may have in flight per partition
PRODUCERS_MAX = 10_000  # per partition; the least recently appending is forgotten first
PRODUCER_EXPIRATION_MS = 24 * 3600 * 1000  # Kafka's producer.id.expiration.ms
SNAPSHOT_SUFFIX = ".snapshot"

_SEQ_MOD = 1 << 31
_MAGIC = b"SPS1"
_HEAD = struct.Struct(">4sIi")
_ENTRY = struct.Struct(">qhqb")
_BATCH = struct.Struct(">iiq")
_OPEN = struct.Struct(">qq")
_ABORTED = struct.Struct(">qqq")
_COUNT = struct.Struct(">i")


class Verdict(Enum):
    APPEND = "append"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    FENCED = "fenced"


class SnapshotCorruptError(ValueError):
    pass


@dataclass(slots=True)
class ProducerEntry:
    epoch: int
    last_append_ms: int = -1
    batches: deque[tuple[int, int, int]] = field(default_factory=lambda: deque(maxlen=BATCHES_KEPT))


def is_idempotent(header: BatchHeader) -> bool:
    return header.producer_id >= 0 and header.base_sequence >= 0


def last_sequence(header: BatchHeader) -> int:
    return (header.base_sequence + header.last_offset_delta) % _SEQ_MOD


class ProducerStates:
    """The idempotent producers of one partition (see the module docstring)."""

    __slots__ = ("_entries", "_producers_max", "aborted", "open")

    def __init__(self, producers_max: int = PRODUCERS_MAX) -> None:
        # insertion order = least recently appended first (moved to the end on append)
        self._entries: dict[int, ProducerEntry] = {}
        self._producers_max = producers_max
        self.open: dict[int, int] = {}  # producer id -> first offset of its open transaction
        self.aborted: list[tuple[int, int, int]] = []  # (producer id, first, marker offset)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, producer_id: int) -> ProducerEntry | None:
        return self._entries.get(producer_id)

    def check(self, header: BatchHeader) -> tuple[Verdict, int]:
        """What to do with an idempotent batch; for DUPLICATE also its stored base offset."""
        entry = self._entries.get(header.producer_id)
        epoch = header.producer_epoch
        if entry is None or epoch > entry.epoch:
            return Verdict.APPEND, -1
        if epoch < entry.epoch:
            return Verdict.FENCED, -1
        first, last = header.base_sequence, last_sequence(header)
        for seen_first, seen_last, base_offset in entry.batches:
            if seen_first == first and seen_last == last:
                return Verdict.DUPLICATE, base_offset
        if entry.batches and first != (entry.batches[-1][1] + 1) % _SEQ_MOD:
            return Verdict.OUT_OF_ORDER, -1
        return Verdict.APPEND, -1

    def appended(self, header: BatchHeader, base_offset: int, now_ms: int) -> None:
        """Record an idempotent batch stored at base_offset (appended, or replayed)."""
        pid = header.producer_id
        entry = self._entries.pop(pid, None)
        if entry is None or header.producer_epoch > entry.epoch:
            entry = ProducerEntry(header.producer_epoch)
        elif header.producer_epoch < entry.epoch:  # replaying an old epoch's batch
            self._entries[pid] = entry
            return
        entry.batches.append((header.base_sequence, last_sequence(header), base_offset))
        entry.last_append_ms = max(entry.last_append_ms, now_ms)
        self._entries[pid] = entry
        if len(self._entries) > self._producers_max:
            self._entries.pop(next(iter(self._entries)))

    def stored(self, header: BatchHeader, base_offset: int, now_ms: int) -> None:
        """Account for a data batch stored at base_offset (appended, or replayed)."""
        if is_idempotent(header):
            self.appended(header, base_offset, now_ms)
        if header.is_transactional and header.producer_id >= 0:
            self.open.setdefault(header.producer_id, base_offset)

    def ended(self, header: BatchHeader, offset: int, kind: int) -> None:
        """A transaction marker of header.producer_id stored at `offset`.

        Markers carry the coordinator's epoch, which may be newer than the
        producer's last batch here (a fenced producer's transaction aborted)."""
        pid = header.producer_id
        entry = self._entries.get(pid)
        if entry is not None and header.producer_epoch > entry.epoch:
            self._entries[pid] = ProducerEntry(header.producer_epoch, entry.last_append_ms)
        elif entry is None:
            self._entries[pid] = ProducerEntry(header.producer_epoch)
        first = self.open.pop(pid, None)
        if first is not None and kind == CONTROL_ABORT:
            self.aborted.append((pid, first, offset))

    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest open transaction (None: all are decided)."""
        return min(self.open.values()) if self.open else None

    def aborted_between(self, start: int, end: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of aborted transactions overlapping [start, end)."""
        i = bisect_left(self.aborted, start, key=_marker_offset)
        return [(pid, first) for pid, first, _ in self.aborted[i:] if first < end]

    def forget_aborted_below(self, log_start: int) -> None:
        """Drop aborted transactions whose marker retention deleted."""
        i = bisect_left(self.aborted, log_start, key=_marker_offset)
        if i:
            del self.aborted[:i]

    def replay(self, batches: Iterable[tuple[BatchHeader, int]], now_ms: int) -> None:
        """Apply stored batches in log order: (header, control type or -1), rebuilding
        state on open at now_ms (record timestamps are the producers' clocks)."""
        for header, kind in batches:
            if header.is_control:
                self.ended(header, header.base_offset, kind)
            else:
                self.stored(header, header.base_offset, now_ms)

    def expire(self, now_ms: int, expiration_ms: int = PRODUCER_EXPIRATION_MS) -> int:
        """Forget producers that appended nothing for expiration_ms; returns how many."""
        horizon = now_ms - expiration_ms
        stale = [pid for pid, e in self._entries.items() if e.last_append_ms < horizon]
        for pid in stale:
            del self._entries[pid]
        return len(stale)

    # --- snapshots -----------------------------------------------------------

    def to_bytes(self) -> bytes:
        body = bytearray()
        for pid, entry in self._entries.items():
            body += _ENTRY.pack(pid, entry.epoch, entry.last_append_ms, len(entry.batches))
            for batch in entry.batches:
                body += _BATCH.pack(*batch)
        body += _COUNT.pack(len(self.open))
        for pid, first in self.open.items():
            body += _OPEN.pack(pid, first)
        body += _COUNT.pack(len(self.aborted))
        for aborted in self.aborted:
            body += _ABORTED.pack(*aborted)
        count = _COUNT.pack(len(self._entries))
        return _MAGIC + struct.pack(">I", crc32c(count + body)) + count + body

    @classmethod
    def from_bytes(cls, data: bytes, producers_max: int = PRODUCERS_MAX) -> ProducerStates:
        if len(data) < _HEAD.size:
            raise SnapshotCorruptError(f"snapshot of {len(data)} bytes is too short")
        magic, crc, count = _HEAD.unpack_from(data)
        if magic != _MAGIC:
            raise SnapshotCorruptError(f"bad snapshot magic {magic!r}")
        if crc32c(memoryview(data)[8:]) != crc:
            raise SnapshotCorruptError("snapshot CRC-32C mismatch")
        states = cls(producers_max)
        pos = _HEAD.size
        try:
            for _ in range(count):
                pid, epoch, last_ms, n = _ENTRY.unpack_from(data, pos)
                pos += _ENTRY.size
                entry = ProducerEntry(epoch, last_ms)
                for _ in range(n):
                    entry.batches.append(_BATCH.unpack_from(data, pos))
                    pos += _BATCH.size
                states._entries[pid] = entry
            (n,) = _COUNT.unpack_from(data, pos)
            pos += _COUNT.size
            for _ in range(n):
                pid, first = _OPEN.unpack_from(data, pos)
                states.open[pid] = first
                pos += _OPEN.size
            (n,) = _COUNT.unpack_from(data, pos)
            pos += _COUNT.size
            for _ in range(n):
                states.aborted.append(_ABORTED.unpack_from(data, pos))
                pos += _ABORTED.size
        except struct.error as exc:
            raise SnapshotCorruptError(f"truncated snapshot: {exc}") from None
        if pos != len(data):
            raise SnapshotCorruptError(f"{len(data) - pos} bytes follow the snapshot's entries")
        return states


def _marker_offset(aborted: tuple[int, int, int]) -> int:
    return aborted[2]
