"""Administration of consumer groups: listing, describing, deleting groups and
their commits (ListGroups, DescribeGroups, DeleteGroups, OffsetDelete).

GroupAdministration is the part of the GroupCoordinator (coordinator.py) that
answers these; it reads the coordinator's groups and offset store and writes
tombstones through the store, under the coordinator's commit lock.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from runtime.broker.errors import ErrorCode
from runtime.broker.groups import Group, GroupState, subscribed_topics
from runtime.errors import StorageError, StreamsRuntimeError
from runtime.log.offsets import OffsetStore
from runtime.logs import RateLimitedLog
from runtime.types import TopicPartition

logger = logging.getLogger("runtime.broker.coordinator")


class Lifecycle(enum.Enum):
    UNOPENED = "unopened"
    RUNNING = "running"
    CLOSED = "closed"


class GroupListing(NamedTuple):
    group_id: str
    protocol_type: str
    state: str


class MemberDescription(NamedTuple):
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    error_code: int
    group_id: str
    state: str
    protocol_type: str = ""
    protocol_name: str = ""
    members: tuple[MemberDescription, ...] = ()


class GroupAdministration:
    """The coordinator's state these answers read (set by GroupCoordinator)."""

    _groups: dict[str, Group]
    _offsets: OffsetStore
    _lifecycle: Lifecycle
    _commit_lock: asyncio.Lock
    _storage_errors: RateLimitedLog
    _clock: Callable[[], float]

    def _expire_due(self, group_ids: Iterable[str]) -> None:
        now = self._clock()
        for group_id in group_ids:
            group = self._groups.get(group_id)
            if group is not None:
                group.expire(now)

    # --- administration --------------------------------------------------------
    # Each answer first applies the session timeouts that have run out: the
    # background expiry runs only every expiry interval, and a tool that waits out
    # a member's session and then deletes or describes its group (as librdkafka's
    # admin tests do, to the millisecond) must find it Empty, as Kafka's timers would.

    def list_groups(self) -> list[GroupListing]:
        """Groups with members or pending ids, and Empty groups known by their offsets
        (with the protocol type last recorded for them)."""
        self._expire_due(list(self._groups))
        listings = {
            group_id: GroupListing(group_id, group.protocol_type or "", group.state.value)
            for group_id, group in self._groups.items()
        }
        for group_id in self._offsets.groups():
            protocol_type = self._known_protocol_type(group_id)
            listings.setdefault(
                group_id, GroupListing(group_id, protocol_type, GroupState.EMPTY.value)
            )
        return sorted(listings.values())

    def _known_protocol_type(self, group_id: str) -> str:
        meta = self._offsets.metadata(group_id)
        return meta.protocol_type if meta is not None else ""

    def describe_group(self, group_id: str) -> GroupDescription:
        """DescribeGroups; an unknown group is Dead (v6+ servers answer GROUP_ID_NOT_FOUND).
        Metadata, assignments and the protocol are shown only while Stable, as in Kafka."""
        if self._lifecycle is not Lifecycle.RUNNING:
            return GroupDescription(
                ErrorCode.COORDINATOR_NOT_AVAILABLE, group_id, GroupState.DEAD.value
            )
        self._expire_due([group_id])
        group = self._groups.get(group_id)
        if group is None:
            known = bool(self._offsets.fetch(group_id))
            state = GroupState.EMPTY if known else GroupState.DEAD
            protocol_type = self._known_protocol_type(group_id) if known else ""
            return GroupDescription(ErrorCode.NONE, group_id, state.value, protocol_type)
        stable = group.state is GroupState.STABLE
        members = tuple(
            MemberDescription(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                m.metadata(group.protocol_name) if stable else b"",
                m.assignment if stable else b"",
            )
            for m in group.members.values()
        )
        protocol_name = (group.protocol_name or "") if stable else ""
        return GroupDescription(
            ErrorCode.NONE,
            group_id,
            group.state.value,
            group.protocol_type or "",
            protocol_name,
            members,
        )

    async def delete_groups(self, group_ids: list[str]) -> dict[str, int]:
        """DeleteGroups: an Empty group loses its committed offsets (tombstones)."""
        results: dict[str, int] = {}
        for group_id in group_ids:
            results[group_id] = await self._delete_group(group_id)
        return results

    async def delete_offsets(
        self, group_id: str, tps: list[TopicPartition]
    ) -> tuple[int, dict[TopicPartition, int]]:
        """OffsetDelete: (group error, per-partition errors). A partition of a topic
        the group's members subscribe to keeps its commit (GROUP_SUBSCRIBED_TO_TOPIC)."""
        if self._lifecycle is not Lifecycle.RUNNING:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, {}
        self._expire_due([group_id])
        group = self._groups.get(group_id)
        if group is None and not self._offsets.fetch(group_id):
            return ErrorCode.GROUP_ID_NOT_FOUND, {}
        if group is not None and group.members and group.protocol_type != "consumer":
            return ErrorCode.NON_EMPTY_GROUP, {}
        subscribed = subscribed_topics(group) if group is not None else set()
        results = {
            tp: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC if tp.topic in subscribed else ErrorCode.NONE
            for tp in tps
        }
        doomed = [tp for tp, code in results.items() if code == ErrorCode.NONE]
        try:
            async with self._commit_lock:
                await asyncio.to_thread(self._offsets.delete_offsets, group_id, doomed)
        except (OSError, StreamsRuntimeError) as exc:
            logger.warning("offset delete failed group=%s error=%r", group_id, exc)
            return ErrorCode.NOT_COORDINATOR, {}
        return ErrorCode.NONE, results

    async def _delete_group(self, group_id: str) -> int:
        if self._lifecycle is not Lifecycle.RUNNING:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        self._expire_due([group_id])
        group = self._groups.get(group_id)
        if group is not None and (group.members or group.pending):
            return ErrorCode.NON_EMPTY_GROUP
        if group is None and not self._offsets.fetch(group_id):
            return ErrorCode.GROUP_ID_NOT_FOUND
        self._groups.pop(group_id, None)
        try:
            async with self._commit_lock:
                await asyncio.to_thread(self._offsets.delete_group, group_id)
        except StorageError as exc:
            self._storage_errors.warning(
                ("delete", exc.errno), "group delete failed group=%s error=%s", group_id, exc
            )
            return ErrorCode.NOT_COORDINATOR
        except (OSError, StreamsRuntimeError) as exc:
            logger.warning("group delete failed group=%s error=%r", group_id, exc)
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        logger.info("group deleted group=%s", group_id)
        return ErrorCode.NONE
