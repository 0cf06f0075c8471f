"""CreateTopics and DeleteTopics (configs are config_api.py's).

CreateTopics keeps to the broker's limits (limits.py): partitions per request
(counted over the request's topics in order: a topic that would go past the
limit is refused, the ones before it are created), topics and partitions per
broker. A refusal is POLICY_VIOLATION, Kafka's answer when a request breaks a
configured policy, with an error_message naming the limit and its flag.

Authorization (authorize.py): CreateTopics needs CREATE on the cluster or
the topic, DeleteTopics DELETE on the topic (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from typing import Any

from runtime.broker.authorize import Access, Operation
from runtime.broker.settings import INTERNAL_TOPICS, NODE_ID, BrokerSettings, Handler, Peer
from runtime.broker.topic_creation import TopicCreator, TopicLimitError
from runtime.errors import InvalidTopicError, StorageError, TopicExistsError, UnknownTopicError
from runtime.log.config import TopicConfig, validate_topic_name
from runtime.logs import RateLimitedLog
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.transport import EmbeddedTransport


class _RequestPartitions:
    """The partitions one CreateTopics request may still ask for (--create-partitions-max)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0

    def check(self, name: str, partitions: int) -> None:
        if self.taken + partitions > self.limit:
            raise TopicLimitError(
                f"topic {name!r} not created: it would make {self.taken + partitions} "
                f"partitions in this request, over the limit per request "
                f"(--create-partitions-max {self.limit})",
                topic=name,
            )


class AdminApi:
    def __init__(
        self,
        transport: EmbeddedTransport,
        settings: BrokerSettings,
        creator: TopicCreator,
        refusals: RateLimitedLog,
        access: Access,
    ) -> None:
        self._transport = transport
        self._access = access
        self.settings = settings
        self.limits = settings.limits
        self._creator = creator
        self._refusals = refusals
        self.by_key: dict[int, Handler] = {
            ApiKey.CREATE_TOPICS: self.create_topics,
            ApiKey.DELETE_TOPICS: self.delete_topics,
        }

    @property
    def _log(self) -> Any:
        return self._transport.log

    async def create_topics(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        out = []
        budget = _RequestPartitions(self.limits.create_partitions_max)
        for topic in body["topics"]:
            if self._access.may_create_topic(peer, topic["name"]):
                code, message = await self._create_one(
                    topic, body.get("validate_only", False), budget
                )
            else:
                code, message = ErrorCode.TOPIC_AUTHORIZATION_FAILED, "not authorized: CREATE"
            if code == ErrorCode.POLICY_VIOLATION:
                self._refusals.warning(
                    ("create-topics", peer.host),
                    "CreateTopics from %s refused: %s",
                    peer.host,
                    message,
                )
            info = self._log.topics().get(topic["name"]) if code == ErrorCode.NONE else None
            out.append(
                {
                    "name": topic["name"],
                    "error_code": code,
                    "error_message": message,
                    "num_partitions": info.partitions if info else -1,
                    "replication_factor": 1 if info else -1,
                    "configs": None,
                }
            )
        return {"topics": out}

    async def _create_one(
        self, topic: dict, validate_only: bool, budget: _RequestPartitions
    ) -> tuple[int, str | None]:
        name = topic["name"]
        partitions = topic["num_partitions"]
        assignments = topic["assignments"]
        if assignments:  # Kafka: the partition count is the assignments'
            refused = _check_assignments(topic, assignments)
            if refused is not None:
                return refused
            partitions = len(assignments)
        if partitions == -1:
            partitions = self.settings.default_partitions
        if partitions <= 0:
            return ErrorCode.INVALID_PARTITIONS, f"partitions must be >= 1, got {partitions}"
        if topic["replication_factor"] not in (-1, 1):
            return (
                ErrorCode.INVALID_REPLICATION_FACTOR,
                "this broker is a single node: replication factor must be 1",
            )
        configs = {c["name"]: c["value"] for c in topic["configs"] if c["value"] is not None}
        try:
            validate_topic_name(name)
            TopicConfig.from_configs(configs)
        except InvalidTopicError as exc:
            return ErrorCode.INVALID_TOPIC_EXCEPTION, str(exc)
        except ValueError as exc:
            return ErrorCode.INVALID_CONFIG, str(exc)
        if name in self._log.topics():
            return ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists"
        try:
            budget.check(name, partitions)
            if validate_only:
                self._creator.check(name, partitions)
            else:
                await self._creator.create(name, partitions, configs)
        except TopicLimitError as exc:
            return ErrorCode.POLICY_VIOLATION, str(exc)
        except TopicExistsError as exc:
            return ErrorCode.TOPIC_ALREADY_EXISTS, str(exc)
        except (OSError, StorageError) as exc:  # a full disk, or out of file descriptors
            self._refusals.warning(
                ("create-failed", getattr(exc, "errno", None)),
                "creating topic %s failed: %s",
                name,
                exc,
            )
            return ErrorCode.KAFKA_STORAGE_ERROR, f"creating topic {name!r} failed: {exc}"
        budget.taken += partitions
        return ErrorCode.NONE, None

    async def delete_topics(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        out = []
        for name in body["topic_names"]:
            code = ErrorCode.NONE
            if name in INTERNAL_TOPICS or not self._access.topic(peer, Operation.DELETE, name):
                code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            else:
                try:
                    await self._creator.delete(name)
                except UnknownTopicError:
                    code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                except StorageError:  # nothing was deleted (see Log.delete_topic)
                    code = ErrorCode.KAFKA_STORAGE_ERROR
            out.append({"name": name, "error_code": code})
        return {"responses": out}


def _check_assignments(topic: dict, assignments: list[dict]) -> tuple[int, str] | None:
    """The refusal of a CreateTopics request's replica assignments, or None."""
    if topic["num_partitions"] != -1 or topic["replication_factor"] != -1:
        return (
            ErrorCode.INVALID_REQUEST,
            "with replica assignments, num_partitions and replication_factor must be -1",
        )
    indexes = sorted(a["partition_index"] for a in assignments)
    if indexes != list(range(len(assignments))):
        return ErrorCode.INVALID_REPLICA_ASSIGNMENT, "partitions must be numbered from 0 on"
    if any(list(a["broker_ids"]) != [NODE_ID] for a in assignments):
        return (
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            f"this broker is a single node: every partition is assigned to broker {NODE_ID}",
        )
    return None
