"""Session windows against hand-computed sessions: growth, out-of-order events,
merges, late events, final emission, recovery."""

from __future__ import annotations

import asyncio
import random
import shutil
from typing import Any

import pytest
from waiting import wait_until_async

import streams
from streams.driver import TestDriver
from streams.worker import Worker

# (timestamp, key) with gap 10 and grace 5; a session [s, e] closes once
# e + 15 < stream time. Hand-computed, event by event:
EVENTS = [
    (0, "u"),  # st 0: [0,0]=1
    (5, "u"),  # st 5: within 10 of [0,0]: [0,5]=2
    (30, "u"),  # st 30: 30 > 5 + 10: new [30,30]=1; [0,5] closes (20 < 30): final (u,0,5,2)
    (18, "u"),  # out of order: 18 > 15 and 18 < 20: new [18,18]=1 (closes at 33, open)
    (24, "u"),  # bridges [18,18] and [30,30]: merged [18,30]=3
    (12, "u"),  # would join [0,5], which is closed: late, dropped
    (2, "v"),  # its own session [2,2] closes at 17 < 30: late, dropped
    (50, "u"),  # st 50: new [50,50]=1; [18,30] closes (45 < 50): final (u,18,30,3)
    (65, "w"),  # st 65: [65,65]=1; [50,50] closes at 65, not before: nothing
    (66, "w"),  # st 66: [65,66]=2; [50,50] closes: final (u,50,50,1)
]
FINALS = [("u", 0.0, 5.0, 2), ("u", 18.0, 30.0, 3), ("u", 50.0, 50.0, 1)]
STORED = {
    ("u", 0.0, 5.0): 2,
    ("u", 18.0, 30.0): 3,
    ("u", 50.0, 50.0): 1,
    ("w", 65.0, 66.0): 2,
}


def _app(app: streams.App, finals: list[Any]) -> tuple[Any, streams.SessionTable, list[int]]:
    clicks = app.topic("clicks", key_type=str, partitions=1)
    visits = app.Table("visits", default=int).session(
        10, grace=5, emit="final", on_final=finals.append
    )
    done: list[int] = []

    @app.agent(clicks)
    async def count(stream):
        async for key, ts in stream.items():
            visits[key] += 1
            done.append(ts)

    return clicks, visits, done


def _as_tuples(finals: list[streams.FinalResult]) -> list[tuple[Any, float, float, Any]]:
    return [(r.key, r.start, r.end, r.value) for r in finals]


def test_sessions_grow_merge_drop_late_events_and_emit_once_closed(tmp_path):
    app = streams.App("sess", broker="memory://", data_dir=str(tmp_path))
    finals: list[streams.FinalResult] = []
    _, visits, _ = _app(app, finals)
    agent = app.agents["count"]

    async def main():
        async with agent.test_context() as ctx:
            for ts, key in EVENTS:
                await ctx.put(ts, key=key, timestamp=ts)
                if ts == 30:
                    assert _as_tuples(finals) == FINALS[:1]
            assert dict(visits.items()) == STORED
            assert visits.sessions("u") == [(0.0, 5.0, 2), (18.0, 30.0, 3), (50.0, 50.0, 1)]
            assert visits.late_dropped == 2
        assert _as_tuples(finals) == FINALS

    asyncio.run(main())


def test_merge_combines_values_oldest_first_then_applies_the_event(tmp_path):
    app = streams.App("sessm", broker="memory://", data_dir=str(tmp_path))
    pages = app.topic("pages", key_type=str, partitions=1)
    seen = app.Table("seen", default=list).session(10, grace=30)
    currents: list[Any] = []

    @app.agent(pages)
    async def track(stream):
        async for page in stream:
            seen["u"] += [page]
            currents.append(seen["u"].current())

    async def main():
        async with track.test_context() as ctx:
            await ctx.put("p30", timestamp=30)
            # 10 < 30 - 10: a session of its own, still open (closes at 10 + 10 + 30)
            await ctx.put("p10", timestamp=10)
            await ctx.put("p20", timestamp=20)  # bridges both
            assert visits_of(seen) == [(10.0, 30.0, ["p10", "p30", "p20"])]
        assert currents == [["p30"], ["p10"], ["p10", "p30", "p20"]]

    def visits_of(table: streams.SessionTable) -> list[Any]:
        return table.sessions("u")

    asyncio.run(main())


