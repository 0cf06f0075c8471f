"""Helpers for the client's tests: an in-process broker, a client cluster, a
TCP proxy that can cut a connection at a chosen answer."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from runtime.broker.server import Address, Broker
from runtime.client.cluster import Cluster
from runtime.log.records import decode_batches
from runtime.types import TopicPartition

T = TypeVar("T")
TEST_TIMEOUT_S = 20.0


def run(coro: Coroutine[Any, Any, T], timeout_s: float = TEST_TIMEOUT_S) -> T:
    """asyncio.run with a bound on the whole test."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout_s):
            return await coro

    return asyncio.run(bounded())


@contextlib.asynccontextmanager
async def broker(
    data_dir: str | os.PathLike[str] | None = None, *, port: int = 0, **kwargs: Any
) -> AsyncIterator[Broker]:
    async with Broker(data_dir, listen=Address("127.0.0.1", port), **kwargs) as b:
        yield b


def bootstrap_of(b: Broker) -> str:
    assert b.address is not None
    return f"127.0.0.1:{b.address.port}"


@contextlib.asynccontextmanager
async def cluster(bootstrap: str | Broker, **kwargs: Any) -> AsyncIterator[Cluster]:
    if isinstance(bootstrap, Broker):
        bootstrap = bootstrap_of(bootstrap)
    kwargs.setdefault("connect_timeout_s", 5.0)
    kwargs.setdefault("request_timeout_s", 10.0)
    kwargs.setdefault("retry_backoff_s", 0.02)
    kwargs.setdefault("retry_backoff_max_s", 0.2)
    async with Cluster(bootstrap, **kwargs) as c:
        yield c


def stored_values(b: Broker, tp: TopicPartition) -> list[bytes | None]:
    """Every record value stored in a partition of the broker's log, in order."""
    log = b.transport.log
    start, end = log.offsets(tp)
    values: list[bytes | None] = []
    offset = start
    while offset < end:
        records = [r for r in decode_batches(log.read(tp, offset, 1 << 20)) if r.offset >= offset]
        values += [r.value for r in records]
        offset = records[-1].offset + 1
    return values


class CuttingProxy:
    """A TCP proxy in front of a broker that, when armed for an api key, cuts the
    client's connection instead of passing on the broker's next answer to a
    request of that api key (the broker has handled the request: only the answer
    is lost). `cuts` counts the connections cut."""

    def __init__(self) -> None:
        self.upstream: tuple[str, int] | None = None
        self.port = 0
        self.cuts = 0
        self._armed: set[int] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, api_key: int) -> None:
        self._armed.add(api_key)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        assert self.upstream is not None
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        broker_r, broker_w = await asyncio.open_connection(*self.upstream)
        api_keys: dict[int, int] = {}  # correlation id -> api key
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._requests(client_r, broker_w, api_keys))
                tg.create_task(self._answers(broker_r, client_w, api_keys))
        except* (ConnectionError, asyncio.IncompleteReadError, _Cut):
            pass
        finally:
            self._tasks.discard(task)
            client_w.close()
            broker_w.close()

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, api_keys: dict[int, int]
    ) -> None:
        while True:
            size = await reader.readexactly(4)
            frame = await reader.readexactly(int.from_bytes(size, "big"))
            api_key = int.from_bytes(frame[0:2], "big")
            api_keys[int.from_bytes(frame[4:8], "big", signed=True)] = api_key
            writer.write(size + frame)
            await writer.drain()

    async def _answers(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, api_keys: dict[int, int]
    ) -> None:
        while True:
            size = await reader.readexactly(4)
            frame = await reader.readexactly(int.from_bytes(size, "big"))
            api_key = api_keys.pop(int.from_bytes(frame[0:4], "big", signed=True), None)
            if api_key in self._armed:
                self._armed.discard(api_key)
                self.cuts += 1
                raise _Cut
            writer.write(size + frame)
            await writer.drain()


class _Cut(Exception):
    pass
