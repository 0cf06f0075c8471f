"""The broker's ACLs on disk: `acls.json` in its data directory.

Format (JSON, UTF-8), enum values by Kafka's names:

    {
      "format": "streams-acls",
      "version": 1,
      "acls": [
        {"resource_type": "TOPIC", "resource_name": "orders", "pattern_type": "LITERAL",
         "principal": "User:alice", "host": "*", "operation": "READ",
         "permission": "ALLOW"}
      ]
    }

Invariants:
- Every ACL in the file passes acls.check_acl; a file that breaks that, or
  is not this format, is refused whole at start (AclFileError naming the
  file and the entry), never partly used: a broker must not start with
  fewer ACLs (so fewer denials) than it was given.
- The file is replaced atomically (a temporary file in the same directory,
  fsynced, renamed over it, the directory fsynced): after a crash it holds
  the ACLs before or after a change, never a mix.
- A missing file holds no ACLs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from runtime.security.acls import (
    Acl,
    InvalidAclError,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    check_acl,
)
from runtime.security.errors import AclFileError
from runtime.security.users import write_private

FILE_NAME = "acls.json"
FORMAT = "streams-acls"
VERSION = 1

_FIELDS = {
    "resource_type": ResourceType,
    "resource_name": str,
    "pattern_type": PatternType,
    "principal": str,
    "host": str,
    "operation": Operation,
    "permission": Permission,
}


def load(path: str | os.PathLike[str]) -> list[Acl]:
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise AclFileError(f"cannot read ACL file {path}: {exc}") from exc
    return parse(text, path)


def parse(text: str, path: str | os.PathLike[str]) -> list[Acl]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise AclFileError(f"ACL file {path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise AclFileError(f"{path} is not a streams ACL file")
    if document.get("version") != VERSION:
        raise AclFileError(f"ACL file {path}: version {document.get('version')!r} unknown")
    entries = document.get("acls")
    if not isinstance(entries, list):
        raise AclFileError(f"ACL file {path}: 'acls' is not a list")
    return [_acl(path, i, entry) for i, entry in enumerate(entries)]


def _acl(path: str | os.PathLike[str], i: int, entry: object) -> Acl:
    where = f"ACL file {path}: entry {i}"
    if not isinstance(entry, dict) or set(entry) != set(_FIELDS):
        raise AclFileError(f"{where}: not an object with the fields {', '.join(_FIELDS)}")
    values: dict[str, object] = {}
    for key, kind in _FIELDS.items():
        value = entry[key]
        if not isinstance(value, str):
            raise AclFileError(f"{where}: {key} is not a string")
        if kind is str:
            values[key] = value
            continue
        try:
            values[key] = kind[value]  # type: ignore[index]
        except KeyError:
            raise AclFileError(f"{where}: {key} {value!r} unknown") from None
    try:
        return check_acl(Acl(**values))  # type: ignore[arg-type]
    except InvalidAclError as exc:
        raise AclFileError(f"{where}: {exc}") from None


def dumps(acls: Iterable[Acl]) -> str:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "acls": [
            {
                "resource_type": a.resource_type.name,
                "resource_name": a.resource_name,
                "pattern_type": a.pattern_type.name,
                "principal": a.principal,
                "host": a.host,
                "operation": a.operation.name,
                "permission": a.permission.name,
            }
            for a in sorted(acls)
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def save(path: str | os.PathLike[str], acls: Iterable[Acl]) -> None:
    """Replace the file at `path` with `acls`, atomically; AclFileError if it cannot.
    One writer at a time: the broker's (it holds the data directory's lock)."""
    try:
        write_private(path, dumps(acls).encode())
    except OSError as exc:
        raise AclFileError(f"cannot write ACL file {path}: {exc}") from exc