def test_session_table_changelog_restores_sessions_and_pending_finals(
    make_app, broker_url, tmp_path
):
    if broker_url == "memory://":
        pytest.skip("memory:// keeps no changelog across workers")
    finals: list[streams.FinalResult] = []
    first, second = EVENTS[:4], EVENTS[4:]

    async def run(events: list[tuple[int, str]]) -> dict[Any, Any]:
        app = make_app("sessr")
        clicks, visits, done = _app(app, finals)
        async with Worker(app) as worker:
            if events is second:
                # [0,0] merged into [0,5] is a tombstone, or nothing if in one flush
                assert sum(r.records for r in worker.recoveries) >= 4
            for ts, key in events:
                await clicks.send(key=key, value=ts, timestamp=ts)
            await wait_until_async(
                lambda: len(done) == len(events), timeout_s=30.0, what=f"{len(events)} events"
            )
            if events is second:
                assert visits.late_dropped == 2
            return dict(visits.items())

    assert asyncio.run(run(first)) == {
        ("u", 0.0, 5.0): 2,
        ("u", 18.0, 18.0): 1,
        ("u", 30.0, 30.0): 1,
    }
    assert _as_tuples(finals) == FINALS[:1]
    shutil.rmtree(tmp_path / "data")  # the stores are lost: only the changelog is left
    # A new worker recovers [18,18] and [30,30] from the changelog, merges them,
    # and emits them once closed: the same results as one uninterrupted run.
    assert asyncio.run(run(second)) == STORED
    assert _as_tuples(finals) == FINALS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gap": 0}, "gap must be a finite number"),
        ({"gap": 10, "grace": -1}, "grace must be"),
        ({"gap": 10, "emit": "final"}, "needs on_final="),
        ({"gap": 10, "on_final": print}, "on_final= needs emit='final'"),
        ({"gap": 10, "grace": 5, "expires": 14}, "must be >= gap \\+ grace \\(15.0\\)"),
    ],
)
def test_bad_session_settings_are_refused(tmp_path, kwargs, message):
    app = streams.App("bad", broker="memory://", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=message):
        app.Table("t", default=int).session(**kwargs)


def test_a_session_table_needs_a_default(tmp_path):
    app = streams.App("bad", broker="memory://", data_dir=str(tmp_path))
    with pytest.raises(streams.ConfigurationError, match="needs default="):
        app.Table("t").session(10)


def test_sessions_ended_more_than_expires_before_stream_time_are_deleted(tmp_path):
    # No periodic commit: it would expire the sessions before this test does.
    app = streams.App("sesse", broker="memory://", data_dir=str(tmp_path), commit_interval_s=3600)
    clicks = app.topic("clicks", key_type=str, partitions=1)
    visits = app.Table("e", default=int).session(10, expires=20)

    @app.agent(clicks)
    async def count(stream):
        async for key in stream.items():
            visits[key[0]] += 1

    async def main():
        async with count.test_context() as ctx:
            await ctx.put(0, key="u", timestamp=0)
            await ctx.put(15, key="v", timestamp=15)
            await ctx.put(100, key="u", timestamp=100)
            assert visits.expire() == 2  # [0,0] and [15,15]: 15 + 20 < 100
            assert dict(visits.items()) == {("u", 100.0, 100.0): 1}
            assert visits.sessions("u") == [(100.0, 100.0, 1)]
            assert visits.expire() == 0

    asyncio.run(main())


def test_events_inside_a_session_emit_it_once(tmp_path):
    app = streams.App("sess1", broker="memory://", data_dir=str(tmp_path))
    finals: list[streams.FinalResult] = []
    _, visits, _ = _app(app, finals)

    async def main():
        async with app.agents["count"].test_context() as ctx:
            for ts in (0, 10, 5, 5, 40):  # 5 twice: inside [0,10], which stays as it is
                await ctx.put(ts, key="u", timestamp=ts)
            assert dict(visits.items()) == {("u", 0.0, 10.0): 4, ("u", 40.0, 40.0): 1}
        assert _as_tuples(finals) == [("u", 0.0, 10.0, 4)]

    asyncio.run(main())


def test_a_new_run_of_the_same_app_starts_from_its_changelog_not_the_last_run(tmp_path):
    # memory:// starts empty each run: nothing of the first run may leak into the second
    app = streams.App("sess2", broker="memory://", data_dir=str(tmp_path))
    finals: list[streams.FinalResult] = []
    _, visits, _ = _app(app, finals)

    async def run(times: tuple[int, ...]) -> dict[Any, Any]:
        async with app.agents["count"].test_context() as ctx:
            for ts in times:
                await ctx.put(ts, key="u", timestamp=ts)
            return dict(visits.items())

    assert asyncio.run(run((0, 3))) == {("u", 0.0, 3.0): 2}
    assert asyncio.run(run((0, 1))) == {("u", 0.0, 1.0): 2}


