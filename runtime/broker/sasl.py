"""One connection's SASL authentication (KIP-43, KIP-152), before anything else is served.

States of a `SaslSession`, and what each accepts (anything else closes the
connection, with one log line naming the peer and the reason):

    HANDSHAKE     ApiVersions; SaslHandshake (v0 -> RAW, v1 -> AUTHENTICATE).
                  A SaslAuthenticate here is answered ILLEGAL_SASL_STATE, then closed.
                  An unknown mechanism is answered UNSUPPORTED_SASL_MECHANISM with
                  the enabled ones, then closed.
    AUTHENTICATE  SaslAuthenticate requests, each carrying one token of the mechanism.
    RAW           raw tokens: each frame is an int32 size and the token, with no
                  Kafka header, and is answered the same way (SaslHandshake v0).
    DONE          authenticated as `principal` (User:NAME): every API is served.
                  With no session lifetime (the default) the session is no longer
                  asked: SaslHandshake and SaslAuthenticate are then answered
                  ILLEGAL_SASL_STATE by the handlers, as on listeners without SASL.

KIP-368 re-authentication, with `session_lifetime_ms` > 0 (`streams broker
--sasl-session-lifetime-ms`, Kafka's connections.max.reauth.ms): a successful
SaslAuthenticate v1+ tells the client how long its session lasts; before then
it may send SaslHandshake v1 and SaslAuthenticate again on the same connection
(other requests are served meanwhile, as the principal authenticated before),
with the same mechanism and as the same principal, else it is refused and
closed. A connection whose session expired is closed at its next request other
than the SASL ones, with one log line: clients that cannot re-authenticate
reconnect, and a removed user's connection does not outlive its session.

A refused credential is answered SASL_AUTHENTICATION_FAILED (the same message
for an unknown user as for a wrong password) and the connection closed; in
RAW mode, where no error can be carried, it is just closed. Reasons are logged
once per interval per peer and reason (a client retrying a bad password does
not flood the log); passwords never reach a log or an answer.

How large a frame may be before authentication is the caller's
(`sasl_receive_bytes_max`, serving.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from runtime.logs import RateLimitedLog
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.security.errors import AuthenticationError, shown
from runtime.security.plain import parse_plain, verify_plain
from runtime.security.scram import MECHANISMS as SCRAM_MECHANISMS
from runtime.security.scram import ScramServer
from runtime.security.users import UsersFile

logger = logging.getLogger(__name__)

MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS)
PRE_AUTH_APIS = frozenset({ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE})


@dataclass(frozen=True, slots=True)
class SaslConfig:
    """What every SASL listener shares."""

    users: UsersFile
    mechanisms: tuple[str, ...] = MECHANISMS
    fake_salt_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    session_lifetime_ms: int = 0  # 0: sessions last as long as their connection

    def __post_init__(self) -> None:
        if self.session_lifetime_ms < 0:
            raise ValueError(f"session_lifetime_ms must be >= 0, got {self.session_lifetime_ms}")
        unknown = set(self.mechanisms) - set(MECHANISMS)
        if unknown or not self.mechanisms:
            raise ValueError(
                f"SASL mechanisms must be some of {', '.join(MECHANISMS)}, got {self.mechanisms}"
            )


class State(Enum):
    HANDSHAKE = "handshake"
    AUTHENTICATE = "authenticate"
    RAW = "raw"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send (a response body, raw token bytes, or nothing) and whether to close."""

    body: dict | bytes | None
    close: bool = False


class _Exchange(Protocol):
    user: str | None
    done: bool

    async def step(self, token: bytes) -> bytes: ...


