"""The state machine of one classic consumer group, and the results it hands out.

States (Kafka's names) and what moves a group between them:

    Empty ──a member joins──► PreparingRebalance ◄──join, leave, session expiry── Stable
                                 │        ▲                                         ▲
      every member rejoined, or  │        └──join, leave, expiry── CompletingRebalance
      the rebalance timeout      └──────────────────────────────────►│  the leader's sync
      (no member left: ──► Empty)                                     └─────────────┘
    Dead: a deleted group; nothing reaches it again.

Invariants:
- generation_id grows by one at the end of every rebalance, also one that empties the group.
- A member id is in `members` or in `pending` (handed out with MEMBER_ID_REQUIRED and
  not yet joined with), never in both.
- In PreparingRebalance a member whose join_waiter is set has rejoined; the rebalance
  completes once all members have rejoined, no pending id is outstanding and the
  initial delay has passed, or at rebalance_deadline_s, dropping those that did not.
- In CompletingRebalance and Stable, protocol_name is listed by every member and
  leader_id names a member. Only PreparingRebalance holds join waiters and only
  CompletingRebalance holds sync waiters.
- Every member joined with a protocol list that intersects all other members' lists,
  so the members always have a protocol in common.
- Times are the coordinator's clock, in seconds; timeouts stay in ms as the protocol sends them.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import struct
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from runtime.broker.errors import ErrorCode

logger = logging.getLogger(__name__)

T = TypeVar("T")


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


class JoinMember(NamedTuple):
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    error_code: int
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    member_id: str = ""
    members: tuple[JoinMember, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncResult:
    error_code: int
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


def resolve(waiter: asyncio.Future[T] | None, result: T) -> None:
    """Hands `result` to whoever awaits `waiter`, unless it already gave up."""
    if waiter is not None and not waiter.done():
        waiter.set_result(result)


@dataclass(slots=True, eq=False)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    last_heartbeat_s: float
    assignment: bytes = b""
    join_waiter: asyncio.Future[JoinResult] | None = None
    sync_waiter: asyncio.Future[SyncResult] | None = None

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata(self, protocol_name: str | None) -> bytes:
        return next((meta for name, meta in self.protocols if name == protocol_name), b"")

    def refresh(self, other: Member) -> None:
        """Takes the protocols, timeouts and client of a rejoin of this member."""
        self.protocols = other.protocols
        self.session_timeout_ms = other.session_timeout_ms
        self.rebalance_timeout_ms = other.rebalance_timeout_ms
        self.client_id, self.client_host = other.client_id, other.client_host
        self.last_heartbeat_s = other.last_heartbeat_s

    def session_expired(self, now: float) -> bool:
        """A member with a request parked here is alive; otherwise its heartbeats say."""
        if any(w is not None and not w.done() for w in (self.join_waiter, self.sync_waiter)):
            return False
        return now - self.last_heartbeat_s >= self.session_timeout_ms / 1000

    def fail(self, error: ErrorCode) -> None:
        resolve(self.join_waiter, JoinResult(error, member_id=self.member_id))
        resolve(self.sync_waiter, SyncResult(error))
        self.join_waiter = self.sync_waiter = None


class Group:
    """One consumer group's members, generation and state; no I/O, no waiting."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.state = GroupState.EMPTY
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.pending: dict[str, float] = {}  # member id -> when it expires
        self.static: dict[str, str] = {}  # group instance id -> member id
        self.rebalance_deadline_s = 0.0
        self.join_not_before_s = 0.0

    def supports(self, protocol_type: str, names: list[str], member_id: str) -> bool:
        """Whether a member may (re)join with these protocols (Kafka's consistency rule)."""
        others = [m for m in self.members.values() if m.member_id != member_id]
        if not others:
            return bool(protocol_type) and bool(names)
        common = set(names)
        for other in others:
            common.intersection_update(other.protocol_names())
        return protocol_type == self.protocol_type and bool(common)

    # --- joining ---------------------------------------------------------------

    def join(self, joining: Member, protocol_type: str, now: float, initial_delay_s: float) -> None:
        """Adds `joining` (its join_waiter set), or takes it as a rejoin of the member with its id.

        The waiter completes now (a rejoin that changes nothing) or when the rebalance ends.
        """
        self.protocol_type = protocol_type
        current = self.members.get(joining.member_id)
        if current is None:
            self._add(joining, now, initial_delay_s)
            return
        unchanged = current.protocols == joining.protocols
        current.refresh(joining)
        is_follower = current.member_id != self.leader_id
        if unchanged and (
            self.state is GroupState.COMPLETING_REBALANCE
            or (self.state is GroupState.STABLE and is_follower)
        ):
            resolve(joining.join_waiter, self.join_result(current))
            return
        resolve(
            current.join_waiter,
            JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member_id=current.member_id),
        )
        current.join_waiter = joining.join_waiter
        if self.state is GroupState.PREPARING_REBALANCE:
            self.maybe_complete_join(now)
        else:
            self.prepare_rebalance(now, f"member {current.member_id} rejoined")

    def _add(self, member: Member, now: float, initial_delay_s: float) -> None:
        self.pending.pop(member.member_id, None)
        self.members[member.member_id] = member
        if member.group_instance_id is not None:
            self.static[member.group_instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id
        if self.state is GroupState.PREPARING_REBALANCE:
            if self.join_not_before_s > now:  # still in the initial delay: wait for more joiners
                self.join_not_before_s = min(now + initial_delay_s, self.rebalance_deadline_s)
            self.maybe_complete_join(now)
        else:
            delay_s = initial_delay_s if self.state is GroupState.EMPTY else 0.0
            self.prepare_rebalance(now, f"member {member.member_id} joined", delay_s)

    def prepare_rebalance(self, now: float, reason: str, delay_s: float = 0.0) -> None:
        if self.state is GroupState.COMPLETING_REBALANCE:
            for member in self.members.values():
                member.assignment = b""
                if member.sync_waiter is not None and not member.sync_waiter.done():
                    member.last_heartbeat_s = now  # its session restarts with the answer
                    member.sync_waiter.set_result(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
                member.sync_waiter = None
        timeout_ms = max((m.rebalance_timeout_ms for m in self.members.values()), default=0)
        self.rebalance_deadline_s = now + timeout_ms / 1000
        self.join_not_before_s = min(now + delay_s, self.rebalance_deadline_s)
        self.state = GroupState.PREPARING_REBALANCE
        logger.info(
            "rebalance prepared group=%s generation=%d reason=%s",
            self.group_id,
            self.generation_id,
            reason,
        )
        self.maybe_complete_join(now)

    def maybe_complete_join(self, now: float) -> None:
        if self.state is not GroupState.PREPARING_REBALANCE:
            return
        all_joined = not self.pending and all(
            m.join_waiter is not None for m in self.members.values()
        )
        if now >= self.rebalance_deadline_s or (all_joined and now >= self.join_not_before_s):
            self._complete_join(now)

    def _complete_join(self, now: float) -> None:
        for member in [m for m in self.members.values() if m.join_waiter is None]:
            logger.info(
                "member removed group=%s member=%s reason=did not rejoin in time",
                self.group_id,
                member.member_id,
            )
            self._forget(member)
        self.generation_id += 1
        if not self.members:
            # an empty group keeps its protocol type, as Kafka's does (ListGroups shows it)
            self.state = GroupState.EMPTY
            self.protocol_name = self.leader_id = None
            logger.info("group empty group=%s generation=%d", self.group_id, self.generation_id)
            return
        if self.leader_id not in self.members:
            self.leader_id = next(iter(self.members))
        self.protocol_name = self._select_protocol()
        self.state = GroupState.COMPLETING_REBALANCE
        logger.info(
            "rebalance joined group=%s generation=%d members=%d protocol=%s leader=%s",
            self.group_id,
            self.generation_id,
            len(self.members),
            self.protocol_name,
            self.leader_id,
        )
        for member in self.members.values():
            member.last_heartbeat_s = now
            waiter, member.join_waiter = member.join_waiter, None
            resolve(waiter, self.join_result(member))

    def _select_protocol(self) -> str:
        """The protocol most members prefer among those all list; ties go the leader's way."""
        members = list(self.members.values())
        common = set(members[0].protocol_names())
        for member in members[1:]:
            common.intersection_update(member.protocol_names())
        assert common, "members were admitted with a protocol in common"
        votes = Counter(next(n for n in m.protocol_names() if n in common) for m in members)
        leader_order = [n for n in self.members[self.leader_id].protocol_names() if n in common]
        return max(leader_order, key=lambda name: (votes[name], -leader_order.index(name)))

    def join_result(self, member: Member) -> JoinResult:
        members: tuple[JoinMember, ...] = ()
        if member.member_id == self.leader_id:
            members = tuple(
                JoinMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
                for m in self.members.values()
            )
        return JoinResult(
            ErrorCode.NONE,
            self.generation_id,
            self.protocol_type,
            self.protocol_name,
            self.leader_id or "",
            member.member_id,
            members,
        )

    # --- syncing ---------------------------------------------------------------

    def sync(
        self,
        member: Member,
        waiter: asyncio.Future[SyncResult],
        assignments: dict[str, bytes],
        now: float,
    ) -> None:
        """Answers `waiter` now (Stable) or once the leader's sync hands out the assignment."""
        member.last_heartbeat_s = now
        if self.state is GroupState.STABLE:
            resolve(waiter, self._sync_result(member))
            return
        assert self.state is GroupState.COMPLETING_REBALANCE
        resolve(member.sync_waiter, SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        member.sync_waiter = waiter
        if member.member_id != self.leader_id:
            return
        for m in self.members.values():
            m.assignment = assignments.get(m.member_id, b"")
        self.state = GroupState.STABLE
        logger.info("group stable group=%s generation=%d", self.group_id, self.generation_id)
        for m in self.members.values():
            if m.sync_waiter is not None and not m.sync_waiter.done():
                m.last_heartbeat_s = now
                m.sync_waiter.set_result(self._sync_result(m))
            m.sync_waiter = None

    def _sync_result(self, member: Member) -> SyncResult:
        return SyncResult(ErrorCode.NONE, member.assignment, self.protocol_type, self.protocol_name)

    # --- leaving and expiry ----------------------------------------------------

    def replace_static(self, instance_id: str, new_id: str) -> Member:
        """A static member came back with no member id (it restarted): its member
        takes `new_id`, keeping its assignment; requests of the old id are fenced
        (its parked ones answered FENCED_INSTANCE_ID, later ones UNKNOWN_MEMBER_ID)."""
        old_id = self.static[instance_id]
        member = self.members.pop(old_id)
        member.fail(ErrorCode.FENCED_INSTANCE_ID)
        member.member_id = new_id
        self.members[new_id] = member
        self.static[instance_id] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        logger.info(
            "static member replaced group=%s instance=%s old=%s new=%s",
            self.group_id,
            instance_id,
            old_id,
            new_id,
        )
        return member

    def remove(self, member_id: str, now: float, reason: str) -> None:
        """Removes a member (its parked requests get UNKNOWN_MEMBER_ID) and rebalances the rest."""
        member = self.members[member_id]
        logger.info("member removed group=%s member=%s reason=%s", self.group_id, member_id, reason)
        self._forget(member)
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self.prepare_rebalance(now, f"member {member_id} removed: {reason}")
        else:
            self.maybe_complete_join(now)

    def remove_pending(self, member_id: str, now: float) -> None:
        del self.pending[member_id]
        self.maybe_complete_join(now)

    def _forget(self, member: Member) -> None:
        del self.members[member.member_id]
        if member.group_instance_id is not None:
            self.static.pop(member.group_instance_id, None)
        member.fail(ErrorCode.UNKNOWN_MEMBER_ID)

    def expire(self, now: float) -> None:
        """Drops pending ids and members whose session ran out; ends an overdue rebalance."""
        for member_id, expires_s in list(self.pending.items()):
            if now >= expires_s:
                del self.pending[member_id]
        for member in list(self.members.values()):
            if member.member_id in self.members and member.session_expired(now):
                self.remove(member.member_id, now, "session timeout")
        self.maybe_complete_join(now)

    def fail_all(self, error: ErrorCode) -> None:
        for member in self.members.values():
            member.fail(error)


_INT16 = struct.Struct(">h")


def subscribed_topics(group: Group) -> set[str]:
    """The topics the members of a `consumer` group subscribe to, read from their
    Subscription (int16 version, [string topics], ...); a member whose metadata
    does not parse subscribes to nothing known."""
    topics: set[str] = set()
    if group.protocol_type != "consumer":
        return topics
    for member in group.members.values():
        for _, metadata in member.protocols:
            topics.update(_subscription_topics(metadata))
    return topics


def _subscription_topics(metadata: bytes) -> list[str]:
    try:
        (count,) = struct.unpack_from(">i", metadata, 2)
        pos, out = 6, []
        for _ in range(max(count, 0)):
            (size,) = _INT16.unpack_from(metadata, pos)
            out.append(metadata[pos + 2 : pos + 2 + size].decode())
            pos += 2 + size
        return out
    except (struct.error, UnicodeDecodeError):
        return []
