"""Serving one connection: its requests one at a time, in order, answered in order.

A client may pipeline; answers keep its order. For each frame: the size is
checked (a size outside [8, request_bytes_max] closes the connection before a
byte of the body is read), that many bytes of the broker's request budget are
reserved, the body is read into a buffer of exactly its size, answered, and the
budget is given back once the answer is written. The request's memory is let go
before the answer is sent, so the budget bounds what requests hold. Reading the
body and writing the answer must each finish within request_timeout_ms.

A response goes out in parts, none of its large records copied: stored batches
read from segment files are sent with sendfile, other large buffers written as
they are, the small parts around them joined.

A malformed frame closes that connection only; everyone else is served on.
Warnings about a client's frames are logged once per interval per client address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from runtime.broker.budget import ByteBudget
from runtime.broker.connection import Connection
from runtime.broker.handlers import ADVERTISED, Handlers, Peer
from runtime.broker.limits import BrokerLimits
from runtime.log.storage import FileRegion
from runtime.logs import RateLimitedLog
from runtime.protocol.codes import ApiKey
from runtime.protocol.errors import ProtocolError, UnsupportedVersionError
from runtime.protocol.frames import (
    api_versions_unsupported_response,
    decode_request,
    encode_response_parts,
)

SIZE_MIN = 8  # api key, version, correlation id

_CLOSE = None  # what _answer returns to close the connection


async def serve_connection(
    conn: Connection,
    handlers: Handlers,
    budget: ByteBudget,
    limits: BrokerLimits,
    ratelog: RateLimitedLog,
) -> None:
    """Answer the connection's requests until it ends or sends something bad."""
    timeout_s = limits.request_timeout_ms / 1000
    while True:
        size = await conn.read_size()
        if size is None:
            return
        if not SIZE_MIN <= size <= limits.request_bytes_max:
            ratelog.warning(
                ("bad-size", conn.host),
                "closing connection from %s: request size %d outside [%d, %d]",
                conn.host,
                size,
                SIZE_MIN,
                limits.request_bytes_max,
            )
            return
        conn.busy = True
        async with budget.reserve(size):
            frame = bytearray(size)
            if not await _in_time(conn.read_into(frame), timeout_s, conn, "request body"):
                return
            parts = await _answer(frame, conn, handlers, ratelog)
            del frame  # the request's memory goes now: the answer may wait on the client
            if parts is _CLOSE:
                return
            if not await _in_time(_send(conn, parts), timeout_s, conn, "answer"):
                return
        conn.busy = False


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
    frame: bytearray, conn: Connection, handlers: Handlers, ratelog: RateLimitedLog
) -> list | None:
    """The response's parts ([] for none: acks=0), or _CLOSE for a malformed frame."""
    try:
        header, body = decode_request(frame)
    except UnsupportedVersionError as exc:
        if exc.header is not None and exc.header.api_key == ApiKey.API_VERSIONS:
            return [api_versions_unsupported_response(exc.header, ADVERTISED)]
        ratelog.warning(("bad-frame", conn.host), "closing connection from %s: %s", conn.host, exc)
        return _CLOSE
    except ProtocolError as exc:
        ratelog.warning(("bad-frame", conn.host), "closing connection from %s: %s", conn.host, exc)
        return _CLOSE
    handler = handlers.by_key[header.api_key]
    response = await handler(header, body, Peer(header.client_id or "", conn.host))
    if response is None:
        return []
    return encode_response_parts(header, response)


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
    loop = asyncio.get_running_loop()
    transport = conn.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away")
    try:
        await loop.sendfile(transport, region, region.position, region.size, fallback=False)  # type: ignore[arg-type]
    except asyncio.SendfileNotAvailableError:
        conn.write(region.read())