class SaslSession:
    def __init__(self, config: SaslConfig, host: str, ratelog: RateLimitedLog) -> None:
        self._config = config
        self._host = host
        self._ratelog = ratelog
        self.state = State.HANDSHAKE
        self.principal: str | None = None
        self._mechanism: str | None = None
        self._exchange: _Exchange | None = None
        self._expires_at: float | None = None  # monotonic; None: never

    @property
    def renewable(self) -> bool:
        """Whether this session expires (and may be renewed by re-authenticating)."""
        return self._config.session_lifetime_ms > 0

    def expired(self) -> bool:
        due = self._expires_at
        if due is None or time.monotonic() < due:
            return False
        self._ratelog.log(
            logging.INFO,
            ("sasl-expired", self._host),
            "session of %s from %s expired: closing the connection",
            self.principal,
            self._host,
        )
        return True

    async def reauthenticate(self, header: RequestHeader, body: dict) -> Reply:
        """Answer a SaslHandshake or SaslAuthenticate of an authenticated, renewable session."""
        if header.api_key == ApiKey.SASL_HANDSHAKE:
            if header.api_version == 0:
                message = "re-authentication needs SaslHandshake v1"
                self._fail(message)
                return Reply({"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": []}, True)
            if body["mechanism"] != self._mechanism:
                self._fail(f"re-authentication with another mechanism {shown(body['mechanism'])}")
                return Reply(
                    {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": []}, close=True
                )
            self.state = State.HANDSHAKE
        return await self.answer(header, body)

    @property
    def authenticated(self) -> bool:
        return self.state is State.DONE

    @property
    def expects_raw_token(self) -> bool:
        return self.state is State.RAW

    def allows(self, api_key: int) -> bool:
        """Whether a request of `api_key` may be served before authentication
        (if not: refused(), and close)."""
        if self.state is State.AUTHENTICATE:
            return api_key == ApiKey.SASL_AUTHENTICATE
        return api_key in PRE_AUTH_APIS

    def refused(self, api_key: int) -> None:
        try:
            name = ApiKey(api_key).name
        except ValueError:
            name = f"api key {api_key}"
        self._fail(f"{name} request before SASL authentication: a client without SASL settings?")

    async def answer(self, header: RequestHeader, body: dict) -> Reply:
        """Answer a SaslHandshake or SaslAuthenticate request before authentication."""
        if header.api_key == ApiKey.SASL_HANDSHAKE:
            return self._handshake(header.api_version, body["mechanism"])
        return await self._authenticate(bytes(body["auth_bytes"]))

    async def raw_token(self, token: bytes) -> Reply:
        """Answer a raw token (RAW state): the server's token, or close."""
        try:
            answer = await self._step(token)
        except AuthenticationError as exc:
            self._fail(str(exc))
            return Reply(None, close=True)
        return Reply(answer)

    def _handshake(self, version: int, mechanism: str) -> Reply:
        enabled = list(self._config.mechanisms)
        if mechanism not in enabled:
            self._fail(
                f"SASL mechanism {shown(mechanism)} is not enabled (enabled: {', '.join(enabled)})"
            )
            return Reply(
                {"error_code": ErrorCode.UNSUPPORTED_SASL_MECHANISM, "mechanisms": enabled},
                close=True,
            )
        self._mechanism = mechanism
        self._exchange = self._new_exchange(mechanism)
        self.state = State.RAW if version == 0 else State.AUTHENTICATE
        return Reply({"error_code": ErrorCode.NONE, "mechanisms": enabled})

    async def _authenticate(self, token: bytes) -> Reply:
        if self.state is not State.AUTHENTICATE:
            message = "SaslAuthenticate before SaslHandshake"
            self._fail(message)
            return Reply(_auth_error(ErrorCode.ILLEGAL_SASL_STATE, message), close=True)
        try:
            answer = await self._step(token)
        except AuthenticationError as exc:
            self._fail(str(exc))
            return Reply(
                _auth_error(ErrorCode.SASL_AUTHENTICATION_FAILED, exc.client_message), close=True
            )
        return Reply(
            {
                "error_code": ErrorCode.NONE,
                "error_message": None,
                "auth_bytes": answer,
                "session_lifetime_ms": self._remaining_ms() if self.authenticated else 0,
            }
        )

    def _remaining_ms(self) -> int:
        if self._expires_at is None:
            return 0
        return max(1, int((self._expires_at - time.monotonic()) * 1000))

    async def _step(self, token: bytes) -> bytes:
        assert self._exchange is not None
        answer = await self._exchange.step(token)
        if self._exchange.done:
            principal = f"User:{self._exchange.user}"
            if self.principal is not None and principal != self.principal:
                raise AuthenticationError(
                    f"re-authentication as {principal}, not {self.principal}",
                    client_message="re-authentication must keep the principal",
                )
            renewed = self.principal is not None
            self.state, self.principal, self._exchange = State.DONE, principal, None
            lifetime_ms = self._config.session_lifetime_ms
            if lifetime_ms > 0:
                self._expires_at = time.monotonic() + lifetime_ms / 1000
            what = "re-authenticated" if renewed else "authenticated"
            logger.debug("%s %s from %s", what, self.principal, self._host)
        return answer

    def _new_exchange(self, mechanism: str) -> _Exchange:
        if mechanism == "PLAIN":
            return _PlainExchange(self._config.users)
        return _ScramExchange(
            ScramServer(
                mechanism,
                lambda user: self._config.users.credential(user, mechanism),
                self._config.fake_salt_key,
            )
        )

    def _fail(self, reason: str) -> None:
        if self._mechanism is not None:
            reason = f"{self._mechanism}: {reason}"
        self._ratelog.warning(
            ("sasl", self._host, reason),
            "authentication of %s failed: %s; closing the connection",
            self._host,
            reason,
        )


def _auth_error(code: int, message: str) -> dict:
    return {
        "error_code": code,
        "error_message": message,
        "auth_bytes": b"",
        "session_lifetime_ms": 0,
    }


class _PlainExchange:
    def __init__(self, users: UsersFile) -> None:
        self._users = users
        self.user: str | None = None
        self.done = False

    async def step(self, token: bytes) -> bytes:
        if self.done:
            raise AuthenticationError("a second PLAIN message")
        user, password = parse_plain(token)
        # one PBKDF2: off the event loop (hashlib lets go of the GIL meanwhile)
        await asyncio.to_thread(verify_plain, self._users.credential, user, password)
        self.user, self.done = user, True
        return b""


class _ScramExchange:
    def __init__(self, server: ScramServer) -> None:
        self._server = server
        self._first = True

    @property
    def user(self) -> str | None:
        return self._server.user

    @property
    def done(self) -> bool:
        return self._server.done

    async def step(self, token: bytes) -> bytes:
        if self._first:
            self._first = False
            return self._server.first(token)
        return self._server.final(token)
