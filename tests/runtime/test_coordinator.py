from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import runtime.broker
from runtime.broker import ErrorCode, GroupCoordinator, JoinMember, JoinResult, LeftMember
from runtime.log import Log, OffsetStore
from runtime.types import TopicPartition

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
RANGE = [("range", b"meta")]
DELAY_S = 3.0


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextlib.asynccontextmanager
async def coordinator(
    log: Log | None = None, **options: object
) -> AsyncIterator[tuple[GroupCoordinator, ManualClock]]:
    clock = ManualClock()
    with contextlib.ExitStack() as stack:
        if log is None:
            log = stack.enter_context(Log.open(None))
        options.setdefault("min_session_timeout_ms", 100)
        options.setdefault("expiry_interval_ms", 60_000)  # the tests call expire_sessions()
        async with GroupCoordinator(OffsetStore(log), clock=clock, **options) as coord:
            yield coord, clock


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


async def until(condition: Callable[[], bool], spins: int = 1000) -> None:
    """Lets other tasks run until `condition` holds (they need no time, only turns)."""
    for _ in range(spins):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def join(
    coord: GroupCoordinator,
    member_id: str = "",
    *,
    client: str = "c",
    protocols: list[tuple[str, bytes]] = RANGE,
    protocol_type: str = "consumer",
    session_ms: int = 10_000,
    rebalance_ms: int = 5_000,
    instance: str | None = None,
    require_known: bool = False,
    group: str = "g",
) -> JoinResult:
    return await coord.join(
        group,
        member_id,
        instance,
        protocol_type,
        protocols,
        session_ms,
        rebalance_ms,
        client,
        f"/10.0.0.{len(client)}",
        require_known_member_id=require_known,
    )


def members_of(coord: GroupCoordinator, group: str = "g") -> int:
    return len(coord.describe_group(group).members)


async def form_pair(
    coord: GroupCoordinator,
    clock: ManualClock,
    *,
    a_protocols: list[tuple[str, bytes]] = RANGE,
    b_protocols: list[tuple[str, bytes]] = [("range", b"b-meta")],  # noqa: B006
    sync: bool = True,
) -> tuple[JoinResult, JoinResult]:
    """Members a (the leader) and b join during the initial delay; optionally synced."""
    ta = asyncio.create_task(join(coord, client="a", protocols=a_protocols))
    await until(lambda: members_of(coord) == 1)
    tb = asyncio.create_task(join(coord, client="b", protocols=b_protocols))
    await until(lambda: members_of(coord) == 2)
    assert not ta.done() and not tb.done()
    clock.advance(DELAY_S)
    coord.expire_sessions()
    a, b = await asyncio.gather(ta, tb)
    if sync:
        assignments = {a.member_id: b"A", b.member_id: b"B"}
        await asyncio.gather(
            coord.sync("g", a.generation_id, a.member_id, assignments),
            coord.sync("g", b.generation_id, b.member_id, {}),
        )
    return a, b


# --- membership ----------------------------------------------------------------


def test_single_member_join_sync_heartbeat():
    async def test() -> None:
        async with coordinator() as (coord, _):
            joined = await join(coord, protocols=[("range", b"m1"), ("sticky", b"m2")])
            me = joined.member_id
            assert joined == JoinResult(
                ErrorCode.NONE, 1, "consumer", "range", me, me, (JoinMember(me, None, b"m1"),)
            )
            assert me.startswith("c-")
            synced = await coord.sync("g", 1, me, {me: b"\x00\x01assignment"})
            assert (synced.error_code, synced.assignment) == (ErrorCode.NONE, b"\x00\x01assignment")
            assert (synced.protocol_type, synced.protocol_name) == ("consumer", "range")
            assert await coord.heartbeat("g", 1, me) == ErrorCode.NONE
            assert await coord.heartbeat("g", 2, me) == ErrorCode.ILLEGAL_GENERATION
            assert await coord.heartbeat("g", 1, "nobody") == ErrorCode.UNKNOWN_MEMBER_ID
            assert await coord.heartbeat("other", 1, me) == ErrorCode.UNKNOWN_MEMBER_ID
            assert (await coord.sync("g", 0, me, {})).error_code == ErrorCode.ILLEGAL_GENERATION
            again = await coord.sync("g", 1, me, {})  # a repeated sync gets the same assignment
            assert again.assignment == b"\x00\x01assignment"

    run(test)


