"""CreateAcls, DescribeAcls and DeleteAcls: the broker's ACLs, managed over Kafka's APIs.

Creating and deleting need ALTER on the cluster, describing DESCRIBE on it
(else CLUSTER_AUTHORIZATION_FAILED). An ACL or filter that does not check
out (unknown numbers, ANY where a concrete value is needed, a principal
that is not User:NAME, a CLUSTER resource not named kafka-cluster) is
answered INVALID_REQUEST with the reason, and the others of the request are
still applied, as Kafka does. An ACL file that cannot be written answers
KAFKA_STORAGE_ERROR and changes nothing (authorize.AclStore); creations past
the number of ACLs the broker keeps, POLICY_VIOLATION.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from runtime.broker.authorize import Access, AclLimitError
from runtime.broker.settings import Handler, Peer
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.security.acls import (
    Acl,
    AclFilter,
    InvalidAclError,
    Operation,
    PatternType,
    check_acl,
)
from runtime.security.errors import AclFileError

logger = logging.getLogger(__name__)


def _entry(acl: Acl) -> dict:
    return {
        "principal": acl.principal,
        "host": acl.host,
        "operation": acl.operation,
        "permission_type": acl.permission,
    }


def _filter(body: dict) -> AclFilter:
    return AclFilter(
        body["resource_type_filter"],
        body["resource_name_filter"],
        body["pattern_type_filter"],
        body["principal_filter"],
        body["host_filter"],
        body["operation"],
        body["permission_type"],
    ).checked()


def _visible_at(header: RequestHeader, acls: Iterable[Acl]) -> list[Acl]:
    # v0 has no pattern type: a PREFIXED ACL would read as a LITERAL one
    if header.api_version >= 1:
        return list(acls)
    return [a for a in acls if a.pattern_type is PatternType.LITERAL]


class AclApi:
    def __init__(self, access: Access) -> None:
        self._access = access
        self.by_key: dict[int, Handler] = {
            ApiKey.CREATE_ACLS: self.create_acls,
            ApiKey.DESCRIBE_ACLS: self.describe_acls,
            ApiKey.DELETE_ACLS: self.delete_acls,
        }

    async def create_acls(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        creations = body["creations"]
        if not self._access.cluster(peer, Operation.ALTER):
            denied = _result(
                ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "not authorized: ALTER cluster"
            )
            return {"results": [denied] * len(creations)}
        results: list[dict | None] = []
        valid: list[tuple[int, Acl]] = []
        for i, c in enumerate(creations):
            try:
                acl = check_acl(
                    Acl(
                        c["resource_type"],
                        c["resource_name"],
                        c["resource_pattern_type"],
                        c["principal"],
                        c["host"],
                        c["operation"],
                        c["permission_type"],
                    )
                )
            except InvalidAclError as exc:
                results.append(_result(ErrorCode.INVALID_REQUEST, str(exc)))
                continue
            results.append(None)
            valid.append((i, acl))
        outcome = _result(ErrorCode.NONE, None)
        try:
            await self._access.store.add([acl for _, acl in valid])
        except AclFileError as exc:
            logger.error("CreateAcls from %s not applied: %s", peer.principal, exc)
            outcome = _result(ErrorCode.KAFKA_STORAGE_ERROR, "the ACLs could not be stored")
        except AclLimitError as exc:
            outcome = _result(ErrorCode.POLICY_VIOLATION, str(exc))
        else:
            for _, acl in valid:
                logger.info("ACL created by %s: %s", peer.principal, acl)
        for i, _ in valid:
            results[i] = outcome
        return {"results": results}

    async def describe_acls(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        answer: dict = {"error_code": ErrorCode.NONE, "error_message": None, "resources": []}
        if not self._access.cluster(peer, Operation.DESCRIBE):
            answer.update(
                error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                error_message="not authorized: DESCRIBE cluster",
            )
            return answer
        try:
            selector = _filter(body)
        except InvalidAclError as exc:
            answer.update(error_code=ErrorCode.INVALID_REQUEST, error_message=str(exc))
            return answer
        by_resource: dict[tuple, list[dict]] = {}
        for acl in _visible_at(header, self._access.authorizer.select(selector)):
            key = (acl.resource_type, acl.resource_name, acl.pattern_type)
            by_resource.setdefault(key, []).append(_entry(acl))
        answer["resources"] = [
            {"resource_type": t, "resource_name": n, "pattern_type": p, "acls": entries}
            for (t, n, p), entries in by_resource.items()
        ]
        return answer

    async def delete_acls(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        filters = body["filters"]
        if not self._access.cluster(peer, Operation.ALTER):
            denied = _filter_result(
                ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "not authorized: ALTER cluster"
            )
            return {"filter_results": [denied] * len(filters)}
        results: list[dict | None] = []
        valid: list[tuple[int, AclFilter]] = []
        for i, f in enumerate(filters):
            try:
                valid.append((i, _filter(f)))
                results.append(None)
            except InvalidAclError as exc:
                results.append(_filter_result(ErrorCode.INVALID_REQUEST, str(exc)))
        try:
            removed = await self._access.store.remove([f for _, f in valid])
        except AclFileError as exc:
            logger.error("DeleteAcls from %s not applied: %s", peer.principal, exc)
            failed = _filter_result(ErrorCode.KAFKA_STORAGE_ERROR, "the ACLs could not be stored")
            for i, _ in valid:
                results[i] = failed
            return {"filter_results": results}
        for (i, _), gone in zip(valid, removed, strict=True):
            for acl in gone:
                logger.info("ACL deleted by %s: %s", peer.principal, acl)
            entry = _filter_result(ErrorCode.NONE, None)
            entry["matching_acls"] = [_matching(acl) for acl in _visible_at(header, gone)]
            results[i] = entry
        return {"filter_results": results}


def _result(code: int, message: str | None) -> dict:
    return {"error_code": code, "error_message": message}


def _filter_result(code: int, message: str | None) -> dict:
    return {"error_code": code, "error_message": message, "matching_acls": []}


def _matching(acl: Acl) -> dict:
    return {
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "resource_type": acl.resource_type,
        "resource_name": acl.resource_name,
        "pattern_type": acl.pattern_type,
        **_entry(acl),
    }
