"""The classic consumer-group coordinator, as asyncio calls independent of the wire.

A server decodes JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
OffsetFetch, ListGroups, DescribeGroups, DeleteGroups or OffsetDelete, awaits the
matching method here (the last four: group_admin.py) and encodes the plain result;
every result carries a Kafka `error_code` (runtime.broker.errors.ErrorCode).

Membership lives in memory: after a broker restart clients find their member ids
unknown and rejoin, as they do when a coordinator moves. Committed offsets go
through OffsetStore into __consumer_offsets and survive, and so does each group's
protocol type (written when a generation first completes with a new one), so an
Empty group still lists as a "consumer" group after a restart.

Waiting: join() parks a future on the member until the rebalance ends (every member
rejoined, or the rebalance timeout passed); sync() parks one until the leader's
assignment arrives. Time: expire_sessions() applies session timeouts, rebalance
timeouts and the initial rebalance delay by the injected clock; a background task
calls it every expiry_interval_ms, tests call it after advancing a manual clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from runtime.broker.errors import ErrorCode
from runtime.broker.group_admin import (
    GroupAdministration,
    Lifecycle,
)
from runtime.broker.groups import Group, GroupState, JoinResult, Member, SyncResult
from runtime.errors import RecordTooLargeError, StorageError, StreamsRuntimeError
from runtime.log.group_metadata import GroupMetadata
from runtime.log.offsets import Commit, OffsetStore
from runtime.logs import RateLimitedLog
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

NO_COMMIT = Commit(-1, "")

NO_GENERATION = -1


class LeftMember(NamedTuple):
    member_id: str
    group_instance_id: str | None
    error_code: int


@dataclass(frozen=True, slots=True)
class LeaveResult:
    """LeaveGroup v3+ answers per member; v0-2 carry the one member's code at the top."""

    error_code: int
    members: tuple[LeftMember, ...] = ()


