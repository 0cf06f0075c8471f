"""The TLS handshake of an accepted connection, with the alert that says why it failed.

asyncio's TLS transport drops the alert OpenSSL writes for the peer when a
handshake fails (CPython gh-98078, fixed after 3.14): a client refused for its
certificate, or for speaking TLS 1.1, sees its connection reset and cannot
tell why. `accept_tls` runs asyncio's own SSLProtocol with one change: the
bytes OpenSSL left for the peer (the alert) are handed to the socket before
the connection is closed, so the client reports "certificate required" or
"unknown CA" like it does against Kafka.

That change reaches into asyncio.sslproto's private methods (those of CPython
3.11 to 3.14). Where they are not there, `accept_tls` falls back to
loop.connect_accepted_socket(ssl=...): the same handshake, without the alert.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from asyncio import sslproto
from collections.abc import Callable

_PATCHABLE = all(
    hasattr(sslproto.SSLProtocol, name)
    for name in ("_do_handshake", "_process_outgoing", "_on_handshake_complete")
) and hasattr(sslproto, "SSLAgainErrors")


class _AlertingSSLProtocol(sslproto.SSLProtocol):
    def _do_handshake(self) -> None:
        # asyncio's _do_handshake, plus _process_outgoing() on failure
        try:
            self._sslobj.do_handshake()  # type: ignore[attr-defined]
        except sslproto.SSLAgainErrors:  # type: ignore[attr-defined]
            self._process_outgoing()  # type: ignore[attr-defined]
        except ssl.SSLError as exc:
            self._process_outgoing()  # type: ignore[attr-defined]
            self._on_handshake_complete(exc)  # type: ignore[attr-defined]
        else:
            self._on_handshake_complete(None)  # type: ignore[attr-defined]


async def accept_tls(
    sock: socket.socket,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    context: ssl.SSLContext,
    handshake_timeout_s: float,
) -> None:
    """Serve `sock` with a protocol from `protocol_factory` once the server side of
    the TLS handshake is over; raises (ssl.SSLError, OSError) if it fails."""
    loop = asyncio.get_running_loop()
    if not _PATCHABLE:
        await loop.connect_accepted_socket(
            protocol_factory, sock, ssl=context, ssl_handshake_timeout=handshake_timeout_s
        )
        return
    handshake = loop.create_future()
    tls = _AlertingSSLProtocol(
        loop,
        protocol_factory(),
        context,
        handshake,
        server_side=True,
        ssl_handshake_timeout=handshake_timeout_s,
    )
    transport, _ = await loop.connect_accepted_socket(lambda: tls, sock)
    try:
        await handshake
    except BaseException:
        transport.abort()  # closed already if the handshake failed; not if cancelled
        raise
