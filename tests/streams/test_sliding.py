"""Sliding windows (Kafka Streams' SlidingWindows) against hand-computed windows,
a brute-force model over random out-of-order inputs, and stream time moved by hand."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from waiting import wait_until_async

import streams
from streams.driver import TestDriver
from streams.worker import Worker


def _app(tmp_path, size: float = 10, **sliding: Any) -> tuple[streams.App, Any, Any, list]:
    app = streams.App("sl", broker="memory://", data_dir=str(tmp_path))
    clicks = app.topic("clicks", key_type=str, partitions=1)
    finals: list[streams.FinalResult] = []
    if sliding.get("emit") == "final":
        sliding.setdefault("on_final", finals.append)
    table = app.Table("recent", default=int).sliding(size, **sliding)
    reads: list[Any] = []

    @app.agent(clicks)
    async def count(stream):
        async for key, n in stream.items():
            table[key] += n
            reads.append(table[key].current())

    return app, clicks, table, reads if sliding.get("emit") != "final" else finals


def test_windows_per_distinct_record_time_with_out_of_order_and_late_records(tmp_path):
    app, clicks, table, finals = _app(tmp_path, grace=5, emit="final")

    async def main():
        async with TestDriver(app) as driver:
            for ts in (8, 12, 24):
                await driver.send(clicks, 1, key="k", timestamp=ts)
            # stream time 24 closes (end + 5 < 24) the windows ending at 8, 12, 18.001
            assert [(f.start, f.end, f.value) for f in finals] == [
                (-2.0, 8.0, 1),
                (2.0, 12.0, 2),
                (8.001, 18.001, 1),  # the right window of 8: just 12
            ]
            # out of order, within grace: its left window [10,20], the right window
            # of 12 ([12.001,22.001]) and its own ([20.001,30.001], holding 24) are
            # made, [14,24] updated
            await driver.send(clicks, 1, key="k", timestamp=20)
            await driver.send(clicks, 1, key="k", timestamp=5)  # 5 + 10 + 5 < 24: late
            assert table.late_dropped == 1
            # partly late: updates the open [10,20] and [12.001,22.001]; its own left
            # window [3,13] and [8.001,18.001] are closed; makes [13.001,23.001]
            await driver.send(clicks, 1, key="k", timestamp=13)
            assert table.windows("k") == [
                (-2.0, 8.0, 1),
                (2.0, 12.0, 2),
                (8.001, 18.001, 1),
                (10.0, 20.0, 3),
                (12.001, 22.001, 2),
                (13.001, 23.001, 1),
                (14.0, 24.0, 2),
                (20.001, 30.001, 1),
            ]
            assert dict(table.items()) == {(("k", s)): v for s, _, v in table.windows("k")}
            await driver.commit()  # expires (size + grace) past its end: [-2,8] only
            assert table.windows("k")[0] == (2.0, 12.0, 2)
            await driver.advance_stream_time(to=100)
        assert [(f.start, f.end, f.value) for f in finals[3:]] == [
            (10.0, 20.0, 3),
            (12.001, 22.001, 2),
            (13.001, 23.001, 1),
            (14.0, 24.0, 2),
            (20.001, 30.001, 1),
        ]
        assert table.late_dropped == 1

    asyncio.run(main())


def test_current_reads_the_aggregate_of_the_last_size(tmp_path):
    app, clicks, _, reads = _app(tmp_path, grace=100)

    async def main():
        async with TestDriver(app) as driver:
            for ts, n in ((0, 1), (4, 2), (10, 4), (10.5, 8), (3, 16)):
                await driver.send(clicks, n, key="k", timestamp=ts)
        # [t-10, t] at each event: {0}, {0,4}, {0,4,10}, {4,10,10.5}, [-7,3] = {0,3}
        assert reads == [1, 3, 7, 14, 17]

    asyncio.run(main())


def _model(events: list[tuple[int, str]], size: int) -> dict[tuple[str, float], int]:
    """Kafka Streams' windows by definition: the left window of every record, the
    right window of every record that holds one; each counts the records in it."""
    out: dict[tuple[str, float], int] = {}
    for key in {k for _, k in events}:
        times = [t for t, k in events if k == key]
        for start in {t - size for t in times} | {t + 1 for t in times}:
            n = sum(1 for t in times if start <= t <= start + size)
            if n:
                out[(key, start / 1000)] = n
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_out_of_order_input_matches_the_brute_force_model(tmp_path, seed):
    rng = random.Random(seed)
    events: list[tuple[int, str]] = []
    for i in range(60):
        # ms, out of order; multiples of 1/8 s, exact as float seconds
        t = i * 750 + rng.choice([0, 0, 0, -125 * rng.randrange(0, 72)])
        events.append((max(t, 0), rng.choice("ab")))
    app, clicks, table, finals = _app(tmp_path, 5, grace=20, emit="final")

    async def main():
        async with TestDriver(app) as driver:
            for t, key in events:
                await driver.send(clicks, 1, key=key, timestamp=t / 1000)
            stored = dict(table.items())
            await driver.advance_stream_time(by=60)
        return stored

    stored = asyncio.run(main())
    expected = _model(events, 5000)
    assert stored == expected
    assert {(f.key, f.start): f.value for f in finals} == expected
    assert len(finals) == len(expected)  # each window once
    assert table.late_dropped == 0


def test_bad_settings_are_clear_errors(tmp_path):
    app = streams.App("slbad", broker="memory://", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="size must be"):
        app.Table("a", default=int).sliding(0)
    with pytest.raises(ValueError, match="expires"):
        app.Table("b", default=int).sliding(10, grace=5, expires=1)
    with pytest.raises(ValueError, match="on_final"):
        app.Table("c", default=int).sliding(10, emit="final")
    with pytest.raises(streams.ConfigurationError, match="default="):
        app.Table("d").sliding(10)


def test_the_example_of_kafka_streams_slidingwindows_javadoc(tmp_path):
    """Time difference 5000 ms; records A=1 at 8000, A=2 at 9200, A=3 at 12400."""
    app = streams.App("slkafka", broker="memory://", data_dir=str(tmp_path))
    values = app.topic("values", key_type=str, value_type=int, partitions=1)
    seen = app.Table("seen", default=list).sliding(5)

    @app.agent(values)
    async def collect(stream):
        async for key, value in stream.items():
            seen[key] += [value]

    async def main():
        async with TestDriver(app) as driver:
            for value, ts in ((1, 8.0), (2, 9.2), (3, 12.4)):
                await driver.send(values, value, key="A", timestamp=ts)
            return seen.windows("A")

    assert asyncio.run(main()) == [
        (3.0, 8.0, [1]),
        (4.2, 9.2, [1, 2]),
        (7.4, 12.4, [1, 2, 3]),
        (8.001, 13.001, [2, 3]),
        (9.201, 14.201, [3]),
    ]


def test_delta_set_and_expiry_of_the_buffered_records(tmp_path):
    app = streams.App("slexp", broker="memory://", data_dir=str(tmp_path))
    values = app.topic("values", key_type=str, value_type=int, partitions=1)
    latest = app.Table("latest", default=int).sliding(10, grace=2, expires=3)
    reads: list[tuple[int, int]] = []

    @app.agent(values)
    async def keep(stream):
        async for key, value in stream.items():
            latest[key] = value  # `=`: the last value of each window, in arrival order
            reads.append((latest[key].current(), latest[key].delta(6)))

    async def main():
        async with TestDriver(app) as driver:
            for value, ts in ((5, 1.0), (7, 4.0), (9, 8.0)):
                await driver.send(values, value, key="k", timestamp=ts)
            store = app.tables["latest"].partitions[0]
            buffered = sum(1 for key, _ in store.items() if len(key) == 4)
            await driver.advance_stream_time(by=100)
            await driver.commit()
            left = [key for key, _ in store.items()]
            return buffered, left, latest.windows("k")

    buffered, left, windows = asyncio.run(main())
    # at 8, delta(6) is [-8, 2]: the window of the record at 1
    assert reads == [(5, 0), (7, 0), (9, 5)]
    assert buffered == 3
    assert left == ["~stream-time"] and windows == []  # all past size + grace / expires


def _model_with_grace(
    events: list[tuple[int, str]], size: int, grace: int
) -> tuple[dict[tuple[str, float], int], int]:
    """Arrival by arrival, by brute force over every record so far: the windows the
    records define that hold the new one (and its right window), updated or made
    while open (end + grace >= stream time); records no open window holds dropped."""
    windows: dict[tuple[str, int], int] = {}
    kept: list[tuple[int, str]] = []
    stream_time, dropped = None, 0
    for t, key in events:
        stream_time = t if stream_time is None else max(stream_time, t)
        close = stream_time - grace
        if t + size < close:
            dropped += 1
            continue
        mine = [r for r, k in kept if k == key]
        starts = {r - size for r in [*mine, t]} | {r + 1 for r in mine}
        for start in sorted(starts):
            if not start <= t <= start + size or start + size < close:
                continue
            old = windows.get((key, start))
            windows[(key, start)] = (
                old + 1 if old is not None else 1 + sum(start <= r <= start + size for r in mine)
            )
        right = t + 1
        inside = sum(right <= r <= right + size for r in mine)
        if (key, right) not in windows and right + size >= close and inside:
            windows[(key, right)] = inside
        kept.append((t, key))
    return {(k, s / 1000): n for (k, s), n in windows.items()}, dropped


@pytest.mark.parametrize("seed", [4, 5])
def test_random_input_with_late_records_matches_the_arrival_model(tmp_path, seed):
    rng = random.Random(seed)
    events = []
    for i in range(80):
        t = i * 500 + rng.choice([0, 0, -125 * rng.randrange(0, 120)])  # up to 15 s late
        events.append((max(t, 0), rng.choice("ab")))
    app, clicks, table, _ = _app(tmp_path, 4, grace=2, expires=1000)

    async def main():
        async with TestDriver(app) as driver:
            for t, key in events:
                await driver.send(clicks, 1, key=key, timestamp=t / 1000)
            return dict(table.items())

    stored = asyncio.run(main())
    expected, dropped = _model_with_grace(events, 4000, 2000)
    assert dropped > 0 and table.late_dropped == dropped
    assert stored == expected


def test_sliding_windows_on_every_transport(make_app):
    app = make_app("slx")
    clicks = app.topic("slx-clicks", key_type=str, partitions=1)
    finals: list[streams.FinalResult] = []
    table = app.Table("recent", default=int).sliding(
        10, grace=5, emit="final", on_final=finals.append
    )
    done: list[float] = []

    @app.agent(clicks)
    async def count(stream):
        async for event in stream.events():
            table[event.key] += 1
            done.append(event.message.timestamp)

    # Stream time 24 closes the windows ending at 8, 12 and 18.001; 20 is out of
    # order within grace, 5 late (5 + 10 + 5 < 24); 100 closes (and expires) the rest.
    sent = [8, 12, 24, 20, 5, 100]

    async def main():
        async with Worker(app):
            for ts in sent[:-1]:
                await clicks.send(key="k", value=ts, timestamp=ts)
            await wait_until_async(lambda: len(done) == 5, timeout_s=30.0, what="5 events")
            assert table.late_dropped == 1
            # the windows by start, before 100 expires them; [-2, 8] may be already
            assert [w for w in table.windows("k") if w[1] > 12] == [
                (8.001, 18.001, 1),
                (10.0, 20.0, 2),
                (12.001, 22.001, 1),
                (14.0, 24.0, 2),
                (20.001, 30.001, 1),
            ]
            await clicks.send(key="k", value=100, timestamp=100)
            await wait_until_async(lambda: len(finals) == 7, timeout_s=30.0, what="7 finals")

    asyncio.run(main())
    assert [(f.start, f.end, f.value) for f in finals] == [
        (-2.0, 8.0, 1),
        (2.0, 12.0, 2),
        (8.001, 18.001, 1),
        (10.0, 20.0, 2),
        (12.001, 22.001, 1),
        (14.0, 24.0, 2),
        (20.001, 30.001, 1),
    ]


class Hit(streams.Record):
    page: str
    at: float
    forget: bool = False


def test_del_and_relative_to_field_on_a_sliding_table(tmp_path):
    app = streams.App("sldel", broker="memory://", data_dir=str(tmp_path))
    hits = app.topic("hits", value_type=Hit, partitions=1)
    recent = app.Table("recent", key_type=str, default=int).sliding(10, grace=100)
    by_field = recent.relative_to_field(Hit.at)
    reads: list[int] = []

    @app.agent(hits)
    async def count(stream):
        async for hit in stream:
            if hit.forget:
                del by_field[hit.page]
            else:
                by_field[hit.page] += 1
                reads.append(by_field[hit.page].current())

    async def main() -> None:
        async with TestDriver(app) as driver:
            # record timestamps 1000 s on: the windows follow the field instead
            for i, at in enumerate([0.0, 4.0]):
                await driver.send(hits, Hit(page="p", at=at), timestamp=1000.0 + i)
            assert recent.windows("p") == [(-10.0, 0.0, 1), (-6.0, 4.0, 2), (0.001, 10.001, 1)]
            await driver.send(hits, Hit(page="p", at=5.0, forget=True), timestamp=1002.0)
            assert recent.windows("p") == [] and dict(recent.items()) == {}
            # the buffered records went too: [-2, 8] holds the new record only
            await driver.send(hits, Hit(page="p", at=8.0), timestamp=1003.0)
            assert recent.windows("p") == [(-2.0, 8.0, 1)]
            await driver.send(hits, Hit(page="p", at=-200.0), timestamp=1004.0)  # late
            assert recent.late_dropped == 1  # counted on the table, not the view
            await driver.commit()
            await driver.crash()  # the tombstones reached the changelog
            assert recent.windows("p") == [(-2.0, 8.0, 1)]
        # current() of the view is at the field's time: [-210, -200] holds nothing
        assert reads == [1, 2, 1, 0]

    asyncio.run(main())