def test_member_id_required_then_rejoin_with_the_given_id():
    async def test() -> None:
        async with coordinator() as (coord, _):
            first = await join(coord, require_known=True, client="cli")
            assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
            assert first.member_id.startswith("cli-") and first.generation_id == -1
            joined = await join(coord, first.member_id, require_known=True)
            assert (joined.error_code, joined.member_id) == (ErrorCode.NONE, first.member_id)
            assert joined.generation_id == 1
            unknown = await join(coord, "made-up", require_known=True)
            assert unknown.error_code == ErrorCode.UNKNOWN_MEMBER_ID
            await coord.sync("g", 1, joined.member_id, {})
            # a pending id alone does not disturb the stable group
            newcomer = await join(coord, require_known=True)
            assert newcomer.error_code == ErrorCode.MEMBER_ID_REQUIRED
            assert await coord.heartbeat("g", 1, joined.member_id) == ErrorCode.NONE

    run(test)


def test_concurrent_joins_share_a_generation_and_only_the_leader_sees_members():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(coord, clock, sync=False)
            assert a.error_code == b.error_code == ErrorCode.NONE
            assert a.generation_id == b.generation_id == 1
            assert a.leader_id == b.leader_id == a.member_id
            assert a.members == (
                JoinMember(a.member_id, None, b"meta"),
                JoinMember(b.member_id, None, b"b-meta"),
            )
            assert b.members == ()

    run(test)


def test_sync_hands_the_leader_assignment_to_each_member_unchanged():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(coord, clock, sync=False)
            follower = asyncio.create_task(coord.sync("g", 1, b.member_id, {}))
            for _ in range(5):
                await asyncio.sleep(0)
            assert not follower.done()  # it waits for the leader
            raw = {a.member_id: b"\x00\xffleader", b.member_id: b"\x00\x00\x01\x02follower"}
            leader = await coord.sync("g", 1, a.member_id, raw)
            assert leader.assignment == b"\x00\xffleader"
            assert (await follower).assignment == b"\x00\x00\x01\x02follower"
            assert coord.describe_group("g").state == "Stable"

    run(test)


def test_member_left_out_of_the_assignment_gets_empty_bytes():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(coord, clock, sync=False)
            leader, follower = await asyncio.gather(
                coord.sync("g", 1, a.member_id, {a.member_id: b"all"}),
                coord.sync("g", 1, b.member_id, {}),
            )
            assert (leader.assignment, follower.assignment) == (b"all", b"")
            assert follower.error_code == ErrorCode.NONE

    run(test)


def test_new_member_makes_others_rejoin_into_a_new_generation():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(coord, clock)
            third = asyncio.create_task(join(coord, client="c"))
            await until(lambda: coord.describe_group("g").state == "PreparingRebalance")
            assert await coord.heartbeat("g", 1, a.member_id) == ErrorCode.REBALANCE_IN_PROGRESS
            assert await coord.heartbeat("g", 1, b.member_id) == ErrorCode.REBALANCE_IN_PROGRESS
            sync = await coord.sync("g", 1, a.member_id, {})
            assert sync.error_code == ErrorCode.REBALANCE_IN_PROGRESS
            assert not third.done()
            rejoined = await asyncio.gather(
                join(coord, a.member_id, client="a"), join(coord, b.member_id, client="b"), third
            )
            assert {r.generation_id for r in rejoined} == {2}
            assert {r.leader_id for r in rejoined} == {a.member_id}  # the leader stays
            assert len(rejoined[0].members) == 3
            assert await coord.heartbeat("g", 1, a.member_id) == ErrorCode.ILLEGAL_GENERATION

    run(test)


