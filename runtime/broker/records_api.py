"""CreatePartitions and DeleteRecords: a topic's partitions grow, a partition's
records below an offset go.

CreatePartitions keeps to the broker's partition limit (POLICY_VIOLATION past
it, as CreateTopics). DeleteRecords moves the log start offset (persisted):
fetches below it then answer OFFSET_OUT_OF_RANGE, ListOffsets EARLIEST answers
it, and the segments wholly below it are deleted. The broker's own topics
(__consumer_offsets, __transaction_state) are refused both, as DeleteTopics
refuses them: their partition count is how groups and transactional ids are
placed, and their records are the coordinators' state. CreatePartitions needs
ALTER on the topic, DeleteRecords DELETE (TOPIC_AUTHORIZATION_FAILED otherwise).
"""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.broker.authorize import Access, Operation
from runtime.broker.limits import BrokerLimits
from runtime.broker.settings import INTERNAL_TOPICS, NODE_ID, Handler, Peer
from runtime.broker.topic_creation import TopicCreator, TopicLimitError
from runtime.errors import LogClosedError, OffsetOutOfRangeError, StorageError, UnknownTopicError
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.frames import RequestHeader
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition


class RecordsApi:
    def __init__(
        self,
        transport: EmbeddedTransport,
        creator: TopicCreator,
        limits: BrokerLimits,
        access: Access,
    ) -> None:
        self._transport = transport
        self._access = access
        self._creator = creator
        self._limits = limits
        self.by_key: dict[int, Handler] = {
            ApiKey.CREATE_PARTITIONS: self.create_partitions,
            ApiKey.DELETE_RECORDS: self.delete_records,
        }

    @property
    def _log(self) -> Any:
        return self._transport.log

    async def create_partitions(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        names = [t["name"] for t in body["topics"]]
        results = []
        for topic in body["topics"]:
            name = topic["name"]
            if names.count(name) > 1:
                code, message = ErrorCode.INVALID_REQUEST, f"topic {name!r} is named twice"
            elif not self._access.topic(peer, Operation.ALTER, name):
                code, message = ErrorCode.TOPIC_AUTHORIZATION_FAILED, "not authorized: ALTER"
            else:
                code, message = await self._grow(topic, body["validate_only"])
            results.append({"name": name, "error_code": code, "error_message": message})
        return {"results": results}

    async def _grow(self, topic: dict, validate_only: bool) -> tuple[int, str | None]:
        name, count = topic["name"], topic["count"]
        if name in INTERNAL_TOPICS:
            return ErrorCode.TOPIC_AUTHORIZATION_FAILED, f"{name} keeps its partitions"
        info = self._log.topics().get(name)
        if info is None:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist"
        if count <= info.partitions:
            return (
                ErrorCode.INVALID_PARTITIONS,
                f"topic {name!r} has {info.partitions} partitions: the new count must be "
                f"more, got {count}",
            )
        assignments = topic["assignments"]
        if assignments is not None and (
            len(assignments) != count - info.partitions
            or any(a["broker_ids"] != [NODE_ID] for a in assignments)
        ):
            return (
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"this broker is a single node: each of the {count - info.partitions} new "
                f"partitions is assigned to broker {NODE_ID} alone",
            )
        if validate_only:
            return ErrorCode.NONE, None
        try:
            await self._creator.grow(name, count)
        except TopicLimitError as exc:
            return ErrorCode.POLICY_VIOLATION, str(exc)
        except UnknownTopicError as exc:  # deleted meanwhile
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, str(exc)
        except ValueError as exc:  # grown meanwhile past the count
            return ErrorCode.INVALID_PARTITIONS, str(exc)
        except (OSError, StorageError) as exc:
            return ErrorCode.KAFKA_STORAGE_ERROR, f"adding partitions to {name!r} failed: {exc}"
        return ErrorCode.NONE, None

    async def delete_records(self, header: RequestHeader, body: dict, peer: Peer) -> dict:
        topics = []
        for topic in body["topics"]:
            parts = []
            allowed: bool | None = None  # DELETE on the topic, asked once per topic
            for part in topic["partitions"]:
                tp = TopicPartition(topic["name"], part["partition_index"])
                if allowed is None:
                    allowed = self._access.topic(peer, Operation.DELETE, tp.topic)
                if allowed:
                    code, low = await self._delete_below(tp, part["offset"])
                else:
                    code, low = ErrorCode.TOPIC_AUTHORIZATION_FAILED, -1
                parts.append(
                    {"partition_index": tp.partition, "low_watermark": low, "error_code": code}
                )
            topics.append({"name": topic["name"], "partitions": parts})
        return {"topics": topics}

    async def _delete_below(self, tp: TopicPartition, offset: int) -> tuple[int, int]:
        if tp.topic in INTERNAL_TOPICS:
            return ErrorCode.TOPIC_AUTHORIZATION_FAILED, -1
        try:
            # unlinking segment files: off the loop
            low = await asyncio.to_thread(self._log.delete_records, tp, offset)
        except (UnknownTopicError, LogClosedError):
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1
        except OffsetOutOfRangeError:
            return ErrorCode.OFFSET_OUT_OF_RANGE, -1
        except StorageError:
            return ErrorCode.KAFKA_STORAGE_ERROR, -1
        return ErrorCode.NONE, low
