"""The broker's answer to each Kafka API: request body in, response body out.

Bodies are the dicts of runtime.protocol (Kafka's field names in snake_case).
Record batches are never decoded here: Produce validates a batch and hands its
bytes to the log, which stamps offsets; Fetch serves stored bytes.

The broker is a single node: node id 0 leads every partition, with itself as
the only replica, and coordinates every group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from runtime.broker.coordinator import GroupCoordinator
from runtime.broker.idempotence import ProducerStates, Verdict
from runtime.errors import (
    CorruptRecordError,
    InvalidTopicError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    TopicExistsError,
    UnknownTopicError,
)
from runtime.log.config import TopicConfig, validate_topic_name
from runtime.log.records import HEADER_SIZE, decode_batch, iter_batches, parse_header
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

NODE_ID = 0
CLUSTER_ID = "streams-embedded-log"
INTERNAL_TOPICS = frozenset({"__consumer_offsets"})
FETCH_WAIT_MAX_MS = 30_000

# What we advertise in ApiVersions: the non-flexible ranges every client speaks
# (ApiVersions v3 excepted: librdkafka asks for it first).
ADVERTISED: dict[int, tuple[int, int]] = {
    ApiKey.PRODUCE: (3, 8),
    ApiKey.FETCH: (4, 11),
    ApiKey.LIST_OFFSETS: (1, 5),
    ApiKey.METADATA: (1, 8),
    ApiKey.OFFSET_COMMIT: (2, 7),
    ApiKey.OFFSET_FETCH: (1, 5),
    ApiKey.FIND_COORDINATOR: (0, 2),
    ApiKey.JOIN_GROUP: (0, 5),
    ApiKey.HEARTBEAT: (0, 3),
    ApiKey.LEAVE_GROUP: (0, 3),
    ApiKey.SYNC_GROUP: (0, 3),
    ApiKey.DESCRIBE_GROUPS: (0, 4),
    ApiKey.LIST_GROUPS: (0, 2),
    ApiKey.API_VERSIONS: (0, 3),
    ApiKey.CREATE_TOPICS: (2, 4),
    ApiKey.DELETE_TOPICS: (1, 3),
    ApiKey.INIT_PRODUCER_ID: (0, 1),
    ApiKey.DESCRIBE_CONFIGS: (0, 1),
}


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    host: str
    port: int
    auto_create_topics: bool = True
    default_partitions: int = 1


@dataclass(frozen=True, slots=True)
class Peer:
    """Who sent the request: for group membership descriptions."""

    client_id: str
    host: str


Handler = Callable[[RequestHeader, dict, Peer], Awaitable[dict | None]]


class Handlers:
    def __init__(
        self,
        transport: EmbeddedTransport,
        coordinator: GroupCoordinator,
        settings: BrokerSettings,
    ) -> None:
        self._transport = transport
        self._coordinator = coordinator
        self.settings = settings
        self._producers = ProducerStates()
        self._next_producer_id = int(time.time() * 1000) << 8  # unique across restarts
        self.by_key: dict[int, Handler] = {
            ApiKey.PRODUCE: self.produce,
            ApiKey.FETCH: self.fetch,
            ApiKey.LIST_OFFSETS: self.list_offsets,
            ApiKey.METADATA: self.metadata,
            ApiKey.OFFSET_COMMIT: self.offset_commit,
            ApiKey.OFFSET_FETCH: self.offset_fetch,
            ApiKey.FIND_COORDINATOR: self.find_coordinator,
            ApiKey.JOIN_GROUP: self.join_group,
            ApiKey.HEARTBEAT: self.heartbeat,
            ApiKey.LEAVE_GROUP: self.leave_group,
            ApiKey.SYNC_GROUP: self.sync_group,
            ApiKey.DESCRIBE_GROUPS: self.describe_groups,
            ApiKey.LIST_GROUPS: self.list_groups,
            ApiKey.API_VERSIONS: self.api_versions,
            ApiKey.CREATE_TOPICS: self.create_topics,
            ApiKey.DELETE_TOPICS: self.delete_topics,
            ApiKey.INIT_PRODUCER_ID: self.init_producer_id,
            ApiKey.DESCRIBE_CONFIGS: self.describe_configs,
        }

    @property
    def _log(self) -> Any:
        return self._transport.log

    # --- metadata and versions ---------------------------------------------------

    async def api_versions(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        return {
            "error_code": ErrorCode.NONE,
            "api_keys": [
                {"api_key": k, "min_version": lo, "max_version": hi}
                for k, (lo, hi) in sorted(ADVERTISED.items())
            ],
        }

    async def metadata(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        topics = self._log.topics()
        requested = body["topics"]
        names = sorted(topics) if requested is None else [t["name"] for t in requested]
        allow_create = (
            body.get("allow_auto_topic_creation", True) if header.api_version >= 4 else True
        )
        out = []
        for name in names:
            info = topics.get(name)
            if info is None:
                error = self._auto_create(name, allow_create)
                if error != ErrorCode.NONE:
                    out.append(
                        {"error_code": error, "name": name, "is_internal": False, "partitions": []}
                    )
                    continue
                info = self._log.topics()[name]
            out.append(
                {
                    "error_code": ErrorCode.NONE,
                    "name": name,
                    "is_internal": name in INTERNAL_TOPICS,
                    "partitions": [
                        {
                            "error_code": ErrorCode.NONE,
                            "partition_index": p,
                            "leader_id": NODE_ID,
                            "leader_epoch": 0,
                            "replica_nodes": [NODE_ID],
                            "isr_nodes": [NODE_ID],
                            "offline_replicas": [],
                        }
                        for p in range(info.partitions)
                    ],
                }
            )
        return {
            "brokers": [
                {
                    "node_id": NODE_ID,
                    "host": self.settings.host,
                    "port": self.settings.port,
                    "rack": None,
                }
            ],
            "cluster_id": CLUSTER_ID,
            "controller_id": NODE_ID,
            "topics": out,
        }

    def _auto_create(self, name: str, allowed: bool) -> int:
        try:
            validate_topic_name(name)
        except InvalidTopicError:
            return ErrorCode.INVALID_TOPIC_EXCEPTION
        if not (allowed and self.settings.auto_create_topics):
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        try:
            self._log.create_topic(name, self.settings.default_partitions)
            logger.info(
                "auto-created topic=%s partitions=%d", name, self.settings.default_partitions
            )
        except TopicExistsError:
            pass
        return ErrorCode.NONE

    async def find_coordinator(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        if body.get("key_type", 0) != 0:
            return {
                "error_code": ErrorCode.COORDINATOR_NOT_AVAILABLE,
                "error_message": "transactions are not supported",
                "node_id": -1,
                "host": "",
                "port": -1,
            }
        return {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "node_id": NODE_ID,
            "host": self.settings.host,
            "port": self.settings.port,
        }

    # --- produce -------------------------------------------------------------------

    async def produce(self, header: RequestHeader, body: dict, peer: Peer) -> dict | None:
        acks = body["acks"]
        responses = []
        for topic in body["topics"]:
            parts = []
            for part in topic["partitions"]:
                tp = TopicPartition(topic["name"], part["partition_index"])
                if acks not in (0, 1, -1):
                    code, base = ErrorCode.INVALID_REQUIRED_ACKS, -1
                else:
                    code, base = self._append(tp, part["records"])
                start = -1
                if code == ErrorCode.NONE:
                    start = self._log.offsets(tp)[0]
                parts.append(
                    {
                        "partition_index": tp.partition,
                        "error_code": code,
                        "base_offset": base,
                        "log_append_time_ms": -1,
                        "log_start_offset": start,
                        "record_errors": [],
                        "error_message": None,
                    }
                )
            responses.append({"name": topic["name"], "partitions": parts})
        if acks == 0:
            return None
        return {"responses": responses}

    def _append(self, tp: TopicPartition, records: Any) -> tuple[int, int]:
        if records is None or len(records) < HEADER_SIZE:
            return ErrorCode.CORRUPT_MESSAGE, -1
        batches = list(iter_batches(records))
        if len(batches) != 1 or batches[0][1].size != len(records):
            return ErrorCode.INVALID_RECORD, -1
        header = parse_header(records)
        idempotent = header.producer_id >= 0 and header.base_sequence >= 0
        last_seq = header.base_sequence + header.last_offset_delta
        if idempotent:
            verdict, offset = self._producers.check(
                header.producer_id, header.producer_epoch, tp, header.base_sequence, last_seq
            )
            if verdict is Verdict.DUPLICATE:
                return ErrorCode.NONE, offset
            if verdict is Verdict.OUT_OF_ORDER:
                return ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, -1
            if verdict is Verdict.FENCED:
                return ErrorCode.INVALID_PRODUCER_EPOCH, -1
        try:
            base = self._log.append(tp, records)
        except UnknownTopicError:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1
        except RecordTooLargeError:
            return ErrorCode.MESSAGE_TOO_LARGE, -1
        except CorruptRecordError:
            return ErrorCode.CORRUPT_MESSAGE, -1
        self._transport.notify_append(tp)
        if idempotent:
            self._producers.appended(
                header.producer_id, header.producer_epoch, tp, header.base_sequence, last_seq, base
            )
        return ErrorCode.NONE, base

    async def init_producer_id(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        if body.get("transactional_id") is not None:
            return {
                "error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                "producer_id": -1,
                "producer_epoch": -1,
            }
        self._next_producer_id += 1
        return {
            "error_code": ErrorCode.NONE,
            "producer_id": self._next_producer_id,
            "producer_epoch": 0,
        }

    # --- fetch ---------------------------------------------------------------------

    async def fetch(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        max_wait_s = min(max(body["max_wait_ms"], 0), FETCH_WAIT_MAX_MS) / 1000
        deadline = asyncio.get_running_loop().time() + max_wait_s
        while True:
            responses, total, errors = self._read_all(body)
            remaining = deadline - asyncio.get_running_loop().time()
            if errors or total >= body["min_bytes"] or remaining <= 0:
                break
            if not await self._transport.wait_for_append(remaining, _fetched_tps(body)):
                responses, _, _ = self._read_all(body)
                break
        return {"error_code": ErrorCode.NONE, "session_id": 0, "responses": responses}

    def _read_all(self, body: dict) -> tuple[list[dict], int, bool]:
        budget = body.get("max_bytes", 0x7FFFFFFF)
        total = 0
        errors = False
        responses = []
        for topic in body["topics"]:
            parts = []
            for part in topic["partitions"]:
                tp = TopicPartition(topic["topic"], part["partition"])
                entry, size = self._read_one(
                    tp,
                    part["fetch_offset"],
                    min(part["partition_max_bytes"], budget - total),
                    first=total == 0,
                )
                errors |= entry["error_code"] != ErrorCode.NONE
                total += size
                parts.append(entry)
            responses.append({"topic": topic["topic"], "partitions": parts})
        return responses, total, errors

    def _read_one(
        self, tp: TopicPartition, offset: int, max_bytes: int, first: bool
    ) -> tuple[dict, int]:
        """A partition's fetch answer and the size of its records. The records are
        a list of chunks (stored bytes, or file regions the server sends with
        sendfile): they are never copied here."""
        entry: dict[str, Any] = {
            "partition_index": tp.partition,
            "error_code": ErrorCode.NONE,
            "high_watermark": -1,
            "last_stable_offset": -1,
            "log_start_offset": -1,
            "aborted_transactions": [],
            "preferred_read_replica": -1,
            "records": b"",
        }
        try:
            start, end = self._log.offsets(tp)
        except UnknownTopicError:
            entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            return entry, 0
        entry.update(high_watermark=end, last_stable_offset=end, log_start_offset=start)
        if not start <= offset <= end:
            entry["error_code"] = ErrorCode.OFFSET_OUT_OF_RANGE
            return entry, 0
        if offset == end or (max_bytes <= 0 and not first):
            return entry, 0
        try:
            chunks = self._log.read_chunks(tp, offset, max(max_bytes, 1))
        except OffsetOutOfRangeError:
            entry["error_code"] = ErrorCode.OFFSET_OUT_OF_RANGE
            return entry, 0
        size = sum(len(chunk) for chunk in chunks)
        if not first and size > max_bytes:
            return entry, 0  # only the first partition may exceed the limits
        entry["records"] = chunks
        return entry, size

    async def list_offsets(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        topics = []
        for topic in body["topics"]:
            parts = []
            for part in topic["partitions"]:
                tp = TopicPartition(topic["name"], part["partition_index"])
                ts = part["timestamp"]
                entry = {
                    "partition_index": tp.partition,
                    "error_code": ErrorCode.NONE,
                    "timestamp": -1,
                    "offset": -1,
                    "leader_epoch": 0,
                }
                try:
                    start, end = self._log.offsets(tp)
                    if ts == -1:
                        entry["offset"] = end
                    elif ts == -2:
                        entry["offset"] = start
                    elif ts >= 0:
                        found = self._log.offset_for_timestamp(tp, ts)
                        if found is not None:
                            entry.update(offset=found, timestamp=self._timestamp_at(tp, found))
                    else:
                        entry["error_code"] = ErrorCode.INVALID_REQUEST
                except UnknownTopicError:
                    entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                parts.append(entry)
            topics.append({"name": topic["name"], "partitions": parts})
        return {"topics": topics}

    def _timestamp_at(self, tp: TopicPartition, offset: int) -> int:
        """The timestamp of the record at `offset` (ListOffsets answers with it)."""
        for record in decode_batch(self._log.read(tp, offset, 1)):
            if record.offset >= offset:
                return record.timestamp_ms
        return -1

    # --- topics ----------------------------------------------------------------------

    async def create_topics(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        out = []
        for topic in body["topics"]:
            code, message = self._create_one(topic, body.get("validate_only", False))
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

    def _create_one(self, topic: dict, validate_only: bool) -> tuple[int, str | None]:
        name = topic["name"]
        partitions = topic["num_partitions"]
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
        if validate_only:
            return ErrorCode.NONE, None
        try:
            self._log.create_topic(name, partitions, configs)
        except TopicExistsError as exc:
            return ErrorCode.TOPIC_ALREADY_EXISTS, str(exc)
        return ErrorCode.NONE, None

    async def delete_topics(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        out = []
        for name in body["topic_names"]:
            code = ErrorCode.NONE
            if name in INTERNAL_TOPICS:
                code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            else:
                try:
                    self._log.delete_topic(name)
                except UnknownTopicError:
                    code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            out.append({"name": name, "error_code": code})
        return {"responses": out}

    async def describe_configs(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        results = []
        for res in body["resources"]:
            rtype, name = res["resource_type"], res["resource_name"]
            keys = res["configuration_keys"]
            entry: dict[str, Any] = {
                "error_code": ErrorCode.NONE,
                "error_message": None,
                "resource_type": rtype,
                "resource_name": name,
                "configs": [],
            }
            if rtype == 2:
                info = self._log.topics().get(name)
                if info is None:
                    entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                    entry["error_message"] = f"unknown topic {name!r}"
                    results.append(entry)
                    continue
                values = info.config.to_configs()
                defaults = TopicConfig().to_configs()
            elif rtype == 4:
                values = self._broker_configs()
                defaults = values
            else:
                entry["error_code"] = ErrorCode.INVALID_REQUEST
                entry["error_message"] = f"resource type {rtype} is not supported"
                results.append(entry)
                continue
            entry["configs"] = [
                {
                    "name": k,
                    "value": v,
                    "read_only": rtype == 4,
                    "is_default": defaults.get(k) == v,
                    # DEFAULT_CONFIG (5) when never set, else DYNAMIC_TOPIC_CONFIG (1)
                    "config_source": 5 if defaults.get(k) == v else 1,
                    "is_sensitive": False,
                    "synonyms": [],
                    "config_type": 0,
                    "documentation": None,
                }
                for k, v in sorted(values.items())
                if keys is None or k in keys
            ]
            results.append(entry)
        return {"results": results}

    def _broker_configs(self) -> dict[str, str]:
        default = TopicConfig()
        return {
            "broker.id": str(NODE_ID),
            "auto.create.topics.enable": str(self.settings.auto_create_topics).lower(),
            "num.partitions": str(self.settings.default_partitions),
            "log.retention.ms": str(default.retention_ms),
            "log.segment.bytes": str(default.segment_bytes),
            "message.max.bytes": str(default.max_message_bytes),
        }

    # --- groups ----------------------------------------------------------------------

    async def join_group(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        rebalance_ms = body.get("rebalance_timeout_ms", -1)
        if rebalance_ms < 0:
            rebalance_ms = body["session_timeout_ms"]
        result = await self._coordinator.join(
            body["group_id"],
            body["member_id"],
            body.get("group_instance_id"),
            body["protocol_type"],
            [(p["name"], bytes(p["metadata"])) for p in body["protocols"]],
            body["session_timeout_ms"],
            rebalance_ms,
            peer.client_id,
            peer.host,
            require_known_member_id=header.api_version >= 4,
        )
        return {
            "error_code": result.error_code,
            "generation_id": result.generation_id,
            "protocol_name": result.protocol_name or "",
            "leader": result.leader_id,
            "member_id": result.member_id,
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "metadata": m.metadata,
                }
                for m in result.members
            ],
        }

    async def sync_group(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        result = await self._coordinator.sync(
            body["group_id"],
            body["generation_id"],
            body["member_id"],
            {a["member_id"]: bytes(a["assignment"]) for a in body["assignments"]},
        )
        return {"error_code": result.error_code, "assignment": result.assignment}

    async def heartbeat(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        code = await self._coordinator.heartbeat(
            body["group_id"], body["generation_id"], body["member_id"]
        )
        return {"error_code": code}

    async def leave_group(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        if header.api_version < 3:
            members = [(body["member_id"], None)]
        else:
            members = [(m["member_id"], m.get("group_instance_id")) for m in body["members"]]
        result = await self._coordinator.leave(body["group_id"], members)
        code = result.error_code
        if header.api_version < 3 and code == ErrorCode.NONE and result.members:
            code = result.members[0].error_code
        return {
            "error_code": code,
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "error_code": m.error_code,
                }
                for m in result.members
            ],
        }

    async def offset_commit(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        offsets = {
            TopicPartition(t["name"], p["partition_index"]): (
                p["committed_offset"],
                p["committed_metadata"],
            )
            for t in body["topics"]
            for p in t["partitions"]
        }
        codes = await self._coordinator.commit_offsets(
            body["group_id"], body["generation_id"], body["member_id"], offsets
        )
        return {
            "topics": [
                {
                    "name": t["name"],
                    "partitions": [
                        {
                            "partition_index": p["partition_index"],
                            "error_code": codes.get(
                                TopicPartition(t["name"], p["partition_index"]), 0
                            ),
                        }
                        for p in t["partitions"]
                    ],
                }
                for t in body["topics"]
            ]
        }

    async def offset_fetch(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        requested = body["topics"]
        tps = None
        if requested is not None:
            tps = [TopicPartition(t["name"], p) for t in requested for p in t["partition_indexes"]]
        commits = await self._coordinator.fetch_offsets(body["group_id"], tps)
        by_topic: dict[str, list[dict]] = {}
        for tp in tps if tps is not None else sorted(commits):
            offset, metadata = commits.get(tp, (-1, ""))
            by_topic.setdefault(tp.topic, []).append(
                {
                    "partition_index": tp.partition,
                    "committed_offset": offset,
                    "committed_leader_epoch": -1,
                    "metadata": metadata,
                    "error_code": ErrorCode.NONE,
                }
            )
        return {
            "topics": [{"name": name, "partitions": parts} for name, parts in by_topic.items()],
            "error_code": ErrorCode.NONE,
        }

    async def describe_groups(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        groups = []
        for group_id in body["groups"]:
            d = self._coordinator.describe_group(group_id)
            groups.append(
                {
                    "error_code": d.error_code,
                    "group_id": d.group_id,
                    "group_state": d.state,
                    "protocol_type": d.protocol_type,
                    "protocol_data": d.protocol_name,
                    "members": [
                        {
                            "member_id": m.member_id,
                            "group_instance_id": m.group_instance_id,
                            "client_id": m.client_id,
                            "client_host": m.client_host,
                            "member_metadata": m.metadata,
                            "member_assignment": m.assignment,
                        }
                        for m in d.members
                    ],
                }
            )
        return {"groups": groups}

    async def list_groups(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        return {
            "error_code": ErrorCode.NONE,
            "groups": [
                {"group_id": g.group_id, "protocol_type": g.protocol_type}
                for g in self._coordinator.list_groups()
            ],
        }


def _fetched_tps(body: dict) -> list[TopicPartition]:
    return [
        TopicPartition(topic["topic"], part["partition"])
        for topic in body["topics"]
        for part in topic["partitions"]
    ]