class GroupCoordinator(GroupAdministration):
    """Consumer groups of one broker: membership in memory, offsets in an OffsetStore."""

    def __init__(
        self,
        offsets: OffsetStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        initial_rebalance_delay_ms: int = 0,
        min_session_timeout_ms: int = 6000,
        max_session_timeout_ms: int = 1_800_000,
        offset_metadata_max_bytes: int = 4096,
        expiry_interval_ms: int = 100,
        partition_exists: Callable[[TopicPartition], bool] | None = None,
    ) -> None:
        if not 0 <= min_session_timeout_ms <= max_session_timeout_ms:
            raise ValueError(
                f"session timeouts: need 0 <= min ({min_session_timeout_ms}) "
                f"<= max ({max_session_timeout_ms})"
            )
        for name, value in (
            ("initial_rebalance_delay_ms", initial_rebalance_delay_ms),
            ("offset_metadata_max_bytes", offset_metadata_max_bytes),
            ("expiry_interval_ms", expiry_interval_ms),
        ):
            if value < 0:
                raise ValueError(f"{name} is {value}, must be >= 0")
        self._offsets = offsets
        self._clock = clock
        self._initial_delay_s = initial_rebalance_delay_ms / 1000
        self._session_timeout_range_ms = (min_session_timeout_ms, max_session_timeout_ms)
        self._metadata_max_bytes = offset_metadata_max_bytes
        self._expiry_interval_s = expiry_interval_ms / 1000
        self._partition_exists = partition_exists
        self._storage_errors = RateLimitedLog(logger)
        self._groups: dict[str, Group] = {}
        self._commit_lock = asyncio.Lock()
        self._lifecycle = Lifecycle.UNOPENED
        self._expiry_task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        if self._lifecycle is not Lifecycle.UNOPENED:
            raise RuntimeError(f"group coordinator is {self._lifecycle.value}: cannot start it")
        self._lifecycle = Lifecycle.RUNNING
        self._expiry_task = asyncio.create_task(self._expire_forever(), name="group-expiry")
        logger.info("group coordinator started")

    async def stop(self) -> None:
        """Answers parked joins and syncs with COORDINATOR_NOT_AVAILABLE; idempotent."""
        if self._lifecycle is Lifecycle.CLOSED:
            return
        self._lifecycle = Lifecycle.CLOSED
        for group in self._groups.values():
            group.fail_all(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        self._groups.clear()
        task, self._expiry_task = self._expiry_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            crash = None if task.cancelled() else task.exception()
            if crash is not None:
                raise crash
        logger.info("group coordinator stopped")

    async def __aenter__(self) -> GroupCoordinator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(self._expiry_interval_s)
            self.expire_sessions()

    def expire_sessions(self) -> None:
        """Removes members past their session timeout, ends overdue rebalances and forgets
        empty groups (their committed offsets stay in the OffsetStore)."""
        now = self._clock()
        for group_id, group in list(self._groups.items()):
            group.expire(now)
            if group.state is GroupState.EMPTY and not group.pending:
                del self._groups[group_id]

    # --- membership ------------------------------------------------------------

    async def join(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        client_id: str,
        client_host: str,
        *,
        require_known_member_id: bool,
    ) -> JoinResult:
        """JoinGroup. v4+ clients pass require_known_member_id=True: an empty member id
        then gets MEMBER_ID_REQUIRED with an id to rejoin with."""
        error = self._check_join(group_id, session_timeout_ms)
        if error is not None:
            return JoinResult(error, member_id=member_id)
        group = self._groups.get(group_id) or Group(group_id)
        known = group.static.get(group_instance_id) if group_instance_id is not None else None
        if known is not None and member_id and member_id != known:
            return JoinResult(ErrorCode.FENCED_INSTANCE_ID, member_id=member_id)
        if member_id and member_id not in group.members and member_id not in group.pending:
            return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id=member_id)
        if not group.supports(protocol_type, [name for name, _ in protocols], member_id or known):
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id=member_id)
        now = self._clock()
        if known is not None and not member_id:  # a static member that restarted
            member_id = f"{client_id}-{uuid.uuid4()}"
            unchanged = group.members[known].protocols == list(protocols)
            stable = group.state is GroupState.STABLE and unchanged
            leader_before = group.leader_id or ""
            member = group.replace_static(group_instance_id or "", member_id)
            if stable:
                # KIP-345: it gets its assignment back and nobody rebalances. The
                # leader id answered is the old one, so that a restarted leader acts
                # as a follower: a Stable group would not pass on a new assignment.
                member.session_timeout_ms = session_timeout_ms
                member.rebalance_timeout_ms = rebalance_timeout_ms
                member.client_id, member.client_host = client_id, client_host
                member.last_heartbeat_s = now
                return JoinResult(
                    ErrorCode.NONE,
                    group.generation_id,
                    group.protocol_type,
                    group.protocol_name,
                    leader_before,
                    member_id,
                )
        if not member_id:
            member_id = f"{client_id}-{uuid.uuid4()}"
            if require_known_member_id and group_instance_id is None:
                group.pending[member_id] = now + session_timeout_ms / 1000
                self._groups[group_id] = group
                return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id=member_id)
        joining = Member(
            member_id,
            group_instance_id,
            client_id,
            client_host,
            session_timeout_ms,
            rebalance_timeout_ms,
            list(protocols),
            now,
        )
        waiter = joining.join_waiter = asyncio.get_running_loop().create_future()
        self._groups[group_id] = group
        group.join(joining, protocol_type, now, self._initial_delay_s)
        result = await waiter
        if result.error_code == ErrorCode.NONE:
            await self._record_group(group_id, result)
        return result

    async def _record_group(self, group_id: str, joined: JoinResult) -> None:
        """Persists the group's protocol type when it is new; a failure to write it
        costs only how an Empty group lists after a restart, so the join stands."""
        async with self._commit_lock:
            known = self._offsets.metadata(group_id)
            if not joined.protocol_type or (
                known is not None and known.protocol_type == joined.protocol_type
            ):
                return
            meta = GroupMetadata(
                joined.protocol_type, joined.generation_id, joined.protocol_name, joined.leader_id
            )
            try:
                await asyncio.to_thread(self._offsets.record_group, group_id, meta)
            except (OSError, StreamsRuntimeError) as exc:
                logger.warning("group metadata not written group=%s error=%r", group_id, exc)

    def _check_join(self, group_id: str, session_timeout_ms: int) -> ErrorCode | None:
        low_ms, high_ms = self._session_timeout_range_ms
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        if self._lifecycle is not Lifecycle.RUNNING:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if not low_ms <= session_timeout_ms <= high_ms:
            return ErrorCode.INVALID_SESSION_TIMEOUT
        return None

    async def sync(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        assignments: dict[str, bytes],
        *,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
        instance_id: str | None = None,
    ) -> SyncResult:
        """SyncGroup: the leader passes the assignment of every member; each member,
        leader included, gets its own bytes back unchanged (b"" if the leader left it out).
        protocol_type and protocol_name are SyncGroup v5's optional checks."""
        found = self._find_member(group_id, generation_id, member_id, instance_id)
        if not isinstance(found, tuple):
            return SyncResult(found)
        group, member = found
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
            protocol_name is not None and protocol_name != group.protocol_name
        ):
            return SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if group.state is GroupState.PREPARING_REBALANCE:
            return SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
        waiter: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        group.sync(member, waiter, assignments, self._clock())
        return await waiter

    async def heartbeat(
        self, group_id: str, generation_id: int, member_id: str, instance_id: str | None = None
    ) -> int:
        """Heartbeat: REBALANCE_IN_PROGRESS tells a member of the generation to rejoin;
        FENCED_INSTANCE_ID one whose static instance a newer member took over."""
        found = self._find_member(group_id, generation_id, member_id, instance_id)
        if not isinstance(found, tuple):
            return found
        group, member = found
        member.last_heartbeat_s = self._clock()
        if group.state is GroupState.PREPARING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def _find_member(
        self, group_id: str, generation_id: int, member_id: str, instance_id: str | None = None
    ) -> tuple[Group, Member] | ErrorCode:
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        if self._lifecycle is not Lifecycle.RUNNING:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        group = self._groups.get(group_id)
        if group is not None and instance_id is not None:
            holder = group.static.get(instance_id)
            if holder is not None and holder != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
        member = group.members.get(member_id) if group is not None else None
        if group is None or member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        return group, member

    async def leave(self, group_id: str, members: list[tuple[str, str | None]]) -> LeaveResult:
        """LeaveGroup for (member_id, group_instance_id) pairs; a static member may be
        named by its instance id alone. The remaining members rebalance."""
        if not group_id:
            return LeaveResult(ErrorCode.INVALID_GROUP_ID)
        if self._lifecycle is not Lifecycle.RUNNING:
            return LeaveResult(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        group = self._groups.get(group_id)
        left = tuple(
            LeftMember(member_id, instance_id, self._leave_one(group, member_id, instance_id))
            for member_id, instance_id in members
        )
        return LeaveResult(ErrorCode.NONE, left)

    def _leave_one(self, group: Group | None, member_id: str, instance_id: str | None) -> int:
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if instance_id is not None:
            known = group.static.get(instance_id)
            if known is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if member_id and member_id != known:
                return ErrorCode.FENCED_INSTANCE_ID
            member_id = known
        if member_id in group.pending:
            group.remove_pending(member_id, self._clock())
        elif member_id in group.members:
            group.remove(member_id, self._clock(), "left the group")
        else:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return ErrorCode.NONE

    # --- offsets ---------------------------------------------------------------

    async def commit_offsets(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        offsets: dict[TopicPartition, tuple[int, str | None] | tuple[int, str | None, int]],
    ) -> dict[TopicPartition, int]:
        """OffsetCommit. Generation -1 with an empty member id commits for a group that
        has no members (a consumer that assigns partitions itself, or an admin)."""
        error = self._check_commit(group_id, generation_id, member_id)
        if error is not None:
            return dict.fromkeys(offsets, error)
        results: dict[TopicPartition, int] = {}
        accepted: dict[TopicPartition, Commit] = {}
        for tp, (offset, metadata, *epoch) in offsets.items():  # epoch: the leader's, if given
            metadata = metadata or ""
            if len(metadata.encode()) > self._metadata_max_bytes:
                results[tp] = ErrorCode.OFFSET_METADATA_TOO_LARGE
            elif self._partition_exists is not None and not self._partition_exists(tp):
                results[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else:
                accepted[tp] = Commit(offset, metadata, *epoch)
        if accepted:
            results.update(dict.fromkeys(accepted, await self._store(group_id, accepted)))
        return results

    def check_member(
        self, group_id: str, generation_id: int, member_id: str, instance_id: str | None = None
    ) -> int | None:
        """None if this member of this generation may commit offsets (TxnOffsetCommit
        v3+ names them, KIP-447), else the error code that fences it."""
        return self._check_commit(group_id, generation_id, member_id)

    def _check_commit(self, group_id: str, generation_id: int, member_id: str) -> int | None:
        if self._lifecycle is not Lifecycle.RUNNING:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        group = self._groups.get(group_id)
        if group is None:
            return None if generation_id < 0 else ErrorCode.ILLEGAL_GENERATION
        if generation_id < 0 and group.state is GroupState.EMPTY:
            return None
        if generation_id < 0 and not member_id:
            return ErrorCode.UNKNOWN_MEMBER_ID  # a group with members takes only their commits
        found = self._find_member(group_id, generation_id, member_id)
        if not isinstance(found, tuple):
            return found
        group, member = found
        if group.state is GroupState.COMPLETING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        member.last_heartbeat_s = self._clock()
        return None

    async def _store(self, group_id: str, offsets: dict[TopicPartition, Commit]) -> int:
        """Appends one commit batch; the lock keeps commits in the order they were made."""
        try:
            async with self._commit_lock:
                await asyncio.to_thread(self._offsets.commit, group_id, offsets)
        except RecordTooLargeError:
            return ErrorCode.INVALID_COMMIT_OFFSET_SIZE
        except StorageError as exc:
            # Kafka's coordinator answers a storage error so: clients find the
            # coordinator again and retry the commit
            self._storage_errors.warning(
                ("commit", exc.errno), "offset commit failed group=%s error=%s", group_id, exc
            )
            return ErrorCode.NOT_COORDINATOR
        except (OSError, StreamsRuntimeError) as exc:
            logger.warning("offset commit failed group=%s error=%r", group_id, exc)
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        return ErrorCode.NONE

    async def fetch_offsets(
        self, group_id: str, tps: list[TopicPartition] | None = None
    ) -> dict[TopicPartition, Commit]:
        """OffsetFetch: Commit(-1, "") for a requested partition with no commit; None asks
        for all."""
        commits = self._offsets.fetch(group_id)
        if tps is None:
            return commits
        return {tp: commits.get(tp, NO_COMMIT) for tp in tps}
