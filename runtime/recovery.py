"""Table recovery: bring a store up to date with its changelog partition.

A store persists the last changelog offset it applied (together with the
values, atomically), so recovery replays only the changelog tail after it.
A store that claims an offset at or past the end of the changelog belongs to
a log that was wiped or replaced: it is cleared and rebuilt from the start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from runtime.log.records import decode_batches
from runtime.transport import Transport
from runtime.types import TopicPartition
from stores.base import Store

logger = logging.getLogger(__name__)

APPLY_CHUNK_RECORDS = 10_000
PROGRESS_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    tp: TopicPartition
    records: int
    start_offset: int
    end_offset: int
    seconds: float


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
) -> RecoveryResult:
    started = time.monotonic()
    log_start, end = await transport.offsets(changelog)
    applied = store.persisted_offset()
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
    while position < end:
        data = await transport.fetch(changelog, position, max_bytes=fetch_bytes, max_wait_s=0)
        records = [r for r in decode_batches(data) if position <= r.offset < end]
        if not records:
            if not data:
                break
            # Only control or compacted-away offsets in this range: skip past them.
            position = _next_position(data, position)
            continue
        for i in range(0, len(records), APPLY_CHUNK_RECORDS):
            chunk = records[i : i + APPLY_CHUNK_RECORDS]
            store.apply({r.key: r.value for r in chunk if r.key is not None}, chunk[-1].offset)
        done += len(records)
        position = records[-1].offset + 1
        now = time.monotonic()
        if now - last_report >= PROGRESS_INTERVAL_S:
            progress(changelog, done, total, done / (now - started))
            last_report = now
    seconds = time.monotonic() - started
    if total:
        progress(changelog, done, total, done / seconds if seconds > 0 else float(done))
    return RecoveryResult(changelog, done, start_position, end, seconds)


def _next_position(data: bytes, position: int) -> int:
    from runtime.log.records import iter_batches

    last = position
    for _, header in iter_batches(data):
        last = max(last, header.next_offset)
    return last if last > position else position + 1
