"""Agents, streams and tables on the memory transport, run by a real Worker."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from waiting import wait_until_async

import streams
from runtime.log.records import decode_batches, encode_batch
from runtime.partitioner import partition_for_key
from runtime.types import TopicPartition
from streams.worker import Worker


class Ride(streams.Record):
    zone: str
    rider: str


async def committed_to_end(worker: Worker, topic: streams.Topic) -> bool:
    """True once the worker's commits cover every record of the topic."""
    transport = worker.transport
    await worker.producer.flush()  # what was sent is in the log
    committed = await transport.committed(worker.app.id, topic.tps())
    for tp in topic.tps():
        _, end = await transport.offsets(tp)
        if committed.get(tp, 0) < end:
            return False
    return True


def run(coro):
    return asyncio.run(coro)


def test_keyed_count_counts_every_event(make_app):
    app = make_app()
    words = app.topic("words", key_type=str, value_type=str, partitions=4)
    counts = app.Table("counts", default=int)

    @app.agent(words)
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += 1

    keys = [f"k{i % 7}" for i in range(500)]

    async def main():
        async with Worker(app) as worker:
            for k in keys:
                await words.send(key=k, value="x")
            await wait_until_async(
                lambda: committed_to_end(worker, words), timeout_s=10.0, what="commit"
            )
            assert dict(counts.items()) == dict(Counter(keys))

    run(main())


def test_group_by_repartitions_by_field(make_app):
    app = make_app()
    rides = app.topic("rides", value_type=Ride, partitions=4)
    per_zone = app.Table("per-zone", default=int)
    seen: dict[str, set[int]] = {}

    @app.agent(rides)
    async def count(stream):
        async for ride in stream.group_by(Ride.zone):
            event = streams.current_event()
            seen.setdefault(ride.zone, set()).add(event.message.partition)
            per_zone[ride.zone] += 1

    zones = ["north", "south", "east", "west", "centre"]
    sent = [Ride(zone=zones[i % 5], rider=f"r{i}") for i in range(200)]

    async def main():
        async with Worker(app) as worker:
            for i, ride in enumerate(sent):
                # keyed by rider: zones are spread over every source partition
                await rides.send(key=ride.rider, value=ride, partition=i % 4)
            await wait_until_async(
                lambda: sum(per_zone.values()) == len(sent), timeout_s=10.0, what="counts"
            )
            await wait_until_async(
                lambda: committed_to_end(worker, rides), timeout_s=10.0, what="commit"
            )
            info = await worker.transport.topic("test-count-zone-repartition")
            assert info is not None and info.partitions == 4
            assert dict(per_zone.items()) == {z: 40 for z in zones}
        for zone, partitions in seen.items():
            key_bytes = b'"' + zone.encode() + b'"'
            assert partitions == {partition_for_key(key_bytes, 4)}, zone

    run(main())


def test_sink_receives_yields_and_filter_and_enumerate(make_app):
    app = make_app()
    numbers = app.topic("numbers", value_type=int, partitions=1)
    doubled = app.topic("doubled", value_type=int, partitions=1)
    received: list[int] = []

    @app.agent(numbers, sink=[doubled])
    async def double(stream):
        async for i, n in stream.filter(lambda n: n % 2 == 0).enumerate():
            assert isinstance(i, int)
            yield n * 2

    @app.agent(doubled)
    async def collect(stream):
        async for n in stream:
            received.append(n)

    async def main():
        async with Worker(app):
            for n in range(10):
                await numbers.send(value=n)
            await wait_until_async(
                lambda: len(received) == 5, timeout_s=10.0, what="doubled values"
            )
        assert received == [0, 4, 8, 12, 16]

    run(main())


def test_take_groups_values_and_flushes_on_within(make_app):
    app = make_app()
    numbers = app.topic("nums", value_type=int, partitions=1)
    batches: list[list[int]] = []

    @app.agent(numbers)
    async def batcher(stream):
        async for batch in stream.take(4, within=0.2):
            batches.append(batch)

    async def main():
        async with Worker(app):
            for n in range(10):
                await numbers.send(value=n)
            await wait_until_async(
                lambda: sum(map(len, batches)) == 10, timeout_s=10.0, what="batches"
            )
        assert [n for b in batches for n in b] == list(range(10))
        assert all(len(b) <= 4 for b in batches)
        assert len(batches[-1]) == 2  # the tail came out by `within`, not by size

    run(main())


