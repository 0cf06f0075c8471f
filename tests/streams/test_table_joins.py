"""Table-table joins: inner, left and outer, tombstones, recovery, on every transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from waiting import wait_until_async

import streams
from streams.driver import TestDriver
from streams.worker import Worker


class Fare(streams.Record):
    base: float


class Zone(streams.Record):
    city: str


def _app(tmp_path, fare_partitions: int = 1, zone_partitions: int = 1) -> dict[str, Any]:
    app = streams.App("tj", broker="memory://", data_dir=str(tmp_path))
    fares_in = app.topic("fares-in", key_type=str, value_type=Fare, partitions=fare_partitions)
    zones_in = app.topic("zones-in", key_type=str, value_type=Zone, partitions=zone_partitions)
    fares = app.Table("fares", key_type=str, value_type=Fare, partitions=fare_partitions)
    zones = app.Table("zones", key_type=str, value_type=Zone, partitions=zone_partitions)
    sinks = {how: app.topic(f"priced-{how}", key_type=str, partitions=1) for how in HOWS}
    joined = {how: fares.join(zones, how=how, name=how, sink=sinks[how]) for how in HOWS}

    def keeper(table):
        async def keep(stream):
            async for key, value in stream.items():
                if value is None:
                    del table[key]  # a tombstone deletes the key
                else:
                    table[key] = value

        return keep

    app.agent(fares_in, name="keep-fares")(keeper(fares))
    app.agent(zones_in, name="keep-zones")(keeper(zones))
    return {"app": app, "fares": fares_in, "zones": zones_in, "sinks": sinks, "joined": joined}


HOWS = ("inner", "left", "outer")
F1, F2, Z1 = Fare(base=1.0), Fare(base=2.0), Zone(city="Oslo")
STEPS: list[tuple[str, str, Any]] = [
    ("zones", "a", Z1),
    ("fares", "a", F1),
    ("fares", "b", F2),
    ("zones", "a", None),  # a tombstone on the right
    ("fares", "b", None),  # a tombstone on the left
    ("fares", "a", None),
]
# The update stream of each join, by hand: (key, value or None for a deleted row).
EXPECTED = {
    "inner": [("a", [F1.to_dict(), Z1.to_dict()]), ("a", None)],
    "left": [
        ("a", [F1.to_dict(), Z1.to_dict()]),
        ("b", [F2.to_dict(), None]),
        ("a", [F1.to_dict(), None]),
        ("b", None),
        ("a", None),
    ],
    "outer": [
        ("a", [None, Z1.to_dict()]),
        ("a", [F1.to_dict(), Z1.to_dict()]),
        ("b", [F2.to_dict(), None]),
        ("a", [F1.to_dict(), None]),
        ("b", None),
        ("a", None),
    ],
}
# Each derived table after the third step.
AFTER_THREE = {
    "inner": {"a": (F1, Z1)},
    "left": {"a": (F1, Z1), "b": (F2, None)},
    "outer": {"a": (F1, Z1), "b": (F2, None)},
}


def test_inner_left_and_outer_table_joins_follow_both_sides_and_their_tombstones(tmp_path):
    parts = _app(tmp_path)

    async def main() -> None:
        async with TestDriver(parts["app"]) as driver:
            for i, (side, key, value) in enumerate(STEPS):
                await driver.send(parts[side], value, key=key, timestamp=float(i))
                if i == 2:
                    for how in HOWS:
                        assert dict(parts["joined"][how].items()) == AFTER_THREE[how], how
            for how in HOWS:
                out = driver.read(parts["sinks"][how])
                assert [(r.key, r.value) for r in out] == EXPECTED[how], how
                # The update carries the time of the event that caused it.
                assert all(r.timestamp == float(STEPS.index(s)) for r, s in _causes(out, how))
                assert dict(parts["joined"][how].items()) == {}, how

    asyncio.run(main())


def _causes(out: list[Any], how: str) -> list[tuple[Any, Any]]:
    """Pairs (output record, the step that caused it) for the hand-computed steps."""
    causing = {
        "inner": [1, 3],
        "left": [1, 2, 3, 4, 5],
        "outer": [0, 1, 2, 3, 4, 5],
    }[how]
    return [(record, STEPS[i]) for record, i in zip(out, causing, strict=True)]


def test_a_joined_table_recovers_from_its_changelog_after_a_crash(tmp_path):
    parts = _app(tmp_path)

    async def main() -> None:
        async with TestDriver(parts["app"]) as driver:
            for i, (side, key, value) in enumerate(STEPS[:3]):
                await driver.send(parts[side], value, key=key, timestamp=float(i))
                if i == 1:
                    await driver.commit()
            await driver.crash()
            # Row a from the changelog (a pair of Records again), row b from the
            # third event, processed again after the crash.
            assert parts["joined"]["left"].recovered_records == 1
            for how in HOWS:
                assert dict(parts["joined"][how].items()) == AFTER_THREE[how], how
            # Go on after the recovery: the right side's tombstone reaches every join.
            await driver.send(parts["zones"], None, key="a", timestamp=3.0)
            assert dict(parts["joined"]["inner"].items()) == {}
            assert parts["joined"]["left"]["a"] == (F1, None)

    asyncio.run(main())


def test_a_joined_table_joins_again(tmp_path):
    app = streams.App("tj2", broker="memory://", data_dir=str(tmp_path))
    writes = app.topic("writes", partitions=1)
    tables = {name: app.Table(name, partitions=1) for name in ("a", "b", "c")}
    # ((a, b), c): the inner join's rows feed the left join.
    ab = tables["a"].join(tables["b"], joiner=lambda a, b: a + b, name="ab")
    abc = ab.join(tables["c"], how="left", joiner=lambda ab, c: [ab, c], name="abc")

    @app.agent(writes)
    async def write(stream):
        async for (table, key), value in stream.items():
            if value is None:
                del tables[table][key]
            else:
                tables[table][key] = value

    async def main() -> None:
        async with TestDriver(app) as driver:
            for table, value in [("a", 1), ("c", 100), ("b", 10), ("b", 20), ("b", None)]:
                await driver.send(writes, value, key=[table, "k"])
                if (table, value) == ("b", 20):
                    assert dict(abc.items()) == {"k": [21, 100]}
            assert dict(ab.items()) == {} and dict(abc.items()) == {}

    asyncio.run(main())


def test_tables_with_other_partition_counts_fail_at_start(tmp_path):
    parts = _app(tmp_path, fare_partitions=2, zone_partitions=3)

    async def main() -> None:
        async with TestDriver(parts["app"]):
            raise AssertionError("the driver started")

    with pytest.raises(streams.ConfigurationError) as info:
        asyncio.run(main())
    assert "not co-partitioned" in str(info.value)
    assert "2 partitions against 3" in str(info.value)


def test_table_join_argument_errors(tmp_path):
    app = streams.App("tjbad", broker="memory://", data_dir=str(tmp_path))
    fares = app.Table("fares", key_type=str)
    zones = app.Table("zones", key_type=str)
    with pytest.raises(ValueError, match="'inner', 'left' or 'outer'"):
        fares.join(zones, how="cross")  # type: ignore[arg-type]
    with pytest.raises(streams.ConfigurationError, match="GlobalTables"):
        fares.join(app.GlobalTable("g", key_type=str))
    with pytest.raises(streams.ConfigurationError, match="windowed"):
        fares.join(app.Table("w", default=int).tumbling(10))  # type: ignore[arg-type]
    with pytest.raises(streams.ConfigurationError, match="itself"):
        fares.join(fares)
    with pytest.raises(TypeError, match="sink"):
        fares.join(zones, sink=42)  # type: ignore[arg-type]
    joined = fares.join(zones, joiner=lambda f, z: {"f": f, "z": z})
    assert app.tables["fares-zones-join"] is joined
    with pytest.raises(streams.ConfigurationError, match="declared twice"):
        fares.join(zones)


def test_a_left_table_join_on_every_transport(make_app):
    app = make_app("tjx")
    fares_in = app.topic("tjx-fares", key_type=str, value_type=Fare, partitions=2)
    zones_in = app.topic("tjx-zones", key_type=str, value_type=Zone, partitions=2)
    fares = app.Table("fares", key_type=str, value_type=Fare, partitions=2)
    zones = app.Table("zones", key_type=str, value_type=Zone, partitions=2)
    updates: list[tuple[str, Any]] = []
    priced = fares.join(zones, how="left", sink=lambda k, v: updates.append((k, v)))

    @app.agent(fares_in)
    async def keep_fares(stream):
        async for key, fare in stream.items():
            fares[key] = fare

    @app.agent(zones_in)
    async def keep_zones(stream):
        async for key, zone in stream.items():
            zones[key] = zone

    async def main() -> None:
        async with Worker(app):
            await zones_in.send(key="a", value=Z1)
            await wait_until_async(lambda: len(zones) == 1, timeout_s=20.0, what="zone a")
            await fares_in.send(key="a", value=F1)
            await fares_in.send(key="b", value=F2)
            await wait_until_async(lambda: len(updates) == 2, timeout_s=20.0, what="2 updates")
            assert dict(priced.items()) == {"a": (F1, Z1), "b": (F2, None)}

    asyncio.run(main())
    assert sorted(updates) == [("a", (F1, Z1)), ("b", (F2, None))]


def test_a_joined_row_carries_the_later_of_both_sides_times_across_a_crash(tmp_path):
    parts = _app(tmp_path)
    z2 = Zone(city="Rome")
    # Out of order on purpose: a row's time is the later of its sides' last update
    # times (the causing event's time counting for a delete), not the causing time.
    steps = [("fares", F1, 10.0), ("zones", Z1, 5.0), ("zones", z2, 7.0), ("fares", F2, 3.0)]
    steps.append(("zones", None, 1.0))
    expected = {"inner": [10.0, 10.0, 7.0, 3.0], "left": [10.0, 10.0, 10.0, 7.0, 3.0]}

    async def main() -> None:
        async with TestDriver(parts["app"]) as driver:
            for i, (side, value, at) in enumerate(steps):
                await driver.send(parts[side], value, key="a", timestamp=at)
                if i == 1:  # the times recovered from the changelog carry on
                    await driver.commit()
                    await driver.crash()
                    assert parts["joined"]["left"].timestamp_of("a") == 10.0
            for how, times in expected.items():
                assert [r.timestamp for r in driver.read(parts["sinks"][how])] == times, how
            assert parts["joined"]["left"].timestamp_of("a") == 3.0
            assert parts["joined"]["inner"].timestamp_of("a") == 3.0  # its deletion's
            assert parts["joined"]["left"].timestamp_of("b") is None

    asyncio.run(main())


def test_a_join_of_a_join_takes_the_joined_rows_time(tmp_path):
    app = streams.App("tjts", broker="memory://", data_dir=str(tmp_path))
    writes = app.topic("writes", partitions=1)
    tables = {name: app.Table(name, partitions=1) for name in ("a", "b", "c")}
    ab = tables["a"].join(tables["b"], joiner=lambda a, b: a + b, name="ab")
    abc = ab.join(tables["c"], how="left", joiner=lambda ab, c: [ab, c], name="abc")

    @app.agent(writes)
    async def write(stream):
        async for table, value in stream.items():
            tables[table]["k"] = value

    async def main() -> None:
        async with TestDriver(app) as driver:
            times = []
            for table, value, at in [
                ("a", 1, 5.0),
                ("b", 10, 3.0),
                ("c", 100, 1.0),
                ("b", 20, 9.0),
            ]:
                await driver.send(writes, value, key=table, timestamp=at)
                times.append((ab.timestamp_of("k"), abc.timestamp_of("k")))
            # abc's row is at ab's row time (5, then 9), not at the event's (1 for c)
            assert times == [(5.0, None), (5.0, 5.0), (5.0, 5.0), (9.0, 9.0)]
            assert abc["k"] == [21, 100]

    asyncio.run(main())
