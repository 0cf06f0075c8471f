"""The bearer tokens of the broker's HTTP server: a token's SHA-256, never the token.

Format (JSON, UTF-8):

    {"format": "streams-tokens", "version": 1,
     "tokens": {"ci": {"sha256": "<64 hex digits>"}}}

A token is 32 random bytes (URL-safe base64), made by `add_token` and shown
once; the file keeps its SHA-256 only (a token has 256 bits of entropy, so a
plain digest cannot be guessed back, unlike a password). A name is the
principal `User:NAME` the token authenticates, checked like a user name.
The file is replaced atomically and updated under the same lock discipline
as the users file; `TokensFile` is the server's view, re-read when it changes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from runtime.security.errors import UsersFileError
from runtime.security.users import check_user_name, locked, write_private
from runtime.security.watched import WatchedFile

FORMAT = "streams-tokens"
VERSION = 1
TOKEN_BYTES = 32

Tokens = Mapping[str, str]
"""name -> hex SHA-256 of its token."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load(path: str | os.PathLike[str]) -> dict[str, str]:
    """The tokens in `path`; a missing file holds none."""
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsersFileError(f"cannot read tokens file {path}: {exc}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UsersFileError(f"tokens file {path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UsersFileError(f"{path} is not a streams tokens file")
    if document.get("version") != VERSION:
        raise UsersFileError(f"tokens file {path}: version {document.get('version')!r} unknown")
    entries = document.get("tokens")
    if not isinstance(entries, dict):
        raise UsersFileError(f"tokens file {path}: 'tokens' is not an object")
    tokens = {}
    for name, entry in entries.items():
        try:
            check_user_name(name)
        except ValueError as exc:
            raise UsersFileError(f"tokens file {path}: {exc}") from None
        value = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(value, str) or len(value) != 64 or not _is_hex(value):
            raise UsersFileError(f"tokens file {path}: token {name!r} has no valid sha256")
        tokens[name] = value.lower()
    return tokens


def save(path: str | os.PathLike[str], tokens: Tokens) -> None:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "tokens": {name: {"sha256": value} for name, value in sorted(tokens.items())},
    }
    try:
        write_private(path, (json.dumps(document, indent=2) + "\n").encode())
    except OSError as exc:
        raise UsersFileError(f"cannot write tokens file {path}: {exc}") from exc


def add_token(path: str | os.PathLike[str], name: str) -> str:
    """A new token for `name` (replacing any it had), stored as its digest; returned once."""
    check_user_name(name)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with locked(path):
        tokens = load(path)
        tokens[name] = digest(token)
        save(path, tokens)
    return token


def remove_token(path: str | os.PathLike[str], name: str) -> bool:
    with locked(path):
        tokens = load(path)
        if tokens.pop(name, None) is None:
            return False
        save(path, tokens)
        return True


class TokensFile:
    """The server's tokens, re-read when the file changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise UsersFileError(
                f"tokens file {path} does not exist (create it with `streams tokens add`)"
            )
        self._file: WatchedFile[dict[str, str]] = WatchedFile(
            self.path, load, what="tokens file", noun="tokens", error=UsersFileError
        )

    def name_of(self, token: str) -> str | None:
        """The name a token was made for, or None."""
        wanted = digest(token)
        for name, value in self._file.current().items():
            if hmac.compare_digest(value, wanted):
                return name
        return None


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
