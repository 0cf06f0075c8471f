"""Transports: how a worker reaches the log, behind one interface.

    memory://            the log in memory (tests, notebooks)
    log://PATH           the built-in log embedded in this process, on disk
    kafka://HOST:PORT    a Kafka-protocol broker (runtime/kafka_transport.py)

A transport speaks in record batches (bytes), never in decoded records: the
framework encodes and decodes, the transport moves bytes. Waiting for new data
(long poll) is the transport's job, so that fetch loops never spin.

For exactly-once processing both transports take `isolation_level=
"read_committed"` (fetches see only committed transactions, offsets() ends at
the last stable offset) and make `transactional_writer(id)`s
(runtime/txn_writer.py); the embedded one's coordinator lives in this process
(runtime/embedded_txn.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

from runtime.client.isolation import READ_COMMITTED, IsolationLevel, isolation_code
from runtime.compression import CompressionChoice, compress_batch
from runtime.log.config import FlushPolicy, TopicInfo
from runtime.log.manager import Log
from runtime.log.offsets import OffsetStore
from runtime.types import TopicPartition

if TYPE_CHECKING:
    from runtime.broker.transactions import TransactionCoordinator
    from runtime.txn_writer import TransactionalWriter

DEFAULT_DATA_DIR = "./streams-data"
STABLE_WAIT_MAX_S = 30.0  # a Kafka client's request timeout: past any transaction timeout
STABLE_POLL_S = 0.05


class Transport(Protocol):
    """What the framework needs from a log, local or remote."""

    url: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> TopicInfo: ...
    async def ensure_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> TopicInfo: ...
    async def delete_topic(self, name: str) -> None: ...
    async def topics(self) -> dict[str, TopicInfo]: ...
    async def topic(self, name: str) -> TopicInfo | None: ...
    async def append(self, tp: TopicPartition, batch: bytes | bytearray) -> int: ...
    def set_compression(self, choose: CompressionChoice | None) -> None: ...
    async def fetch(
        self, tp: TopicPartition, offset: int, *, max_bytes: int = 1 << 20, max_wait_s: float = 0.5
    ) -> bytes: ...
    async def offsets(self, tp: TopicPartition) -> tuple[int, int]: ...
    async def high_watermark(self, tp: TopicPartition) -> int: ...
    async def offset_for_timestamp(self, tp: TopicPartition, timestamp_ms: int) -> int | None: ...
    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None: ...
    async def committed(
        self, group: str, tps: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]: ...
    async def groups(self) -> list[str]: ...
    def transactional_writer(
        self, transactional_id: str, *, transaction_timeout_ms: int
    ) -> TransactionalWriter: ...


class EmbeddedTransport:
    """The built-in log in this process: `memory://` or `log://PATH`.

    The log itself is synchronous; appends are cheap enough to run on the event
    loop. Fetchers waiting at the end of a partition park on an asyncio.Event
    that the next append to that partition sets.
    """

    def __init__(
        self,
        url: str,
        path: str | os.PathLike | None,
        *,
        flush: FlushPolicy | None = None,
        background_interval_s: float = 30.0,
        isolation_level: IsolationLevel = "read_uncommitted",
    ) -> None:
        self.url = url
        self.path = Path(path) if path is not None else None
        self._read_committed = isolation_code(isolation_level) == READ_COMMITTED
        self._skips: dict[TopicPartition, tuple[int, int]] = {}  # see embedded_txn.read_committed
        self._coordinator: TransactionCoordinator | None = None
        self._flush = flush or FlushPolicy()
        self._background_interval_s = background_interval_s
        self._log: Log | None = None
        self._offsets: OffsetStore | None = None
        # Parked fetches, by the partitions whose next append wakes them.
        self._waiters: dict[TopicPartition | None, set[asyncio.Event]] = {}
        self._compression: CompressionChoice | None = None

    @property
    def offset_store(self) -> OffsetStore:
        if self._offsets is None:
            raise RuntimeError(f"transport {self.url} is not started")
        return self._offsets

    @property
    def log(self) -> Log:
        if self._log is None:
            raise RuntimeError(f"transport {self.url} is not started")
        return self._log

    async def start(self) -> None:
        if self._log is not None:
            return
        self._log = Log.open(self.path, flush=self._flush)
        self._offsets = OffsetStore(self._log)
        if self._background_interval_s > 0:
            self._log.start_background(self._background_interval_s)

    async def stop(self) -> None:
        coordinator, self._coordinator = self._coordinator, None
        if coordinator is not None:
            await coordinator.stop()
        log, self._log = self._log, None
        if log is not None:
            log.close()
        for events in self._waiters.values():
            for event in events:
                event.set()  # wake parked fetchers so they see the stop

    async def __aenter__(self) -> EmbeddedTransport:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> TopicInfo:
        return self.log.create_topic(name, partitions, configs)

    async def ensure_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> TopicInfo:
        existing = self.log.topics().get(name)
        if existing is not None:
            return existing
        return self.log.create_topic(name, partitions, configs)

    async def delete_topic(self, name: str) -> None:
        self.log.delete_topic(name)

    async def topics(self) -> dict[str, TopicInfo]:
        return self.log.topics()

    async def topic(self, name: str) -> TopicInfo | None:
        return self.log.topics().get(name)

    async def append(self, tp: TopicPartition, batch: bytes | bytearray) -> int:
        return self._append_now(tp, batch)

    def set_compression(self, choose: CompressionChoice | None) -> None:
        """Store the framework's batches compressed, per topic as `choose` says."""
        self._compression = choose

    def notify_append(self, tp: TopicPartition) -> None:
        """Wake fetches parked on `tp` (for appends made on the log directly)."""
        for key in (tp, None):
            for event in self._waiters.get(key, ()):
                event.set()

    async def wait_for_append(
        self, timeout_s: float, tps: Iterable[TopicPartition] | None = None
    ) -> bool:
        """Wait until the next append to one of `tps` (None: to any partition);
        False on timeout. Appends elsewhere do not wake the waiter."""
        event = asyncio.Event()
        keys: list[TopicPartition | None] = [None] if tps is None else list(tps)
        for key in keys:
            self._waiters.setdefault(key, set()).add(event)
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            return False
        finally:
            for key in keys:
                waiting = self._waiters.get(key)
                if waiting is not None:
                    waiting.discard(event)
                    if not waiting:
                        del self._waiters[key]
        return True

    async def fetch(
        self, tp: TopicPartition, offset: int, *, max_bytes: int = 1 << 20, max_wait_s: float = 0.5
    ) -> bytes:
        data = self._read(tp, offset, max_bytes)
        if data or max_wait_s <= 0:
            return data
        if not await self.wait_for_append(max_wait_s, [tp]) or self._log is None:
            return b""
        return self._read(tp, offset, max_bytes)

    def _read(self, tp: TopicPartition, offset: int, max_bytes: int) -> bytes:
        if not self._read_committed:
            return self.log.read(tp, offset, max_bytes)
        from runtime.embedded_txn import read_committed

        return read_committed(self.log, tp, offset, max_bytes, self._skips)

    async def offsets(self, tp: TopicPartition) -> tuple[int, int]:
        start, end = self.log.offsets(tp)
        if self._read_committed:
            end = self.log.last_stable_offset(tp)
        return start, end

    async def high_watermark(self, tp: TopicPartition) -> int:
        """The log's end, whatever the isolation level (offsets() ends at the
        last stable offset under read_committed)."""
        return self.log.offsets(tp)[1]

    async def transaction_coordinator(self) -> TransactionCoordinator:
        """The coordinator of this log's transactions, started on first use: the
        worker's exactly_once commits and a broker serving this log share it."""
        if self._coordinator is None:
            from runtime.broker.transactions import TransactionCoordinator
            from runtime.broker.txn_api import producer_ids

            coordinator = TransactionCoordinator(
                self.log, self.offset_store, producer_ids(), notify_append=self.notify_append
            )
            await coordinator.start()
            self._coordinator = coordinator
        return self._coordinator

    def transactional_writer(
        self, transactional_id: str, *, transaction_timeout_ms: int
    ) -> TransactionalWriter:
        """A writer whose start() takes the in-process coordinator (see embedded_txn)."""
        from runtime.embedded_txn import EmbeddedTxnWriter

        return EmbeddedTxnWriter(
            self.transaction_coordinator,
            self._append_now,
            transactional_id,
            transaction_timeout_ms=transaction_timeout_ms,
        )

    def _append_now(self, tp: TopicPartition, batch: bytes | bytearray) -> int:
        if self._compression is not None:
            batch = compress_batch(batch, self._compression(tp.topic))
        offset = self.log.append(tp, batch)
        self.notify_append(tp)
        return offset

    async def offset_for_timestamp(self, tp: TopicPartition, timestamp_ms: int) -> int | None:
        return self.log.offset_for_timestamp(tp, timestamp_ms)

    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            assert self._offsets is not None
            self._offsets.commit(group, {tp: (off, "") for tp, off in offsets.items()})

    async def committed(
        self, group: str, tps: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        assert self._offsets is not None
        if self._read_committed and self._coordinator is not None:
            tps = None if tps is None else list(tps)
            await self._wait_stable(group, tps)
        return {tp: commit.offset for tp, commit in self._offsets.fetch(group, tps).items()}

    async def _wait_stable(self, group: str, tps: list[TopicPartition] | None) -> None:
        """Until no undecided transaction holds offsets of these partitions (as a
        read_committed Kafka consumer's OffsetFetch does, KIP-447), or
        STABLE_WAIT_MAX_S passed: then the committed offsets as they are."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STABLE_WAIT_MAX_S
        while self._coordinator is not None and loop.time() < deadline:
            pending = self._coordinator.pending_offsets(group)
            if not pending or (tps is not None and pending.isdisjoint(tps)):
                return
            await asyncio.sleep(STABLE_POLL_S)

    async def groups(self) -> list[str]:
        assert self._offsets is not None
        return self._offsets.groups()


def open_transport(
    url: str | None,
    *,
    data_dir: str | os.PathLike | None = None,
    flush: FlushPolicy | None = None,
    connect_timeout_s: float = 10.0,
    isolation_level: IsolationLevel = "read_uncommitted",
) -> Transport:
    """Build the transport a broker URL names.

    `log://` with no path uses `data_dir` (or ./streams-data); `flush` is the
    embedded log's fsync policy; `connect_timeout_s` bounds kafka:// connects."""
    url = url or "log://"
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return EmbeddedTransport(url, None, isolation_level=isolation_level)
    if parsed.scheme == "log":
        path = (parsed.netloc + parsed.path) or os.fspath(data_dir or DEFAULT_DATA_DIR)
        return EmbeddedTransport(url, path, flush=flush, isolation_level=isolation_level)
    if parsed.scheme == "kafka":
        from runtime.kafka_transport import KafkaTransport

        return KafkaTransport(
            url, isolation_level=isolation_level, connect_timeout_s=connect_timeout_s
        )
    raise ValueError(f"broker {url!r}: unknown scheme, expected memory://, log://PATH or kafka://")


def now_ms() -> int:
    return int(time.time() * 1000)