def test_agent_error_stops_worker_with_coordinates(make_app, caplog):
    app = make_app()
    numbers = app.topic("crashy", value_type=int, partitions=1)
    processed: list[int] = []

    @app.agent(numbers)
    async def fragile(stream):
        async for n in stream:
            if n == 3:
                raise RuntimeError("boom")
            processed.append(n)

    async def main():
        worker = Worker(app)
        await worker.start()
        try:
            for n in range(6):
                await numbers.send(value=n)
            with pytest.raises(streams.AgentError) as info:
                async with asyncio.timeout(10):
                    await worker.run_until(asyncio.Event())
            assert (info.value.topic, info.value.partition, info.value.offset) == ("crashy", 0, 3)
            offsets = worker.conductor.commit_offsets()
            assert offsets[TopicPartition("crashy", 0)] == 3  # never past the failed event
        finally:
            await worker.stop()

    run(main())
    assert processed == [0, 1, 2]
    assert "topic=crashy partition=0 offset=3" in caplog.text


def test_decode_error_stop_names_coordinates(make_app):
    app = make_app(on_decode_error="stop")
    topic = app.topic("models", value_type=Ride, partitions=1)

    @app.agent(topic)
    async def consume(stream):
        async for _ in stream:
            pass

    async def main():
        worker = Worker(app)
        await worker.start()
        try:
            await worker.transport.append(
                TopicPartition("models", 0),
                streams_batch([b"not json"]),
            )
            with pytest.raises(streams.ValueDecodeError) as info:
                async with asyncio.timeout(10):
                    await worker.run_until(asyncio.Event())
            assert (info.value.topic, info.value.partition, info.value.offset) == ("models", 0, 0)
        finally:
            await worker.stop()

    run(main())


def test_decode_error_skip_logs_and_goes_on(make_app, caplog):
    app = make_app(on_decode_error="skip")
    topic = app.topic("models2", value_type=Ride, partitions=1)
    got: list[Ride] = []

    @app.agent(topic)
    async def consume(stream):
        async for ride in stream:
            got.append(ride)

    async def main():
        async with Worker(app) as worker:
            good = Ride(zone="z", rider="r").dumps()
            await worker.transport.append(
                TopicPartition("models2", 0), streams_batch([good, b"{bad", good])
            )
            await wait_until_async(lambda: len(got) == 2, timeout_s=10.0, what="good records")

    run(main())
    assert "models2" in caplog.text and "offset=1" in caplog.text


def test_undecodable_keys_and_values_go_to_the_dead_letters_by_default(make_app, caplog):
    app = make_app()
    topic = app.topic("models3", key_type=Ride, value_type=Ride, partitions=1)
    got: list[Ride] = []

    @app.agent(topic)
    async def consume(stream):
        async for ride in stream:
            got.append(ride)

    good = Ride(zone="z", rider="r").dumps()
    rows = [(good, good), (b"r2", good), (good, b"{bad"), (good, good)]
    batch = encode_batch([(k, v, 1, (("h", b"1"),)) for k, v in rows])
    dead = TopicPartition("test-dead-letters", 0)

    async def main():
        async with Worker(app) as worker:
            await worker.transport.append(TopicPartition("models3", 0), batch)
            await wait_until_async(lambda: len(got) == 2, timeout_s=10.0, what="good records")
            await worker.commit()
            data = await worker.transport.fetch(dead, 0, max_wait_s=0)
            committed = await worker.transport.committed(app.id, [TopicPartition("models3", 0)])
        return decode_batches(data), committed

    letters, committed = run(main())
    assert [(r.key, r.value) for r in letters] == [rows[1], rows[2]]  # as they were
    headers = dict(letters[0].headers)
    assert headers["h"] == b"1"
    assert headers["__streams.errors.topic"] == b"models3"
    assert (headers["__streams.errors.partition"], headers["__streams.errors.offset"]) == (
        b"0",
        b"1",
    )
    assert dict(letters[1].headers)["__streams.errors.offset"] == b"2"
    assert committed == {TopicPartition("models3", 0): 4}  # past them: they are not lost
    assert "cannot decode key topic=models3 partition=0 offset=1" in caplog.text


