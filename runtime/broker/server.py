"""`streams broker`: the built-in log served over the Kafka wire protocol.

Each connection is served like Kafka serves it: one request at a time, in
order, answered in order (a client may pipeline; answers keep its order).
A response goes out in parts, none of its large records copied: stored batches
read from segment files are sent with sendfile, other large buffers written as
they are, the small parts around them joined.
A frame's size is checked before its body is read, so memory per connection
is bounded by `request_bytes_max`. A malformed frame closes that connection
only; everyone else is served on.

Lifecycle: `async with Broker(...) as broker: await broker.serve_until(stop)`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from runtime.broker.coordinator import GroupCoordinator
from runtime.broker.handlers import ADVERTISED, BrokerSettings, Handlers, Peer
from runtime.broker.rest import RestProxy
from runtime.broker.transactions import TransactionCoordinator, TransactionSettings
from runtime.broker.txn_api import producer_ids
from runtime.log.config import FlushPolicy
from runtime.log.storage import FileRegion
from runtime.protocol.codes import ApiKey
from runtime.protocol.errors import ProtocolError, UnsupportedVersionError
from runtime.protocol.frames import (
    api_versions_unsupported_response,
    decode_request,
    encode_response_parts,
)
from runtime.transport import EmbeddedTransport

logger = logging.getLogger(__name__)

REQUEST_BYTES_MAX = 100 * 1024 * 1024  # Kafka's socket.request.max.bytes
_SIZE_MIN = 8  # api key, version, correlation id


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, default_port: int = 9092) -> Address:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = text, str(default_port)
        try:
            number = int(port)
        except ValueError:
            raise ValueError(f"{text!r} is not HOST:PORT") from None
        if not 0 <= number <= 65535:
            raise ValueError(f"{text!r}: port out of range")
        return cls(host.strip("[]") or "127.0.0.1", number)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Broker:
    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None,
        *,
        listen: Address,
        advertise: Address | None = None,
        http: Address | None = None,
        flush: FlushPolicy | None = None,
        auto_create_topics: bool = True,
        default_partitions: int = 1,
        request_bytes_max: int = REQUEST_BYTES_MAX,
        min_session_timeout_ms: int = 1000,
        initial_rebalance_delay_ms: int = 0,
        transactions: TransactionSettings | None = None,
    ) -> None:
        self._listen = listen
        self._advertise = advertise
        self._http = http
        self._auto_create = auto_create_topics
        self._default_partitions = default_partitions
        self._request_bytes_max = request_bytes_max
        self._min_session_timeout_ms = min_session_timeout_ms
        self._initial_rebalance_delay_ms = initial_rebalance_delay_ms
        url = f"log://{Path(data_dir).resolve()}" if data_dir is not None else "memory://"
        self.transport = EmbeddedTransport(url, data_dir, flush=flush)
        self._server: asyncio.base_events.Server | None = None
        self._http_runner: web.AppRunner | None = None
        self._coordinator: GroupCoordinator | None = None
        self._transactions: TransactionCoordinator | None = None
        self._txn_settings = transactions or TransactionSettings()
        self._next_producer_id = producer_ids()
        self._handlers: Handlers | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.address: Address | None = None
        self.http_address: Address | None = None

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self.transport.start()
        try:
            self._coordinator = GroupCoordinator(
                self.transport.offset_store,
                min_session_timeout_ms=self._min_session_timeout_ms,
                initial_rebalance_delay_ms=self._initial_rebalance_delay_ms,
            )
            await self._coordinator.start()
            self._transactions = TransactionCoordinator(
                self.transport.log,
                self.transport.offset_store,
                self._next_producer_id,
                notify_append=self.transport.notify_append,
                settings=self._txn_settings,
            )
            await self._transactions.start()
            self._server = await asyncio.start_server(
                self._on_connection, self._listen.host, self._listen.port
            )
            sockname = self._server.sockets[0].getsockname()
            self.address = Address(self._listen.host, sockname[1])
            advertised = self._advertise or self.address
            self._handlers = Handlers(
                self.transport,
                self._coordinator,
                BrokerSettings(
                    advertised.host,
                    advertised.port,
                    auto_create_topics=self._auto_create,
                    default_partitions=self._default_partitions,
                ),
                self._transactions,
                self._next_producer_id,
            )
            if self._http is not None:
                await self._start_http(self._http)
        except BaseException:
            await self.stop()
            raise
        logger.info(
            "broker listening on %s (advertised %s) data=%s",
            self.address,
            self._advertise or self.address,
            self.transport.url,
        )

    async def _start_http(self, address: Address) -> None:
        self._http_runner = web.AppRunner(RestProxy(self.transport).app(), access_log=None)
        await self._http_runner.setup()
        site = web.TCPSite(self._http_runner, address.host, address.port)
        await site.start()
        server = site._server  # the bound port, when asked for port 0
        port = server.sockets[0].getsockname()[1] if server is not None else address.port
        self.http_address = Address(address.host, port)
        logger.info("REST proxy listening on http://%s", self.http_address)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._http_runner is not None:
            await self._http_runner.cleanup()
            self._http_runner = None
        if self._transactions is not None:
            await self._transactions.stop()
            self._transactions = None
        if self._coordinator is not None:
            await self._coordinator.stop()
            self._coordinator = None
        await self.transport.stop()

    async def serve_until(self, stop: asyncio.Event) -> None:
        await stop.wait()

    # --- connections --------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else str(peer)
        try:
            await self._serve(reader, writer, host)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # the broker is stopping
        except Exception:
            logger.exception("connection from %s failed: closing it", host)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        handlers = self._handlers
        assert handlers is not None
        while True:
            size = int.from_bytes(await reader.readexactly(4), "big", signed=True)
            if not _SIZE_MIN <= size <= self._request_bytes_max:
                logger.warning(
                    "closing connection from %s: request size %d outside [%d, %d]",
                    host,
                    size,
                    _SIZE_MIN,
                    self._request_bytes_max,
                )
                return
            frame = await reader.readexactly(size)
            try:
                header, body = decode_request(frame)
            except UnsupportedVersionError as exc:
                if exc.header is not None and exc.header.api_key == ApiKey.API_VERSIONS:
                    writer.write(api_versions_unsupported_response(exc.header, ADVERTISED))
                    await writer.drain()
                    continue
                logger.warning("closing connection from %s: %s", host, exc)
                return
            except ProtocolError as exc:
                logger.warning("closing connection from %s: %s", host, exc)
                return
            handler = handlers.by_key[header.api_key]
            response = await handler(header, body, Peer(header.client_id or "", host))
            if response is not None:
                await _send(writer, encode_response_parts(header, response))


async def _send(writer: asyncio.StreamWriter, parts: list) -> None:
    """Write a response's parts in order; file regions go with sendfile."""
    for part in parts:
        if isinstance(part, FileRegion):
            await _sendfile(writer, part)
        else:
            writer.write(part)
    await writer.drain()


async def _sendfile(writer: asyncio.StreamWriter, region: FileRegion) -> None:
    # loop.sendfile waits until what was written before has gone out, then has
    # the kernel copy the file's bytes to the socket.
    loop = asyncio.get_running_loop()
    if writer.transport.is_closing():
        raise ConnectionResetError("the client went away")
    try:
        await loop.sendfile(writer.transport, region, region.position, region.size, fallback=False)  # type: ignore[arg-type]
    except asyncio.SendfileNotAvailableError:
        writer.write(region.read())
