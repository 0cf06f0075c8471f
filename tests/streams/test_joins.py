"""Stream-table and stream-GlobalTable joins, on every transport."""

from __future__ import annotations

import asyncio

import pytest
from waiting import wait_until_async

import streams
from streams.worker import Worker


class Ride(streams.Record):
    rider: str
    zone: str


class Zone(streams.Record):
    fare: float


def test_stream_table_inner_and_left_join_see_the_current_value(make_app):
    app = make_app("join")
    zones = app.topic("zones", key_type=str, value_type=Zone, partitions=2)
    rides = app.topic("rides", key_type=str, value_type=Ride, partitions=2)
    fares = app.Table("fares", key_type=str, value_type=Zone, partitions=2)
    inner: list[tuple[str, float]] = []
    left: list[tuple[str, float | None]] = []

    @app.agent(zones)
    async def keep_zones(stream):
        async for zone_id, zone in stream.items():
            fares[zone_id] = zone

    @app.agent(rides)
    async def enrich_inner(stream):
        async for ride, zone in stream.join(fares):
            inner.append((ride.rider, zone.fare))

    @app.agent(rides)
    async def enrich_left(stream):
        async for ride, zone in stream.join(fares, how="left"):
            left.append((ride.rider, None if zone is None else zone.fare))

    async def fares_are(expected: dict[str, float]) -> None:
        await wait_until_async(
            lambda: {k: v.fare for k, v in fares.items()} == expected,
            timeout_s=20.0,
            what=f"fares {expected}",
        )

    async def main():
        async with Worker(app):
            await zones.send(key="a", value=Zone(fare=2.0))
            await zones.send(key="b", value=Zone(fare=3.0))
            await fares_are({"a": 2.0, "b": 3.0})
            # Rides are keyed by zone, like the table: co-partitioned.
            for rider, zone in [("r1", "a"), ("r2", "b"), ("r3", "nowhere")]:
                await rides.send(key=zone, value=Ride(rider=rider, zone=zone))
            await wait_until_async(lambda: len(left) == 3, timeout_s=20.0, what="3 left joins")
            await zones.send(key="a", value=Zone(fare=5.0))
            await fares_are({"a": 5.0, "b": 3.0})
            await rides.send(key="a", value=Ride(rider="r4", zone="a"))
            await wait_until_async(lambda: len(left) == 4, timeout_s=20.0, what="4 left joins")
            await wait_until_async(lambda: len(inner) == 3, timeout_s=20.0, what="3 inner joins")

        # Keys a and b may sit in different partitions: compare without order across them.
        assert sorted(left) == [("r1", 2.0), ("r2", 3.0), ("r3", None), ("r4", 5.0)]
        assert sorted(inner) == [("r1", 2.0), ("r2", 3.0), ("r4", 5.0)]

    asyncio.run(main())


def test_stream_global_table_join_takes_a_key_extractor(make_app, broker_url):
    app = make_app("gjoin")
    # The agents' topics have one count (group mode deals in one); the GlobalTable any.
    zones = app.topic("gzones", key_type=str, value_type=Zone, partitions=2)
    rides = app.topic("grides", key_type=str, value_type=Ride, partitions=2)
    fares = app.GlobalTable("gfares", key_type=str, value_type=Zone, partitions=3)
    pairs: list[tuple[str, float | None]] = []

    @app.agent(zones)
    async def keep_zones(stream):
        async for zone_id, zone in stream.items():
            fares[zone_id] = zone

    @app.agent(rides)
    async def enrich(stream):
        # Rides keyed by rider: the zone comes from the value, any partition count.
        async for ride, zone in stream.join(fares, how="left", key=lambda r: r.zone):
            pairs.append((ride.rider, None if zone is None else zone.fare))

    async def main():
        async with Worker(app):
            for zone_id, fare in [("a", 1.5), ("b", 2.5), ("c", 4.0)]:
                await zones.send(key=zone_id, value=Zone(fare=fare))
            await wait_until_async(lambda: len(fares) == 3, timeout_s=20.0, what="3 zones")
            for rider, zone in [("r1", "c"), ("r2", "a"), ("r3", "x")]:
                await rides.send(key=rider, value=Ride(rider=rider, zone=zone))
            await wait_until_async(lambda: len(pairs) == 3, timeout_s=20.0, what="3 joins")
        assert sorted(pairs) == [("r1", 4.0), ("r2", 1.5), ("r3", None)]

    asyncio.run(main())


