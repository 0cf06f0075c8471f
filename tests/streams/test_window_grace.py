"""Grace periods and final-result emission on windowed tables, against
hand-computed results."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from waiting import wait_until_async

import streams
from streams.driver import TestDriver
from streams.window_close import FinalResult
from streams.worker import Worker


def test_tumbling_grace_drops_late_events_and_emits_each_window_once(make_app):
    app = make_app("grace")
    clicks = app.topic("clicks", key_type=str, partitions=1)
    finals = app.topic("click-finals", key_type=str, partitions=1)
    counts = app.Table("clicks", default=int).tumbling(
        10, grace=5, expires=100, emit="final", on_final=finals
    )
    done: list[float] = []
    emitted: list[tuple[str, dict[str, Any]]] = []

    @app.agent(clicks)
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += 1
            done.append(event.message.timestamp)

    @app.agent(finals)
    async def collect(stream):
        async for key, value in stream.items():
            emitted.append((key, value))

    # (timestamp, key), with stream time and what each event does:
    sent = [
        (1, "a"),  # st 1: [0,10) a=1
        (12, "a"),  # st 12: [10,20) a=1
        (8, "a"),  # late but within grace (10 + 5 > 12): [0,10) a=2
        (15, "b"),  # st 15: [10,20) b=1; [0,10) closes (10 + 5 <= 15): emit a=2
        (9, "a"),  # [0,10) closed: dropped, counted
        (30, "a"),  # st 30: [30,40) a=1; [10,20) closes: emit a=1, then b=1
    ]

    async def main():
        async with Worker(app):
            for ts, key in sent:
                await clicks.send(key=key, value=ts, timestamp=ts)
            await wait_until_async(lambda: len(done) == len(sent), timeout_s=20.0, what="events")
            await wait_until_async(lambda: len(emitted) == 3, timeout_s=20.0, what="3 finals")
            stored = dict(counts.items())
        assert emitted == [
            ("a", {"key": "a", "start": 0.0, "end": 10.0, "value": 2}),
            ("a", {"key": "a", "start": 10.0, "end": 20.0, "value": 1}),
            ("b", {"key": "b", "start": 10.0, "end": 20.0, "value": 1}),
        ]
        assert stored == {("a", 0.0): 2, ("a", 10.0): 1, ("b", 10.0): 1, ("a", 30.0): 1}
        assert counts.late_dropped == 1

    asyncio.run(main())


def test_hopping_grace_is_judged_per_window(tmp_path):
    app = streams.App("hgrace", broker="memory://", data_dir=str(tmp_path))
    clicks = app.topic("clicks", key_type=str, partitions=1)
    results: list[FinalResult] = []
    counts = app.Table("h", default=int).hopping(
        10, 5, grace=0, emit="final", on_final=results.append
    )

    @app.agent(clicks)
    async def count(stream):
        async for _ in stream:
            counts["k"] += 1

    async def main():
        async with count.test_context() as agent:
            await agent.put(1, key="k", timestamp=1)  # [-5,5) [0,10)
            await agent.put(7, key="k", timestamp=7)  # [0,10) [5,15); [-5,5) closes
            assert [(r.start, r.value) for r in results] == [(-5.0, 1)]
            await agent.put(3, key="k", timestamp=3)  # [-5,5) closed: dropped; [0,10) kept
            assert counts.late_dropped == 1
            await agent.put(16, key="k", timestamp=16)  # closes [0,10) and [5,15)
        assert [(r.key, r.start, r.end, r.value) for r in results] == [
            ("k", -5.0, 5.0, 1),
            ("k", 0.0, 10.0, 3),
            ("k", 5.0, 15.0, 1),
        ]

    asyncio.run(main())


def test_grace_without_final_only_drops(tmp_path):
    app = streams.App("g", broker="memory://", data_dir=str(tmp_path))
    clicks = app.topic("clicks", key_type=str, partitions=2)
    counts = app.Table("g", default=int).tumbling(10, grace=2)

    @app.agent(clicks)
    async def count(stream):
        async for _ in stream:
            counts["k"] += 1

    async def main():
        async with count.test_context() as agent:
            await agent.put(1, key="k", partition=0, timestamp=25)
            # [10,20) closed in partition 0 (20 + 2 <= 25): dropped
            await agent.put(1, key="k", partition=0, timestamp=11)
            # stream time is per partition: partition 1 is at 11, the window is open
            await agent.put(1, key="k", partition=1, timestamp=11)
            assert counts.late_dropped == 1
            assert sorted(counts.items()) == [(("k", 10.0), 1), (("k", 20.0), 1)]

    asyncio.run(main())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"emit": "final"}, "needs on_final="),
        ({"on_final": print}, "on_final= needs emit='final'"),
        ({"grace": -1}, "grace must be a finite number"),
        ({"grace": float("nan")}, "grace must be a finite number"),
        ({"emit": "sometimes"}, "emit must be 'update' or 'final'"),
        ({"emit": "final", "on_final": print, "grace": 10, "expires": 5}, "must be >= grace"),
    ],
)
def test_bad_window_settings_are_refused(tmp_path, kwargs, message):
    app = streams.App("bad", broker="memory://", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=message):
        app.Table("t", default=int).tumbling(10, **kwargs)


def test_async_on_final_is_refused(tmp_path):
    app = streams.App("bad", broker="memory://", data_dir=str(tmp_path))

    async def on_final(result):
        pass

    with pytest.raises(TypeError, match="cannot be awaited"):
        app.Table("t", default=int).tumbling(10, emit="final", on_final=on_final)


def _final_app(tmp_path, results: list[FinalResult]) -> tuple[streams.App, Any, Any, list[Any]]:
    app = streams.App(
        "rgrace",
        broker=f"log://{tmp_path / 'log'}",
        data_dir=str(tmp_path / "d"),
        commit_interval_s=0.05,
    )
    clicks = app.topic("clicks", key_type=str, partitions=1)
    counts = app.Table("r", default=int).tumbling(
        10, grace=5, emit="final", on_final=results.append
    )
    done: list[float] = []

    @app.agent(clicks)
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += 1
            done.append(event.message.timestamp)

    return app, clicks, counts, done


def test_an_open_window_recovered_after_a_restart_is_emitted_when_it_closes(tmp_path):
    results: list[FinalResult] = []

    async def first():
        app, clicks, _, done = _final_app(tmp_path, results)
        async with Worker(app):
            for ts in (1, 2, 12):
                await clicks.send(key="a", value=ts, timestamp=ts)
            await wait_until_async(lambda: len(done) == 3, timeout_s=20.0, what="3 events")

    async def second():
        app, clicks, counts, done = _final_app(tmp_path, results)
        async with Worker(app):
            await clicks.send(key="a", value=16, timestamp=16)  # closes [0,10)
            await clicks.send(key="a", value=3, timestamp=3)  # late: dropped
            await wait_until_async(lambda: len(done) == 2, timeout_s=20.0, what="2 events")
            assert counts.late_dropped == 1

    asyncio.run(first())
    assert results == []  # stream time 12: [0,10) is open until 15
    asyncio.run(second())
    assert [(r.key, r.start, r.value) for r in results] == [("a", 0.0, 2)]


def test_a_new_run_of_the_same_app_does_not_inherit_the_last_runs_stream_time(tmp_path):
    app = streams.App("g2", broker="memory://", data_dir=str(tmp_path))
    clicks = app.topic("clicks", key_type=str, partitions=1)
    counts = app.Table("g2", default=int).tumbling(10, grace=0)

    @app.agent(clicks)
    async def count(stream):
        async for _ in stream:
            counts["k"] += 1

    async def run(ts: float) -> dict[Any, Any]:
        async with count.test_context() as agent:
            await agent.put(1, key="k", timestamp=ts)
            return dict(counts.items())

    assert asyncio.run(run(100)) == {("k", 100.0): 1}
    assert asyncio.run(run(5)) == {("k", 0.0): 1}  # memory:// starts empty: not late
    assert counts.late_dropped == 0


def _reference_windows(
    events: list[tuple[float, str]], size: float, step: float, grace: float
) -> tuple[dict[Any, int], list[tuple[Any, float, int]], int]:
    """Hopping counts with a grace period by brute force: every window scanned."""
    counts: dict[tuple[str, float], int] = {}
    emitted: list[tuple[Any, float, int]] = []
    done: set[tuple[str, float]] = set()
    stream_time, dropped = None, 0
    for t, key in events:
        stream_time = t if stream_time is None else max(stream_time, t)
        starts = [k * step for k in range(int(t // step) - int(size // step), int(t // step) + 1)]
        for start in starts:
            if not start <= t < start + size:
                continue
            if start + size + grace <= stream_time:
                dropped += 1
            else:
                counts[(key, start)] = counts.get((key, start), 0) + 1
        closed = sorted(
            (start, key)
            for (key, start) in counts
            if (key, start) not in done and start + size + grace <= stream_time
        )
        for start, key in closed:
            done.add((key, start))
            emitted.append((key, start, counts[(key, start)]))
    return counts, emitted, dropped


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_late_events_match_a_brute_force_model(tmp_path, seed):
    rng = random.Random(seed)
    events, t = [], 0.0
    for _ in range(300):
        t += rng.choice([0, 1, 2, 5])
        late_by = rng.choice([0, 0, 0, 2, 6, 25])
        events.append((float(max(0.0, t - late_by)), "k"))  # one key: emission order is total
    app = streams.App("grand", broker="memory://", data_dir=str(tmp_path))
    clicks = app.topic("clicks", key_type=str, partitions=1)
    results: list[FinalResult] = []
    counts = app.Table("r", default=int).hopping(
        10, 5, grace=4, emit="final", on_final=results.append
    )

    @app.agent(clicks)
    async def count(stream):
        async for _ in stream:
            counts["k"] += 1

    async def main():
        async with count.test_context() as ctx:
            for ts, key in events:
                await ctx.put(ts, key=key, timestamp=ts)
            return dict(counts.items()), counts.late_dropped

    stored, dropped = asyncio.run(main())
    expected_counts, expected_emitted, expected_dropped = _reference_windows(events, 10, 5, 4)
    assert expected_dropped > 0 and len(expected_emitted) > 10
    assert (stored, dropped) == (expected_counts, expected_dropped)
    assert [(r.key, r.start, r.value) for r in results] == expected_emitted


def test_a_window_expired_by_another_partitions_time_is_still_emitted(tmp_path):
    # Expiry goes by the newest event of any partition, closing by the window's own
    # partition: a window must not be deleted before its final value is out.
    app = streams.App("gexp", broker="memory://", data_dir=str(tmp_path), commit_interval_s=3600)
    clicks = app.topic("clicks", key_type=str, partitions=2)
    results: list[FinalResult] = []
    counts = app.Table("x", default=int).tumbling(
        10, grace=5, expires=5, emit="final", on_final=results.append
    )

    @app.agent(clicks)
    async def count(stream):
        async for key, _ in stream.items():
            counts[key] += 1

    async def main():
        async with count.test_context() as ctx:
            await ctx.put(1, key="slow", partition=1, timestamp=1)
            await ctx.put(1, key="fast", partition=0, timestamp=100)
            counts.expire()  # [0,10) is past expiry by time 100, but open in partition 1
            await ctx.put(1, key="slow", partition=1, timestamp=16)  # closes it there
            assert [(r.key, r.start, r.value) for r in results] == [("slow", 0.0, 1)]
            assert counts.expire() == 1  # emitted: now it goes
            assert ("slow", 0.0) not in dict(counts.items())

    asyncio.run(main())


async def _finals_across_a_crash(tmp_path, guarantee: str, crash_before_commit: bool) -> list:
    app = streams.App("eosf", broker="memory://", data_dir=str(tmp_path))
    app.set_processing_guarantee(guarantee)
    clicks = app.topic("clicks", key_type=str, partitions=1)
    finals = app.topic("finals", key_type=str, partitions=1)
    counts = app.Table("c", default=int).tumbling(10, grace=5, emit="final", on_final=finals)

    @app.agent(clicks)
    async def count(stream):
        async for key, _ in stream.items():
            counts[key] += 1

    async with TestDriver(app) as driver:
        for ts in (1, 12):
            await driver.send(clicks, 1, key="a", timestamp=ts)
        await driver.commit()
        await driver.send(clicks, 1, key="a", timestamp=16)  # closes [0,10): its final
        if not crash_before_commit:
            await driver.commit()
        await driver.send(clicks, 1, key="a", timestamp=17)
        await driver.crash()  # 17 (and, before the commit, 16) processed again
        await driver.send(clicks, 1, key="a", timestamp=30)  # closes [10,20)
        await driver.commit()
        return [(r["start"], r["value"]) for r in driver.read_values(finals)]


@pytest.mark.parametrize("crash_before_commit", [False, True])
def test_exactly_once_emits_each_final_result_once_across_a_crash(tmp_path, crash_before_commit):
    finals = asyncio.run(_finals_across_a_crash(tmp_path, "exactly_once", crash_before_commit))
    assert finals == [(0.0, 1), (10.0, 3)]


def test_at_least_once_repeats_a_final_emitted_after_the_last_commit(tmp_path):
    # the crash comes after [0,10) was emitted, before the commit that records it
    assert asyncio.run(_finals_across_a_crash(tmp_path, "at_least_once", True)) == [
        (0.0, 1),
        (0.0, 1),
        (10.0, 3),
    ]
    # committed with it: not repeated (the stream time is in the changelog)
    assert asyncio.run(_finals_across_a_crash(tmp_path / "b", "at_least_once", False)) == [
        (0.0, 1),
        (10.0, 3),
    ]
