"""Group administration answers apply the session timeouts that have run out, without
waiting for the background expiry (librdkafka's admin tests close static members,
sleep out the session timeout and delete the group at once)."""

from __future__ import annotations

from test_coordinator import A0, ManualClock, coordinator, join, run

from runtime.broker import ErrorCode, GroupCoordinator

SESSION_MS = 6000


async def _static_member_gone_silent(coord: GroupCoordinator, clock: ManualClock) -> None:
    me = (await join(coord, instance="host-1", session_ms=SESSION_MS)).member_id
    await coord.sync("g", 1, me, {})
    assert await coord.commit_offsets("g", 1, me, {A0: (5, "")}) == {A0: ErrorCode.NONE}
    clock.advance(SESSION_MS / 1000)  # no expire_sessions(): the background one is minutes off


def test_delete_groups_finds_a_group_whose_static_member_just_expired_empty():
    async def test() -> None:
        async with coordinator() as (coord, clock):
            await _static_member_gone_silent(coord, clock)
            assert await coord.delete_groups(["g"]) == {"g": ErrorCode.NONE}
            assert await coord.fetch_offsets("g") == {}

    run(test)


def test_describe_and_list_show_the_expired_member_gone():
    async def test() -> None:
        async with coordinator() as (coord, clock):
            await _static_member_gone_silent(coord, clock)
            assert coord.describe_group("g").state == "Empty"
            assert coord.describe_group("g").members == ()
            assert [(g.group_id, g.state) for g in coord.list_groups()] == [("g", "Empty")]

    run(test)


def test_a_member_inside_its_session_still_holds_the_group():
    async def test() -> None:
        async with coordinator() as (coord, clock):
            me = (await join(coord, instance="host-1", session_ms=SESSION_MS)).member_id
            await coord.sync("g", 1, me, {})
            clock.advance(SESSION_MS / 1000 - 0.01)
            assert await coord.delete_groups(["g"]) == {"g": ErrorCode.NON_EMPTY_GROUP}
            assert len(coord.describe_group("g").members) == 1

    run(test)
