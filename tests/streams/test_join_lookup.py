"""A stream-table join finds the table's partition from the event's own partition:
no hashing of the key, no per-event routing through the table."""

from __future__ import annotations

import asyncio

import streams
from streams.driver import TestDriver
from streams.table import Table


def _app(tmp_path) -> tuple[streams.App, dict[str, streams.Topic], list, list]:
    app = streams.App("join-lookup", broker="memory://", data_dir=str(tmp_path))
    zones = app.topic("zones", key_type=str, partitions=4)
    rides = app.topic("rides", key_type=str, partitions=4)
    fares = app.Table("fares", key_type=str, partitions=4)
    inner: list[tuple[str, float]] = []
    left: list[tuple[str, float | None]] = []

    @app.agent(zones)
    async def keep(stream):
        async for zone, fare in stream.items():
            if fare is None:
                del fares[zone]
            else:
                fares[zone] = fare

    @app.agent(rides)
    async def enrich_inner(stream):
        async for event, fare in stream.join(fares).events():
            assert event.partition == event.message.partition
            inner.append((event.value, fare))

    @app.agent(rides)
    async def enrich_left(stream):
        async for rider, fare in stream.join(fares, how="left"):
            left.append((rider, fare))

    return app, {"zones": zones, "rides": rides}, inner, left


def test_join_reads_the_events_partition_without_routing(tmp_path, monkeypatch):
    app, t, inner, left = _app(tmp_path)
    routed: list[object] = []
    route = Table._partition

    def counting(self, key):
        routed.append(key)
        return route(self, key)

    monkeypatch.setattr(Table, "_partition", counting)

    async def main() -> None:
        async with TestDriver(app) as driver:
            for zone, fare in [("a", 2.0), ("b", 3.0), ("c", 4.0)]:
                await driver.send(t["zones"], fare, key=zone)
            await driver.send(t["zones"], None, key="c")  # deleted: absent to the join
            for rider, zone in [("r1", "a"), ("r2", "b"), ("r3", "c"), ("r4", "x")]:
                await driver.send(t["rides"], rider, key=zone)

    asyncio.run(main())
    assert sorted(inner) == [("r1", 2.0), ("r2", 3.0)]
    assert sorted(left, key=lambda pair: pair[0]) == [
        ("r1", 2.0),
        ("r2", 3.0),
        ("r3", None),
        ("r4", None),
    ]
    assert routed == ["c"]  # the delete only: the joins' lookups never routed a key
