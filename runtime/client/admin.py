"""Topic administration over the Kafka protocol.

CreateTopics and DeleteTopics go to the controller (any broker when none is
known; NOT_CONTROLLER makes us refresh and retry). Both wait, bounded by
`timeout_ms`, until metadata shows the change, since a cluster applies it
asynchronously; DescribeConfigs and Metadata go to any broker.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Mapping

from runtime.client.cluster import Cluster, backoff_s
from runtime.client.errors import KafkaError, KafkaTimeoutError
from runtime.client.offsets import list_offsets, retrying
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

TOPIC_RESOURCE = 2

TopicSpec = tuple[int, Mapping[str, str] | None]
"""(partitions, configs) of a topic to create; -1 partitions: the broker's default."""


class Admin:
    def __init__(self, cluster: Cluster, *, timeout_ms: int = 30_000) -> None:
        self._cluster = cluster
        self._timeout_ms = timeout_ms

    async def create_topics(
        self,
        topics: Mapping[str, TopicSpec],
        *,
        ignore_existing: bool = False,
        replication_factor: int = -1,
        validate_only: bool = False,
    ) -> None:
        """Create topics; KafkaError for the first that failed (TOPIC_ALREADY_EXISTS
        too, unless `ignore_existing`), after the others were created."""
        if not topics:
            return
        body = {
            "topics": [
                {
                    "name": name,
                    "num_partitions": partitions,
                    "replication_factor": replication_factor,
                    "assignments": [],
                    "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()],
                }
                for name, (partitions, configs) in topics.items()
            ],
            "timeout_ms": self._timeout_ms,
            "validate_only": validate_only,
        }
        answer = await self._to_controller(ApiKey.CREATE_TOPICS, body, "topics")
        created = []
        errors = []
        for t in answer["topics"]:
            code = t["error_code"]
            if code == ErrorCode.NONE or (
                code == ErrorCode.TOPIC_ALREADY_EXISTS and ignore_existing
            ):
                created.append(t["name"])
            else:
                errors.append(KafkaError(code, t.get("error_message"), topic=t["name"]))
        if created and not validate_only:
            await self._wait_for(created, present=True)
        if errors:
            raise errors[0]

    async def delete_topics(self, names: Iterable[str], *, ignore_missing: bool = False) -> None:
        """Delete topics; KafkaError for the first that failed (UNKNOWN_TOPIC_OR_PARTITION
        too, unless `ignore_missing`)."""
        names = list(names)
        if not names:
            return
        body = {"topic_names": names, "timeout_ms": self._timeout_ms}
        answer = await self._to_controller(ApiKey.DELETE_TOPICS, body, "responses")
        deleted = []
        errors = []
        for t in answer["responses"]:
            code = t["error_code"]
            if code == ErrorCode.NONE or (
                code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION and ignore_missing
            ):
                deleted.append(t["name"])
            else:
                errors.append(KafkaError(code, topic=t["name"]))
        if deleted:
            await self._wait_for(deleted, present=False)
        if errors:
            raise errors[0]

    async def describe_topics(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """Partition count of each topic (None: every topic); KafkaError for a named
        topic that does not exist."""
        wanted = None if names is None else sorted(set(names))
        await self._cluster.refresh(wanted, allow_auto_create=False)
        if wanted is None:
            return {t: len(p) for t, p in sorted(self._cluster.topics.items())}
        out = {}
        for name in wanted:
            partitions = self._cluster.partitions(name)
            if partitions is None:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, topic=name)
            out[name] = len(partitions)
        return out

    async def describe_configs(self, topic: str) -> dict[str, str | None]:
        """Every config of a topic, defaults included."""
        body = {
            "resources": [
                {
                    "resource_type": TOPIC_RESOURCE,
                    "resource_name": topic,
                    "configuration_keys": None,
                }
            ],
            "include_synonyms": False,
        }

        answer = await self._cluster.request_any(ApiKey.DESCRIBE_CONFIGS, body)
        result = answer["results"][0]
        if result["error_code"] != ErrorCode.NONE:
            raise KafkaError(result["error_code"], result.get("error_message"), topic=topic)
        return {c["name"]: c["value"] for c in result["configs"]}

    async def list_offsets(
        self, tps: Iterable[TopicPartition], timestamp: int
    ) -> dict[TopicPartition, int]:
        """ListOffsets: -1 latest, -2 earliest, t >= 0 first offset at or after t."""
        return await list_offsets(self._cluster, tps, timestamp)

    async def _to_controller(self, api_key: int, body: dict, results: str) -> dict:
        async def attempt() -> dict:
            node = self._cluster.controller_id
            if node in self._cluster.brokers:
                answer = await self._cluster.request(node, api_key, body)
            else:
                answer = await self._cluster.request_any(api_key, body)
            if any(r["error_code"] == ErrorCode.NOT_CONTROLLER for r in answer[results]):
                raise KafkaError(ErrorCode.NOT_CONTROLLER)
            return answer

        async def refreshing_attempt() -> dict:
            try:
                return await attempt()
            except KafkaError as exc:
                if exc.code == ErrorCode.NOT_CONTROLLER:
                    await self._cluster.refresh([], allow_auto_create=False)
                raise

        return await retrying(self._cluster, refreshing_attempt)

    async def _wait_for(self, names: list[str], *, present: bool) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_ms / 1000
        for attempt in itertools.count():
            await self._cluster.refresh(names, allow_auto_create=False)
            leaders = self._cluster.topics
            if present:
                done = all(n in leaders and all(v >= 0 for v in leaders[n].values()) for n in names)
            else:
                done = not any(n in leaders for n in names)
            if done:
                return
            pause = backoff_s(
                attempt, self._cluster.retry_backoff_s, self._cluster.retry_backoff_max_s
            )
            if loop.time() + pause > deadline:
                raise KafkaTimeoutError(
                    f"topics {names} not {'created' if present else 'deleted'} "
                    f"in metadata after {self._timeout_ms} ms"
                )
            await asyncio.sleep(pause)
