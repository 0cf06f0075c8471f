"""Who sends a REST proxy request: HTTP Basic with the broker's users, or a bearer token.

With a users file (`--users`), a request must carry `Authorization: Basic`
with a user's name and password, checked against its SCRAM credential as
SASL PLAIN is (users.py, plain.py); with a tokens file (`--http-tokens`),
`Authorization: Bearer TOKEN` names the principal the file gives the token.
Without either, every request is `User:ANONYMOUS` (and the REST proxy stays
on loopback unless --allow-insecure: endpoints.check_endpoints).

A request without valid credentials is answered 401 with
`WWW-Authenticate: Basic realm="streams"` and one log line per client
address and reason per interval, never the password or the token.

Tokens file, one token per line (blank lines and `#` comments skipped):

    User:ci  9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08

the principal and the SHA-256 (hex) of the token: the file holds no token.

A verified Basic credential is remembered for `CACHE_S` (keyed by the user,
its stored key and a keyed hash of the password), so a client does not cost
one PBKDF2 per request; a changed password no longer matches at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
from pathlib import Path

from aiohttp import web

from runtime.logs import RateLimitedLog
from runtime.security.acls import check_principal
from runtime.security.errors import AuthenticationError, SecurityError
from runtime.security.plain import verify_plain
from runtime.security.scram import MECHANISMS
from runtime.security.users import UsersFile

ANONYMOUS = "User:ANONYMOUS"
CACHE_S = 60.0
CACHE_ENTRIES_MAX = 1024
_SHA256_HEX = 64


class TokensFileError(SecurityError):
    pass


def load_tokens(path: str | Path) -> dict[str, str]:
    """SHA-256 hex of each token -> its principal; TokensFileError naming the line."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokensFileError(f"cannot read tokens file {path}: {exc}") from exc
    tokens: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        digest = fields[1].lower() if len(fields) == 2 else ""
        if len(digest) != _SHA256_HEX or any(c not in "0123456789abcdef" for c in digest):
            raise TokensFileError(
                f"tokens file {path} line {number}: not 'User:NAME SHA256-HEX-OF-TOKEN'"
            )
        try:
            check_principal(fields[0])
        except ValueError as exc:
            raise TokensFileError(f"tokens file {path} line {number}: {exc}") from None
        tokens[digest] = fields[0]
    return tokens


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class HttpAuthenticator:
    """The principal of each REST request, or a 401."""

    def __init__(
        self, users: UsersFile | None, tokens: dict[str, str] | None, ratelog: RateLimitedLog
    ) -> None:
        self._users = users
        self._tokens = tokens
        self._ratelog = ratelog
        self._key = secrets.token_bytes(32)
        self._verified: dict[tuple[str, bytes, bytes], float] = {}

    @property
    def required(self) -> bool:
        return self._users is not None or self._tokens is not None

    async def principal(self, request: web.Request) -> str:
        """The request's principal; raises web.HTTPUnauthorized if it shows none."""
        if not self.required:
            return ANONYMOUS
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        try:
            if scheme.lower() == "basic" and self._users is not None:
                return await self._basic(value.strip())
            if scheme.lower() == "bearer" and self._tokens is not None:
                return self._bearer(value.strip())
            raise AuthenticationError("no credentials (Authorization header)")
        except AuthenticationError as exc:
            host = request.remote or "?"
            self._ratelog.warning(
                ("http-auth", host, str(exc)), "REST request from %s refused: %s", host, exc
            )
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Basic realm="streams"'},
                text="credentials required: HTTP Basic with a broker user, or a bearer token",
            ) from None

    async def _basic(self, value: str) -> str:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthenticationError("malformed Basic credentials") from None
        if not sep or not user:
            raise AuthenticationError("Basic credentials without a user name")
        assert self._users is not None
        key = self._cache_key(user, password)
        now = time.monotonic()
        if key is not None and self._verified.get(key, 0.0) > now:
            return f"User:{user}"
        # one PBKDF2: off the event loop (hashlib lets go of the GIL meanwhile)
        await asyncio.to_thread(verify_plain, self._users.credential, user, password)
        if key is not None:
            if len(self._verified) >= CACHE_ENTRIES_MAX:
                self._verified = {k: t for k, t in self._verified.items() if t > now}
            if len(self._verified) < CACHE_ENTRIES_MAX:
                self._verified[key] = now + CACHE_S
        return f"User:{user}"

    def _cache_key(self, user: str, password: str) -> tuple[str, bytes, bytes] | None:
        assert self._users is not None
        for mechanism in MECHANISMS:
            credential = self._users.credential(user, mechanism)
            if credential is not None:
                mac = hmac.digest(self._key, password.encode(), "sha256")
                return user, credential.stored_key, mac
        return None

    def _bearer(self, token: str) -> str:
        assert self._tokens is not None
        principal = self._tokens.get(token_digest(token))
        if principal is None:
            raise AuthenticationError(f"unknown bearer token ({len(token)} characters)")
        return principal
