"""The users file: SCRAM credentials of the broker's users, never a password.

Format (JSON, UTF-8), binary values in standard base64:

    {
      "format": "streams-users",
      "version": 1,
      "users": {
        "alice": {
          "SCRAM-SHA-256": {"salt": "...", "iterations": 8192,
                            "stored_key": "...", "server_key": "..."},
          "SCRAM-SHA-512": {...}
        }
      }
    }

Invariants:
- Every credential has a mechanism of scram.MECHANISMS, iterations within
  [ITERATIONS_MIN, ITERATIONS_MAX], and keys of the mechanism's digest size;
  a file that breaks any of these is refused whole (UsersFileError names the
  user and mechanism, never key material).
- A user has at least one credential; user names are 1..USER_NAME_CHARS_MAX
  characters with no control characters.
- The file is replaced atomically (a temporary file in the same directory,
  fsynced, renamed over it, the directory fsynced), created with mode 0600,
  and read-modify-write updates hold an exclusive lock on FILE.lock, so two
  `streams users add` never lose each other's user.

`UsersFile` is the broker's view: it re-reads the file when it changes (by
inode, size and mtime), so users added while the broker runs can log in; a
file that no longer parses leaves the last good users in place, with a warning.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from runtime.security.errors import UsersFileError
from runtime.security.scram import (
    ITERATIONS_MAX,
    ITERATIONS_MIN,
    MECHANISMS,
    ScramCredential,
    digest_size,
)
from runtime.security.watched import WatchedFile

logger = logging.getLogger(__name__)

FORMAT = "streams-users"
VERSION = 1
USER_NAME_CHARS_MAX = 256
_KEYS = ("salt", "stored_key", "server_key")

Users = Mapping[str, Mapping[str, ScramCredential]]
"""user -> mechanism -> credential."""


def check_user_name(name: str) -> None:
    if not 1 <= len(name) <= USER_NAME_CHARS_MAX or not name.isprintable():
        raise ValueError(
            f"a user name is 1 to {USER_NAME_CHARS_MAX} printable characters, got {name!r}"
        )


def load(path: str | os.PathLike[str]) -> dict[str, dict[str, ScramCredential]]:
    """The users in `path`; a missing file holds none."""
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsersFileError(f"cannot read users file {path}: {exc}") from exc
    return parse(text, path)


def parse(text: str, path: str | os.PathLike[str]) -> dict[str, dict[str, ScramCredential]]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UsersFileError(f"users file {path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UsersFileError(f"{path} is not a streams users file")
    if document.get("version") != VERSION:
        raise UsersFileError(f"users file {path}: version {document.get('version')!r} unknown")
    users = document.get("users")
    if not isinstance(users, dict):
        raise UsersFileError(f"users file {path}: 'users' is not an object")
    return {name: _user(path, name, entry) for name, entry in users.items()}


def _user(path: str | os.PathLike[str], name: str, entry: object) -> dict[str, ScramCredential]:
    try:
        check_user_name(name)
    except ValueError as exc:
        raise UsersFileError(f"users file {path}: {exc}") from None
    if not isinstance(entry, dict) or not entry:
        raise UsersFileError(f"users file {path}: user {name!r} has no credentials")
    return {mechanism: _credential(path, name, mechanism, c) for mechanism, c in entry.items()}


def _credential(
    path: str | os.PathLike[str], name: str, mechanism: str, entry: object
) -> ScramCredential:
    where = f"users file {path}: user {name!r} {mechanism}"
    if mechanism not in MECHANISMS:
        raise UsersFileError(f"{where}: unknown mechanism")
    if not isinstance(entry, dict):
        raise UsersFileError(f"{where}: not an object")
    iterations = entry.get("iterations")
    if type(iterations) is not int or not ITERATIONS_MIN <= iterations <= ITERATIONS_MAX:
        raise UsersFileError(f"{where}: iterations not in [{ITERATIONS_MIN}, {ITERATIONS_MAX}]")
    values = {}
    for key in _KEYS:
        try:
            values[key] = base64.b64decode(entry[key], validate=True)
        except (KeyError, TypeError, binascii.Error, ValueError):
            raise UsersFileError(f"{where}: {key} missing or not base64") from None
    size = digest_size(mechanism)
    if len(values["stored_key"]) != size or len(values["server_key"]) != size:
        raise UsersFileError(f"{where}: keys are not {size} bytes")
    if not values["salt"]:
        raise UsersFileError(f"{where}: empty salt")
    return ScramCredential(values["salt"], iterations, values["stored_key"], values["server_key"])


def dumps(users: Users) -> str:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "users": {
            name: {
                mechanism: {
                    "salt": _b64(c.salt),
                    "iterations": c.iterations,
                    "stored_key": _b64(c.stored_key),
                    "server_key": _b64(c.server_key),
                }
                for mechanism, c in sorted(credentials.items())
            }
            for name, credentials in sorted(users.items())
        },
    }
    return json.dumps(document, indent=2) + "\n"


def save(path: str | os.PathLike[str], users: Users) -> None:
    """Replace `path` with `users`, atomically."""
    try:
        write_private(path, dumps(users).encode())
    except OSError as exc:
        raise UsersFileError(f"cannot write users file {path}: {exc}") from exc


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data` atomically, readable by its owner only (mode 0600).
    The caller holds `locked(path)`."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a crash: ours, under the lock
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, target)
    _fsync_dir(target.parent)


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the lock for a read-modify-write of the users file at `path`."""
    lock_path = Path(path).with_name(Path(path).name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise UsersFileError(f"cannot lock users file {path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def set_user(
    path: str | os.PathLike[str], name: str, credentials: Mapping[str, ScramCredential]
) -> None:
    """Add `name` (or replace its credentials) in the file at `path`."""
    check_user_name(name)
    with locked(path):
        users = load(path)
        users[name] = dict(credentials)
        save(path, users)


def remove_user(path: str | os.PathLike[str], name: str) -> bool:
    """Remove `name` from the file; False if it was not there."""
    with locked(path):
        users = load(path)
        if users.pop(name, None) is None:
            return False
        save(path, users)
        return True


class UsersFile:
    """The broker's users, re-read when the file changes (runtime/security/watched.py)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise UsersFileError(
                f"users file {path} does not exist (create it with `streams users add`)"
            )
        self._file: WatchedFile[Users] = WatchedFile(
            self.path, load, what="users file", noun="users", error=UsersFileError
        )
        if not self._file.current():
            logger.warning("users file %s holds no users: nobody can log in", self.path)

    @property
    def users(self) -> Users:
        return self._file.current()

    def credential(self, user: str, mechanism: str) -> ScramCredential | None:
        return self.users.get(user, {}).get(mechanism)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