async def _agent_failure(app: streams.App) -> BaseException:
    async with Worker(app) as worker:
        with pytest.raises(streams.AgentError) as info:
            await asyncio.wait_for(worker.run_until(asyncio.Event()), 20)
    assert info.value.__cause__ is not None
    return info.value.__cause__


def test_join_of_topic_and_table_with_other_partition_counts_fails_at_start(tmp_path):
    app = streams.App("badjoin", broker="memory://", data_dir=str(tmp_path))
    rides = app.topic("rides", key_type=str, value_type=Ride, partitions=2)
    fares = app.Table("fares", key_type=str, partitions=3)

    @app.agent(rides)
    async def enrich(stream):
        async for _ in stream.join(fares):
            raise AssertionError("no event was sent")

    cause = asyncio.run(_agent_failure(app))
    assert isinstance(cause, streams.ConfigurationError)
    assert "not co-partitioned" in str(cause)
    assert "2 partitions" in str(cause) and "3" in str(cause)
    assert "repartition=True" in str(cause)  # the error names the way out


def test_join_of_topic_and_table_with_other_key_codecs_fails_at_start(tmp_path):
    app = streams.App("badjoin", broker="memory://", data_dir=str(tmp_path))
    rides = app.topic("rides", key_type=str, value_type=Ride, partitions=2)
    fares = app.Table("fares", partitions=2)  # JSON keys: "a" hashes as b'"a"', not b'a'

    @app.agent(rides)
    async def enrich(stream):
        async for _ in stream.join(fares):
            raise AssertionError("no event was sent")

    cause = asyncio.run(_agent_failure(app))
    assert isinstance(cause, streams.ConfigurationError)
    assert "StrCodec" in str(cause) and "JSONCodec" in str(cause)


def test_join_argument_errors(tmp_path):
    app = streams.App("badjoin", broker="memory://", data_dir=str(tmp_path))
    rides = app.topic("rides", key_type=str, value_type=Ride, partitions=1)
    fares = app.Table("fares", key_type=str, partitions=1)
    windowed = app.Table("w", default=int, partitions=1).tumbling(10)
    errors: list[BaseException] = []

    @app.agent(rides)
    async def enrich(stream):
        for kwargs in ({"how": "outer"}, {"key": lambda r: r.zone}):
            try:
                stream.join(fares, **kwargs)
            except ValueError as exc:
                errors.append(exc)
        try:
            stream.join(windowed)
        except ValueError as exc:
            errors.append(exc)
        async for _ in stream:
            pass

    async def main():
        async with Worker(app):
            await wait_until_async(lambda: len(errors) == 3, timeout_s=20.0, what="3 errors")

    asyncio.run(main())
    assert "'inner' or 'left'" in str(errors[0])
    assert "key= needs a GlobalTable" in str(errors[1])
    assert "windowed tables cannot be joined" in str(errors[2])


def test_a_join_asked_to_repartition_goes_through_a_topic_partitioned_like_the_table(
    tmp_path,
):
    from runtime.types import TopicPartition
    from streams.driver import TestDriver

    app = streams.App("rejoin", broker="memory://", data_dir=str(tmp_path))
    zones = app.topic("zones", key_type=str, value_type=Zone, partitions=3)
    rides = app.topic("rides", key_type=str, value_type=Ride, partitions=2)  # keyed by rider
    fares = app.Table("fares", key_type=str, value_type=Zone, partitions=3)
    pairs: list[tuple[str, float | None]] = []

    @app.agent(zones)
    async def keep_zones(stream):
        async for zone_id, zone in stream.items():
            fares[zone_id] = zone

    @app.agent(rides)
    async def enrich(stream):
        joined = stream.join(fares, how="left", key=lambda r: r.zone, repartition=True)
        async for ride, zone in joined:
            pairs.append((ride.rider, None if zone is None else zone.fare))

    async def main() -> int:
        async with TestDriver(app) as driver:
            for zone_id, fare in [("a", 1.5), ("b", 2.5), ("c", 4.0)]:
                await driver.send(zones, Zone(fare=fare), key=zone_id)
            for rider, zone in [("r1", "c"), ("r2", "a"), ("r3", "x"), ("r4", "b")]:
                await driver.send(rides, Ride(rider=rider, zone=zone), key=rider)
            topic = "rejoin-enrich-fares-repartition"
            ends = [
                await driver.worker.transport.offsets(TopicPartition(topic, p)) for p in (0, 1, 2)
            ]
            return sum(end for _, end in ends)

    assert asyncio.run(main()) == 4  # every ride went through the 3 partitions
    assert pairs == [("r1", 4.0), ("r2", 1.5), ("r3", None), ("r4", 2.5)]