def test_test_context_runs_agent_without_worker():
    app = streams.App("test", broker="memory://")
    rides = app.topic("ctx-rides", value_type=Ride, partitions=2)
    per_zone = app.Table("ctx-zone", default=int)

    @app.agent(rides)
    async def counter(stream):
        async for ride in stream:
            per_zone[ride.zone] += 1
            yield per_zone[ride.zone]

    @app.agent(rides, name="plain")
    async def plain(stream):
        async for _ride in stream:
            per_zone["plain"] += 1

    async def main():
        async with counter.test_context() as agent:
            await agent.put(Ride(zone="a", rider="1"))
            await agent.put(Ride(zone="a", rider="2"))
            assert per_zone.as_dict() == {"a": 2}
            assert agent.results == [1, 2]
        async with plain.test_context() as agent:
            await agent.put(Ride(zone="b", rider="1"))
            assert per_zone.as_dict() == {"plain": 1}  # a fresh memory log each time

    run(main())


def streams_batch(values: list[bytes]) -> bytes:
    from runtime.log.records import encode_batch

    return bytes(encode_batch([(None, v, 1_000, ()) for v in values]))


def test_concurrent_instances_with_group_by_count_every_event_once(make_app):
    app = make_app()
    rides = app.topic("crides", value_type=Ride, partitions=4)
    per_zone = app.Table("c-zone", default=int)
    instances: dict[int, set[int]] = {}

    @app.agent(rides, concurrency=2)
    async def count(stream):
        async for ride in stream.group_by(Ride.zone):
            event = streams.current_event()
            instances.setdefault(event.message.partition, set()).add(id(stream))
            per_zone[ride.zone] += 1

    zones = [f"z{i}" for i in range(9)]

    async def main():
        async with Worker(app):
            for i in range(270):
                await rides.send(key=f"r{i}", value=Ride(zone=zones[i % 9], rider=f"r{i}"))
            await wait_until_async(
                lambda: sum(per_zone.values()) == 270, timeout_s=10.0, what="counts"
            )
            assert dict(per_zone.items()) == {z: 30 for z in zones}
        # each repartitioned partition was read by exactly one instance
        assert all(len(readers) == 1 for readers in instances.values())

    run(main())


def test_through_forwards_to_a_named_topic(make_app):
    app = make_app()
    source = app.topic("raw-in", value_type=int, partitions=2)
    seen: list[tuple[str, int]] = []

    @app.agent(source)
    async def relay(stream):
        async for n in stream.through("relayed"):
            seen.append((streams.current_event().message.topic, n))

    async def main():
        async with Worker(app) as worker:
            for n in range(6):
                await source.send(key=str(n), value=n)
            await wait_until_async(lambda: len(seen) == 6, timeout_s=10.0, what="relayed values")
            info = await worker.transport.topic("relayed")
            assert info is not None and info.partitions == 2
        assert sorted(n for _, n in seen) == list(range(6))
        assert {t for t, _ in seen} == {"relayed"}

    run(main())


def test_tuple_keys_survive_a_flush_and_str_keys_route_like_their_topic(make_app):
    app = make_app()
    words = app.topic("twords", key_type=str, value_type=str, partitions=4)
    pairs = app.Table("pairs", default=int, partitions=4)
    by_key = app.Table("by-key", key_type=str, default=int, partitions=4)

    @app.agent(words)
    async def count(stream):
        async for event in stream.events():
            pairs[(event.key, len(event.value))] += 1
            by_key[event.key] += 1

    async def main():
        async with Worker(app) as worker:
            for word in ["a", "bb", "a", "ccc"]:
                await words.send(key=word, value=word)
            await wait_until_async(lambda: sum(by_key.values()) == 4, timeout_s=10.0, what="counts")
            await worker.commit()  # keys now come back from the store
            assert dict(pairs.items()) == {("a", 1): 2, ("bb", 2): 1, ("ccc", 3): 1}
            # outside an event: str keys hash like the str-keyed topic did
            assert (by_key["a"], by_key["bb"], by_key["ccc"]) == (2, 1, 1)

    run(main())
