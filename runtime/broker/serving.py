"""Serving one connection: its requests one at a time, in order, answered in order.

A client may pipeline; answers keep its order. For each frame: the size is
checked (a size outside [8, request_bytes_max] closes the connection before a
byte of the body is read), that many bytes of the broker's request budget are
reserved, the body is read into a buffer of exactly its size, answered, and the
budget is given back once the answer is written (or queued to go out with the
next ones: connection.py). The request's memory is let go before the answer is
sent, so the budget bounds what requests hold. Reading the body and writing the
answer must each finish within request_timeout_ms; neither is timed when it
needs no wait (the body was read with the frame's size, the client reads on).

A response goes out in parts, none of its large records copied: stored batches
read from segment files are sent with sendfile, other large buffers written as
they are, the small parts around them joined.

On a SASL listener a connection is first authenticated (sasl.py): until then
only ApiVersions and the SASL APIs are served, frames may be at most
sasl_receive_bytes_max, and after a SaslHandshake v0 they are raw SASL tokens
(answered raw: a size and the bytes). Every request is handed the `Peer` that
sent it: its principal (from SASL, or a client certificate) and the address
its listener advertises.

A malformed frame closes that connection only; everyone else is served on.
Warnings about a client's frames are logged once per interval per client address.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from runtime.broker.budget import ByteBudget
from runtime.broker.connection import Connection
from runtime.broker.endpoints import Address, SecurityProtocol
from runtime.broker.handlers import ADVERTISED, Handlers, Peer
from runtime.broker.limits import BrokerLimits
from runtime.broker.sasl import SaslConfig, SaslSession
from runtime.broker.settings import ANONYMOUS
from runtime.log.storage import FileRegion
from runtime.logs import RateLimitedLog
from runtime.protocol.codes import ApiKey
from runtime.protocol.errors import ProtocolError, UnsupportedVersionError
from runtime.protocol.frames import (
    RequestHeader,
    api_versions_unsupported_response,
    decode_request,
    encode_response_parts,
)
from runtime.security.tls import principal_of

SIZE_MIN = 8  # api key, version, correlation id
SASL_SIZE_MIN = 1  # a raw token: PLAIN's is 4 bytes and up

_CLOSE = None  # what _answer returns to close the connection
_PRODUCE_KEY = ApiKey.PRODUCE.to_bytes(2, "big")  # its handler never waits: answers can queue


@dataclass(frozen=True, slots=True)
class ListenerContext:
    """What the connections of one listener share."""

    protocol: SecurityProtocol
    advertised: Address
    sasl: SaslConfig | None = None


class _Client:
    """One connection's peer: who it is, and its SASL session until authenticated."""

    def __init__(self, conn: Connection, listener: ListenerContext, ratelog: RateLimitedLog):
        self.host = conn.host
        self.advertised = listener.advertised
        self.principal = principal_of(conn.peercert) or ANONYMOUS
        self.session = SaslSession(listener.sasl, conn.host, ratelog) if listener.sasl else None
        self._peer: Peer | None = None

    @property
    def authenticating(self) -> bool:
        """Not yet authenticated (a re-authentication serves other requests meanwhile)."""
        return self.session is not None and self.session.principal is None

    def peer(self, header: RequestHeader) -> Peer:
        # a client sends every request with the same client id: one Peer serves them
        peer, client_id = self._peer, header.client_id or ""
        if peer is None or peer.client_id != client_id or peer.principal != self.principal:
            peer = self._peer = Peer(client_id, self.host, self.principal, self.advertised)
        return peer

    def after_step(self) -> None:
        session = self.session
        if session is not None and session.principal is not None:
            self.principal = session.principal
            if not session.renewable:
                self.session = None  # authenticated for good: the exchange's state can go


async def serve_connection(
    conn: Connection,
    handlers: Handlers,
    budget: ByteBudget,
    limits: BrokerLimits,
    ratelog: RateLimitedLog,
    listener: ListenerContext,
) -> None:
    """Answer the connection's requests until it ends or sends something bad."""
    timeout_s = limits.request_timeout_ms / 1000
    client = _Client(conn, listener, ratelog)
    while True:
        size = await conn.read_size()
        if size is None:
            return
        if not _size_fits(size, client, limits, conn, ratelog):
            return
        conn.busy = True
        if not budget.try_acquire(size):
            conn.flush()  # the answers so far go out while this one waits
            await budget.acquire(size)
        try:
            frame = bytearray(size)
            if not conn.read_now(frame) and not await _in_time(
                conn.read_into(frame), timeout_s, conn, "request body"
            ):
                return
            if conn.queued and frame[:2] != _PRODUCE_KEY:
                conn.flush()  # other handlers may wait (a long poll, a rebalance)
            if client.authenticating:
                parts, close = await _authenticate(frame, conn, handlers, client, ratelog)
            else:
                parts, close = await _answer(frame, conn, handlers, client, ratelog)
            del frame  # the request's memory goes now: the answer may wait on the client
            if parts is _CLOSE:
                return
            if not await _send_answer(conn, parts, timeout_s):
                return
            if close:
                return
        finally:
            budget.release(size)
        conn.busy = False


