"""Tables on rocksdb over the on-disk log: a restart replays only the changelog tail."""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
import pytest
from waiting import wait_until_async

import streams
from runtime.log.records import encode_batch
from runtime.types import TopicPartition
from streams.worker import Worker

KEYS = [f"user-{i % 13}" for i in range(500)]


def make_app(tmp_path, broker_url: str) -> tuple[streams.App, streams.Topic, streams.Table]:
    app = streams.App(
        "recov",
        broker=broker_url,
        data_dir=str(tmp_path),
        store="rocksdb://",
        commit_interval_s=0.05,
    )
    clicks = app.topic("clicks", key_type=str, value_type=int, partitions=2)
    counts = app.Table("counts", default=int, partitions=2)

    @app.agent(clicks)
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += 1

    return app, clicks, counts


async def all_committed(worker: Worker, topic: streams.Topic) -> bool:
    await worker.producer.flush()
    committed = await worker.transport.committed(worker.app.id, topic.tps())
    for tp in topic.tps():
        _, end = await worker.transport.offsets(tp)
        if committed.get(tp, 0) < end:
            return False
    return True


# The log must outlive the worker: the memory transport does not.
persistent = pytest.mark.parametrize("broker_url", ["log", "kafka"], indirect=True)


@persistent
def test_restart_replays_only_changelog_tail(tmp_path, broker_url):
    async def first_run():
        app, clicks, counts = make_app(tmp_path, broker_url)
        async with Worker(app) as worker:
            for key in KEYS:
                await clicks.send(key=key, value=1)
            await wait_until_async(
                lambda: all_committed(worker, clicks), timeout_s=10.0, what="commit"
            )
            assert counts.recovered_records == 0
            # Changelog records the store has not applied yet: as if the worker
            # had died between the changelog append and the store write.
            tp = TopicPartition("recov-counts-changelog", 0)
            tail = [(orjson.dumps("late-key"), orjson.dumps(n), 1_000, ()) for n in (1, 2, 3)]
            await worker.transport.append(tp, encode_batch(tail))

    async def second_run() -> dict:
        app, _, counts = make_app(tmp_path, broker_url)
        async with Worker(app):
            assert counts.recovered_records == 3  # only the tail, not the whole changelog
            return counts.as_dict()

    async def third_run() -> int:
        app, _, counts = make_app(tmp_path, broker_url)
        async with Worker(app):
            return counts.recovered_records

    asyncio.run(first_run())
    recovered = asyncio.run(second_run())
    assert recovered == {**Counter(KEYS), "late-key": 3}
    assert asyncio.run(third_run()) == 0


@persistent
def test_memory_store_over_disk_log_replays_whole_changelog(tmp_path, broker_url):
    async def run(store: str) -> tuple[int, dict]:
        app, clicks, counts = make_app(tmp_path, broker_url)
        app.store = store
        async with Worker(app) as worker:
            if store == "rocksdb://":
                for key in KEYS:
                    await clicks.send(key=key, value=1)
                await wait_until_async(
                    lambda: all_committed(worker, clicks), timeout_s=10.0, what="commit"
                )
            return counts.recovered_records, counts.as_dict()

    asyncio.run(run("rocksdb://"))
    replayed, values = asyncio.run(run("memory://"))
    assert values == dict(Counter(KEYS))
    assert replayed >= len(set(KEYS))  # nothing persisted locally: the whole changelog