def _reference_sessions(
    events: list[tuple[float, str]], gap: float, grace: float
) -> tuple[dict[Any, int], int]:
    """Session counting by brute force: every session of the key scanned."""
    sessions: dict[str, list[list[float]]] = {}
    stream_time, late = None, 0
    for t, key in events:
        stream_time = t if stream_time is None else max(stream_time, t)
        mine = sessions.setdefault(key, [])
        joined = [s for s in mine if s[0] - gap <= t <= s[1] + gap]
        start = min([t, *(s[0] for s in joined)])
        end = max([t, *(s[1] for s in joined)])
        if any(e + gap + grace < stream_time for _, e, _ in joined) or (
            end + gap + grace < stream_time
        ):
            late += 1
            continue
        count = sum(s[2] for s in joined) + 1
        mine[:] = [s for s in mine if s not in joined] + [[start, end, count]]
    stored = {(k, s, e): n for k, mine in sessions.items() for s, e, n in mine}
    return stored, late


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_out_of_order_events_match_a_brute_force_model(tmp_path, seed):
    rng = random.Random(seed)
    # mostly in order, some a little late, some very late; few keys, so many merges
    events, t = [], 0.0
    for _ in range(300):
        t += rng.choice([0.5, 1, 2, 4, 12])
        late_by = rng.choice([0, 0, 0, 3, 8, 30])
        events.append((float(round(max(0.0, t - late_by))), rng.choice("abc")))
    app = streams.App("sessrand", broker="memory://", data_dir=str(tmp_path))
    clicks = app.topic("clicks", key_type=str, partitions=1)
    visits = app.Table("v", default=int).session(5, grace=10)

    @app.agent(clicks)
    async def count(stream):
        async for key, _ in stream.items():
            visits[key] += 1

    async def main():
        async with count.test_context() as ctx:
            for ts, key in events:
                await ctx.put(ts, key=key, timestamp=ts)
            return dict(visits.items()), visits.late_dropped

    expected = _reference_sessions(events, 5.0, 10.0)
    assert expected[1] > 0 and len(expected[0]) > 10  # the data does exercise both
    assert asyncio.run(main()) == expected


class Visit(streams.Record):
    user: str
    at: float
    leave: bool = False


def test_del_and_relative_to_field_on_a_session_table(tmp_path):
    app = streams.App("sessdel", broker="memory://", data_dir=str(tmp_path))
    visits_in = app.topic("visits-in", value_type=Visit, partitions=1)
    visits = app.Table("visits", key_type=str, default=int).session(10)
    by_field = visits.relative_to_field(Visit.at)

    @app.agent(visits_in)
    async def count(stream):
        async for visit in stream:
            if visit.leave:
                del by_field[visit.user]  # the session holding the visit's own time
            else:
                by_field[visit.user] += 1

    async def main() -> None:
        async with TestDriver(app) as driver:
            # record timestamps 1000 s on: the sessions follow the field instead
            for i, at in enumerate([0.0, 5.0, 30.0, 31.0]):
                await driver.send(visits_in, Visit(user="u", at=at), timestamp=1000.0 + i)
            assert visits.sessions("u") == [(0.0, 5.0, 2), (30.0, 31.0, 2)]
            await driver.send(visits_in, Visit(user="u", at=3.0, leave=True), timestamp=1004.0)
            assert visits.sessions("u") == [(30.0, 31.0, 2)]
            assert dict(visits.items()) == {("u", 30.0, 31.0): 2}
            await driver.send(visits_in, Visit(user="u", at=12.0, leave=True), timestamp=1005.0)
            assert visits.sessions("u") == [(30.0, 31.0, 2)]  # no session holds 12: nothing
            # late by the field's time (stream time 31): counted on the table
            await driver.send(visits_in, Visit(user="u", at=-100.0), timestamp=1006.0)
            assert visits.late_dropped == 1
        assert visits.relative_to_now().timestamp() >= 1_700_000_000  # the wall clock
        with pytest.raises(TypeError, match="needs a model field"):
            visits.relative_to_field("at")

    asyncio.run(main())