def _size_fits(
    size: int, client: _Client, limits: BrokerLimits, conn: Connection, ratelog: RateLimitedLog
) -> bool:
    if client.authenticating:
        assert client.session is not None
        low = SASL_SIZE_MIN if client.session.expects_raw_token else SIZE_MIN
        high, flag = limits.sasl_receive_bytes_max, "--sasl-receive-bytes-max"
        what = "before authentication"
    else:
        low, high, flag, what = SIZE_MIN, limits.request_bytes_max, "--request-bytes-max", ""
    if low <= size <= high:
        return True
    ratelog.warning(
        ("bad-size", conn.host),
        "closing connection from %s: request size %d outside [%d, %d]%s (%s)",
        conn.host,
        size,
        low,
        high,
        f" {what}" if what else "",
        flag,
    )
    return False


async def _in_time(
    work: Coroutine[Any, Any, None], timeout_s: float, conn: Connection, what: str
) -> bool:
    """Run `work`; False, with the connection aborted, if it takes over timeout_s.

    A request holds budget while its body arrives and its answer goes out: a
    client that trickles the one or does not read the other must not hold it
    for longer (clients give up on a request after a similar time anyway)."""
    try:
        async with asyncio.timeout(timeout_s):
            await work
    except TimeoutError:
        conn.closed_because = f"{what} not through in {timeout_s:g}s (--request-timeout-ms)"
        conn.abort()
        return False
    return True


async def _answer(
    frame: bytearray, conn: Connection, handlers: Handlers, client: _Client, ratelog: RateLimitedLog
) -> tuple[list | None, bool]:
    """The response's parts ([] for none: acks=0), or _CLOSE for a malformed frame;
    and whether to close the connection once they are sent."""
    decoded = _decode(frame, conn, ratelog)
    if not isinstance(decoded, tuple):
        return decoded, False
    header, body = decoded
    session = client.session
    if session is not None:  # authenticated, and the session expires (KIP-368)
        if header.api_key in (ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE):
            reply = await session.reauthenticate(header, body)
            assert isinstance(reply.body, dict)
            return encode_response_parts(header, reply.body), reply.close
        if session.expired():
            return _CLOSE, True
    handler = handlers.by_key[header.api_key]
    started = time.perf_counter()
    response = await handler(header, body, client.peer(header))
    if handlers.metrics is not None:
        handlers.metrics.observe(header, body, response, time.perf_counter() - started)
    if response is None:
        return [], False
    return encode_response_parts(header, response), False


async def _authenticate(
    frame: bytearray, conn: Connection, handlers: Handlers, client: _Client, ratelog: RateLimitedLog
) -> tuple[list | None, bool]:
    """What to answer a frame before authentication, and whether to close after it."""
    session = client.session
    assert session is not None
    if session.expects_raw_token:
        reply = await session.raw_token(bytes(frame))
        client.after_step()
        if reply.body is None:
            return _CLOSE, True
        assert isinstance(reply.body, bytes)
        return [len(reply.body).to_bytes(4, "big"), reply.body], reply.close
    decoded = _decode(frame, conn, ratelog)
    if not isinstance(decoded, tuple):
        return decoded, decoded is _CLOSE  # an ApiVersions refusal keeps the connection
    header, body = decoded
    if not session.allows(header.api_key):
        session.refused(header.api_key)
        return _CLOSE, True
    if header.api_key == ApiKey.API_VERSIONS:
        return await _answer(frame, conn, handlers, client, ratelog)
    reply = await session.answer(header, body)
    client.after_step()
    assert isinstance(reply.body, dict)
    return encode_response_parts(header, reply.body), reply.close


def _decode(
    frame: bytearray, conn: Connection, ratelog: RateLimitedLog
) -> tuple[RequestHeader, dict] | list | None:
    """(header, body), or what to answer instead: an ApiVersions refusal, or _CLOSE."""
    try:
        return decode_request(frame)
    except UnsupportedVersionError as exc:
        if exc.header is not None and exc.header.api_key == ApiKey.API_VERSIONS:
            return [api_versions_unsupported_response(exc.header, ADVERTISED)]
        ratelog.warning(("bad-frame", conn.host), "closing connection from %s: %s", conn.host, exc)
        return _CLOSE
    except ProtocolError as exc:
        ratelog.warning(("bad-frame", conn.host), "closing connection from %s: %s", conn.host, exc)
        return _CLOSE


async def _send_answer(conn: Connection, parts: list, timeout_s: float) -> bool:
    """Send an answer within timeout_s; False, with the connection aborted, if
    it took longer. An answer of buffers (the common case) is queued at once,
    and waited on only if the client is not reading fast enough."""
    if any(isinstance(part, FileRegion) for part in parts):
        return await _in_time(_send(conn, parts), timeout_s, conn, "answer")
    for part in parts:
        conn.write(part)
    if conn.write_paused:
        return await _in_time(conn.drain(), timeout_s, conn, "answer")
    return True


async def _send(conn: Connection, parts: list) -> None:
    """Write a response's parts in order; file regions go with sendfile."""
    for part in parts:
        if isinstance(part, FileRegion):
            await _sendfile(conn, part)
        else:
            conn.write(part)
    await conn.drain()


async def _sendfile(conn: Connection, region: FileRegion) -> None:
    # loop.sendfile waits until what was written before has gone out, then has
    # the kernel copy the file's bytes to the socket.
    conn.flush()
    loop = asyncio.get_running_loop()
    transport = conn.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away")
    try:
        await loop.sendfile(transport, region, region.position, region.size, fallback=False)  # type: ignore[arg-type]
    except asyncio.SendfileNotAvailableError:
        conn.write(region.read())