def test_member_that_does_not_rejoin_within_the_rebalance_timeout_is_dropped():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(coord, clock)  # rebalance timeout 5 s, session 10 s
            third = asyncio.create_task(join(coord, client="c"))
            leader = asyncio.create_task(join(coord, a.member_id, client="a"))
            await until(lambda: coord.describe_group("g").state == "PreparingRebalance")
            clock.advance(4.9)
            coord.expire_sessions()
            assert not leader.done()
            clock.advance(0.1)
            coord.expire_sessions()
            new_a, new_c = await asyncio.gather(leader, third)
            assert new_a.generation_id == new_c.generation_id == 2
            assert {m.member_id for m in new_a.members} == {a.member_id, new_c.member_id}
            assert await coord.heartbeat("g", 2, b.member_id) == ErrorCode.UNKNOWN_MEMBER_ID

    run(test)


def test_session_expiry_removes_a_silent_member_and_rebalances():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(coord, clock)  # session timeout 10 s
            clock.advance(6)
            assert await coord.heartbeat("g", 1, a.member_id) == ErrorCode.NONE
            clock.advance(3.9)
            coord.expire_sessions()
            assert members_of(coord) == 2
            clock.advance(0.1)
            coord.expire_sessions()
            assert coord.describe_group("g").state == "PreparingRebalance"
            assert await coord.heartbeat("g", 1, b.member_id) == ErrorCode.UNKNOWN_MEMBER_ID
            assert await coord.heartbeat("g", 1, a.member_id) == ErrorCode.REBALANCE_IN_PROGRESS
            alone = await join(coord, a.member_id, client="a")
            assert (alone.generation_id, [m.member_id for m in alone.members]) == (
                2,
                [a.member_id],
            )

    run(test)


def test_parked_requests_keep_a_member_alive():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(coord, clock, sync=False)
            follower = asyncio.create_task(coord.sync("g", 1, b.member_id, {}))
            await until(lambda: coord.describe_group("g").state == "CompletingRebalance")
            await asyncio.sleep(0)
            clock.advance(11)  # past both sessions; a never heartbeated
            coord.expire_sessions()
            # a is gone; b, parked in sync until the rebalance answered it, stays
            assert (await follower).error_code == ErrorCode.REBALANCE_IN_PROGRESS
            assert await coord.heartbeat("g", 1, a.member_id) == ErrorCode.UNKNOWN_MEMBER_ID
            assert await coord.heartbeat("g", 1, b.member_id) == ErrorCode.REBALANCE_IN_PROGRESS

    run(test)


def test_leave_triggers_a_rebalance_of_the_others():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(coord, clock)
            left = await coord.leave("g", [(b.member_id, None), ("ghost", None)])
            assert left.error_code == ErrorCode.NONE
            assert left.members == (
                LeftMember(b.member_id, None, ErrorCode.NONE),
                LeftMember("ghost", None, ErrorCode.UNKNOWN_MEMBER_ID),
            )
            assert await coord.heartbeat("g", 1, a.member_id) == ErrorCode.REBALANCE_IN_PROGRESS
            alone = await join(coord, a.member_id, client="a")
            assert alone.generation_id == 2 and len(alone.members) == 1
            await coord.leave("g", [(a.member_id, None)])
            assert coord.describe_group("g").state == "Empty"
            assert (await coord.leave("nope", [("x", None)])).members[0].error_code == 25

    run(test)


def test_inconsistent_group_protocol():
    async def test() -> None:
        async with coordinator() as (coord, _):
            assert (await join(coord, protocols=[])).error_code == 23
            assert (await join(coord, protocol_type="")).error_code == 23
            first = await join(coord)
            assert first.error_code == ErrorCode.NONE
            other_protocol = await join(coord, protocols=[("roundrobin", b"")])
            assert other_protocol.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
            other_type = await join(coord, protocol_type="connect")
            assert other_type.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
            assert coord.describe_group("g").state == "CompletingRebalance"
            assert members_of(coord) == 1

    run(test)


def test_chosen_protocol_is_one_every_member_lists():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(
                coord,
                clock,
                a_protocols=[("range", b"ar"), ("sticky", b"as")],
                b_protocols=[("roundrobin", b"bo"), ("sticky", b"bs")],
                sync=False,
            )
            assert a.protocol_name == b.protocol_name == "sticky"
            assert [m.metadata for m in a.members] == [b"as", b"bs"]

    run(test)


