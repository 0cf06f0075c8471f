"""Partition assignors of the classic consumer group protocol.

The group's leader runs one over every member's Subscription and hands each
member its Assignment. An assignor is named (every member must offer the name
the group uses) and may add user data to its members' subscriptions.

`RangeAssignor` ("range") is Kafka's default: for each topic, the members
subscribed to it (by member id) take consecutive ranges of its partitions, the
first `partitions % members` one partition more. It matches Java's, librdkafka's
and kafka-python's "range", so it can lead a group that mixes those clients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from runtime.client.consumer_protocol import Assignment, Subscription
from runtime.types import TopicPartition


class Assignor(Protocol):
    name: str

    def metadata(self, topics: Sequence[str]) -> bytes | None:
        """User data for this member's subscription to `topics`."""
        ...

    def assign(
        self,
        cluster_metadata: Mapping[str, Sequence[int]],
        members: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        """Each member's assignment, from every subscribed topic's partitions."""
        ...


class RangeAssignor:
    name = "range"

    def metadata(self, topics: Sequence[str]) -> bytes | None:
        return None

    def assign(
        self,
        cluster_metadata: Mapping[str, Sequence[int]],
        members: Mapping[str, Subscription],
    ) -> dict[str, Assignment]:
        owned: dict[str, list[TopicPartition]] = {member: [] for member in members}
        for topic in sorted(cluster_metadata):
            subscribers = sorted(m for m, s in members.items() if topic in s.topics)
            if not subscribers:
                continue
            partitions = sorted(cluster_metadata[topic])
            share, extra = divmod(len(partitions), len(subscribers))
            start = 0
            for i, member in enumerate(subscribers):
                count = share + (1 if i < extra else 0)
                owned[member] += [
                    TopicPartition(topic, p) for p in partitions[start : start + count]
                ]
                start += count
        return {member: Assignment(tuple(tps)) for member, tps in owned.items()}
