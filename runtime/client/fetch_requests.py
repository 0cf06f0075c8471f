"""The Fetch request our consumers send (the client's Consumer and the
framework's per-broker fetcher): one body for the partitions a broker leads,
and a whole-request error raised."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from runtime.client.errors import KafkaError
from runtime.protocol.codes import ErrorCode
from runtime.types import TopicPartition


def fetch_body(
    positions: Mapping[TopicPartition, tuple[int, int]],
    *,
    max_wait_ms: int,
    min_bytes: int,
    max_bytes: int,
    isolation: int,
) -> dict:
    """A Fetch (no fetch session) of each partition from its (offset, max bytes)."""
    ordered = sorted(positions.items())
    return {
        "replica_id": -1,
        "max_wait_ms": max_wait_ms,
        "min_bytes": min_bytes,
        "max_bytes": max_bytes,
        "isolation_level": isolation,
        "session_id": 0,
        "session_epoch": -1,
        "topics": [
            {
                "topic": topic,
                "partitions": [
                    {
                        "partition": tp.partition,
                        "current_leader_epoch": -1,
                        "fetch_offset": offset,
                        "log_start_offset": -1,
                        "partition_max_bytes": partition_max_bytes,
                    }
                    for tp, (offset, partition_max_bytes) in group
                ],
            }
            for topic, group in itertools.groupby(ordered, key=lambda item: item[0].topic)
        ],
        "forgotten_topics_data": [],
        "rack_id": "",
    }


def check_fetch_answer(response: dict) -> dict:
    """The answer, unless it is a whole-request error (librdkafka's mock sends them)."""
    code = response.get("error_code", 0)
    if code != ErrorCode.NONE:
        raise KafkaError(code, "Fetch")
    return response
