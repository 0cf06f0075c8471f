"""Membership of a classic consumer group (JoinGroup / SyncGroup / Heartbeat).

    async with GroupMember(cluster, "billing", ["orders"], on_assign=..., on_revoke=...) as m:
        ...  # m.assignment.partitions are ours until on_revoke is awaited

A background task keeps the membership: it finds the coordinator, joins (v4+:
rejoining at once with the member id a MEMBER_ID_REQUIRED answer hands out), runs
the assignor over every member's subscription when it is the leader, syncs, awaits
on_assign(assignment), then heartbeats every `heartbeat_interval_ms`. When a
heartbeat or a commit says REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or
UNKNOWN_MEMBER_ID (or no heartbeat got through for a session timeout), it awaits
on_revoke(assignment) and joins again (eager rebalancing: everything is revoked,
then everything is assigned anew).

Invariants:
- on_assign and on_revoke alternate, starting with on_assign; after close() the
  last assignment has been revoked;
- heartbeats run while on_assign runs (a slow one does not expire the session)
  and stop before on_revoke; on_revoke, once begun, runs to its end (close()
  waits for it);
- membership requests go over a connection of this member's own (a JoinGroup
  waiting for the rebalance holds up nobody else); commits and LeaveGroup use
  the cluster's default one;
- an error no rejoin can mend (an inconsistent protocol, an invalid session
  timeout, authorization) ends the task: start() or wait_closed() raise it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from runtime.client.assignors import Assignor, RangeAssignor
from runtime.client.cluster import DEFAULT_LANE, Cluster, backoff_s
from runtime.client.consumer_protocol import (
    Assignment,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from runtime.client.errors import (
    COORDINATOR_CODES,
    REJOIN_CODES,
    ClientClosedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)
from runtime.client.offsets import commit_offsets, fetch_committed
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.protocol.errors import ProtocolError
from runtime.types import TopicPartition

logger = logging.getLogger(__name__)

PROTOCOL_TYPE = "consumer"
Callback = Callable[[Assignment], Awaitable[None]]
_lanes = itertools.count(1)
_RETRY_JOIN_CODES = frozenset(
    {
        *COORDINATOR_CODES,
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode.REBALANCE_IN_PROGRESS,
        ErrorCode.ILLEGAL_GENERATION,
    }
)
_TRANSIENT = (KafkaConnectionError, KafkaTimeoutError)
SYNC_REFUSALS_MAX = 20


@dataclass(frozen=True, slots=True)
class ConsumerGroupMetadata:
    """Who commits consumed offsets through a transaction (TxnOffsetCommit v3,
    KIP-447): the coordinator refuses the commit of a member a rebalance has
    replaced. Generation -1 and no member id commit without that check."""

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None


class GroupMember:
    """One member of a consumer group; an async context manager."""

    def __init__(
        self,
        cluster: Cluster,
        group_id: str,
        topics: Iterable[str],
        assignor: Assignor | None = None,
        *,
        session_timeout_ms: int = 10_000,
        rebalance_timeout_ms: int = 30_000,
        heartbeat_interval_ms: int = 1_000,
        on_assign: Callback | None = None,
        on_revoke: Callback | None = None,
    ) -> None:
        if not 0 < heartbeat_interval_ms < session_timeout_ms:
            raise ValueError("need 0 < heartbeat_interval_ms < session_timeout_ms")
        self._cluster = cluster
        self.group_id = group_id
        self.topics = tuple(sorted(set(topics)))
        self._assignor: Assignor = assignor or RangeAssignor()
        self._session_timeout_ms = session_timeout_ms
        self._rebalance_timeout_ms = rebalance_timeout_ms
        self._heartbeat_s = heartbeat_interval_ms / 1000
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._lane = f"group-{next(_lanes)}"
        self.member_id = ""
        self.generation = -1
        self.leader_id = ""
        self.assignment: Assignment | None = None  # set while assigned
        self._rejoin = asyncio.Event()
        self._assigned = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fatal: KafkaError | None = None
        self._sync_refusals = 0  # SyncGroups refused as late in a row
        self._closed = False

    @property
    def is_leader(self) -> bool:
        return bool(self.member_id) and self.member_id == self.leader_id

    async def __aenter__(self) -> GroupMember:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Join the group; returns once the first assignment was handed to on_assign."""
        if self._task is not None:
            raise RuntimeError("the group member was started before")
        self._task = asyncio.create_task(self._run(), name=f"group-{self.group_id}")
        assigned = asyncio.create_task(self._assigned.wait())
        try:
            await asyncio.wait([self._task, assigned], return_when=asyncio.FIRST_COMPLETED)
        finally:
            assigned.cancel()
        if self._task.done():
            await self._task  # raises what ended it
            raise ClientClosedError(f"group member of {self.group_id!r} stopped")

    def request_rejoin(self) -> None:
        """Revoke and rejoin (for instance when the subscribed topics changed)."""
        self._rejoin.set()

    async def close(self, *, leave: bool = True) -> None:
        """Stop (idempotent): revoke the assignment and, with `leave`, send LeaveGroup
        so the group rebalances at once; without, the coordinator expires this
        member after its session timeout."""
        if self._closed:
            return
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            await asyncio.wait([task])
        try:
            if self.assignment is not None:
                await self._revoke()
        finally:
            if leave and self.member_id:
                await self._leave()

    async def wait_closed(self) -> None:
        """Wait until the membership task ends; raise the error that ended it."""
        if self._task is not None:
            await self._task

    # --- offsets -----------------------------------------------------------------

    async def commit(self, offsets: Mapping[TopicPartition, int], metadata: str = "") -> None:
        """Commit offsets as this member of its current generation. On
        REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID it starts
        a rejoin and raises the KafkaError."""
        try:
            await commit_offsets(
                self._cluster,
                self.group_id,
                offsets,
                generation=self.generation,
                member_id=self.member_id,
                metadata=metadata,
            )
        except KafkaError as exc:
            if exc.code in REJOIN_CODES:
                self._need_rejoin(exc.code)
            raise

    def group_metadata(self) -> ConsumerGroupMetadata:
        """This member as of its current generation, for send_offsets_to_transaction."""
        return ConsumerGroupMetadata(self.group_id, self.generation, self.member_id)

    async def committed(
        self, tps: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        committed = await fetch_committed(self._cluster, self.group_id, tps)
        return {tp: offset for tp, (offset, _) in committed.items()}

    def _need_rejoin(self, code: int) -> None:
        if code == ErrorCode.UNKNOWN_MEMBER_ID:
            self.member_id = ""
            self.generation = -1
        self._rejoin.set()

    # --- the membership loop -----------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._rejoin.clear()
            await self._join_and_sync()
            heartbeats = asyncio.create_task(self._heartbeats(self.generation))
            try:
                assert self.assignment is not None
                if self._on_assign is not None:
                    await self._on_assign(self.assignment)
                self._assigned.set()
                await self._rejoin.wait()
            finally:
                heartbeats.cancel()
                await asyncio.wait([heartbeats])
            await self._revoke()
            if self._fatal is not None:
                raise self._fatal

    async def _revoke(self) -> None:
        """on_revoke runs to its end even when close() cancels the membership
        task in the middle of it: cut short, the partitions it gives up would
        keep progress that is neither committed nor revoked again."""
        assignment, self.assignment = self.assignment, None
        if assignment is None or self._on_revoke is None:
            return
        revoke = asyncio.ensure_future(self._on_revoke(assignment))
        try:
            await asyncio.shield(revoke)
        except asyncio.CancelledError:
            await asyncio.wait([revoke])
            if not revoke.cancelled():
                revoke.exception()  # cancelled ourselves: its error is not ours to raise
            raise

    async def _join_and_sync(self) -> None:
        for attempt in itertools.count():
            if attempt:
                await asyncio.sleep(
                    backoff_s(
                        attempt - 1,
                        self._cluster.retry_backoff_s,
                        self._cluster.retry_backoff_max_s,
                    )
                )
            try:
                node = await self._cluster.coordinator(self.group_id)
                conn = await self._cluster.connection(node, self._lane)
                join = await conn.request(
                    ApiKey.JOIN_GROUP,
                    self._join_body(),
                    timeout_s=self._rebalance_timeout_ms / 1000 + 5,
                )
                code = join["error_code"]
                if code == ErrorCode.MEMBER_ID_REQUIRED:
                    self.member_id = join["member_id"]
                    continue
                if code != ErrorCode.NONE:
                    self._on_group_error(code, "JoinGroup")
                    continue
                self.member_id = join["member_id"]
                self.generation = join["generation_id"]
                self.leader_id = join["leader"]
                assignments: dict[str, bytes] = {}
                if self.is_leader:
                    assignments = await self._assign(join["protocol_name"], join["members"])
                sync = await conn.request(
                    ApiKey.SYNC_GROUP,
                    {
                        "group_id": self.group_id,
                        "generation_id": self.generation,
                        "member_id": self.member_id,
                        "group_instance_id": None,
                        "assignments": [
                            {"member_id": m, "assignment": a} for m, a in assignments.items()
                        ],
                    },
                    timeout_s=self._rebalance_timeout_ms / 1000 + 5,
                )
                code = sync["error_code"]
                if code != ErrorCode.NONE:
                    self._on_group_error(code, "SyncGroup")
                    continue
                self._sync_refusals = 0
                self.assignment = decode_assignment(bytes(sync["assignment"] or b""))
                logger.info(
                    "group=%s member=%s generation=%d leader=%s assigned=%s",
                    self.group_id,
                    self.member_id,
                    self.generation,
                    self.is_leader,
                    ",".join(str(tp) for tp in self.assignment.partitions),
                )
                return
            except _TRANSIENT as exc:
                logger.debug("group=%s join failed error=%s", self.group_id, exc)
                self._cluster.forget_coordinator(self.group_id)

    def _join_body(self) -> dict:
        owned = () if self.assignment is None else self.assignment.partitions
        subscription = Subscription(self.topics, self._assignor.metadata(self.topics), owned)
        return {
            "group_id": self.group_id,
            "session_timeout_ms": self._session_timeout_ms,
            "rebalance_timeout_ms": self._rebalance_timeout_ms,
            "member_id": self.member_id,
            "group_instance_id": None,
            "protocol_type": PROTOCOL_TYPE,
            "protocols": [
                {"name": self._assignor.name, "metadata": encode_subscription(subscription)}
            ],
        }

    def _on_group_error(self, code: int, what: str) -> None:
        """Mend what a rejoin can mend; raise the rest."""
        if code == ErrorCode.INVALID_REQUEST and what == "SyncGroup":
            # librdkafka's mock cluster ends a sync once the leader's assignments
            # are in, and refuses a follower's SyncGroup that comes after: join
            # again (a broker that refuses every SyncGroup still fails us)
            self._sync_refusals += 1
            if self._sync_refusals > SYNC_REFUSALS_MAX:
                raise KafkaError(code, f"{what} of group {self.group_id!r}")
            logger.info("group=%s SyncGroup refused as late: joining again", self.group_id)
            return
        if code == ErrorCode.UNKNOWN_MEMBER_ID:
            self.member_id, self.generation = "", -1
        elif code in COORDINATOR_CODES:
            self._cluster.forget_coordinator(self.group_id)
        elif code not in _RETRY_JOIN_CODES:
            raise KafkaError(code, f"{what} of group {self.group_id!r}")
        logger.debug("group=%s %s error=%s: joining again", self.group_id, what, code)

    async def _assign(self, protocol: str, members: Sequence[dict]) -> dict[str, bytes]:
        if protocol != self._assignor.name:
            raise KafkaError(
                ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
                f"group {self.group_id!r} chose assignor {protocol!r}, "
                f"we lead with {self._assignor.name!r}",
            )
        subscriptions: dict[str, Subscription] = {}
        for m in members:
            try:
                subscriptions[m["member_id"]] = decode_subscription(bytes(m["metadata"]))
            except ProtocolError as exc:
                logger.warning("group=%s member=%s: %s", self.group_id, m["member_id"], exc)
                subscriptions[m["member_id"]] = Subscription(())
        topics = sorted({t for s in subscriptions.values() for t in s.topics})
        if topics:
            await self._cluster.refresh(topics, allow_auto_create=False)
        metadata = {t: p for t in topics if (p := self._cluster.partitions(t)) is not None}
        assigned = self._assignor.assign(metadata, subscriptions)
        return {
            member: encode_assignment(assigned.get(member, Assignment()))
            for member in subscriptions
        }

    async def _heartbeats(self, generation: int) -> None:
        """Heartbeat until the coordinator asks for a rejoin, then set _rejoin
        (with _fatal set for an error no rejoin mends)."""
        try:
            await self._heartbeat_until_rejoin(generation)
        except KafkaError as exc:
            self._fatal = exc
            self._rejoin.set()

    async def _heartbeat_until_rejoin(self, generation: int) -> None:
        loop = asyncio.get_running_loop()
        last_ok = loop.time()
        session_s = self._session_timeout_ms / 1000
        body = {
            "group_id": self.group_id,
            "generation_id": generation,
            "member_id": self.member_id,
            "group_instance_id": None,
        }
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                node = await self._cluster.coordinator(self.group_id)
                conn = await self._cluster.connection(node, self._lane)
                answer = await conn.request(ApiKey.HEARTBEAT, body, timeout_s=session_s)
                code = answer["error_code"]
            except (*_TRANSIENT, KafkaError) as exc:
                if isinstance(exc, KafkaError) and not exc.retriable:
                    raise
                code = ErrorCode.COORDINATOR_NOT_AVAILABLE
            if code == ErrorCode.NONE:
                last_ok = loop.time()
            elif code in REJOIN_CODES:
                logger.info("group=%s heartbeat error=%s: rejoining", self.group_id, code)
                self._need_rejoin(code)
                return
            elif code in COORDINATOR_CODES:
                self._cluster.forget_coordinator(self.group_id)
                if loop.time() - last_ok > session_s:
                    logger.warning("group=%s: no heartbeat for a session: rejoining", self.group_id)
                    self._need_rejoin(ErrorCode.UNKNOWN_MEMBER_ID)
                    return
            else:
                raise KafkaError(code, f"Heartbeat of group {self.group_id!r}")

    async def _leave(self) -> None:
        body = {
            "group_id": self.group_id,
            "member_id": self.member_id,
            "members": [{"member_id": self.member_id, "group_instance_id": None}],
        }
        with contextlib.suppress(*_TRANSIENT, KafkaError, TimeoutError):
            async with asyncio.timeout(self._cluster.request_timeout_s):
                node = await self._cluster.coordinator(self.group_id)
                await self._cluster.request(node, ApiKey.LEAVE_GROUP, body, lane=DEFAULT_LANE)
                logger.info("group=%s member=%s left", self.group_id, self.member_id)
        self.member_id, self.generation = "", -1
