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
from dataclasses import dataclass

from runtime.log.records import decode_batches
from runtime.transport import Transport
from runtime.types import TopicPartition
from stores.base import Store

logger = logging.getLogger(__name__)

APPLY_CHUNK_RECORDS = 10_000
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


def _next_position(data: bytes, position: int) -> int:
    from runtime.log.records import iter_batches

    last = position
    for _, header in iter_batches(data):
        last = max(last, header.next_offset)
    return last if last > position else position + 1
