"""One client connection: size-prefixed request frames in, responses out.

The socket is read straight into the memory a request ends up in: a frame's
size arrives first, the caller reserves that many bytes of the request budget
and hands over a buffer of exactly that size, and the kernel copies the body
into it (recv_into), so a request in memory costs its size once. Ahead of what
the caller asked for, at most `READ_AHEAD_BYTES` are read into a small scratch
buffer (the next sizes and small requests of a pipelining client); past that,
reading pauses and the bytes wait in the kernel. An idle connection holds no
buffer at all.

Invariants:
- scratch[head:tail] is read but not yet taken; tail - head <= READ_AHEAD_BYTES.
- While a body is being read, the scratch is empty: what the socket gives goes
  into the body, never more than it lacks.
- The transport reads only while the scratch has room or a body lacks bytes.
- Idle (no bytes in or out, no request in hand) for `idle_s`: closed. How long
  reading a request or writing its answer may take, the caller bounds
  (serving.py).

Answers are written when the connection has nothing more to do for now: what
`write` is given waits in `_out` until the caller is about to wait (for the
next request's bytes, for budget, for a handler that may wait) or until
WRITE_COALESCE_BYTES are waiting, then goes to the transport as one write. A
pipelining client (librdkafka sends Produce requests back to back) then gets
the answers to every request that arrived together in one send() instead of
one each: on loopback a send() costs about as much as answering a small
Produce. A client that sends one request at a time sees no delay: its answer
goes out as soon as the next read finds nothing.

- `_out` holds at most WRITE_COALESCE_BYTES plus one part; it is written
  before this side waits on the client, before a file region is sent, before
  the connection is closed and before `drain` looks at the transport's
  buffer, so answers never overtake each other nor wait on the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

READ_AHEAD_BYTES = 32 * 1024
WRITE_COALESCE_BYTES = 64 * 1024
_SIZE_BYTES = 4


class Connection(asyncio.BufferedProtocol):
    def __init__(
        self,
        host: str,
        release: Callable[[], None],
        on_open: Callable[[Connection], None],
        *,
        idle_s: float,
    ) -> None:
        self.host = host
        self.release = release  # its place in the connection limits, once it has ended
        self._on_open = on_open
        self._idle_s = idle_s
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a request is in hand: waiting for budget, read or answered
        self._scratch: bytearray | None = None
        self._head = self._tail = 0
        self._body: memoryview | None = None
        self._reading = True
        self._eof = False
        self._lost: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._out: list[bytes | bytearray | memoryview] = []
        self._out_bytes = 0
        self._last_active = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self.closed_because: str | None = None  # why the broker closed it on its own

    # --- asyncio callbacks ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._on_open(self)
        self._timer = self._loop.call_later(self._idle_s, self._check_timeouts)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._body is not None:
            return self._body
        if self._scratch is None:
            self._scratch = bytearray(READ_AHEAD_BYTES)
        elif self._head:
            pending = self._tail - self._head
            self._scratch[:pending] = self._scratch[self._head : self._tail]
            self._head, self._tail = 0, pending
        return memoryview(self._scratch)[self._tail :]

    def buffer_updated(self, nbytes: int) -> None:
        self._last_active = self._loop.time()
        if self._body is not None:
            self._body = self._body[nbytes:]
            if not self._body:
                self._body = None
                self._wake()
        else:
            self._tail += nbytes
            self._wake()
        self._pause_when_full()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        # keep the transport open, answers may still go out; TLS transports
        # cannot be half-closed (and warn when asked to)
        return not self.tls

    @property
    def tls(self) -> bool:
        transport = self.transport
        return transport is not None and transport.get_extra_info("sslcontext") is not None

    @property
    def peercert(self) -> dict | None:
        """The client's verified certificate (mutual TLS), as ssl's getpeercert() gives it."""
        if self.transport is None:
            return None
        return self.transport.get_extra_info("peercert")

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("connection closed")
        self._drop_out()
        if self._timer is not None:
            self._timer.cancel()
        self._wake()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake()

    # --- reading ----------------------------------------------------------------

    async def read_size(self) -> int | None:
        """The next frame's size (a signed int32), or None at a clean end of stream."""
        while self._tail - self._head < _SIZE_BYTES:
            if self._tail > self._head and (self._eof or self._lost):
                raise asyncio.IncompleteReadError(b"", _SIZE_BYTES)
            if self._eof or self._lost:
                return None
            self.flush()  # nothing more to answer until the client sends
            await self._wait()
        assert self._scratch is not None
        size = int.from_bytes(self._scratch[self._head : self._head + 4], "big", signed=True)
        self._take(_SIZE_BYTES)
        return size

    def read_now(self, frame: bytearray) -> bool:
        """Fill `frame` from what has been read already, if that holds all of it
        (a pipelined small request): then no wait, and no timeout, is needed."""
        if self._tail - self._head < len(frame):
            return False
        assert self._scratch is not None
        frame[:] = memoryview(self._scratch)[self._head : self._head + len(frame)]
        self._take(len(frame))
        return True

    async def read_into(self, frame: bytearray) -> None:
        """Fill `frame` (a body whose size read_size gave) from the socket."""
        view = memoryview(frame)
        ready = min(len(view), self._tail - self._head)
        if ready:
            assert self._scratch is not None
            view[:ready] = self._scratch[self._head : self._head + ready]
            self._take(ready)
        if ready == len(view):
            return
        self._body = view[ready:]
        self._resume()
        self.flush()
        try:
            while self._body is not None:
                if self._eof or self._lost:
                    raise asyncio.IncompleteReadError(b"", len(frame))
                await self._wait()
        finally:
            self._body = None
            self._pause_when_full()

    def _take(self, n: int) -> None:
        self._head += n
        if self._head == self._tail:
            self._scratch = None  # idle connections hold no buffer
            self._head = self._tail = 0
        self._resume()

    def _pause_when_full(self) -> None:
        full = self._body is None and self._tail - self._head >= READ_AHEAD_BYTES
        if full and self._reading and self.transport is not None:
            self._reading = False
            self.transport.pause_reading()

    def _resume(self) -> None:
        if not self._reading and self.transport is not None and not self._lost:
            self._reading = True
            self.transport.resume_reading()

    # --- writing ----------------------------------------------------------------

    @property
    def write_paused(self) -> bool:
        """The transport's buffer is above its high-water mark: `drain` would wait."""
        return self._write_paused

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data`: it goes out with the next `flush` (see the module doc)."""
        if self._lost:
            raise ConnectionResetError("the client went away")
        self._last_active = self._loop.time()
        self._out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes >= WRITE_COALESCE_BYTES:
            self.flush()

    @property
    def queued(self) -> bool:
        """Answers wait in `_out` for a flush."""
        return bool(self._out)

    def flush(self) -> None:
        """Hand what `write` queued to the transport, as one write."""
        out = self._out
        if not out:
            return
        self._out = []
        self._out_bytes = 0
        transport = self.transport
        if self._lost or transport is None or transport.is_closing():
            return
        if len(out) == 1:
            transport.write(out[0])
        elif max(len(part) for part in out) >= WRITE_COALESCE_BYTES:
            for part in out:  # a large part is not copied into a joined one
                transport.write(part)
        else:
            transport.write(b"".join(out))

    def _drop_out(self) -> None:
        self._out = []
        self._out_bytes = 0

    async def drain(self) -> None:
        """Write what is queued, then wait until the transport's buffer is below
        its high-water mark."""
        self.flush()
        while self._write_paused:
            if self._lost:
                raise ConnectionResetError("the client went away")
            await self._wait()
        if self._lost:
            raise ConnectionResetError("the client went away")
        self._last_active = self._loop.time()

    def close(self) -> None:
        self.flush()  # the answers queued go out before the transport closes
        if self.transport is not None:
            self.transport.close()

    # --- waiting and timeouts ---------------------------------------------------

    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _check_timeouts(self) -> None:
        # one timer per connection: activity only updates _last_active, and the
        # timer looks at it when it fires
        if self._lost:
            return
        now = self._loop.time()
        deadline = now + self._idle_s if self.busy else self._last_active + self._idle_s
        if now < deadline:
            self._timer = self._loop.call_at(deadline, self._check_timeouts)
            return
        self.closed_because = "idle"
        self.abort()

    def abort(self) -> None:
        """Close at once, dropping what has not been written."""
        self._drop_out()
        if self.transport is not None:
            self.transport.abort()
