"""ACL administration over the Kafka protocol: CreateAcls, DescribeAcls, DeleteAcls.

Any broker answers (ACLs are the cluster's); a refusal of the whole request
(CLUSTER_AUTHORIZATION_FAILED, SECURITY_DISABLED on a cluster without an
authorizer) or of one ACL or filter raises KafkaError with the broker's
code and message. Values are runtime.security.acls', the broker's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from runtime.client.cluster import Cluster
from runtime.client.errors import KafkaError
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.security.acls import (
    Acl,
    AclFilter,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)


def _raise_for(entry: dict, what: str) -> None:
    code = entry["error_code"]
    if code != ErrorCode.NONE:
        raise KafkaError(code, f"{what}: {entry.get('error_message') or ErrorCode(code).name}")


def _filter_body(selector: AclFilter) -> dict:
    return {
        "resource_type_filter": selector.resource_type,
        "resource_name_filter": selector.resource_name,
        "pattern_type_filter": selector.pattern_type,
        "principal_filter": selector.principal,
        "host_filter": selector.host,
        "operation": selector.operation,
        "permission_type": selector.permission,
    }


def _acl(resource: dict, entry: dict) -> Acl:
    return Acl(
        ResourceType(resource["resource_type"]),
        resource["resource_name"],
        PatternType(resource["pattern_type"]),
        entry["principal"],
        entry["host"],
        Operation(entry["operation"]),
        Permission(entry["permission_type"]),
    )


async def create_acls(cluster: Cluster, acls: Sequence[Acl]) -> None:
    """Create every ACL; KafkaError for the first the broker refused."""
    body = {
        "creations": [
            {
                "resource_type": a.resource_type,
                "resource_name": a.resource_name,
                "resource_pattern_type": a.pattern_type,
                "principal": a.principal,
                "host": a.host,
                "operation": a.operation,
                "permission_type": a.permission,
            }
            for a in acls
        ]
    }
    answer = await cluster.request_any(ApiKey.CREATE_ACLS, body)
    for acl, result in zip(acls, answer["results"], strict=True):
        _raise_for(result, f"ACL {acl} not created")


async def describe_acls(cluster: Cluster, selector: AclFilter) -> list[Acl]:
    answer = await cluster.request_any(ApiKey.DESCRIBE_ACLS, _filter_body(selector))
    _raise_for(answer, "ACLs not described")
    return sorted(_acl(r, e) for r in answer["resources"] for e in r["acls"])


async def delete_acls(cluster: Cluster, selectors: Sequence[AclFilter]) -> list[Acl]:
    """Delete what the filters select; the ACLs deleted."""
    body = {"filters": [_filter_body(s) for s in selectors]}
    answer = await cluster.request_any(ApiKey.DELETE_ACLS, body)
    deleted = []
    for result in answer["filter_results"]:
        _raise_for(result, "ACLs not deleted")
        for matching in result["matching_acls"]:
            _raise_for(matching, "ACL not deleted")
            deleted.append(_acl(matching, matching))
    return sorted(deleted)
