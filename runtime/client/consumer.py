"""A consumer of assigned partitions over the Kafka protocol.

The consumer reads raw record batches: `fetch()` returns, per partition, the
bytes of the whole batches that arrived (decode them with runtime.log.records),
and moves the partition's position past the last of them. Kafka serves whole
batches, so the first batch may begin before the position asked for: callers
skip records below the partition's `position()` taken just before the fetch
(position() also resolves a pending reset, so it is right after one too).

Fetches are pipelined: as soon as a broker's answer is taken, the next Fetch to
that broker goes out with the new positions, so it is under way while the caller
processes the records. An answer for a partition whose position changed meanwhile
(seek, pause, a new assignment) is dropped.

With isolation_level="read_committed" the consumer sees only what committed
transactions and non-transactional producers wrote: its Fetches stop at the
last stable offset (the first offset of the oldest open transaction), the
batches of aborted transactions and every transaction marker are dropped
(runtime.client.isolation), and "latest" is the last stable offset.

Invariants:
- a partition's position is the offset of the next record to return, or None
  until it is reset (auto_offset_reset, seek_to_beginning / seek_to_end);
- a position moves past every whole batch fetched, returned or dropped: it
  never exceeds the end the isolation level allows (high watermark, or last
  stable offset for read_committed);
- at most one Fetch per broker is in flight, on a connection of this consumer's
  own (a long poll never holds up other requests);
- paused partitions are neither fetched nor returned.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Mapping
from typing import Literal, NamedTuple

from runtime.client.cluster import Cluster, backoff_s
from runtime.client.errors import (
    METADATA_CODES,
    RETRIABLE_CODES,
    ClientClosedError,
    KafkaClientError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)
from runtime.client.fetch_requests import check_fetch_answer, fetch_body
from runtime.client.isolation import (
    READ_COMMITTED,
    IsolationLevel,
    committed_batches,
    isolation_code,
)
from runtime.client.offsets import (
    EARLIEST,
    LATEST,
    commit_offsets,
    fetch_committed,
    list_offsets,
)
from runtime.log.records import iter_batches
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

OffsetReset = Literal["earliest", "latest", "none"]
_lanes = itertools.count(1)
_FETCH_SLACK_S = 5.0  # on top of max_wait for a Fetch's request timeout


class _Fetched(NamedTuple):
    fetched_at: int  # the position the Fetch asked for
    code: int
    records: bytes | memoryview
    aborted: list[tuple[int, int]]  # (producer id, first offset), read_committed only
    end: int  # high watermark, or last stable offset for read_committed


FetchAnswer = dict[TopicPartition, _Fetched]


class Consumer:
    """Fetches record batches of assigned partitions; an async context manager."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        auto_offset_reset: OffsetReset = "latest",
        fetch_max_wait_ms: int = 500,
        fetch_min_bytes: int = 1,
        fetch_max_bytes: int = 50 << 20,
        partition_max_bytes: int = 1 << 20,
        isolation_level: IsolationLevel = "read_uncommitted",
    ) -> None:
        self._isolation = isolation_code(isolation_level)
        if auto_offset_reset not in ("earliest", "latest", "none"):
            raise ValueError(
                f"auto_offset_reset must be earliest, latest or none: {auto_offset_reset!r}"
            )
        self._cluster = cluster
        self._reset = auto_offset_reset
        self._max_wait_ms = fetch_max_wait_ms
        self._min_bytes = fetch_min_bytes
        self._max_bytes = fetch_max_bytes
        self._partition_max_bytes = partition_max_bytes
        self._lane = f"fetch-{next(_lanes)}"
        self._positions: dict[TopicPartition, int | None] = {}
        self._pending_resets: dict[TopicPartition, int] = {}  # tp -> EARLIEST / LATEST
        self._paused: set[TopicPartition] = set()
        self._ends: dict[TopicPartition, int] = {}
        self._fetches: dict[int, asyncio.Task[FetchAnswer]] = {}
        self._stale_metadata = False
        self._deferred_error: Exception | None = None
        self._closed = False

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop in-flight fetches (idempotent). The cluster stays open."""
        self._closed = True
        tasks = list(self._fetches.values())
        self._fetches.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # --- assignment and positions ------------------------------------------------

    def assign(self, tps: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions; positions of those already assigned are
        kept, new ones start unknown (reset on the next fetch)."""
        wanted = set(tps)
        self._positions = {tp: self._positions.get(tp) for tp in sorted(wanted)}
        self._pending_resets = {tp: r for tp, r in self._pending_resets.items() if tp in wanted}
        self._ends = {tp: end for tp, end in self._ends.items() if tp in wanted}
        self._paused &= wanted

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self._positions)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read `tp` from `offset` next."""
        self._check_assigned(tp)
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        self._positions[tp] = offset
        self._pending_resets.pop(tp, None)

    def seek_to_beginning(self, tps: Iterable[TopicPartition] | None = None) -> None:
        self._seek_to(EARLIEST, tps)

    def seek_to_end(self, tps: Iterable[TopicPartition] | None = None) -> None:
        self._seek_to(LATEST, tps)

    def _seek_to(self, where: int, tps: Iterable[TopicPartition] | None) -> None:
        for tp in list(self._positions) if tps is None else tps:
            self._check_assigned(tp)
            self._positions[tp] = None
            self._pending_resets[tp] = where

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record of `tp` (resolving a pending reset)."""
        self._check_assigned(tp)
        if self._positions[tp] is None:
            await self._resolve_positions([tp])
        position = self._positions[tp]
        assert position is not None
        return position

    def end_offset(self, tp: TopicPartition) -> int | None:
        """The end of `tp` its last fetch answer gave (the high watermark, or for
        read_committed the last stable offset): lag is this minus position().
        None before the first answer."""
        self._check_assigned(tp)
        return self._ends.get(tp)

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._check_assigned(tp)
            self._paused.add(tp)

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        self._paused.difference_update(tps)

    def paused(self) -> frozenset[TopicPartition]:
        return frozenset(self._paused)

    def _check_assigned(self, tp: TopicPartition) -> None:
        if tp not in self._positions:
            raise ValueError(f"{tp} is not assigned to this consumer")

    async def _resolve_positions(self, tps: Iterable[TopicPartition]) -> None:
        by_target: dict[int, list[TopicPartition]] = {}
        for tp in tps:
            if self._positions.get(tp, 0) is not None:
                continue
            target = self._pending_resets.get(tp)
            if target is None:
                if self._reset == "none":
                    raise KafkaClientError(
                        f"{tp} has no position and auto_offset_reset is none",
                        topic=tp.topic,
                        partition=tp.partition,
                    )
                target = EARLIEST if self._reset == "earliest" else LATEST
            by_target.setdefault(target, []).append(tp)
        for target, group in by_target.items():
            offsets = await list_offsets(
                self._cluster, group, target, isolation_level=self._isolation
            )
            for tp in group:
                if tp in self._positions and self._positions[tp] is None:
                    self._positions[tp] = offsets[tp]
                    self._pending_resets.pop(tp, None)

    # --- fetch -------------------------------------------------------------------

    async def fetch(
        self,
        max_wait_ms: int | None = None,
        min_bytes: int | None = None,
        max_bytes: int | None = None,
    ) -> dict[TopicPartition, bytes]:
        """Record batches that arrived, per partition (none for a partition with
        nothing new); waits up to max_wait_ms for some."""
        if self._closed:
            raise ClientClosedError("the consumer is closed")
        max_wait_ms = self._max_wait_ms if max_wait_ms is None else max_wait_ms
        params = (
            max_wait_ms,
            self._min_bytes if min_bytes is None else min_bytes,
            self._max_bytes if max_bytes is None else max_bytes,
        )
        if self._deferred_error is not None:
            error, self._deferred_error = self._deferred_error, None
            raise error
        fetchable = self._fetchable()
        await self._resolve_positions(fetchable)
        if self._stale_metadata or any(self._cluster.cached_leader(tp) is None for tp in fetchable):
            self._stale_metadata = False
            await self._try_refresh()
        self._start_fetches(params)
        if not self._fetches:
            await asyncio.sleep(max_wait_ms / 1000)  # nothing to read: a poll's wait
            return {}
        done = [task for task in self._fetches.values() if task.done()]
        if not done:
            finished, _ = await asyncio.wait(
                self._fetches.values(),
                timeout=max_wait_ms / 1000 + _FETCH_SLACK_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
            done = list(finished)
        out: dict[TopicPartition, bytes] = {}
        errors: list[Exception] = []
        for node, task in list(self._fetches.items()):
            if task in done:
                del self._fetches[node]
                try:
                    self._take(task.result(), out, errors)
                except KafkaError as exc:
                    errors.append(exc)
        if errors and not out:
            raise errors[0]
        if errors:
            self._deferred_error = errors[0]  # raised by the next fetch, after these records
        self._start_fetches(params)
        return out

    def _fetchable(self) -> list[TopicPartition]:
        return [tp for tp in self._positions if tp not in self._paused]

    def _start_fetches(self, params: tuple[int, int, int]) -> None:
        by_leader: dict[int, dict[TopicPartition, int]] = {}
        for tp in self._fetchable():
            position = self._positions[tp]
            if position is None:
                continue
            leader = self._cluster.cached_leader(tp)
            if leader is None:
                self._stale_metadata = True
                continue
            by_leader.setdefault(leader, {})[tp] = position
        for node, positions in by_leader.items():
            if node not in self._fetches:
                self._fetches[node] = asyncio.create_task(
                    self._fetch_from(node, positions, params), name=f"fetch-node-{node}"
                )

    async def _fetch_from(
        self, node: int, positions: dict[TopicPartition, int], params: tuple[int, int, int]
    ) -> FetchAnswer:
        max_wait_ms, min_bytes, max_bytes = params
        limit = self._partition_max_bytes
        body = fetch_body(
            {tp: (offset, limit) for tp, offset in positions.items()},
            max_wait_ms=max_wait_ms,
            min_bytes=min_bytes,
            max_bytes=max_bytes,
            isolation=self._isolation,
        )
        try:
            conn = await self._cluster.connection(node, self._lane)
            response = await conn.request(
                ApiKey.FETCH, body, timeout_s=max_wait_ms / 1000 + _FETCH_SLACK_S
            )
            check_fetch_answer(response)
        except (KafkaConnectionError, KafkaTimeoutError, KafkaError) as exc:
            if isinstance(exc, KafkaError) and not exc.retriable:
                raise
            logger.debug("fetch failed node=%d error=%s", node, exc)
            self._stale_metadata = True
            await asyncio.sleep(
                backoff_s(0, self._cluster.retry_backoff_s, self._cluster.retry_backoff_max_s)
            )
            return {}
        committed = self._isolation == READ_COMMITTED
        out: FetchAnswer = {}
        for t in response["responses"]:
            for p in t["partitions"]:
                tp = TopicPartition(t["topic"], p["partition_index"])
                aborted = p["aborted_transactions"]
                out[tp] = _Fetched(
                    positions.get(tp, -1),
                    p["error_code"],
                    p["records"] or b"",
                    [(a["producer_id"], a["first_offset"]) for a in aborted or ()],
                    p["last_stable_offset"] if committed else p["high_watermark"],
                )
        return out

    def _take(
        self, answer: FetchAnswer, out: dict[TopicPartition, bytes], errors: list[Exception]
    ) -> None:
        for tp, fetched in answer.items():
            fetched_at, code = fetched.fetched_at, fetched.code
            if tp in self._paused or self._positions.get(tp) != fetched_at or fetched_at < 0:
                continue  # moved, paused or unassigned since the fetch was sent
            if code == ErrorCode.NONE:
                if fetched.end >= 0:
                    self._ends[tp] = fetched.end
                self._advance(tp, fetched, out)
            elif code == ErrorCode.OFFSET_OUT_OF_RANGE and self._reset != "none":
                logger.info(
                    "offset out of range tp=%s offset=%d: reset to %s", tp, fetched_at, self._reset
                )
                self._positions[tp] = None
            elif code in METADATA_CODES:
                self._stale_metadata = True
            elif code in RETRIABLE_CODES:
                continue  # asked again by the next fetch
            else:
                errors.append(
                    KafkaError(
                        code, "Fetch", topic=tp.topic, partition=tp.partition, offset=fetched_at
                    )
                )

    def _advance(
        self, tp: TopicPartition, fetched: _Fetched, out: dict[TopicPartition, bytes]
    ) -> None:
        fetched_at, records = fetched.fetched_at, fetched.records
        if self._isolation == READ_COMMITTED:
            kept, next_offset = committed_batches(records, fetched.aborted, fetched_at)
        else:
            end = 0
            next_offset = fetched_at
            for pos, header in iter_batches(records):
                end = pos + header.size
                next_offset = max(next_offset, header.next_offset)
            kept = bytes(records[:end])
        if kept:
            out[tp] = kept
        if next_offset > fetched_at:
            self._positions[tp] = next_offset
        elif records:
            logger.warning(
                "fetch of %s at %d returned no whole batch in %d bytes: "
                "partition_max_bytes may be smaller than a batch",
                tp,
                fetched_at,
                len(records),
            )

    async def _try_refresh(self) -> None:
        topics = {tp.topic for tp in self._positions}
        if not topics:
            return
        try:
            await self._cluster.refresh(topics)
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            logger.debug("metadata refresh failed error=%s", exc)

    # --- offsets -----------------------------------------------------------------

    async def list_offsets(
        self, tps: Iterable[TopicPartition], timestamp: int
    ) -> dict[TopicPartition, int]:
        """ListOffsets: -1 latest (read_committed: the last stable offset), -2
        earliest, t >= 0 first offset at or after t."""
        return await list_offsets(self._cluster, tps, timestamp, isolation_level=self._isolation)

    async def committed(
        self, group_id: str, tps: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets (partitions without one are left out)."""
        committed = await fetch_committed(self._cluster, group_id, tps)
        return {tp: offset for tp, (offset, _) in committed.items()}

    async def commit(
        self,
        group_id: str,
        offsets: Mapping[TopicPartition, int],
        generation: int = -1,
        member_id: str = "",
        metadata: str | None = "",
    ) -> None:
        await commit_offsets(
            self._cluster,
            group_id,
            offsets,
            generation=generation,
            member_id=member_id,
            metadata=metadata,
        )
