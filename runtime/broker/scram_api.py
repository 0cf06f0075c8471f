"""DescribeUserScramCredentials and AlterUserScramCredentials, on the users file.

Describing needs DESCRIBE on the cluster, altering ALTER on it (else
CLUSTER_AUTHORIZATION_FAILED). An upsertion carries what the client derived
from the password (salt, iterations, the salted password: KIP-554), never
the password: the broker keeps only StoredKey and ServerKey of it
(users.py). Each user is answered on its own, as Kafka does:
UNSUPPORTED_SASL_MECHANISM for a mechanism other than SCRAM-SHA-256/512,
UNACCEPTABLE_CREDENTIAL for an empty name or iterations out of range,
DUPLICATE_RESOURCE for a user and mechanism named twice, RESOURCE_NOT_FOUND
for a credential to delete or describe that does not exist. A broker without
a users file (no SASL listener) answers SECURITY_DISABLED. The file is
changed under its lock, atomically, once per request; the broker's own view
re-reads it, so the new credentials log in at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from runtime.broker.authorize import Access
from runtime.broker.settings import Handler, Peer
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.security import users as users_file
from runtime.security.acls import Operation
from runtime.security.errors import UsersFileError
from runtime.security.scram import (
    ITERATIONS_MAX,
    ITERATIONS_MIN,
    ScramCredential,
    credential_from_salted,
    digest_size,
)
from runtime.security.users import UsersFile

logger = logging.getLogger(__name__)

MECHANISM_NUMBERS = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}  # Kafka's ScramMechanism
_NUMBER_OF = {name: number for number, name in MECHANISM_NUMBERS.items()}

_Change = tuple[str, ScramCredential | None]  # mechanism, new credential (None: delete)


class ScramApi:
    def __init__(self, access: Access, users: UsersFile | None) -> None:
        self._access = access
        self._users = users
        self._lock = asyncio.Lock()
        self.by_key: dict[int, Handler] = {
            ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: self.describe,
            ApiKey.ALTER_USER_SCRAM_CREDENTIALS: self.alter,
        }

    async def describe(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        answer: dict = {"error_code": ErrorCode.NONE, "error_message": None, "results": []}
        if not self._access.cluster(peer, Operation.DESCRIBE):
            answer.update(
                error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                error_message="not authorized: DESCRIBE cluster",
            )
            return answer
        if self._users is None:
            answer.update(error_code=ErrorCode.SECURITY_DISABLED, error_message=_NO_FILE)
            return answer
        known = self._users.users
        asked = [u["name"] for u in body["users"] or []]
        names = asked or sorted(known)
        results = []
        for name in dict.fromkeys(names):
            if asked.count(name) > 1:
                results.append(_user_result(name, ErrorCode.DUPLICATE_RESOURCE, "named twice"))
            elif name not in known:
                results.append(
                    _user_result(
                        name,
                        ErrorCode.RESOURCE_NOT_FOUND,
                        "attempt to describe a user credential that does not exist",
                    )
                )
            else:
                entry = _user_result(name, ErrorCode.NONE, None)
                entry["credential_infos"] = [
                    {"mechanism": _NUMBER_OF[m], "iterations": c.iterations}
                    for m, c in sorted(known[name].items())
                    if m in _NUMBER_OF
                ]
                results.append(entry)
        answer["results"] = results
        return answer

    async def alter(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        changes: dict[str, list[_Change]] = {}
        errors: dict[str, tuple[int, str]] = {}
        for d in body["deletions"]:
            self._collect(d, None, changes, errors)
        for u in body["upsertions"]:
            self._collect(u, u, changes, errors)
        names = list(dict.fromkeys([*errors, *changes]))
        if not self._access.cluster(peer, Operation.ALTER):
            denied = (ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "not authorized: ALTER cluster")
            return {"results": [_alter_result(n, denied) for n in names]}
        if self._users is None:
            return {
                "results": [
                    _alter_result(n, (ErrorCode.SECURITY_DISABLED, _NO_FILE)) for n in names
                ]
            }
        wanted = {n: c for n, c in changes.items() if n not in errors}
        if wanted:
            async with self._lock:
                try:
                    missing = await asyncio.to_thread(_apply, self._users.path, wanted)
                except UsersFileError as exc:
                    logger.error(
                        "AlterUserScramCredentials from %s failed: %s", peer.principal, exc
                    )
                    failed = (ErrorCode.UNKNOWN_SERVER_ERROR, "the users file could not be written")
                    errors.update(dict.fromkeys(wanted, failed))
                    missing = {}
            errors.update(missing)
            for name in wanted:
                if name not in errors:
                    logger.info("SCRAM credentials of %r altered by %s", name, peer.principal)
        return {"results": [_alter_result(n, errors.get(n)) for n in names]}

    def _collect(
        self,
        item: dict,
        upsert: dict | None,
        changes: dict[str, list[_Change]],
        errors: dict[str, tuple[int, str]],
    ) -> None:
        name = item["name"]
        mechanism = MECHANISM_NUMBERS.get(item["mechanism"])
        problem = None
        if not name:
            problem = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "empty user name")
        elif mechanism is None:
            problem = (
                ErrorCode.UNSUPPORTED_SASL_MECHANISM,
                f"unknown SCRAM mechanism {item['mechanism']}",
            )
        elif any(m == mechanism for m, _ in changes.get(name, ())):
            problem = (ErrorCode.DUPLICATE_RESOURCE, f"{mechanism} of {name!r} altered twice")
        if problem is None and upsert is not None:
            assert mechanism is not None
            problem = _check_upsert(upsert, mechanism)
        if problem is not None:
            errors.setdefault(name, problem)
            changes.setdefault(name, [])
            return
        assert mechanism is not None
        credential = None
        if upsert is not None:
            credential = credential_from_salted(
                mechanism,
                bytes(upsert["salt"]),
                upsert["iterations"],
                bytes(upsert["salted_password"]),
            )
        changes.setdefault(name, []).append((mechanism, credential))


_NO_FILE = "this broker has no users file (--users): SCRAM credentials are not kept"


def _check_upsert(upsert: dict, mechanism: str) -> tuple[int, str] | None:
    if not ITERATIONS_MIN <= upsert["iterations"] <= ITERATIONS_MAX:
        return (
            ErrorCode.UNACCEPTABLE_CREDENTIAL,
            f"iterations must be in [{ITERATIONS_MIN}, {ITERATIONS_MAX}]",
        )
    if not upsert["salt"]:
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, "empty salt"
    if len(upsert["salted_password"]) != digest_size(mechanism):
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, f"salted password is not a {mechanism} digest"
    try:
        users_file.check_user_name(upsert["name"])
    except ValueError as exc:
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, str(exc)
    return None


def _apply(path: Path, wanted: Mapping[str, list[_Change]]) -> dict[str, tuple[int, str]]:
    """Apply the changes to the users file under its lock; the users whose
    deletion named a credential that does not exist (nothing changed for them)."""
    missing: dict[str, tuple[int, str]] = {}
    with users_file.locked(path):
        known = users_file.load(path)
        for name, user_changes in wanted.items():
            credentials = dict(known.get(name, {}))
            absent = [m for m, c in user_changes if c is None and m not in credentials]
            if absent:
                missing[name] = (
                    ErrorCode.RESOURCE_NOT_FOUND,
                    f"attempt to delete a user credential that does not exist: {absent[0]}",
                )
                continue
            for mechanism, credential in user_changes:
                if credential is None:
                    credentials.pop(mechanism, None)
                else:
                    credentials[mechanism] = credential
            if credentials:
                known[name] = credentials
            else:
                known.pop(name, None)
        users_file.save(path, known)
    return missing


def _user_result(name: str, code: int, message: str | None) -> dict:
    return {"user": name, "error_code": code, "error_message": message, "credential_infos": []}


def _alter_result(name: str, error: tuple[int, str] | None) -> dict:
    code, message = error if error is not None else (ErrorCode.NONE, None)
    return {"user": name, "error_code": code, "error_message": message}
