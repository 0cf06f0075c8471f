"""The consumer protocol: the bytes group members exchange through the coordinator.

The coordinator never reads them; every client of a "consumer" group does, so the
layout is Kafka's (ConsumerProtocolSubscription / ConsumerProtocolAssignment):

    Subscription  int16 version, [string topic], nullable bytes user_data,
                  v1+: [(string topic, [int32 partition])] owned partitions,
                  v2+: int32 generation, v3+: nullable string rack (read, not kept)
    Assignment    int16 version, [(string topic, [int32 partition])],
                  nullable bytes user_data

Readers parse the fields of the versions they know and ignore anything after them,
so a newer client's bytes still decode.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from runtime.protocol.errors import ProtocolError
from runtime.protocol.primitives import Buffer, Reader, Writer
from runtime.types import TopicPartition

SUBSCRIPTION_VERSION = 1
ASSIGNMENT_VERSION = 0


@dataclass(frozen=True, slots=True)
class Subscription:
    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned_partitions: tuple[TopicPartition, ...] = ()
    version: int = SUBSCRIPTION_VERSION


@dataclass(frozen=True, slots=True)
class Assignment:
    partitions: tuple[TopicPartition, ...] = ()
    user_data: bytes | None = None
    version: int = ASSIGNMENT_VERSION


def _write_partitions(w: Writer, tps: Iterable[TopicPartition]) -> None:
    by_topic = [
        (topic, [tp.partition for tp in group])
        for topic, group in itertools.groupby(sorted(set(tps)), key=lambda tp: tp.topic)
    ]
    w.int32(len(by_topic))
    for topic, partitions in by_topic:
        w.string(topic)
        w.int32(len(partitions))
        for p in partitions:
            w.int32(p)


def _read_partitions(r: Reader) -> tuple[TopicPartition, ...]:
    out = []
    for _ in range(max(r.array_length(), 0)):
        topic = r.string()
        out += [TopicPartition(topic, r.int32()) for _ in range(max(r.array_length(), 0))]
    return tuple(out)


def encode_subscription(s: Subscription) -> bytes:
    w = Writer()
    w.int16(s.version)
    w.int32(len(s.topics))
    for topic in s.topics:
        w.string(topic)
    w.nullable_bytes(s.user_data)
    if s.version >= 1:
        _write_partitions(w, s.owned_partitions)
    return w.getvalue()


def decode_subscription(data: Buffer) -> Subscription:
    try:
        r = Reader(data)
        version = r.int16()
        topics = tuple(r.string() for _ in range(max(r.array_length(), 0)))
        user_data = r.nullable_bytes()
        owned: tuple[TopicPartition, ...] = ()
        if version >= 1 and r.remaining():
            owned = _read_partitions(r)
    except (ProtocolError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed consumer subscription: {exc}") from None
    return Subscription(topics, user_data, owned, version)


def encode_assignment(a: Assignment) -> bytes:
    w = Writer()
    w.int16(a.version)
    _write_partitions(w, a.partitions)
    w.nullable_bytes(a.user_data)
    return w.getvalue()


def decode_assignment(data: Buffer) -> Assignment:
    """An Assignment; empty bytes (a member the leader gave nothing) decode as none."""
    if not data:
        return Assignment()
    try:
        r = Reader(data)
        version = r.int16()
        partitions = _read_partitions(r)
        user_data = r.nullable_bytes() if r.remaining() else None
    except (ProtocolError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed consumer assignment: {exc}") from None
    return Assignment(partitions, user_data, version)
