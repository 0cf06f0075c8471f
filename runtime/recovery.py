"""Table recovery: bring a store up to date with its changelog partition.

A store persists the last changelog offset it applied (together with the
values, atomically), so recovery replays only the changelog tail after it.
A store that claims an offset at or past the end of the changelog belongs to
a log that was wiped or replaced: it is cleared and rebuilt from the start.

Read read_committed (exactly_once), a changelog ends for us at its last stable
offset. A transaction another producer holds open there (a worker the group
dropped, before it is fenced or its transaction times out) would hide what was
committed after it: so an active partition's recovery first waits, up to
`settle_s`, for the last stable offset to reach the end the log had. A store
past the last stable offset but not past the log's end applied its own
committed writes after such a transaction: it is kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.log.key_values import key_values_into
from runtime.log.records import decode_batch_rows, iter_batches
from runtime.transport import Transport
from runtime.types import TopicPartition
from stores.base import Store

logger = logging.getLogger(__name__)

# A store write holds the last value of each key read since the previous one:
# a changelog updates the same keys over and over, and each key RocksDB does not
# insert saves most of a record's recovery cost. Bounded, checked after each
# batch, by the distinct keys held (~150 bytes of objects each beyond their
# data) and by the bytes of batches read (the data): about 64 MB at most.
APPLY_KEYS_MAX = 200_000
APPLY_BYTES_MAX = 32 << 20
PROGRESS_INTERVAL_S = 1.0
SETTLE_MAX_S = 15.0  # past the exactly_once transaction timeout (10 s) and its check
SETTLE_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    tp: TopicPartition
    records: int
    start_offset: int
    end_offset: int
    seconds: float


@dataclass(slots=True)
class _Pending:
    """Writes read from the changelog and not yet in the store."""

    writes: dict[bytes, bytes | None] = field(default_factory=dict)
    last: int | None = None  # the last offset read into `writes`
    bytes_read: int = 0

    def apply_to(self, store: Store) -> None:
        if self.last is not None:
            store.apply(self.writes, self.last)
        self.writes, self.last, self.bytes_read = {}, None, 0


Progress = Callable[[TopicPartition, int, int, float], None]
"""(changelog partition, records done, records total, records/s)."""


def log_progress(tp: TopicPartition, done: int, total: int, rate: float) -> None:
    logger.info("recovering %s: %d of %d records (%.0f records/s)", tp, done, total, rate)


async def recover_store(
    transport: Transport,
    store: Store,
    changelog: TopicPartition,
    *,
    progress: Progress = log_progress,
    fetch_bytes: int = 4 << 20,
    settle_s: float = 0.0,
) -> RecoveryResult:
    started = time.monotonic()
    log_start, end = await _settled_offsets(transport, changelog, settle_s)
    applied = store.persisted_offset()
    if (
        applied is not None
        and applied >= end
        and applied < await transport.high_watermark(changelog)
    ):
        return RecoveryResult(changelog, 0, applied + 1, end, time.monotonic() - started)
    if applied is not None and applied >= end:
        logger.warning(
            "store of %s has offset %d but the changelog ends at %d: rebuilding it",
            changelog,
            applied,
            end,
        )
        store.clear()
        applied = None
    position = log_start if applied is None else max(applied + 1, log_start)
    total = max(0, end - position)
    start_position = position
    done = 0
    last_report = started
    pending = _Pending()
    while position < end:
        data = await transport.fetch(changelog, position, max_bytes=fetch_bytes, max_wait_s=0)
        read_to, count = _read_fetched(store, pending, data, position, end)
        if read_to is None:
            if not data:
                break
            # Only control or compacted-away offsets in this range: skip past them.
            position = _next_position(data, position)
            continue
        done += count
        position = read_to + 1
        now = time.monotonic()
        if now - last_report >= PROGRESS_INTERVAL_S:
            progress(changelog, done, total, done / (now - started))
            last_report = now
    pending.apply_to(store)
    seconds = time.monotonic() - started
    if total:
        progress(changelog, done, total, done / seconds if seconds > 0 else float(done))
    return RecoveryResult(changelog, done, start_position, end, seconds)


async def _settled_offsets(
    transport: Transport, tp: TopicPartition, settle_s: float
) -> tuple[int, int]:
    """(log start, end for our isolation), once transactions open at the log's
    end now are decided, or `settle_s` passed."""
    start, end = await transport.offsets(tp)
    if settle_s <= 0:
        return start, end
    target = await transport.high_watermark(tp)
    if end >= target:
        return start, end
    logger.warning(
        "changelog %s: a transaction is open at offset %d (log end %d): waiting up to "
        "%.0fs for it to commit or abort",
        tp,
        end,
        target,
        settle_s,
    )
    deadline = time.monotonic() + settle_s
    while end < target and time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_POLL_S)
        start, end = await transport.offsets(tp)
    return start, end


def _read_fetched(
    store: Store, pending: _Pending, data: bytes, position: int, end: int
) -> tuple[int | None, int]:
    """Read the records of `data` in [position, end) into `pending` (the last
    value of each key), and write it to `store` when it is full. Whole batches
    are read for their keys and values only (key_values.py): building a Record
    per record was half the cost of recovery. Returns (the last offset read or
    None, records)."""
    last: int | None = None
    count = 0
    for pos, header in iter_batches(data):
        if header.next_offset <= position or header.base_offset >= end:
            continue
        writes = pending.writes
        if position <= header.base_offset and header.next_offset <= end:
            records = key_values_into(writes, data, pos, header)
            if not records:
                continue
            last = header.next_offset - 1
        else:  # a batch across `position` or `end`: only some of its records
            rows = [row for row in decode_batch_rows(data, pos, header) if position <= row[0] < end]
            if not rows:
                continue
            for _, _, key, value, _ in rows:
                if key is not None:
                    writes[key] = value
            last, records = rows[-1][0], len(rows)
        count += records
        pending.last = last
        pending.bytes_read += header.size
        if pending.bytes_read >= APPLY_BYTES_MAX or len(writes) >= APPLY_KEYS_MAX:
            pending.apply_to(store)
    return last, count


def _next_position(data: bytes, position: int) -> int:
    last = position
    for _, header in iter_batches(data):
        last = max(last, header.next_offset)
    return last if last > position else position + 1
