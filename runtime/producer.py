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


@dataclass(slots=True)
class _Buffer:
    records: list[tuple[bytes | None, bytes | None, int, Sequence[Header]]] = field(
        default_factory=list
    )
    futures: list[Settle | None] = field(default_factory=list)
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
        self._buffers: dict[TopicPartition, _Buffer] = {}
        self._limits: dict[str, int] = {}  # a topic's batch size limit, asked per record
        self._locks: dict[TopicPartition, asyncio.Lock] = {}
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
        if self._closed:
            raise RuntimeError("producer is closed")
        size = (len(key) if key else 0) + (len(value) if value else 0) + _RECORD_OVERHEAD_MAX
        for hkey, hvalue in headers:
            size += len(hkey) + (len(hvalue) if hvalue else 0) + 10
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
        buf = self._buffers.get(tp)
        if buf is None:
            buf = self._buffers[tp] = _Buffer()
        elif buf.size + size > limit or len(buf.records) >= self._batch_records_max:
            self._start_drain(tp)
            buf = self._buffers[tp] = _Buffer()
        future = (
            asyncio.get_running_loop().create_future() if want_future and settle is None else None
        )
        buf.records.append((key, value, timestamp_ms, headers))
        buf.futures.append(future if settle is None else settle)
        buf.size += size
        if self._linger_task is None or self._linger_task.done():
            self._linger_task = asyncio.get_running_loop().create_task(self._linger())
        return future

    async def flush(self) -> None:
        """Append every buffered record; returns when all are stored."""
        for tp in list(self._buffers):
            self._start_drain(tp)
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
            for fut in buf.futures:
                if fut is not None and not fut.done():
                    fut.set_exception(error)
                    fut.exception()  # retrieved: the caller may never await it
        self._buffers.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._drain_errors = []

    # --- internals ---------------------------------------------------------

    async def _append_batch(self, tp: TopicPartition, records: list[OutRecord]) -> int:
        return await self._transport.append(tp, encode_batch(records))

    def _start_drain(self, tp: TopicPartition) -> None:
        buf = self._buffers.pop(tp, None)
        if buf is None or not buf.records:
            return
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
                for fut in buf.futures:
                    if fut is not None and not fut.done():
                        fut.set_exception(exc)
                        fut.exception()  # retrieved: the caller may never await it
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
            for i, fut in enumerate(buf.futures):
                if fut is not None and not fut.done():
                    fut.set_result(base + i)

    async def _linger(self) -> None:
        while self._buffers:
            await asyncio.sleep(self._linger_s)
            for tp in list(self._buffers):
                self._start_drain(tp)
