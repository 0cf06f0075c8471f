from __future__ import annotations

import asyncio

import pytest
from client_helpers import broker, cluster, run
from waiting import wait_until_async

from runtime.client.assignors import RangeAssignor
from runtime.client.consumer_protocol import (
    Assignment,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from runtime.client.group import GroupMember
from runtime.protocol.errors import ProtocolError
from runtime.protocol.primitives import Writer
from runtime.types import TopicPartition

FAST = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 100, "rebalance_timeout_ms": 3000}


def _tps(topic: str, *partitions: int) -> tuple[TopicPartition, ...]:
    return tuple(TopicPartition(topic, p) for p in partitions)


def test_consumer_protocol_round_trips():
    s = Subscription(("a", "b"), b"\x00user", _tps("a", 1, 0) + _tps("b", 2))
    decoded = decode_subscription(encode_subscription(s))
    assert decoded.topics == ("a", "b") and decoded.user_data == b"\x00user"
    assert decoded.owned_partitions == _tps("a", 0, 1) + _tps("b", 2)
    v0 = Subscription(("a",), None, version=0)
    assert decode_subscription(encode_subscription(v0)) == v0
    a = Assignment(_tps("x", 0, 3) + _tps("y", 1), b"standby")
    assert decode_assignment(encode_assignment(a)) == a
    assert decode_assignment(b"") == Assignment()
    with pytest.raises(ProtocolError):
        decode_subscription(b"\x00\x00\x00\x00\x00\x05ab")


def test_subscriptions_of_newer_clients_decode():
    w = Writer()
    w.int16(3)
    w.int32(1)
    w.string("t")
    w.nullable_bytes(None)
    w.int32(0)  # no owned partitions
    w.int32(7)  # v2 generation
    w.nullable_string("rack-1")  # v3 rack
    assert decode_subscription(w.getvalue()) == Subscription(("t",), None, (), 3)


def test_range_assignor_matches_kafka():
    members = {
        "m2": Subscription(("a", "b")),
        "m1": Subscription(("a",)),
        "m3": Subscription(("c",)),
    }
    assigned = RangeAssignor().assign({"a": [0, 1, 2, 3, 4], "b": [0, 1], "c": []}, members)
    assert assigned == {
        "m1": Assignment(_tps("a", 0, 1, 2)),
        "m2": Assignment(_tps("a", 3, 4) + _tps("b", 0, 1)),
        "m3": Assignment(()),
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, frozenset[TopicPartition]]] = []
        self.owned: frozenset[TopicPartition] = frozenset()

    async def on_assign(self, assignment: Assignment) -> None:
        assert not self.owned, "assigned twice without a revoke"
        self.owned = frozenset(assignment.partitions)
        self.events.append(("assign", self.owned))

    async def on_revoke(self, assignment: Assignment) -> None:
        assert frozenset(assignment.partitions) == self.owned
        self.events.append(("revoke", self.owned))
        self.owned = frozenset()


ALL = frozenset(_tps("jobs", 0, 1, 2, 3))


def test_two_members_split_the_partitions_and_one_leaving_hands_all_to_the_other():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("jobs", 4)
            ra, rb = Recorder(), Recorder()
            a = GroupMember(
                c, "workers", ["jobs"], on_assign=ra.on_assign, on_revoke=ra.on_revoke, **FAST
            )
            await a.start()
            assert ra.owned == ALL and a.is_leader
            async with GroupMember(
                c, "workers", ["jobs"], on_assign=rb.on_assign, on_revoke=rb.on_revoke, **FAST
            ) as m:
                await wait_until_async(
                    lambda: len(ra.owned) == 2 and len(rb.owned) == 2, timeout_s=10.0, what="split"
                )
                assert ra.owned | rb.owned == ALL
                assert a.generation == m.generation
                await a.close()
                assert ra.events[-1][0] == "revoke" and not ra.owned
                await wait_until_async(
                    lambda: rb.owned == ALL, timeout_s=10.0, what="the rest handed over"
                )
            assert rb.events[-1] == ("revoke", ALL)
            assert [e for e, _ in rb.events] == ["assign", "revoke", "assign", "revoke"]

    run(main())


def test_a_member_that_stops_heartbeating_is_expired_and_its_partitions_reassigned():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("jobs", 4)
            ra, rb = Recorder(), Recorder()
            a = GroupMember(
                c, "crashy", ["jobs"], on_assign=ra.on_assign, on_revoke=ra.on_revoke, **FAST
            )
            bm = GroupMember(
                c, "crashy", ["jobs"], on_assign=rb.on_assign, on_revoke=rb.on_revoke, **FAST
            )
            await a.start()
            await bm.start()
            await wait_until_async(
                lambda: len(ra.owned) == 2 and len(rb.owned) == 2, timeout_s=10.0, what="split"
            )
            await a.close(leave=False)  # as if its process died: no LeaveGroup
            await wait_until_async(
                lambda: rb.owned == ALL, timeout_s=8, what="expiry of the silent member"
            )
            await bm.close()

    run(main())


def test_member_commits_with_its_generation():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("jobs", 4)
            async with GroupMember(c, "committers", ["jobs"], **FAST) as m:
                assert m.generation >= 1
                assert m.assignment is not None
                offsets = dict.fromkeys(m.assignment.partitions, 42)
                await m.commit(offsets)
                assert await m.committed(m.assignment.partitions) == offsets

    run(main())


def test_close_during_a_revoke_lets_the_revoke_finish():
    """close() cancels the membership task; a revoke it was running (which
    commits what was processed) must still run to its end."""

    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("jobs", 4)
            revoking, release = asyncio.Event(), asyncio.Event()
            finished: list[frozenset[TopicPartition]] = []

            async def on_revoke(assignment: Assignment) -> None:
                revoking.set()
                await release.wait()  # a commit in flight
                finished.append(frozenset(assignment.partitions))

            member = GroupMember(c, "slow-revoke", ["jobs"], on_revoke=on_revoke, **FAST)
            await member.start()
            member.request_rejoin()  # the membership task starts a revoke
            await asyncio.wait_for(revoking.wait(), 5)
            closing = asyncio.create_task(member.close())
            await asyncio.sleep(0.05)
            assert not closing.done()  # waits for the revoke in hand
            release.set()
            await asyncio.wait_for(closing, 5)
            assert finished == [ALL]

    run(main())