def test_rejoin_of_a_follower_without_changes_keeps_the_generation():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(coord, clock)
            again = await join(coord, b.member_id, client="b", protocols=[("range", b"b-meta")])
            assert (again.generation_id, again.leader_id, again.members) == (1, a.member_id, ())
            assert coord.describe_group("g").state == "Stable"
            leader = asyncio.create_task(join(coord, a.member_id, client="a"))
            await until(lambda: coord.describe_group("g").state == "PreparingRebalance")
            assert await coord.heartbeat("g", 1, b.member_id) == ErrorCode.REBALANCE_IN_PROGRESS
            await join(coord, b.member_id, client="b")
            assert (await leader).generation_id == 2

    run(test)


def test_static_member_that_rejoins_gets_a_new_member_id_and_fences_the_old():
    async def test() -> None:
        async with coordinator() as (coord, _):
            first = await join(coord, instance="host-1", require_known=True)
            assert first.error_code == ErrorCode.NONE  # no MEMBER_ID_REQUIRED for static members
            assert first.members == (JoinMember(first.member_id, "host-1", b"meta"),)
            again = await join(coord, instance="host-1", require_known=True)
            assert again.error_code == ErrorCode.NONE
            assert again.member_id != first.member_id
            assert members_of(coord) == 1
            assert (await coord.sync("g", 1, first.member_id, {})).error_code == 25
            # the old instance learns it was fenced when it names its instance id
            fenced_heartbeat = await coord.heartbeat("g", 1, first.member_id, "host-1")
            assert fenced_heartbeat == ErrorCode.FENCED_INSTANCE_ID
            synced = await coord.sync("g", 1, first.member_id, {}, instance_id="host-1")
            assert synced.error_code == ErrorCode.FENCED_INSTANCE_ID
            assert await coord.heartbeat("g", 1, again.member_id, "host-1") == ErrorCode.NONE
            fenced = await join(coord, "someone-else", instance="host-1")
            assert fenced.error_code == ErrorCode.FENCED_INSTANCE_ID
            left = await coord.leave("g", [("", "host-1")])
            assert left.members == (LeftMember("", "host-1", ErrorCode.NONE),)
            assert members_of(coord) == 0

    run(test)


@pytest.mark.parametrize("restarting", ["follower", "leader"])
def test_static_member_restart_in_a_stable_group_rebalances_nobody(restarting):
    async def test() -> None:
        async with coordinator() as (coord, _):
            a = await join(coord, client="a", instance="a-host")
            b_task = asyncio.create_task(join(coord, client="b", instance="b-host"))
            await until(lambda: coord.describe_group("g").state == "PreparingRebalance")
            a = await join(coord, a.member_id, client="a", instance="a-host")
            b = await b_task
            assert a.generation_id == b.generation_id == 2 and a.leader_id == a.member_id
            assignments = {a.member_id: b"A", b.member_id: b"B"}
            await asyncio.gather(
                coord.sync("g", 2, a.member_id, assignments), coord.sync("g", 2, b.member_id, {})
            )
            old, stays = (b, a) if restarting == "follower" else (a, b)
            client = "b" if restarting == "follower" else "a"
            back = await join(coord, client=client, instance=f"{client}-host")
            assert back.error_code == ErrorCode.NONE
            assert back.generation_id == 2 and back.member_id != old.member_id
            assert back.leader_id == a.member_id  # a restarted leader acts as a follower
            assert back.members == ()
            synced = await coord.sync("g", 2, back.member_id, {})
            assert synced.assignment == (b"B" if restarting == "follower" else b"A")
            assert await coord.heartbeat("g", 2, stays.member_id) == ErrorCode.NONE
            assert coord.describe_group("g").state == "Stable"
            assert await coord.heartbeat("g", 2, old.member_id) == ErrorCode.UNKNOWN_MEMBER_ID

    run(test)


def test_an_empty_group_keeps_its_protocol_type():
    async def test() -> None:
        async with coordinator() as (coord, clock):
            me = (await join(coord)).member_id
            await coord.sync("g", 1, me, {})
            assert await coord.commit_offsets("g", 1, me, {A0: (3, None)}) == {A0: 0}
            await coord.leave("g", [(me, None)])
            clock.advance(6)
            coord.expire_sessions()
            assert [(g.group_id, g.protocol_type, g.state) for g in coord.list_groups()] == [
                ("g", "consumer", "Empty")
            ]
            assert coord.describe_group("g").protocol_type == "consumer"

    run(test)


