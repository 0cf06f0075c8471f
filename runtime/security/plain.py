"""SASL PLAIN (RFC 4616), checked against the users' SCRAM credentials.

The client's one message is `authzid NUL authcid NUL password` (UTF-8); the
server answers with an empty token or refuses. Like Kafka, an authorization
id other than empty or the user's own is refused.

No clear password is stored anywhere: the password given is salted with the
user's stored SCRAM salt and iterations and its StoredKey compared with the
stored one, so PLAIN costs the server one PBKDF2 per login (run off the event
loop by the caller).
"""

from __future__ import annotations

from collections.abc import Callable

from runtime.security.errors import AuthenticationError, shown
from runtime.security.scram import (
    ITERATIONS_DEFAULT,
    MECHANISMS,
    SALT_BYTES,
    ScramCredential,
    password_matches,
    salted_password,
)

Lookup = Callable[[str, str], ScramCredential | None]
"""(user, SCRAM mechanism) -> the stored credential, or None."""


def parse_plain(message: bytes) -> tuple[str, str]:
    """(user, password) of a PLAIN message."""
    try:
        authzid, authcid, password = bytes(message).decode().split("\0")
    except (UnicodeDecodeError, ValueError):
        raise AuthenticationError("malformed PLAIN message") from None
    if not authcid:
        raise AuthenticationError("PLAIN message without a user name")
    if authzid and authzid != authcid:
        raise AuthenticationError(f"PLAIN authzid {shown(authzid)} is not {shown(authcid)}")
    return authcid, password


def verify_plain(lookup: Lookup, user: str, password: str) -> None:
    """Raises AuthenticationError unless `password` is `user`'s."""
    for mechanism in MECHANISMS:
        credential = lookup(user, mechanism)
        if credential is not None:
            if not password_matches(mechanism, credential, password):
                raise AuthenticationError(f"wrong password for user {shown(user)}")
            return
    # as slow as a real check, so that timing does not tell which users exist
    salted_password(MECHANISMS[0], password, bytes(SALT_BYTES), ITERATIONS_DEFAULT)
    raise AuthenticationError(f"unknown user {shown(user)}")
