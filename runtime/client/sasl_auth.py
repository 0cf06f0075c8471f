"""The client side of SASL on a fresh connection: SaslHandshake v1, then SaslAuthenticate.

Runs right after ApiVersions (which a broker answers before authentication)
and before any other request. PLAIN sends one message; SCRAM (RFC 5802/7677)
sends client-first and client-final and checks the server's signature, so a
server that does not know the password cannot pass for the real one.

A refusal is an AuthenticationFailedError: never retried, since the same
credentials get the same answer, and a client that retried would hammer the
broker and hide the real cause behind a timeout.
"""

from __future__ import annotations

from typing import Protocol

from runtime.client.errors import AuthenticationFailedError
from runtime.client.security import ClientSecurity
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.security.errors import AuthenticationError
from runtime.security.scram import ScramClient

HANDSHAKE_VERSION = 1  # v0 sends the tokens unframed; every broker since 1.0 serves v1


class Requester(Protocol):
    host: str
    port: int

    async def request(self, api_key: int, body: dict, *, version: int | None = None) -> dict: ...


async def authenticate(conn: Requester, security: ClientSecurity) -> int:
    """Authenticate `conn`; the session's lifetime in ms (0: no limit), per KIP-368."""
    assert security.sasl_mechanism is not None and security.username is not None
    assert security.password is not None
    where = f"{conn.host}:{conn.port}"
    answer = await conn.request(
        ApiKey.SASL_HANDSHAKE,
        {"mechanism": security.sasl_mechanism},
        version=HANDSHAKE_VERSION,
    )
    if answer["error_code"] == ErrorCode.UNSUPPORTED_SASL_MECHANISM:
        raise AuthenticationFailedError(
            f"{where} does not offer SASL {security.sasl_mechanism} "
            f"(it offers {', '.join(answer['mechanisms']) or 'none'})",
            code=answer["error_code"],
        )
    if answer["error_code"] != ErrorCode.NONE:
        raise AuthenticationFailedError(
            f"SASL handshake with {where} refused", code=answer["error_code"]
        )
    if security.sasl_mechanism == "PLAIN":
        plain = f"\0{security.username}\0{security.password}".encode()
        return _lifetime(await _exchange(conn, plain, where))
    return await _scram(conn, security, where)


async def _scram(conn: Requester, security: ClientSecurity, where: str) -> int:
    assert security.sasl_mechanism and security.username and security.password is not None
    scram = ScramClient(security.sasl_mechanism, security.username, security.password)
    server_first = await _exchange(conn, scram.first(), where)
    try:
        client_final = scram.final(server_first["auth_bytes"])
    except AuthenticationError as exc:
        raise AuthenticationFailedError(f"SCRAM with {where}: {exc}") from exc
    server_final = await _exchange(conn, client_final, where)
    try:
        scram.verify(server_final["auth_bytes"])
    except AuthenticationError as exc:
        raise AuthenticationFailedError(f"SCRAM with {where}: {exc}") from exc
    return _lifetime(server_final)


async def _exchange(conn: Requester, token: bytes, where: str) -> dict:
    answer = await conn.request(ApiKey.SASL_AUTHENTICATE, {"auth_bytes": token})
    if answer["error_code"] != ErrorCode.NONE:
        reason = answer.get("error_message") or "credentials refused"
        raise AuthenticationFailedError(
            f"{where} refused the SASL credentials: {reason}", code=answer["error_code"]
        )
    return answer


def _lifetime(answer: dict) -> int:
    return int(answer.get("session_lifetime_ms") or 0)