def test_join_validation():
    async def test() -> None:
        async with coordinator(min_session_timeout_ms=6000, max_session_timeout_ms=30_000) as (
            coord,
            _,
        ):
            assert (await join(coord, session_ms=5999)).error_code == 26
            assert (await join(coord, session_ms=30_001)).error_code == 26
            assert (await join(coord, group="")).error_code == ErrorCode.INVALID_GROUP_ID
            assert (await join(coord, "unknown")).error_code == ErrorCode.UNKNOWN_MEMBER_ID
            assert coord.list_groups() == []

    run(test)


# --- offsets -------------------------------------------------------------------


def test_commit_and_fetch_round_trip_metadata():
    async def test() -> None:
        async with coordinator(offset_metadata_max_bytes=8) as (coord, _):
            me = (await join(coord)).member_id
            await coord.sync("g", 1, me, {})
            committed = await coord.commit_offsets("g", 1, me, {A0: (10, "meta"), A1: (20, None)})
            assert committed == {A0: ErrorCode.NONE, A1: ErrorCode.NONE}
            assert await coord.fetch_offsets("g", [A0, A1, B0]) == {
                A0: (10, "meta", -1),
                A1: (20, "", -1),
                B0: (-1, "", -1),
            }
            assert await coord.fetch_offsets("g") == {A0: (10, "meta", -1), A1: (20, "", -1)}
            too_large = await coord.commit_offsets("g", 1, me, {A0: (11, "x" * 9), B0: (1, "")})
            assert too_large == {A0: ErrorCode.OFFSET_METADATA_TOO_LARGE, B0: ErrorCode.NONE}
            assert (await coord.fetch_offsets("g", [A0]))[A0] == (10, "meta", -1)
            assert await coord.commit_offsets("g", 2, me, {A0: (1, "")}) == {A0: 22}
            assert await coord.commit_offsets("g", 1, "x", {A0: (1, "")}) == {A0: 25}
            assert await coord.commit_offsets("g", -1, "", {A0: (1, "")}) == {A0: 25}

    run(test)


def test_standalone_commit_for_a_group_without_members():
    async def test() -> None:
        async with coordinator() as (coord, _):
            assert await coord.commit_offsets("solo", -1, "", {A0: (5, "m")}) == {A0: 0}
            assert await coord.fetch_offsets("solo", [A0]) == {A0: (5, "m", -1)}
            assert await coord.commit_offsets("solo", 3, "", {A0: (6, "")}) == {A0: 22}
            me = (await join(coord, group="g2")).member_id
            await coord.leave("g2", [(me, None)])
            assert coord.describe_group("g2").state == "Empty"
            assert await coord.commit_offsets("g2", -1, "", {A0: (1, "")}) == {A0: 0}

    run(test)


def test_commit_during_rebalance_is_refused():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            a, b = await form_pair(coord, clock, sync=False)  # CompletingRebalance
            refused = await coord.commit_offsets("g", 1, a.member_id, {A0: (1, "")})
            assert refused == {A0: ErrorCode.REBALANCE_IN_PROGRESS}
            await asyncio.gather(
                coord.sync("g", 1, a.member_id, {}), coord.sync("g", 1, b.member_id, {})
            )
            assert await coord.commit_offsets("g", 1, a.member_id, {A0: (1, "")}) == {A0: 0}
            third = asyncio.create_task(join(coord, client="c"))
            await until(lambda: coord.describe_group("g").state == "PreparingRebalance")
            # while the rebalance is only being prepared, the current generation still commits
            assert await coord.commit_offsets("g", 1, b.member_id, {A1: (2, "")}) == {A1: 0}
            await coord.stop()
            assert (await third).error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE

    run(test)


def test_unknown_partitions_are_refused_when_the_coordinator_can_tell():
    async def test() -> None:
        known = {A0}
        async with coordinator(partition_exists=known.__contains__) as (coord, _):
            result = await coord.commit_offsets("solo", -1, "", {A0: (1, ""), B0: (2, "")})
            assert result == {A0: ErrorCode.NONE, B0: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}

    run(test)


