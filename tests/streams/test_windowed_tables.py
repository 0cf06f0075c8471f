"""Windowed tables against hand-computed values."""

from __future__ import annotations

import asyncio

from transport_reading import read_partition
from waiting import wait_until_async

import streams
from runtime.types import TopicPartition
from streams.worker import Worker


class View(streams.Record):
    page: str
    at: float


def test_tumbling_counts_per_window_and_current_delta(make_app):
    app = make_app("win")
    views = app.topic("views", key_type=str, value_type=View, partitions=1)
    per_page = app.Table("per-page", default=int).tumbling(10, expires=1000)
    reads: list[tuple[int, int]] = []

    @app.agent(views)
    async def count(stream):
        async for view in stream:
            per_page[view.page] += 1
            reads.append((per_page[view.page].current(), per_page[view.page].delta(10)))

    # (timestamp, page): windows [0,10) [10,20) [20,30)
    sent = [(1, "a"), (5, "a"), (9.999, "b"), (10, "a"), (15, "a"), (19, "a"), (21, "a")]

    async def main():
        async with Worker(app):
            for ts, page in sent:
                await views.send(key=page, value=View(page=page, at=ts), timestamp=ts)
            await wait_until_async(
                lambda: len(reads) == len(sent), timeout_s=10.0, what="all views"
            )
            got = dict(per_page.items())
        assert got == {("a", 0.0): 2, ("b", 0.0): 1, ("a", 10.0): 3, ("a", 20.0): 1}
        # current() is the count in the event's window; delta(10) the window before
        assert reads == [(1, 0), (2, 0), (1, 0), (1, 2), (2, 2), (3, 2), (1, 3)]

    asyncio.run(main())


def test_hopping_event_counts_in_every_overlapping_window(make_app):
    app = make_app("win")
    views = app.topic("hviews", key_type=str, value_type=View, partitions=1)
    per_page = app.Table("h-page", default=int).hopping(10, 5, expires=1000)
    done: list[float] = []

    @app.agent(views)
    async def count(stream):
        async for view in stream:
            per_page[view.page] += 1
            done.append(view.at)

    sent = [1, 6, 12]  # windows: [-5,5) [0,10) [5,15) [10,20)

    async def main():
        async with Worker(app):
            for ts in sent:
                await views.send(key="p", value=View(page="p", at=ts), timestamp=ts)
            await wait_until_async(lambda: len(done) == len(sent), timeout_s=10.0, what="all views")
            got = dict(per_page.items())
        assert got == {("p", -5.0): 1, ("p", 0.0): 2, ("p", 5.0): 2, ("p", 10.0): 1}

    asyncio.run(main())


def test_relative_to_field_uses_the_model_time(make_app):
    app = make_app("win")
    views = app.topic("fviews", key_type=str, value_type=View, partitions=1)
    per_page = app.Table("f-page", default=int).tumbling(10).relative_to_field(View.at)
    done: list[int] = []

    @app.agent(views)
    async def count(stream):
        async for view in stream:
            per_page[view.page] += 1
            done.append(1)

    async def main():
        async with Worker(app):
            # the record timestamp says 100, the field says 25: the field wins
            await views.send(key="p", value=View(page="p", at=25), timestamp=100)
            await wait_until_async(lambda: done, timeout_s=10.0, what="view")
            assert dict(per_page.items()) == {("p", 20.0): 1}

    asyncio.run(main())


def test_expired_windows_leave_store_and_changelog(make_app):
    app = make_app("win")
    views = app.topic("eviews", key_type=str, value_type=View, partitions=1)
    per_page = app.Table("e-page", default=int).tumbling(10, expires=20)
    done: list[int] = []

    @app.agent(views)
    async def count(stream):
        async for view in stream:
            per_page[view.page] += 1
            done.append(1)

    async def main():
        async with Worker(app) as worker:
            await views.send(key="p", value=View(page="p", at=1), timestamp=1)
            await wait_until_async(lambda: done, timeout_s=10.0, what="first view")
            await worker.commit()
            assert ("p", 0.0) in dict(per_page.items())
            # window [0,10) expires once event time reaches 10 + 20 = 30
            await views.send(key="p", value=View(page="p", at=31), timestamp=31)
            await wait_until_async(lambda: len(done) == 2, timeout_s=10.0, what="second view")
            await worker.commit()
            assert dict(per_page.items()) == {("p", 30.0): 1}
            tp = TopicPartition("win-e-page-changelog", 0)
            records = await read_partition(worker.transport, tp)
            tombstones = [r for r in records if r.value is None]
            assert [r.key for r in tombstones] == [b'["p",0.0]']

    asyncio.run(main())


def test_window_read_outside_an_event_finds_the_partition_written_in_one(make_app):
    app = make_app("win")
    views = app.topic("oviews", value_type=View, partitions=4)
    per_page = app.Table("o-page", default=int).tumbling(3600)
    done: list[int] = []

    @app.agent(views)
    async def count(stream):
        async for view in stream.group_by(View.page):
            per_page[view.page] += 1
            done.append(1)

    async def main():
        async with Worker(app):
            for i in range(5):
                await views.send(key=f"u{i}", value=View(page="home", at=0))
            await wait_until_async(lambda: len(done) == 5, timeout_s=10.0, what="views")
            # from outside any event (a timer, a web view): the wall clock window
            assert per_page["home"].now() == 5

    asyncio.run(main())
