"""The Kafka port: accepting connections, and refusing them before they cost anything.

The broker accepts its connections itself instead of through loop.create_server,
for two reasons:

- A connection over a limit is closed straight after accept(), by its peer
  address, before a transport, a protocol or a task exists for it: a flood of
  connections costs an accept and a close each.
- When accept() fails for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM),
  asyncio's own accept loop reports it with a traceback per attempt and, as of
  CPython 3.11, schedules a retry per failed attempt in its batch: hundreds of
  timers, each of which fails again. Here a failure (of any kind: the socket
  stays readable, so trying again at once fails again) is logged once per
  interval with a count, and accepting pauses for `RETRY_DELAY_S` under one
  timer; the connections wait in the kernel's queue meanwhile.

Accepted sockets become transports with loop.connect_accepted_socket; on a
TLS listener (`ssl_context`) the TLS handshake comes first (tls_accept.py),
and must be over within `handshake_timeout_s`. A handshake that fails (a
plaintext client, an untrusted or expired client certificate, a timeout)
closes the connection, the client told why by a TLS alert, with one warning
naming the peer and the reason, per interval per peer and reason.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable

from runtime.broker.connection_limits import ConnectionLimits
from runtime.broker.tls_accept import accept_tls
from runtime.logs import RateLimitedLog

OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_BATCH = 512  # accepts per wake-up: a flood is drained fast, the loop stays responsive
RETRY_DELAY_S = 1.0


class Listener:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        backlog: int,
        limits: ConnectionLimits,
        protocol_factory: Callable[[str, Callable[[], None]], asyncio.BaseProtocol],
        ratelog: RateLimitedLog,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout_s: float | None = None,
    ) -> None:
        self._host = host
        self._ssl = ssl_context
        self._handshake_timeout_s = handshake_timeout_s if ssl_context is not None else None
        self._port = port
        self._backlog = backlog
        self._limits = limits
        self._factory = protocol_factory
        self._ratelog = ratelog
        self._loop = asyncio.get_running_loop()
        self._sockets: list[socket.socket] = []
        self._retry: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task[None]] = set()
        self.port = port

    def bind(self) -> None:
        """Bind and listen on every address `host` names (one port for all)."""
        infos = socket.getaddrinfo(
            self._host or None, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                self._sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((address[0], self.port, *address[2:]))
                self.port = sock.getsockname()[1]  # port 0: the rest bind the same one
                sock.listen(self._backlog)
                sock.setblocking(False)
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        for sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for sock in self._sockets:
            if sock.fileno() >= 0:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets = []
        for task in self._connecting:
            task.cancel()

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # gone before we got to it
            except OSError as exc:
                self._accept_failed(exc)
                return
            host = address[0] if isinstance(address, tuple) else str(address)
            if not self._limits.admit(host):
                conn.close()
                continue
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn, host))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket, host: str) -> None:
        released = False

        def release() -> None:
            # once per admitted connection: by the connection when it ends, or
            # here if it never came to be
            nonlocal released
            if not released:
                released = True
                self._limits.release(host)

        try:
            if self._ssl is None:
                await self._loop.connect_accepted_socket(lambda: self._factory(host, release), conn)
            else:
                assert self._handshake_timeout_s is not None
                await accept_tls(
                    conn, lambda: self._factory(host, release), self._ssl, self._handshake_timeout_s
                )
        except (OSError, ssl.SSLError) as exc:  # the TLS handshake failed, or the peer left
            conn.close()
            release()
            if self._ssl is not None:
                self._ratelog.warning(
                    ("tls", host, _reason(exc)),
                    "TLS handshake with %s failed: %s; closing the connection",
                    host,
                    _reason(exc),
                )
        except BaseException:
            conn.close()
            release()
            raise

    def _accept_failed(self, exc: OSError) -> None:
        # out of resources or not, a failure repeats at once if we try again at
        # once (the socket stays readable): log it once per interval, retry later
        self._ratelog.log(
            logging.ERROR,
            ("accept", exc.errno),
            "accepting connections failed: %s; retrying in %.0fs",
            exc.strerror or exc,
            RETRY_DELAY_S,
        )
        if self._retry is not None:
            return
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
        self._retry = self._loop.call_later(RETRY_DELAY_S, self._resume)

    def _resume(self) -> None:
        self._retry = None
        self.start()


def _reason(exc: BaseException) -> str:
    """What went wrong in a TLS handshake, in a few words (no traceback, no cause chain)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"client certificate refused: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        if exc.reason in _NOT_TLS:
            return f"not a TLS client ({exc.reason}): a plaintext client on a TLS port?"
        if exc.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return f"no client certificate ({exc.reason})"
        return exc.reason or str(exc)
    return str(exc) or type(exc).__name__


# what OpenSSL says when the first bytes are not a TLS ClientHello
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"})
