"""Changing topics and groups over the Kafka protocol: CreatePartitions and
IncrementalAlterConfigs (to any broker: ours has one node, a cluster forwards
them to its controller) and DeleteGroups (to the group's coordinator).

A broker that does not serve the API refuses with NoCompatibleVersionError,
which names the API; a refusal of the change itself is a KafkaError with the
broker's code and message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from runtime.client.cluster import Cluster
from runtime.client.errors import KafkaError
from runtime.protocol.admin_messages import CONFIG_SET, TOPIC_RESOURCE
from runtime.protocol.codes import ApiKey, ErrorCode

TIMEOUT_MS = 30_000


async def create_partitions(cluster: Cluster, topic: str, count: int) -> None:
    """Raise `topic`'s partition count to `count`."""
    body = {
        "topics": [{"name": topic, "count": count, "assignments": None}],
        "timeout_ms": TIMEOUT_MS,
        "validate_only": False,
    }
    answer = await cluster.request_any(ApiKey.CREATE_PARTITIONS, body)
    for result in answer["results"]:
        if result["error_code"] != ErrorCode.NONE:
            raise KafkaError(result["error_code"], result.get("error_message"), topic=topic)
    await cluster.refresh([topic], allow_auto_create=False)


async def alter_topic_configs(cluster: Cluster, topic: str, configs: Mapping[str, str]) -> None:
    """Set the configs given on `topic`; the others keep their values."""
    body = {
        "resources": [
            {
                "resource_type": TOPIC_RESOURCE,
                "resource_name": topic,
                "configs": [
                    {"name": k, "config_operation": CONFIG_SET, "value": v}
                    for k, v in sorted(configs.items())
                ],
            }
        ],
        "validate_only": False,
    }
    answer = await cluster.request_any(ApiKey.INCREMENTAL_ALTER_CONFIGS, body)
    for result in answer["responses"]:
        if result["error_code"] != ErrorCode.NONE:
            raise KafkaError(result["error_code"], result.get("error_message"), topic=topic)


async def delete_groups(cluster: Cluster, groups: Iterable[str]) -> None:
    """Delete each group's committed offsets (only a group with no members)."""
    for group in groups:
        node = await cluster.coordinator(group)
        answer = await cluster.request(node, ApiKey.DELETE_GROUPS, {"groups_names": [group]})
        for result in answer["results"]:
            if result["error_code"] != ErrorCode.NONE:
                raise KafkaError(result["error_code"], f"group {result['group_id']!r}")
