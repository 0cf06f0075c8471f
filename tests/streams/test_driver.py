"""The test driver: records with explicit keys, values and timestamps through a
whole app, outputs and tables read back, time advanced by hand, a crash and
recovery from the changelogs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import streams
from streams.driver import DriverError, OutputRecord, TestDriver


class Ride(streams.Record):
    rider: str
    zone: str


def _surge_app(tmp_path) -> tuple[streams.App, dict[str, Any]]:
    app = streams.App("drv", broker="memory://", data_dir=str(tmp_path))
    rides = app.topic("rides", key_type=str, value_type=Ride, partitions=2)
    zones = app.topic("zones", key_type=str, partitions=2)
    quotes = app.topic("quotes", key_type=str, partitions=1)
    finals = app.topic("demand-finals", key_type=str, partitions=1)
    fares = app.Table("fares", key_type=str, partitions=2)
    demand = app.Table("demand", default=int, partitions=2).tumbling(
        60, grace=10, emit="final", on_final=finals
    )

    @app.agent(zones)
    async def keep_fares(stream):
        async for zone, fare in stream.items():
            fares[zone] = fare

    @app.agent(rides, sink=[quotes])
    async def quote(stream):
        async for ride, fare in stream.join(fares, how="left"):
            demand[ride.zone] += 1
            yield {"rider": ride.rider, "fare": fare, "demand": demand[ride.zone].current()}

    return app, {"rides": rides, "zones": zones, "quotes": quotes, "finals": finals}


def test_records_through_a_join_and_a_window_read_back_in_order(tmp_path):
    app, t = _surge_app(tmp_path)

    async def main():
        async with TestDriver(app) as driver:
            await driver.send(t["zones"], 2.5, key="a")
            await driver.send(t["rides"], Ride(rider="r1", zone="a"), key="a", timestamp=5)
            await driver.send(t["rides"], Ride(rider="r2", zone="a"), key="a", timestamp=30)
            await driver.send(t["rides"], Ride(rider="r3", zone="b"), key="b", timestamp=61)
            assert driver.read_values(t["quotes"]) == [
                {"rider": "r1", "fare": 2.5, "demand": 1},
                {"rider": "r2", "fare": 2.5, "demand": 2},
                {"rider": "r3", "fare": None, "demand": 1},
            ]
            assert driver.read(t["finals"]) == []  # [0,60) of a closes at 70
            assert driver.read(t["quotes"]) == []  # read() returns what is new
            # a's partition reaches stream time 70 only with an event of its own
            await driver.send(t["rides"], Ride(rider="r4", zone="a"), key="a", timestamp=70)
            finals = driver.read(t["finals"])
            assert finals == [
                OutputRecord("a", {"key": "a", "start": 0.0, "end": 60.0, "value": 2}, 60.0, 0, 0)
            ]
            assert dict(app.tables["demand"].items()) == {
                ("a", 0.0): 2,
                ("a", 60.0): 1,
                ("b", 60.0): 1,
            }

    asyncio.run(main())


def test_advance_time_fires_timers_and_crontabs_in_order(tmp_path):
    app = streams.App("drvt", broker="memory://", data_dir=str(tmp_path))
    calls: list[tuple[str, float]] = []
    driver = TestDriver(app, start_time=0.0)

    @app.timer(25.0)
    async def every_25s():
        calls.append(("timer", driver.now))

    @app.crontab("* * * * *")
    def every_minute():
        calls.append(("cron", driver.now))

    async def main():
        async with driver:
            await driver.advance_time(24.9)
            assert calls == []
            await driver.advance_time(100.1)  # to 125
            assert driver.now == 125.0
        assert calls == [
            ("timer", 25.0),
            ("timer", 50.0),
            ("cron", 60.0),
            ("timer", 75.0),
            ("timer", 100.0),
            ("cron", 120.0),
            ("timer", 125.0),
        ]
        assert app.timers and app.crontabs  # given back to the app

    asyncio.run(main())


SESSION_EVENTS = [(0, "u"), (5, "u"), (30, "u"), (18, "u"), (24, "u"), (12, "u"), (50, "u")]


def _session_app(tmp_path) -> tuple[streams.App, Any, Any]:
    app = streams.App("drvs", broker="memory://", data_dir=str(tmp_path))
    clicks = app.topic("clicks", key_type=str, partitions=1)
    finished = app.topic("finished", key_type=str, partitions=1)
    app.Table("visits", default=int).session(10, grace=5, emit="final", on_final=finished)

    @app.agent(clicks)
    async def count(stream):
        visits = app.tables["visits"].windowed
        async for key, _ in stream.items():
            visits[key] += 1

    return app, clicks, finished


async def _run_sessions(tmp_path, crash_after: int | None) -> tuple[dict[Any, Any], list[Any]]:
    app, clicks, finished = _session_app(tmp_path)
    async with TestDriver(app) as driver:
        for i, (ts, key) in enumerate(SESSION_EVENTS):
            await driver.send(clicks, ts, key=key, timestamp=ts)
            if i == 1:
                await driver.commit()
            if i == crash_after:
                # [0,5] is in the changelog; [30,30] and [18,18] only in memory
                await driver.crash()
        return dict(app.tables["visits"].items()), driver.read_values(finished)


def test_a_crash_mid_session_recovers_to_the_results_of_an_uninterrupted_run(tmp_path):
    uninterrupted = asyncio.run(_run_sessions(tmp_path / "a", None))
    crashed = asyncio.run(_run_sessions(tmp_path / "b", 3))
    assert uninterrupted == (
        {("u", 0.0, 5.0): 2, ("u", 18.0, 30.0): 3, ("u", 50.0, 50.0): 1},
        [
            {"key": "u", "start": 0.0, "end": 5.0, "value": 2},
            {"key": "u", "start": 18.0, "end": 30.0, "value": 3},
        ],
    )
    # At least once: the final of [0,5], emitted by the event at 30 before the
    # crash, is emitted again when that event is processed again.
    table, finals = crashed
    assert table == uninterrupted[0]
    assert finals == [uninterrupted[1][0], *uninterrupted[1]]


def test_an_agent_failure_is_raised_by_send(tmp_path):
    app = streams.App("drvf", broker="memory://", data_dir=str(tmp_path))
    numbers = app.topic("numbers", partitions=1)

    @app.agent(numbers)
    async def invert(stream):
        async for n in stream:
            1 / n

    async def main():
        async with TestDriver(app) as driver:
            await driver.send(numbers, 2)
            with pytest.raises(DriverError, match="the app failed") as info:
                await driver.send(numbers, 0)
            assert isinstance(info.value.__cause__, streams.AgentError)
            assert isinstance(info.value.__cause__.__cause__, ZeroDivisionError)

    asyncio.run(main())


def test_read_of_an_unknown_topic_name_is_a_clear_error(tmp_path):
    app = streams.App("drvu", broker="memory://", data_dir=str(tmp_path))

    async def main():
        async with TestDriver(app) as driver:
            with pytest.raises(KeyError, match="no topic 'nope'"):
                driver.read("nope")
            with pytest.raises(ValueError, match="seconds must be >= 0"):
                await driver.advance_time(-1)
            with pytest.raises(DriverError, match="no windowed table"):
                await driver.advance_stream_time(by=1)

    asyncio.run(main())


def test_advance_stream_time_closes_windows_and_sessions_without_a_record(tmp_path):
    app = streams.App("drvst", broker="memory://", data_dir=str(tmp_path))
    clicks = app.topic("clicks", key_type=str, partitions=2)
    finals = app.topic("finals", key_type=str, partitions=1)
    counts = app.Table("counts", default=int, partitions=2).tumbling(
        10, grace=5, emit="final", on_final=finals
    )
    visits = app.Table("visits", default=int, partitions=2).session(
        3, emit="final", on_final=finals
    )

    @app.agent(clicks)
    async def count(stream):
        async for key, _ in stream.items():
            counts[key] += 1
            visits[key] += 1

    async def main():
        async with TestDriver(app) as driver:
            await driver.send(clicks, 1, key="a", partition=0, timestamp=1)
            await driver.send(clicks, 1, key="b", partition=1, timestamp=2)
            await driver.advance_stream_time(to=4, partition=0)  # 1 + 3 + 0 < 4 is false
            assert driver.read_values(finals) == []
            await driver.advance_stream_time(to=4.5, partition=0)  # a's session closes
            assert driver.read_values(finals) == [
                {"key": "a", "start": 1.0, "end": 1.0, "value": 1}
            ]
            await driver.advance_stream_time(by=12.5, partition=0)  # 17 >= 10 + 5: [0,10)
            assert driver.read_values(finals) == [
                {"key": "a", "start": 0.0, "end": 10.0, "value": 1}
            ]
            await driver.advance_stream_time(to=3, partition=0)  # never back
            await driver.advance_stream_time(to=15)  # partition 1: b's window, session
            assert driver.read_values(finals) == [
                {"key": "b", "start": 0.0, "end": 10.0, "value": 1},
                {"key": "b", "start": 2.0, "end": 2.0, "value": 1},
            ]
            assert counts.closer.stream_time == {0: 17.0, 1: 15.0}
            with pytest.raises(ValueError, match="exactly one of"):
                await driver.advance_stream_time(to=1, by=1)
            with pytest.raises(ValueError, match="no partition 5"):
                await driver.advance_stream_time(by=1, partition=5)

    asyncio.run(main())


def test_an_exactly_once_app_sends_downstream_at_each_commit(tmp_path):
    app = streams.App("drveos", broker="memory://", data_dir=str(tmp_path))
    app.set_processing_guarantee("exactly_once")
    numbers = app.topic("numbers", partitions=1)
    doubled = app.topic("doubled", partitions=1)
    sums = app.topic("sums", partitions=1)
    running = app.Table("running", default=int, partitions=1)

    @app.agent(numbers, sink=[doubled])
    async def double(stream):
        async for n in stream:
            yield 2 * n

    @app.agent(doubled, sink=[sums])
    async def total(stream):
        async for n in stream:
            running["sum"] += n
            yield running["sum"]

    async def main():
        async with TestDriver(app) as driver:
            await driver.send(numbers, 1)
            await driver.send(numbers, 2)
            assert driver.read_values(doubled) == []  # not committed yet
            await driver.commit()  # 2 and 4 committed: `total` reads them
            assert driver.read_values(doubled) == [2, 4]
            assert driver.read_values(sums) == []
            await driver.send(numbers, 3)
            await driver.crash()  # the open transaction (sums 2, 6; doubled 6) aborted
            await driver.commit()  # 3 and 2, 4 processed again, committed once
            assert driver.read_values(doubled) == [6]
            assert driver.read_values(sums) == [2, 6]
            await driver.commit()
            assert driver.read_values(sums) == [12]
            assert running["sum"] == 12

    asyncio.run(main())
