"""Offset look-ups and group offset commits, shared by the consumer, the group
member and the admin client.

    list_offsets     ListOffsets to each partition's leader: -1 latest (read_committed:
                     the last stable offset), -2 earliest, t >= 0 the first offset
                     whose timestamp is >= t (-1 if none)
    fetch_committed  OffsetFetch from the group's coordinator
    commit_offsets   OffsetCommit to the group's coordinator

Each retries, with backoff and for up to the cluster's request timeout, what may
pass: stale metadata, a moved coordinator, a broken connection. Other broker
errors are raised as KafkaError with the topic and partition they concern.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeVar

from runtime.client.cluster import DEFAULT_LANE, Cluster, backoff_s
from runtime.client.errors import (
    COORDINATOR_CODES,
    METADATA_CODES,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

LATEST = -1
EARLIEST = -2

T = TypeVar("T")


async def retrying(
    cluster: Cluster,
    attempt_once: Callable[[], Awaitable[T]],
    *,
    group_id: str | None = None,
    topics: Iterable[str] = (),
) -> T:
    """Run `attempt_once` until it succeeds, retrying retriable errors with backoff
    for up to the cluster's request timeout. Before a retry it refreshes the
    metadata of `topics` or forgets the coordinator of `group_id` as the error asks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cluster.request_timeout_s
    topics = sorted(set(topics))
    for attempt in itertools.count():
        try:
            return await attempt_once()
        except KafkaError as exc:
            if not (exc.retriable or exc.code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS):
                raise
            error: Exception = exc
            stale_metadata = exc.code in METADATA_CODES
            stale_coordinator = exc.code in COORDINATOR_CODES
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            error, stale_metadata, stale_coordinator = exc, True, True
        pause = backoff_s(attempt, cluster.retry_backoff_s, cluster.retry_backoff_max_s)
        if loop.time() + pause > deadline:
            raise error
        await asyncio.sleep(pause)
        if stale_coordinator and group_id is not None:
            cluster.forget_coordinator(group_id)
        if stale_metadata and topics:
            with contextlib.suppress(KafkaConnectionError, KafkaTimeoutError):
                await cluster.refresh(topics)
    raise AssertionError("unreachable")


async def list_offsets(
    cluster: Cluster, tps: Iterable[TopicPartition], timestamp: int, *, isolation_level: int = 0
) -> dict[TopicPartition, int]:
    """The offset of each partition for `timestamp` (LATEST, EARLIEST or ms). With
    isolation_level 1 (read_committed) LATEST is the last stable offset."""
    wanted = sorted(set(tps))
    out: dict[TopicPartition, int] = {}

    async def attempt() -> dict[TopicPartition, int]:
        by_leader: dict[int, list[TopicPartition]] = {}
        for tp in wanted:
            if tp not in out:
                by_leader.setdefault(await cluster.leader_for(tp), []).append(tp)
        answers = await asyncio.gather(
            *(
                _list_offsets_at(cluster, node, group, timestamp, isolation_level)
                for node, group in by_leader.items()
            )
        )
        errors = []
        for answer in answers:
            for tp, (code, offset) in answer.items():
                if code == ErrorCode.NONE:
                    out[tp] = offset
                else:
                    errors.append(KafkaError(code, topic=tp.topic, partition=tp.partition))
        if errors:
            raise next((e for e in errors if not e.retriable), errors[0])
        return out

    return await retrying(cluster, attempt, topics=(tp.topic for tp in wanted))


async def _list_offsets_at(
    cluster: Cluster, node: int, tps: list[TopicPartition], timestamp: int, isolation_level: int
) -> dict[TopicPartition, tuple[int, int]]:
    body = {
        "replica_id": -1,
        "isolation_level": isolation_level,
        "topics": [
            {
                "name": topic,
                "partitions": [
                    {
                        "partition_index": tp.partition,
                        "current_leader_epoch": -1,
                        "timestamp": timestamp,
                    }
                    for tp in group
                ],
            }
            for topic, group in itertools.groupby(tps, key=lambda tp: tp.topic)
        ],
    }
    response = await cluster.request(node, ApiKey.LIST_OFFSETS, body)
    return {
        TopicPartition(t["name"], p["partition_index"]): (p["error_code"], p["offset"])
        for t in response["topics"]
        for p in t["partitions"]
    }


async def fetch_committed(
    cluster: Cluster,
    group_id: str,
    tps: Iterable[TopicPartition] | None,
    *,
    lane: str = DEFAULT_LANE,
    require_stable: bool = False,
) -> dict[TopicPartition, tuple[int, str | None]]:
    """(offset, metadata) of each partition with a committed offset (None: all
    the group has); partitions with none are left out. With `require_stable`
    (a read_committed reader, KIP-447) offsets an undecided transaction holds
    are waited for (UNSTABLE_OFFSET_COMMIT is retried)."""
    wanted = None if tps is None else sorted(set(tps))
    topics = None
    if wanted is not None:
        topics = [
            {"name": topic, "partition_indexes": [tp.partition for tp in group]}
            for topic, group in itertools.groupby(wanted, key=lambda tp: tp.topic)
        ]

    async def attempt() -> dict[TopicPartition, tuple[int, str | None]]:
        node = await cluster.coordinator(group_id)
        response = await cluster.request(
            node,
            ApiKey.OFFSET_FETCH,
            {"group_id": group_id, "topics": topics, "require_stable": require_stable},
            lane=lane,
        )
        if response.get("error_code", 0) != ErrorCode.NONE:
            raise KafkaError(response["error_code"], f"OffsetFetch {group_id!r}")
        out = {}
        for t in response["topics"]:
            for p in t["partitions"]:
                tp = TopicPartition(t["name"], p["partition_index"])
                if p["error_code"] != ErrorCode.NONE:
                    raise KafkaError(p["error_code"], topic=tp.topic, partition=tp.partition)
                if p["committed_offset"] >= 0:
                    out[tp] = (p["committed_offset"], p["metadata"])
        return out

    return await retrying(cluster, attempt, group_id=group_id)


async def commit_offsets(
    cluster: Cluster,
    group_id: str,
    offsets: Mapping[TopicPartition, int],
    *,
    generation: int = -1,
    member_id: str = "",
    metadata: str | None = "",
    lane: str = DEFAULT_LANE,
) -> None:
    """Commit `offsets` (the next offset to read, per partition). Generation -1
    with an empty member id commits outside any group membership."""
    if not offsets:
        return
    ordered = sorted(offsets.items())
    body = {
        "group_id": group_id,
        "generation_id": generation,
        "member_id": member_id,
        "group_instance_id": None,
        "retention_time_ms": -1,
        "topics": [
            {
                "name": topic,
                "partitions": [
                    {
                        "partition_index": tp.partition,
                        "committed_offset": offset,
                        "committed_leader_epoch": -1,
                        "committed_metadata": metadata,
                    }
                    for tp, offset in group
                ],
            }
            for topic, group in itertools.groupby(ordered, key=lambda item: item[0].topic)
        ],
    }

    async def attempt() -> None:
        node = await cluster.coordinator(group_id)
        response = await cluster.request(node, ApiKey.OFFSET_COMMIT, body, lane=lane)
        for t in response["topics"]:
            for p in t["partitions"]:
                if p["error_code"] != ErrorCode.NONE:
                    raise KafkaError(
                        p["error_code"],
                        f"OffsetCommit {group_id!r}",
                        topic=t["name"],
                        partition=p["partition_index"],
                    )

    await retrying(cluster, attempt, group_id=group_id)
