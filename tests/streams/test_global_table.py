"""GlobalTable: every partition held and followed by every worker; writes go to
the changelog, the store takes them from there in changelog order, and the
writer reads its own write at once."""

from __future__ import annotations

import asyncio

import pytest
from waiting import wait_until_async

import streams
from runtime.assignor import WorkerState
from runtime.log.records import encode_batch
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition
from stores.memory import MemoryStore
from streams.global_table import GlobalPartition, follow
from streams.partitioning import common_partitions
from streams.wiring import Wiring
from streams.worker import Worker


def _two_workers_views() -> tuple[streams.GlobalTable, streams.GlobalTable]:
    """The same GlobalTable as two workers of one app declare it."""
    tables = []
    for _ in range(2):
        table = streams.GlobalTable(Wiring("app"), "settings", key_type=str, partitions=1)
        table.attach(0, MemoryStore())
        tables.append(table)
    return tables[0], tables[1]


def test_writes_of_two_workers_end_the_same_everywhere_in_changelog_order():
    async def main() -> None:
        async with EmbeddedTransport("memory://", None) as transport:
            await transport.create_topic("app-settings-changelog", 1)
            a, b = _two_workers_views()
            pa, pb = a.partitions[0], b.partitions[0]
            assert isinstance(pa, GlobalPartition) and isinstance(pb, GlobalPartition)
            b["x"], b["y"] = "from b", "from b"
            await b.flush(transport)  # offsets 0 and 1
            a["x"] = "from a"
            await a.flush(transport)  # offset 2: the newest x
            assert pa.store.get(pa.dump_key("x")) is None  # only the follower writes the store
            assert a["x"] == "from a"  # read your own write, before it is read back
            followers = [asyncio.create_task(follow(transport, p, _fail)) for p in (pa, pb)]
            try:
                for table, part in ((a, pa), (b, pb)):
                    await wait_until_async(
                        lambda part=part: part.store.persisted_offset() == 2,
                        timeout_s=5,
                        what="the follower read the changelog to its end",
                    )
                    assert table.as_dict() == {"x": "from a", "y": "from b"}
                assert pa.inflight == {}  # read back
                del b["y"]  # a tombstone, followed too
                await b.flush(transport)
                await wait_until_async(lambda: "y" not in a, timeout_s=5, what="y deleted on a")
                assert a.as_dict() == {"x": "from a"}
            finally:
                for task in followers:
                    task.cancel()
                await asyncio.gather(*followers, return_exceptions=True)

    asyncio.run(main())


def test_an_older_record_of_another_worker_does_not_shadow_a_write_in_flight():
    """The writer's follower reads another worker's older x before its own."""

    async def main() -> None:
        async with EmbeddedTransport("memory://", None) as transport:
            tp = TopicPartition("app-settings-changelog", 0)
            await transport.create_topic(tp.topic, 1)
            a, _ = _two_workers_views()
            part = a.partitions[0]
            assert isinstance(part, GlobalPartition)
            old = (part.dump_key("x"), part.dump_value("old"), 1, ())
            await transport.append(tp, encode_batch([old]))
            a["x"] = "mine"
            await a.flush(transport)
            part.cache.clear()  # reads now come from inflight or the store
            records = await _records(transport, tp)
            part.apply_records(records[:1])  # the other worker's x only
            assert a["x"] == "mine"
            part.apply_records(records[1:])
            assert a["x"] == "mine" and part.inflight == {}

    asyncio.run(main())


async def _records(transport: EmbeddedTransport, tp: TopicPartition) -> list:
    from runtime.log.records import decode_batches

    return decode_batches(await transport.fetch(tp, 0, max_wait_s=0))


def _fail(exc: BaseException) -> None:
    raise AssertionError(f"follower failed: {exc!r}")


def test_the_group_assignor_does_not_deal_in_global_table_partitions():
    app = streams.App("glob", broker="memory://")
    topic = app.topic("gt-in", partitions=4)
    app.GlobalTable("everywhere", default=int, partitions=3)  # any count does
    app.Table("local", default=int)

    @app.agent(topic)
    async def consume(stream):
        async for _ in stream:
            pass

    from streams.partitioning import copartition_tables

    copartition_tables(app)
    assert common_partitions(app) == 4


@pytest.mark.parametrize("broker_url", ["memory", "kafka"], indirect=True)
def test_a_running_worker_follows_writes_another_worker_makes(make_app, tmp_path):
    """Recovered before the agents run, then followed: a record another worker
    appends to the changelog shows in this worker's table, on every partition."""
    app = make_app("glob")
    topic = app.topic("gt-in", key_type=str, partitions=2)
    table = app.GlobalTable("everywhere", key_type=str, value_type=int, partitions=2)
    seen: list[int | None] = []

    @app.agent(topic)
    async def read(stream):
        async for key in stream:
            seen.append(table.get(key))

    async def main() -> None:
        async with Worker(app) as worker:
            tp = TopicPartition(table.changelog.name, table.partition_for("k"))
            assert sorted(table.partitions) == [0, 1]
            await worker.transport.append(tp, encode_batch([(b"k", b"7", 1, ())]))
            await wait_until_async(lambda: table.get("k") == 7, timeout_s=10, what="k followed")
            await topic.send(value="k")
            await wait_until_async(lambda: seen == [7], timeout_s=10, what="the agent read k")
            table["j"] = 3  # outside an event: routes by key, goes to the changelog
            await worker.commit()
            part = table.partitions[table.partition_for("j")]
            await wait_until_async(
                lambda: not part.inflight, timeout_s=10, what="j read back from the changelog"
            )
            assert table.as_dict() == {"k": 7, "j": 3}
            await worker.placement.place(table, WorkerState())  # an assignment of nothing
            assert sorted(table.partitions) == [0, 1]  # a GlobalTable is never revoked
            assert table.get("k") == 7

    asyncio.run(main())


def test_a_full_cache_is_emptied_but_for_writes_not_flushed(monkeypatch):
    monkeypatch.setattr("streams.global_table.CACHE_ENTRIES_MAX", 2)

    async def main() -> None:
        async with EmbeddedTransport("memory://", None) as transport:
            tp = TopicPartition("app-settings-changelog", 0)
            await transport.create_topic(tp.topic, 1)
            a, _ = _two_workers_views()
            part = a.partitions[0]
            assert isinstance(part, GlobalPartition)
            batch = [(part.dump_key(k), part.dump_value(k), 1, ()) for k in ("p", "q", "r")]
            await transport.append(tp, encode_batch(batch))
            part.apply_records(await _records(transport, tp))
            assert [a[k] for k in ("p", "q", "r")] == ["p", "q", "r"]  # cached now
            a["mine"] = "not flushed"
            part.apply_records((await _records(transport, tp))[:1])
            assert part.cache == {"mine": "not flushed"}
            assert a["mine"] == "not flushed" and a["q"] == "q"

    asyncio.run(main())