def test_commits_survive_a_new_coordinator_over_the_same_log(log_path):
    async def commit(log: Log) -> None:
        async with coordinator(log) as (coord, _):
            me = (await join(coord)).member_id
            await coord.sync("g", 1, me, {})
            await coord.commit_offsets("g", 1, me, {A0: (42, "kept")})

    async def check(log: Log) -> None:
        async with coordinator(log) as (coord, _):
            assert await coord.fetch_offsets("g", [A0]) == {A0: (42, "kept", -1)}
            assert coord.list_groups() == [("g", "consumer", "Empty")]  # its type kept
            described = coord.describe_group("g")
            assert (described.state, described.protocol_type) == ("Empty", "consumer")

    with Log.open(log_path) as log:
        asyncio.run(commit(log))
        asyncio.run(check(log))
    if log_path is not None:
        with Log.open(log_path) as log:
            asyncio.run(check(log))


# --- administration and lifecycle ----------------------------------------------


def test_list_and_describe_groups():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, clock):
            await coord.commit_offsets("offsets-only", -1, "", {A0: (1, "")})
            a, b = await form_pair(coord, clock)
            assert coord.list_groups() == [
                ("g", "consumer", "Stable"),
                ("offsets-only", "", "Empty"),
            ]
            described = coord.describe_group("g")
            assert (described.error_code, described.state) == (ErrorCode.NONE, "Stable")
            assert (described.protocol_type, described.protocol_name) == ("consumer", "range")
            assert described.members == (
                (a.member_id, None, "a", "/10.0.0.1", b"meta", b"A"),
                (b.member_id, None, "b", "/10.0.0.1", b"b-meta", b"B"),
            )
            assert coord.describe_group("nope").state == "Dead"
            third = asyncio.create_task(join(coord, client="c"))
            await until(lambda: coord.describe_group("g").state == "PreparingRebalance")
            preparing = coord.describe_group("g")
            assert preparing.protocol_name == "" and preparing.members[0].assignment == b""
            await coord.stop()
            await third

    run(test)


def test_delete_groups():
    async def test() -> None:
        async with coordinator() as (coord, _):
            await coord.commit_offsets("old", -1, "", {A0: (1, "")})
            await join(coord)
            assert await coord.delete_groups(["old", "g", "never"]) == {
                "old": ErrorCode.NONE,
                "g": ErrorCode.NON_EMPTY_GROUP,
                "never": ErrorCode.GROUP_ID_NOT_FOUND,
            }
            assert await coord.fetch_offsets("old") == {}
            assert [listing.group_id for listing in coord.list_groups()] == ["g"]

    run(test)


def test_stop_answers_parked_requests_and_refuses_new_ones():
    async def test() -> None:
        async with coordinator(initial_rebalance_delay_ms=3000) as (coord, _):
            parked = asyncio.create_task(join(coord))
            await until(lambda: members_of(coord) == 1)
            await coord.stop()
            assert (await parked).error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
            assert (await join(coord)).error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
            assert await coord.heartbeat("g", 1, "m") == ErrorCode.COORDINATOR_NOT_AVAILABLE
            assert await coord.commit_offsets("g", -1, "", {A0: (1, "")}) == {A0: 15}
            await coord.stop()  # idempotent
            with pytest.raises(RuntimeError):
                await coord.start()

    run(test)


def test_background_task_expires_sessions():
    async def test() -> None:
        async with coordinator(expiry_interval_ms=0) as (coord, clock):
            me = (await join(coord, session_ms=1000)).member_id
            await coord.sync("g", 1, me, {})
            clock.advance(1)
            await until(lambda: coord.describe_group("g").state == "Dead")
            assert await coord.heartbeat("g", 1, me) == ErrorCode.UNKNOWN_MEMBER_ID

    run(test)


def test_public_names():
    assert runtime.broker.__all__ == [
        "ErrorCode",
        "GroupCoordinator",
        "GroupDescription",
        "GroupListing",
        "GroupState",
        "JoinMember",
        "JoinResult",
        "LeaveResult",
        "LeftMember",
        "MemberDescription",
        "SyncResult",
    ]
    assert ErrorCode.MEMBER_ID_REQUIRED == 79 and ErrorCode.FENCED_INSTANCE_ID == 82
