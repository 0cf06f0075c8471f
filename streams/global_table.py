"""GlobalTable partitions: every worker holds and follows every partition.

A GlobalTable is read whole by every worker (a stream-GlobalTable join needs
no co-partitioning), so each worker recovers every partition of its changelog
before its agents run and then follows each one, like a standby of all,
whatever the group assigns: the assignor does not deal in its partitions and a
rebalance never revokes them.

Writes go to the changelog only; the store is written by the follower alone,
in changelog order, so two workers writing one key end with the same value
everywhere (the later one in the changelog). The writer reads its own write
at once (read-your-writes): the value stays in the partition's cache, and in
`inflight` once flushed, until the follower reads it back from the changelog;
a record of another worker for that key, older in the changelog, does not
shadow it meanwhile.

Invariants:
- the follower is the only writer of a global partition's store, and applies
  records in offset order, recording the offset of the last one;
- `inflight[key]` is the offset of this worker's newest flushed write of key
  the follower has not read back yet; reads of key answer its value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from runtime.log.records import decode_batches, iter_batches
from runtime.types import TopicPartition
from stores import StoreError
from streams.table import (
    _DELETED,
    _MISSING,
    CACHE_ENTRIES_MAX,
    Append,
    TablePartition,
    _chunks,
)

if TYPE_CHECKING:
    from runtime.transport import Transport

logger = logging.getLogger(__name__)

FOLLOW_WAIT_S = 1.0
FOLLOW_RETRY_S = 1.0
FETCH_BYTES_MAX = 4 << 20


class GlobalPartition(TablePartition):
    """A partition of a GlobalTable: flushes to the changelog, not the store."""

    __slots__ = ("inflight",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inflight: dict[Any, tuple[int, Any]] = {}

    def get(self, key: Any) -> Any:
        value = self.cache.get(key, _MISSING)
        if value is _MISSING:
            own = self.inflight.get(key)
            if own is not None:
                return own[1]
            value = super().get(key)
        return value

    def items(self) -> Iterator[tuple[Any, Any]]:
        overlay = {k: v for k, (_, v) in self.inflight.items()}
        overlay.update(self.flushing)
        overlay.update(self.dirty)
        load_key, load_value = self.load_key, self.load_value
        for raw_key, raw_value in self.store.items():
            key = load_key(raw_key)
            if key not in overlay:
                yield key, load_value(raw_value)
        for key, value in list(overlay.items()):
            if value is not _DELETED:
                yield key, value

    async def _write(
        self,
        dirty: dict[Any, Any],
        transport: Transport,
        batch_bytes_max: int,
        append: Append | None,
    ) -> int:
        items = list(dirty.items())
        records = self.changelog_records(dirty)
        done = 0
        for chunk in _chunks(records, batch_bytes_max // 2):
            base = await self.append_chunk(chunk, transport, append)
            for i, (key, value) in enumerate(items[done : done + len(chunk)]):
                self.inflight[key] = (base + i, value)
            done += len(chunk)
        return len(records)

    def apply_pending(self) -> None:
        """Nothing waits for the commit: the follower reads committed records."""

    def discard_uncommitted(self) -> None:
        super().discard_uncommitted()
        self.inflight = {}

    def apply_records(self, records: list[Any]) -> None:
        """The follower's step: into the store, then what reads see changes."""
        self.store.apply({r.key: r.value for r in records if r.key is not None}, records[-1].offset)
        load_key = self.load_key
        for record in records:
            if record.key is None:
                continue
            key = load_key(record.key)
            own = self.inflight.get(key)
            if own is not None:
                if record.offset < own[0]:
                    continue  # older than this worker's write in flight: not seen
                del self.inflight[key]
            if key not in self.dirty and key not in self.flushing:
                self.cache.pop(key, None)
        if len(self.cache) > CACHE_ENTRIES_MAX:  # bounded; what is not flushed stays
            unflushed = self.dirty.keys() | self.flushing.keys()
            self.cache = {k: v for k, v in self.cache.items() if k in unflushed}


async def follow(
    transport: Transport,
    part: GlobalPartition,
    fail: Callable[[BaseException], None],
) -> None:
    """Apply what the changelog partition gets, by any worker, until cancelled."""
    tp = part.changelog
    applied = part.store.persisted_offset()
    start, _ = await _offsets_or(transport, tp, 0)
    position = start if applied is None else max(applied + 1, start)
    while True:
        try:
            data = await transport.fetch(
                tp, position, max_bytes=FETCH_BYTES_MAX, max_wait_s=FOLLOW_WAIT_S
            )
            records = [r for r in decode_batches(data) if r.offset >= position]
            if records:
                part.apply_records(records)
                position = records[-1].offset + 1
            elif data:
                position = _past(data, position)  # control or compacted-away offsets
        except asyncio.CancelledError:
            raise
        except StoreError as exc:  # the local disk: retrying will not help
            fail(exc)
            return
        except Exception as exc:
            logger.warning("global table %s: following failed: %s; retrying", tp, exc)
            await asyncio.sleep(FOLLOW_RETRY_S)
            start, _ = await _offsets_or(transport, tp, position)
            position = max(position, start)  # the log start moved past us: from there


async def _offsets_or(transport: Transport, tp: TopicPartition, position: int) -> tuple[int, int]:
    try:
        return await transport.offsets(tp)
    except asyncio.CancelledError:
        raise
    except Exception:
        return position, position


def _past(data: bytes, position: int) -> int:
    last = position
    for _, header in iter_batches(data):
        last = max(last, header.next_offset)
    return last if last > position else position + 1
