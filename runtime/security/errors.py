"""Errors of authentication and its configuration.

    StreamsRuntimeError (runtime/errors.py)
    └── SecurityError
        ├── AuthenticationError   a client's credentials or SASL messages were refused
        ├── UsersFileError        the users (or tokens) file cannot be read, parsed or written
        ├── AclFileError          the ACL file cannot be read, parsed or written
        └── InsecureConfigError   a setting that would let anyone in (or a TLS file
                                  that cannot be loaded): the broker does not start

An AuthenticationError's message is the reason for the broker's log ("wrong
password", "unknown user 'bob'"); it never holds a password or a key. What the
client is told is `client_message`, the same for every credential failure, so
that a client cannot tell an unknown user from a wrong password.
"""

from __future__ import annotations

from runtime.errors import StreamsRuntimeError

CREDENTIALS_REFUSED = "Authentication failed: invalid credentials"
SHOWN_CHARS_MAX = 64


def shown(text: str) -> str:
    """A client's string as a log may show it: quoted, escaped, at most SHOWN_CHARS_MAX."""
    if len(text) <= SHOWN_CHARS_MAX:
        return repr(text)
    return repr(text[:SHOWN_CHARS_MAX]) + f"... ({len(text)} characters)"


class SecurityError(StreamsRuntimeError):
    pass


class AuthenticationError(SecurityError):
    def __init__(self, reason: str, *, client_message: str = CREDENTIALS_REFUSED) -> None:
        super().__init__(reason)
        self.client_message = client_message


class UsersFileError(SecurityError):
    pass


class AclFileError(SecurityError):
    pass


class InsecureConfigError(SecurityError):
    pass
