"""Loopback TCP: the rate a plain socket reaches on this machine, the yardstick
the broker benchmark's produce and consume rates are shown against.

The same payload bytes (messages x value bytes, in TCP_WRITE_BYTES writes) go to
a plain asyncio server in another process, timed until it acks having them all.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from multiprocessing.connection import Connection

from benchmarks.broker_process import PHASE_TIMEOUT_S, READY_TIMEOUT_S, STOP_TIMEOUT_S

TCP_WRITE_BYTES = 1 << 20


class _Sink(asyncio.Protocol):
    def __init__(self, expected: int, done: asyncio.Future[None]) -> None:
        self.expected = expected
        self.received = 0
        self.done = done
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.received >= self.expected and self.transport is not None:
            self.transport.write(b"\x01")
            if not self.done.done():
                self.done.set_result(None)


def _tcp_sink(expected: int, conn: Connection) -> None:
    """In its own process: a plain asyncio server that takes `expected` bytes and acks."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        server = await loop.create_server(lambda: _Sink(expected, done), "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        async with server:
            await asyncio.wait_for(done, PHASE_TIMEOUT_S)
            await asyncio.sleep(0.1)  # let the ack go out

    asyncio.run(serve())


def run_tcp(messages: int, value_bytes: int) -> dict[str, float]:
    total = messages * value_bytes
    chunk = b"v" * (TCP_WRITE_BYTES // value_bytes * value_bytes)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=_tcp_sink, args=(total, theirs), daemon=True)
    child.start()
    try:
        if not ours.poll(READY_TIMEOUT_S):
            raise RuntimeError("tcp sink did not start")
        port = ours.recv()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            view = memoryview(chunk)
            start = time.perf_counter()
            left = total
            while left > 0:
                n = min(left, len(chunk))
                sock.sendall(view[:n])
                left -= n
            if sock.recv(1) != b"\x01":
                raise RuntimeError("tcp sink closed before taking every byte")
            elapsed = time.perf_counter() - start
        child.join(STOP_TIMEOUT_S)
    finally:
        if child.is_alive():
            child.terminate()
            child.join()
    return {
        "bytes": float(total),
        "elapsed_s": elapsed,
        "bytes_per_s": total / elapsed,
        "msgs_per_s": messages / elapsed,
    }
