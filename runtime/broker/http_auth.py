"""Who is calling the broker's HTTP server: HTTP Basic with the SASL users, or a bearer token.

    streams broker --http https://0.0.0.0:8443 --http-auth basic --users users.json
    streams broker --http https://0.0.0.0:8443 --http-auth bearer --http-tokens tokens.json

Basic checks the password against the users file's SCRAM credentials, the
same check as a SASL PLAIN login (runtime/security/plain.py), off the event
loop; bearer tokens are looked up by their SHA-256 in the tokens file
(runtime/security/tokens.py). Each request that passes carries its principal
(`User:NAME`) in `request["principal"]`, for authorization. A request without
valid credentials is answered 401 with a `WWW-Authenticate` challenge per
accepted scheme, and the refusal is logged once per interval per client
address and reason, never with the password or token.

A successful Basic check is remembered (by a keyed digest of user and
password, for as long as the user's credential is unchanged), so that a
client sending the same credentials with every request pays one PBKDF2, not
one per request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

import orjson
from aiohttp import web

from runtime.logs import RateLimitedLog
from runtime.security.errors import AuthenticationError
from runtime.security.plain import verify_plain
from runtime.security.scram import MECHANISMS, ScramCredential
from runtime.security.tokens import TokensFile
from runtime.security.users import UsersFile

logger = logging.getLogger(__name__)

SCHEMES = ("basic", "bearer")
REMEMBERED_MAX = 1024
PRINCIPAL = "principal"  # the request key holding the caller's principal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Refused(Exception):
    """`reason` is for the log; the client gets `client_message`."""

    def __init__(self, reason: str, client_message: str) -> None:
        super().__init__(reason)
        self.client_message = client_message


class HttpAuthenticator:
    """Checks each request's Authorization header; see the module docstring."""

    def __init__(
        self,
        schemes: Sequence[str],
        *,
        users: UsersFile | None = None,
        tokens: TokensFile | None = None,
        ratelog: RateLimitedLog | None = None,
    ) -> None:
        unknown = set(schemes) - set(SCHEMES)
        if unknown or not schemes:
            raise ValueError(f"HTTP auth schemes {sorted(schemes)}: expected some of {SCHEMES}")
        if "basic" in schemes and users is None:
            raise ValueError("HTTP Basic needs the users file (--users)")
        if "bearer" in schemes and tokens is None:
            raise ValueError("HTTP bearer tokens need the tokens file (--http-tokens)")
        self.schemes = tuple(schemes)
        self._users, self._tokens = users, tokens
        self._ratelog = ratelog or RateLimitedLog(logger)
        self._key = secrets.token_bytes(32)  # keys the remembered checks: not computable outside
        self._remembered: OrderedDict[bytes, ScramCredential] = OrderedDict()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            request[PRINCIPAL] = await self.principal(request.headers.get("Authorization"))
        except _Refused as exc:
            peer = request.remote or "?"
            self._ratelog.warning(
                ("http-auth", peer, str(exc)),
                "refused an HTTP request from %s: %s",
                peer,
                exc,
            )
            return self._challenge(exc.client_message)
        return await handler(request)

    async def principal(self, header: str | None) -> str:
        """`User:NAME` of valid credentials; _Refused otherwise."""
        if not header:
            raise _Refused("no credentials", "credentials required")
        scheme, _, value = header.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme not in self.schemes:
            raise _Refused(f"scheme {scheme[:16]!r} not accepted", "credentials required")
        if scheme == "basic":
            return f"User:{await self._basic(value)}"
        assert self._tokens is not None
        name = self._tokens.name_of(value)
        if name is None:
            raise _Refused("unknown bearer token", "invalid credentials")
        return f"User:{name}"

    async def _basic(self, value: str) -> str:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _Refused("malformed Basic credentials", "invalid credentials") from None
        if not sep or not user:
            raise _Refused("malformed Basic credentials", "invalid credentials")
        credential = self._credential(user)
        remembered = hmac.digest(self._key, f"{user}\0{password}".encode(), hashlib.sha256)
        if credential is not None and self._remembered.get(remembered) == credential:
            self._remembered.move_to_end(remembered)
            return user
        assert self._users is not None
        try:
            # one PBKDF2: off the event loop (hashlib lets go of the GIL meanwhile)
            await asyncio.to_thread(verify_plain, self._users.credential, user, password)
        except AuthenticationError as exc:
            raise _Refused(str(exc), "invalid credentials") from None
        if credential is not None:
            self._remembered[remembered] = credential
            while len(self._remembered) > REMEMBERED_MAX:
                self._remembered.popitem(last=False)
        return user

    def _credential(self, user: str) -> ScramCredential | None:
        assert self._users is not None
        for mechanism in MECHANISMS:
            credential = self._users.credential(user, mechanism)
            if credential is not None:
                return credential
        return None

    def _challenge(self, message: str) -> web.Response:
        challenges = [f'{s.capitalize()} realm="streams"' for s in self.schemes]
        return web.Response(
            status=401,
            body=orjson.dumps({"error": "unauthorized", "message": message}),
            content_type="application/json",
            headers={"WWW-Authenticate": ", ".join(challenges)},
        )
