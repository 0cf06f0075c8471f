"""Transports: how a worker reaches the log, behind one interface.

    memory://            the log in memory (tests, notebooks)
    log://PATH           the built-in log embedded in this process, on disk
    kafka://HOST:PORT    a Kafka-protocol broker (runtime/kafka_transport.py)

A transport speaks in record batches (bytes), never in decoded records: the
framework encodes and decodes, the transport moves bytes. Waiting for new data
(long poll) is the transport's job, so that fetch loops never spin.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from runtime.log.config import FlushPolicy, TopicInfo
from runtime.log.manager import Log
from runtime.log.offsets import OffsetStore
from runtime.types import TopicPartition

DEFAULT_DATA_DIR = "./streams-data"


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
    async def fetch(
        self, tp: TopicPartition, offset: int, *, max_bytes: int = 1 << 20, max_wait_s: float = 0.5
    ) -> bytes: ...
    async def offsets(self, tp: TopicPartition) -> tuple[int, int]: ...
    async def offset_for_timestamp(self, tp: TopicPartition, timestamp_ms: int) -> int | None: ...
    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None: ...
    async def committed(
        self, group: str, tps: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]: ...
    async def groups(self) -> list[str]: ...


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
    ) -> None:
        self.url = url
        self.path = Path(path) if path is not None else None
        self._flush = flush or FlushPolicy()
        self._background_interval_s = background_interval_s
        self._log: Log | None = None
        self._offsets: OffsetStore | None = None
        # Parked fetches, by the partitions whose next append wakes them.
        self._waiters: dict[TopicPartition | None, set[asyncio.Event]] = {}

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
        offset = self.log.append(tp, batch)
        self.notify_append(tp)
        return offset

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
        data = self.log.read(tp, offset, max_bytes)
        if data or max_wait_s <= 0:
            return data
        if not await self.wait_for_append(max_wait_s, [tp]) or self._log is None:
            return b""
        return self.log.read(tp, offset, max_bytes)

    async def offsets(self, tp: TopicPartition) -> tuple[int, int]:
        return self.log.offsets(tp)

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
        return {tp: commit.offset for tp, commit in self._offsets.fetch(group, tps).items()}

    async def groups(self) -> list[str]:
        assert self._offsets is not None
        return self._offsets.groups()


def open_transport(
    url: str | None,
    *,
    data_dir: str | os.PathLike | None = None,
    flush: FlushPolicy | None = None,
    connect_timeout_s: float = 10.0,
) -> Transport:
    """Build the transport a broker URL names.

    `log://` with no path uses `data_dir` (or ./streams-data); `flush` is the
    embedded log's fsync policy; `connect_timeout_s` bounds kafka:// connects."""
    url = url or "log://"
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return EmbeddedTransport(url, None)
    if parsed.scheme == "log":
        path = (parsed.netloc + parsed.path) or os.fspath(data_dir or DEFAULT_DATA_DIR)
        return EmbeddedTransport(url, path, flush=flush)
    if parsed.scheme == "kafka":
        from runtime.kafka_transport import KafkaTransport

        return KafkaTransport(url, connect_timeout_s=connect_timeout_s)
    raise ValueError(f"broker {url!r}: unknown scheme, expected memory://, log://PATH or kafka://")


def now_ms() -> int:
    return int(time.time() * 1000)
