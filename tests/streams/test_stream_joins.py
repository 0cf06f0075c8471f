"""Windowed stream-stream joins: inner, left, outer, out-of-order and late events,
expiry, a crash mid-window, and one run on every transport."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest
from waiting import wait_until_async

import streams
from streams.driver import DriverError, TestDriver
from streams.worker import Worker


def _app(
    tmp_path, how: str, *, click_partitions: int = 1, guarantee: str = "at_least_once"
) -> dict[str, Any]:
    app = streams.App(
        "sj", broker="memory://", data_dir=str(tmp_path), processing_guarantee=guarantee
    )
    views = app.topic("views", key_type=str, partitions=1)
    clicks = app.topic("clicks", key_type=str, partitions=click_partitions)
    joined = app.topic("joined", key_type=str, partitions=1)
    windows = app.JoinWindows("views-clicks", within=10, grace=5)

    @app.agent(views)
    async def attribute(stream):
        async for result in stream.join(clicks, windows=windows, how=how).results():
            joined.send_soon(result.key, [result.left, result.right], timestamp=result.timestamp)

    return {"app": app, "L": views, "R": clicks, "joined": joined, "windows": windows}


# (side, key, value, timestamp); before = after = 10 s, grace 5 s.
EVENTS: list[tuple[str, str, str, float]] = [
    ("L", "a", "v1", 0),
    ("R", "a", "c1", 5),  # joins v1
    ("L", "b", "v2", 8),
    ("R", "a", "c2", 3),  # out of order, its window still open: joins v1
    ("L", "a", "v3", 12),  # joins c2 (at 3) then c1 (at 5)
    ("R", "c", "c3", 30),  # right time 30 closes v1, v2 (unmatched), v3: ends + 15 < 30
    ("L", "a", "late", 1),  # more than 5 s behind the left time (12): late, dropped
    ("L", "c", "v4", 31),  # left time 31 closes c2 and c1; joins c3
    ("R", "d", "c4", 50),  # closes v4
    ("L", "x", "v5", 100),  # closes c3, and c4 (unmatched)
]
INNER = [
    ("a", ["v1", "c1"], 5.0),
    ("a", ["v1", "c2"], 3.0),
    ("a", ["v3", "c2"], 12.0),
    ("a", ["v3", "c1"], 12.0),
]
V2_ALONE = ("b", ["v2", None], 8.0)
C3_V4 = ("c", ["v4", "c3"], 31.0)
EXPECTED = {
    "inner": [*INNER, C3_V4],
    "left": [*INNER, V2_ALONE, C3_V4],
    "outer": [*INNER, V2_ALONE, C3_V4, ("d", [None, "c4"], 50.0)],
}


async def _run(
    parts: dict[str, Any], *, crash_after: int | None = None, late: int = 1
) -> list[Any]:
    async with TestDriver(parts["app"]) as driver:
        for i, (side, key, value, ts) in enumerate(EVENTS):
            await driver.send(parts[side], value, key=key, timestamp=ts)
            if i == 3:
                await driver.commit()
            if i == crash_after:
                await driver.crash()
        windows = parts["windows"]
        assert windows.late_dropped == late  # counted again when replayed
        # The others expired: only v5 stays buffered (its offset: past transaction
        # markers under exactly_once).
        assert [(k[:3], v) for k, v in windows.items()] == [
            (("left", "x", 100.0), {"matched": False, "value": "v5"})
        ]
        await driver.commit()  # under exactly_once, what is read is what committed
        return [(r.key, r.value, r.timestamp) for r in driver.read(parts["joined"])]


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
def test_a_windowed_join_matches_hand_computed_results(tmp_path, how):
    assert asyncio.run(_run(_app(tmp_path, how))) == EXPECTED[how]


def test_a_crash_mid_window_recovers_the_buffers_from_the_changelog(tmp_path):
    # Committed after the 4th event; the 5th (v3, which joins c2 and c1 from the
    # changelog) is processed again after the crash: at least once.
    crashed = asyncio.run(_run(_app(tmp_path / "b", "outer"), crash_after=4))
    uninterrupted = EXPECTED["outer"]
    assert crashed == uninterrupted[:4] + uninterrupted[2:]


def test_the_results_do_not_depend_on_how_the_two_topics_interleave(tmp_path):
    # All views first, then all clicks (one topic read far ahead of the other):
    # the clicks are not late, the views wait in the buffer for them.
    parts = _app(tmp_path, "outer")
    in_order = sorted(EVENTS, key=lambda e: e[0] == "R")

    async def main() -> list[Any]:
        async with TestDriver(parts["app"]) as driver:
            for side, key, value, ts in in_order:
                await driver.send(parts[side], value, key=key, timestamp=ts)
            assert parts["windows"].late_dropped == 1  # "late", 11 s behind the views
            assert [k for k, _ in parts["windows"].items()] == [("left", "x", 100.0, 5)]
            return [(r.key, r.value, r.timestamp) for r in driver.read(parts["joined"])]

    results = asyncio.run(main())
    assert sorted(results, key=repr) == sorted(EXPECTED["outer"], key=repr)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_crash_with_both_topics_to_replay_gives_the_same_results(tmp_path, guarantee):
    # Committed after the 4th event; the 5th to 7th (both topics) are processed
    # again after the crash, in whatever order the two topics come back. Under
    # at_least_once what they emitted before the crash is emitted again; under
    # exactly_once it was aborted.
    parts = _app(tmp_path, "outer", guarantee=guarantee)
    crashed = asyncio.run(_run(parts, crash_after=6, late=2))
    uninterrupted = EXPECTED["outer"]
    replayed = uninterrupted[2:5] if guarantee == "at_least_once" else []  # v3's pairs, v2
    assert sorted(crashed, key=repr) == sorted(uninterrupted + replayed, key=repr)


def test_an_unmatched_event_is_emitted_once_and_never_matched_later(tmp_path):
    parts = _app(tmp_path, "left")

    async def main() -> list[Any]:
        async with TestDriver(parts["app"]) as driver:
            await driver.send(parts["L"], "v", key="k", timestamp=0)
            await driver.send(parts["R"], "other", key="z", timestamp=16)  # closes v at 15
            # Within 10 s of v, but more than the grace behind the right time (16):
            # late, so v, emitted alone already, is never matched.
            await driver.send(parts["R"], "c", key="k", timestamp=9)
            await driver.send(parts["R"], "later", key="z", timestamp=40)
            return [(r.key, r.value) for r in driver.read(parts["joined"])]

    assert asyncio.run(main()) == [("k", ["v", None])]


def test_stream_join_errors(tmp_path):
    with pytest.raises(ValueError, match="within"):
        streams.App("e", broker="memory://").JoinWindows("w", before=1)
    with pytest.raises(ValueError, match="grace must be a finite number of seconds >= 0"):
        streams.App("e", broker="memory://").JoinWindows("w", within=1, grace=-1)
    with pytest.raises(ValueError, match=r"after must be .* got 'soon'"):
        streams.App("e", broker="memory://").JoinWindows("w", before=1, after="soon")
    parts = _app(tmp_path, "inner", click_partitions=2)

    async def main() -> None:
        async with TestDriver(parts["app"]) as driver:
            await driver.send(parts["L"], "v", key="k", timestamp=0)

    with pytest.raises(DriverError) as info:  # when the agent starts: before any event
        asyncio.run(main())
    assert isinstance(info.value.__cause__, streams.AgentError)
    cause = info.value.__cause__.__cause__
    assert isinstance(cause, streams.ConfigurationError)
    assert "not co-partitioned" in str(cause) and "topic 'clicks' has 2" in str(cause)
    assert "repartition=True" in str(cause)  # the error names the way out


def test_a_join_with_a_topic_needs_join_windows(tmp_path):
    app = streams.App("e2", broker="memory://", data_dir=str(tmp_path))
    views = app.topic("views", key_type=str, partitions=1)
    clicks = app.topic("clicks", key_type=str, partitions=1)
    errors: list[str] = []

    @app.agent(views)
    async def attribute(stream):
        for kwargs in ({}, {"windows": app.tables["w"], "how": "cross"}):
            try:
                stream.join(clicks, **kwargs)
            except ValueError as exc:
                errors.append(str(exc))
        async for _ in stream:
            pass

    app.JoinWindows("w", within=1)

    async def main() -> None:
        async with TestDriver(app):
            pass

    asyncio.run(main())
    assert "windows=app.JoinWindows" in errors[0]
    assert "'inner', 'left' or 'outer'" in errors[1]


def test_an_inner_stream_join_on_every_transport(make_app):
    app = make_app("sjx")
    views = app.topic("sjx-views", key_type=str, partitions=2)
    clicks = app.topic("sjx-clicks", key_type=str, partitions=2)
    windows = app.JoinWindows("sjx-w", within=60, partitions=2)
    pairs: list[tuple[str, str, str]] = []

    @app.agent(views)
    async def attribute(stream):
        async for key, (view, click) in stream.join(clicks, windows=windows).items():
            pairs.append((key, view, click))

    async def main() -> None:
        async with Worker(app):
            now = 1_700_000_000.0
            for key in ("a", "b"):
                await views.send(key=key, value=f"v-{key}", timestamp=now)
            await clicks.send(key="a", value="c-a", timestamp=now + 1)
            await clicks.send(key="b", value="c-b", timestamp=now + 2)
            await wait_until_async(lambda: len(pairs) == 2, timeout_s=30.0, what="2 pairs")

    asyncio.run(main())
    assert sorted(pairs) == [("a", "v-a", "c-a"), ("b", "v-b", "c-b")]


def test_the_readme_stream_join_example(tmp_path):
    class View(streams.Record):
        ad: str

    class Click(streams.Record):
        ad: str

    app = streams.App("readme", broker="memory://", data_dir=str(tmp_path))
    views = app.topic("views", key_type=str, value_type=View, partitions=2)
    clicks = app.topic("clicks", key_type=str, value_type=Click, partitions=2)
    attributed = app.topic("attributed", key_type=str, partitions=1)
    views_clicks = app.JoinWindows("views-clicks", within=60, grace=10)

    @app.agent(views, sink=[attributed])
    async def attribute(stream):
        async for view, click in stream.join(clicks, windows=views_clicks, how="left"):
            yield {"ad": view.ad, "clicked": click is not None}

    async def main() -> list[Any]:
        async with TestDriver(app) as driver:
            await driver.send(views, View(ad="x"), key="x", timestamp=0)
            await driver.send(views, View(ad="y"), key="y", timestamp=1)
            await driver.send(clicks, Click(ad="x"), key="x", timestamp=30)
            # Stream time is per partition: move each one past 60 + 10 s.
            for key in ("x", "y", "z", "w"):
                await driver.send(clicks, Click(ad=key), key=key, timestamp=100)
            return sorted(driver.read_values(attributed), key=lambda v: v["ad"])

    assert asyncio.run(main()) == [
        {"ad": "x", "clicked": True},
        {"ad": "y", "clicked": False},
    ]


def test_an_aborted_transaction_takes_the_buffers_back_to_the_last_commit(tmp_path):
    parts = _app(tmp_path, "inner")
    windows = parts["windows"]

    async def main() -> None:
        async with TestDriver(parts["app"]) as driver:
            await driver.send(parts["L"], "v", key="a", timestamp=0)
            await driver.commit()
            await driver.send(parts["R"], "far", key="z", timestamp=100)  # closes v
            assert windows.buffered[0].stream_time == {b"L": 0.0, b"R": 100.0}
            assert [k for k, _ in windows.items()] == [("right", "z", 100.0, 0)]
            windows.discard_uncommitted()  # what an exactly-once abort does
            # The rewound event comes again: neither late nor closing v from memory.
            assert windows.buffered[0].stream_time == {b"L": 0.0, b"R": -math.inf}
            assert [k for k, _ in windows.items()] == [("left", "a", 0.0, 0)]
            assert list(windows.buffered[0].entries) == [(b"L", b"a")]

    asyncio.run(main())


def test_a_stream_join_asked_to_repartition_re_keys_the_stream_like_the_other_topic(tmp_path):
    class View(streams.Record):
        user: str
        ad: str

    app = streams.App("sjr", broker="memory://", data_dir=str(tmp_path))
    views = app.topic("views", key_type=str, value_type=View, partitions=2)  # keyed by user
    clicks = app.topic("clicks", key_type=str, partitions=3)  # keyed by ad
    windows = app.JoinWindows("vc", within=60, partitions=3)
    pairs: list[tuple[str, str, str | None]] = []

    @app.agent(views)
    async def attribute(stream):
        joined = stream.join(
            clicks, windows=windows, how="left", key=lambda v: v.ad, repartition=True
        )
        async for ad, (view, click) in joined.items():
            pairs.append((ad, view.user, click))

    async def main() -> None:
        async with TestDriver(app) as driver:
            await driver.send(views, View(user="u1", ad="x"), key="u1", timestamp=0)
            await driver.send(views, View(user="u2", ad="y"), key="u2", timestamp=1)
            await driver.send(clicks, "click-x", key="x", timestamp=10)
            for ad in ("x", "y", "z"):  # every partition's clicks move past 61 s
                await driver.send(clicks, "later", key=ad, timestamp=200)
            assert windows.partition_count == 3

    asyncio.run(main())
    assert sorted(pairs) == [("x", "u1", "click-x"), ("y", "u2", None)]


def test_a_stream_join_key_needs_repartition(tmp_path):
    app = streams.App("sjk", broker="memory://", data_dir=str(tmp_path))
    views = app.topic("views", key_type=str, partitions=1)
    clicks = app.topic("clicks", key_type=str, partitions=1)
    windows = app.JoinWindows("vc", within=1)
    errors: list[str] = []

    @app.agent(views)
    async def attribute(stream):
        try:
            stream.join(clicks, windows=windows, key=len)
        except ValueError as exc:
            errors.append(str(exc))
        async for _ in stream:
            pass

    async def main() -> None:
        async with TestDriver(app):
            pass

    asyncio.run(main())
    assert errors and "pass repartition=True too" in errors[0]


def test_late_join_events_are_counted_in_the_worker_metrics_and_logged(tmp_path, caplog):
    from prometheus_client.parser import text_string_to_metric_families

    from streams.web.metrics import WorkerMetrics

    parts = _app(tmp_path, "inner")
    caplog.set_level(logging.DEBUG, logger="streams.stream_joins")

    def late_dropped(worker: Any) -> dict[str, float]:
        text = WorkerMetrics(worker).render().decode()
        return {
            s.labels["join"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "streams_join_late_dropped_total"
        }

    async def main() -> None:
        async with TestDriver(parts["app"]) as driver:
            await driver.send(parts["L"], "v1", key="a", timestamp=20)
            assert late_dropped(driver.worker) == {"views-clicks": 0}
            await driver.send(parts["L"], "v0", key="a", timestamp=14)  # 6 s > grace 5 s
            await driver.send(parts["R"], "c0", key="a", timestamp=1)  # its side's first: kept
            await driver.send(parts["L"], "v2", key="a", timestamp=15)  # within grace: kept
            assert late_dropped(driver.worker) == {"views-clicks": 1}

    asyncio.run(main())
    dropped = [r for r in caplog.records if "late event dropped" in r.getMessage()]
    assert [r.levelno for r in dropped] == [logging.DEBUG]
    assert "timestamp=14" in dropped[0].getMessage()
