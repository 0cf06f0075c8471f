"""A batching producer over a transport.

Records are buffered per partition and appended as one record batch when the
buffer reaches `batch_records_max` / `batch_bytes_max`, when `linger_s` has
passed, or on flush(). Per-partition order is kept: one batch of a partition
is appended at a time, in buffer order.

Each send returns a future resolved with the record's offset once its batch
is appended, so callers can choose between fire-and-forget and waiting.

A batch the transport refuses (StorageError on a full disk, a broker error) is
never retried here: its futures get the error, `on_error` hears of it at once,
and the next flush() raises it. The records are dropped, so a caller that goes
on must not commit past them (the worker stops instead).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from runtime.errors import RecordTooLargeError
from runtime.log.records import HEADER_SIZE, Header, OutRecord, encode_batch
from runtime.logs import RateLimitedLog
from runtime.transport import Transport
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)
_append_errors = RateLimitedLog(logger)  # a full disk fails every batch: one line per interval

# Upper bound of a record's framing inside a batch: varints and attributes.
_RECORD_OVERHEAD_MAX = 32

Append = Callable[[TopicPartition, list[OutRecord]], Awaitable[int]]
"""Store one partition's records as one batch (or in order); the first one's offset."""


class Settle(Protocol):
    """What a record's slot needs of a future: the producer settles it with the
    record's offset or its batch's error (asyncio.Future is one)."""

    def done(self) -> bool: ...

    def set_result(self, offset: int, /) -> None: ...

    def set_exception(self, error: BaseException, /) -> None: ...

    def exception(self) -> BaseException | None: ...


class BatchOutcome:
    """What became of one buffered batch of a partition: the offset of its
    first record, or the error that failed it. One per batch, read by index
    (record i is at `base + i`), so a record needs no future of its own;
    `watch` calls back once the batch is settled (at once if it is)."""

    __slots__ = ("base", "error", "tp", "watchers")

    def __init__(self, tp: TopicPartition) -> None:
        self.tp = tp
        self.base: int | None = None
        self.error: BaseException | None = None
        self.watchers: list[Callable[[BatchOutcome], None]] | None = None

    @property
    def done(self) -> bool:
        return self.base is not None or self.error is not None

    def watch(self, fn: Callable[[BatchOutcome], None]) -> None:
        if self.done:
            fn(self)
        elif self.watchers is None:
            self.watchers = [fn]
        else:
            self.watchers.append(fn)

    def settle(self, base: int) -> None:
        self.base = base
        self._notify()

    def fail(self, error: BaseException) -> None:
        if not self.done:
            self.error = error
            self._notify()

    def _notify(self) -> None:
        watchers, self.watchers = self.watchers, None
        for fn in watchers or ():
            fn(self)


@dataclass(slots=True)
class _Buffer:
    outcome: BatchOutcome
    limit: int  # bytes of the batch at most, for its topic
    records: list[tuple[bytes | None, bytes | None, int, Sequence[Header]]] = field(
        default_factory=list
    )
    # (index, future) of the records sent with one: most are read through `outcome`.
    futures: list[tuple[int, Settle]] = field(default_factory=list)
    size: int = HEADER_SIZE


class Producer:
    """Buffers records per partition and appends them in batches."""

    def __init__(
        self,
        transport: Transport,
        *,
        linger_s: float = 0.005,
        batch_records_max: int = 2000,
        batch_bytes_max: int = 1 << 20,
        max_message_bytes: dict[str, int] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        append: Append | None = None,
    ) -> None:
        self._transport = transport
        # Under exactly_once the records go through the worker's transaction instead.
        self._append = append or self._append_batch
        self._on_error = on_error
        self._linger_s = linger_s
        self._batch_records_max = batch_records_max
        self._batch_bytes_max = batch_bytes_max
        self._max_message_bytes = max_message_bytes if max_message_bytes is not None else {}
        # By (topic, partition): a tuple hashes in C, a TopicPartition in Python,
        # and the buffer is looked up per record.
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._limits: dict[str, int] = {}  # a topic's batch size limit, asked per record
        self._locks: dict[TopicPartition, asyncio.Lock] = {}
        self._lingering = False  # _linger_task is running
        self._linger_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._drain_errors: list[BaseException] = []
        self._closed = False
        # Appended, ever (read by metrics): records and batch bytes per partition.
        self.records_out: dict[TopicPartition, int] = {}
        self.bytes_out: dict[TopicPartition, int] = {}

    def set_max_message_bytes(self, topic: str, limit: int) -> None:
        self._max_message_bytes[topic] = limit
        self._limits.pop(topic, None)
        for (name, _), buf in self._buffers.items():
            if name == topic:
                buf.limit = HEADER_SIZE  # its next record asks _next_buffer again

    def send_nowait(
        self,
        tp: TopicPartition,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        headers: Sequence[Header] = (),
        *,
        want_future: bool = True,
        settle: Settle | None = None,
    ) -> asyncio.Future[int] | None:
        """Buffer one record; the batch goes out on linger, size or flush.

        `settle` takes the place of the returned future (None is returned then):
        the caller's own future-like object, settled with the offset."""
        _, index = self.send_batched(tp, key, value, timestamp_ms, headers)
        future = (
            asyncio.get_running_loop().create_future() if want_future and settle is None else None
        )
        if settle is not None or future is not None:
            buf = self._buffers[(tp.topic, tp.partition)]  # the one the record went into
            buf.futures.append((index, settle if settle is not None else future))  # type: ignore[arg-type]
        return future

    def send_batched(
        self,
        tp: TopicPartition,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        headers: Sequence[Header] = (),
    ) -> tuple[BatchOutcome, int]:
        """Buffer one record without a future of its own: its batch's outcome
        and its index in that batch (its offset is the batch's base + index)."""
        if self._closed:
            raise RuntimeError("producer is closed")
        size = (len(key) if key else 0) + (len(value) if value else 0) + _RECORD_OVERHEAD_MAX
        if headers:
            for hkey, hvalue in headers:
                size += len(hkey) + (len(hvalue) if hvalue else 0) + 10
        slot = (tp.topic, tp.partition)
        buf = self._buffers.get(slot)
        # One test per record covers both a full batch and an oversized record
        # (a batch's size starts at HEADER_SIZE): _next_buffer tells them apart.
        if (
            buf is None
            or buf.size + size > buf.limit
            or len(buf.records) >= self._batch_records_max
        ):
            buf = self._next_buffer(tp, slot, size)
        records = buf.records
        records.append((key, value, timestamp_ms, headers))
        buf.size += size
        if not self._lingering:
            self._lingering = True
            self._linger_task = asyncio.get_running_loop().create_task(self._linger())
        return buf.outcome, len(records) - 1

    def _next_buffer(self, tp: TopicPartition, slot: tuple[str, int], size: int) -> _Buffer:
        """A buffer with room for a record of `size` bytes; the full one, if
        any, starts draining. An oversized record is refused before anything
        else happens, so the records buffered before it go out as they would."""
        limit = self._limits.get(tp.topic)
        if limit is None:
            limit = self._limits[tp.topic] = min(
                self._max_message_bytes.get(tp.topic, self._batch_bytes_max),
                self._batch_bytes_max,
            )
        if size + HEADER_SIZE > limit:
            raise RecordTooLargeError(
                f"record of {size} bytes is larger than the maximum of {limit} bytes "
                f"for topic {tp.topic!r}",
                topic=tp.topic,
                partition=tp.partition,
            )
        buf = self._buffers.get(slot)
        if buf is not None and buf.limit != limit and buf.size + size <= limit:
            buf.limit = limit  # the topic's limit changed: the buffer follows
            if len(buf.records) < self._batch_records_max:
                return buf
        if buf is not None:
            self._start_drain(slot)
        buf = self._buffers[slot] = _Buffer(BatchOutcome(tp), limit)
        return buf

    async def flush(self) -> None:
        """Append every buffered record; returns when all are stored."""
        for slot in list(self._buffers):
            self._start_drain(slot)
        if self._tasks:
            await asyncio.gather(*self._tasks)
        if self._drain_errors:
            error, self._drain_errors = self._drain_errors[0], []
            raise error

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self.flush()
        finally:
            self._closed = True
            if self._linger_task is not None:
                self._linger_task.cancel()

    async def abandon(self, error: BaseException) -> None:
        """Drop every buffered record (their futures get `error`) and wait for the
        batches being appended: an aborted transaction's records go nowhere."""
        for buf in self._buffers.values():
            _fail(buf, error)
        self._buffers.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._drain_errors = []

    # --- internals ---------------------------------------------------------

    async def _append_batch(self, tp: TopicPartition, records: list[OutRecord]) -> int:
        return await self._transport.append(tp, encode_batch(records))

    def _start_drain(self, slot: tuple[str, int]) -> None:
        buf = self._buffers.pop(slot, None)
        if buf is None or not buf.records:
            return
        tp = buf.outcome.tp
        lock = self._locks.get(tp)
        if lock is None:
            lock = self._locks[tp] = asyncio.Lock()
        task = asyncio.get_running_loop().create_task(self._drain(tp, buf, lock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, tp: TopicPartition, buf: _Buffer, lock: asyncio.Lock) -> None:
        async with lock:
            try:
                base = await self._append(tp, buf.records)
            except BaseException as exc:
                _fail(buf, exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                _append_errors.error(
                    tp, "append failed tp=%s records=%d error=%s", tp, len(buf.records), exc
                )
                self._drain_errors.append(exc)  # raised by the next flush()
                if self._on_error is not None:
                    self._on_error(exc)
                return
            self.records_out[tp] = self.records_out.get(tp, 0) + len(buf.records)
            self.bytes_out[tp] = self.bytes_out.get(tp, 0) + buf.size  # the batch, near enough
            buf.outcome.settle(base)
            for i, fut in buf.futures:
                if not fut.done():
                    fut.set_result(base + i)

    async def _linger(self) -> None:
        try:
            while self._buffers and not self._closed:
                await asyncio.sleep(self._linger_s)
                for slot in list(self._buffers):
                    self._start_drain(slot)
        finally:
            self._lingering = False


def _fail(buf: _Buffer, error: BaseException) -> None:
    buf.outcome.fail(error)
    for _, fut in buf.futures:
        if not fut.done():
            fut.set_exception(error)
            fut.exception()  # retrieved: the caller may never await it
