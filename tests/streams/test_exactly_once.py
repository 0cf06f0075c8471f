"""processing_guarantee="exactly_once" in a Worker, on every transport: each
commit is one transaction over the table changelog, the sink records and the
consumed offsets; an aborted one leaves nothing in the stores nor for
read_committed readers, and its events are processed again; a fenced worker
stops and commits nothing more."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from waiting import wait_until_async

import streams
from runtime.client.errors import ProducerFencedError, TransactionAbortableError
from runtime.kafka_transport import KafkaTransport
from runtime.log.records import decode_batches, encode_batch, iter_batches
from runtime.partitioner import partition_for_key
from runtime.transport import EmbeddedTransport, Transport, open_transport
from runtime.types import TopicPartition
from streams.errors import ConfigurationError
from streams.worker import Worker

PARTITIONS = 4
KEYS = [f"k{i % 7}" for i in range(400)]
TIMEOUT_S = 30.0


def keyed_count(app: streams.App) -> streams.Table:
    """One output record per event: the key's running count."""
    words = app.topic("words", key_type=str, value_type=str, partitions=PARTITIONS)
    out = app.topic("out", key_type=str, value_type=int, partitions=PARTITIONS)
    counts = app.Table("counts", default=int)

    @app.agent(words)
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += 1
            await out.send(key=event.key, value=counts[event.key])

    return counts


async def feed(transport: Transport, keys: list[str]) -> None:
    """The input, written as plain (non-transactional) batches, as another
    producer would."""
    await transport.ensure_topic("words", PARTITIONS)
    by_partition: dict[int, list] = {}
    for i, key in enumerate(keys):
        kb = key.encode()
        by_partition.setdefault(partition_for_key(kb, PARTITIONS), []).append(
            (kb, b'"x"', 1_000 + i, ())
        )
    for p, records in by_partition.items():
        await transport.append(TopicPartition("words", p), encode_batch(records))


async def read_all(transport: Transport, topic: str, parse=int) -> dict[bytes, list]:
    """Every value of `topic` by key, as `transport`'s isolation level sees it."""
    seen: dict[bytes, list] = {}
    for p in range(PARTITIONS):
        tp = TopicPartition(topic, p)
        position = 0
        while True:
            data = await transport.fetch(tp, position, max_wait_s=0)
            if not data:
                break
            for r in decode_batches(data):
                if r.offset >= position and r.value is not None:
                    seen.setdefault(r.key, []).append(parse(r.value))
            position = max(h.next_offset for _, h in iter_batches(data))
    return seen


async def read_uncommitted(transport: Transport, topic: str) -> int:
    """How many records of `topic` are stored, committed or not."""
    if isinstance(transport, EmbeddedTransport):
        raw = EmbeddedTransport.__new__(EmbeddedTransport)
        raw.__dict__.update(transport.__dict__, _read_committed=False)
        return sum(len(v) for v in (await read_all(raw, topic, bytes)).values())
    async with KafkaTransport(transport.url) as raw:
        return sum(len(v) for v in (await read_all(raw, topic, bytes)).values())


def assert_each_result_once(seen: dict[bytes, list[int]], keys: list[str]) -> None:
    truth = Counter(keys)
    assert {k.decode(): len(v) for k, v in seen.items()} == dict(truth)
    for key, values in seen.items():
        assert values == list(range(1, truth[key.decode()] + 1)), key


async def all_out(transport: Transport, n: int) -> bool:
    return sum(len(v) for v in (await read_all(transport, "out")).values()) >= n


def eos_transport(app: streams.App) -> Transport:
    return open_transport(
        app.broker, data_dir=f"{app.data_dir}/log", isolation_level="read_committed"
    )


# --- settings ----------------------------------------------------------------------


def test_bad_processing_guarantee_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="processing_guarantee must be one of"):
        streams.App("x", processing_guarantee="exactly-once")
    app = streams.App("x")
    with pytest.raises(ConfigurationError, match="processing_guarantee"):
        app.set_processing_guarantee("twice")
    assert app.processing_guarantee == "at_least_once" and app.commit_interval_s == 1.0


def test_exactly_once_commits_every_100ms_unless_told():
    assert streams.App("x", processing_guarantee="exactly_once").commit_interval_s == 0.1
    app = streams.App("x", commit_interval_s=2.0)
    app.set_processing_guarantee("exactly_once")
    assert app.commit_interval_s == 2.0


# --- on every transport ---------------------------------------------------------------


# librdkafka's mock cluster writes abort markers but its Fetch lists no aborted
# transactions and gives the log end as last stable offset, so read_committed
# readers there see the records of an aborted transaction: not claimed there.
NOT_ON_THE_MOCK_CLUSTER = {
    "test_aborted_transaction_is_redone_and_leaves_no_writes_in_the_stores",
    "test_take_buffers_are_forgotten_with_an_aborted_transaction",
}


@pytest.fixture(autouse=True)
def _mock_cluster_gaps(request: pytest.FixtureRequest) -> None:
    callspec = getattr(request.node, "callspec", None)
    on_mock = callspec is not None and callspec.params.get("broker_url") == "cluster"
    if on_mock and request.node.originalname in NOT_ON_THE_MOCK_CLUSTER:
        request.applymarker(
            pytest.mark.xfail(run=False, reason="aborts on the mock cluster: not investigated")
        )


def test_keyed_count_outputs_each_running_count_once(make_app):
    app = make_app(processing_guarantee="exactly_once")
    counts = keyed_count(app)

    async def main():
        transport = eos_transport(app)
        await transport.start()
        await feed(transport, KEYS)
        async with Worker(app, transport=transport) as worker:
            assert worker.transactions is not None
            await wait_until_async(
                lambda: all_out(transport, len(KEYS)), timeout_s=TIMEOUT_S, what="every output"
            )
            assert dict(counts.items()) == dict(Counter(KEYS))
            assert_each_result_once(await read_all(transport, "out"), KEYS)
            assert worker.transactions.aborts == 0

    asyncio.run(main())


def test_aborted_transaction_is_redone_and_leaves_no_writes_in_the_stores(make_app):
    app = make_app(processing_guarantee="exactly_once")
    counts = keyed_count(app)
    checked: list[int] = []

    async def main():
        transport = eos_transport(app)
        await transport.start()
        await feed(transport, KEYS)
        async with Worker(app, transport=transport) as worker:
            commits = worker.transactions
            assert commits is not None
            writer, real_commit, real_abort = commits.writer, commits.writer.commit, commits.abort
            failed = []

            async def commit_failing_once(offsets, group):
                if offsets and not failed:  # the first commit of processed events
                    failed.append(offsets)
                    raise TransactionAbortableError("injected by the test")
                await real_commit(offsets, group)

            async def abort_then_check():
                await real_abort()
                # What the stores hold is exactly the committed changelog.
                changelog = await read_all(transport, "test-counts-changelog")
                committed = {k: v[-1] for k, v in changelog.items()}
                stored = {
                    key: int(value)
                    for part in counts.partitions.values()
                    for key, value in part.store.items()
                }
                assert stored == committed
                assert all(not p.dirty and not p.pending for p in counts.partitions.values())
                checked.append(sum(committed.values()))

            writer.commit = commit_failing_once  # type: ignore[method-assign]
            commits.abort = abort_then_check  # type: ignore[method-assign]
            await wait_until_async(
                lambda: all_out(transport, len(KEYS)), timeout_s=TIMEOUT_S, what="every output"
            )
            assert commits.aborts == 1 and len(checked) == 1
            assert dict(counts.items()) == dict(Counter(KEYS))
            assert_each_result_once(await read_all(transport, "out"), KEYS)
            aborted = await read_uncommitted(transport, "out") - len(KEYS)
            assert aborted > 0, "the aborted transaction wrote outputs that nobody sees"

    asyncio.run(main())


# --- fencing (embedded: two workers of one id in one process) --------------------------


class KeepOpen:
    """The transport, but stop() leaves it open (for the other worker on it)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def __getattr__(self, name: str):
        return getattr(self._transport, name)

    async def stop(self) -> None:
        pass


@pytest.mark.parametrize("scheme", ["memory", "log"])
def test_fenced_worker_stops_and_never_commits_again(scheme, tmp_path):
    url = "memory://" if scheme == "memory" else f"log://{tmp_path / 'log'}"

    def make() -> tuple[streams.App, streams.Table]:
        app = streams.App(
            "fence",
            broker=url,
            data_dir=str(tmp_path / "data"),
            store="memory://",
            processing_guarantee="exactly_once",
            commit_interval_s=0.05,
            worker_name="w1",
        )
        return app, keyed_count(app)

    async def main():
        transport = open_transport(url, isolation_level="read_committed")
        await transport.start()
        await feed(transport, KEYS[:100])
        old_app, _ = make()
        old = Worker(old_app, transport=transport)
        old._store_directories = list  # type: ignore[method-assign]  # one data dir, two workers
        await old.start()
        old.transport = KeepOpen(transport)  # type: ignore[assignment]  # the new one uses it
        await wait_until_async(
            lambda: all_out(transport, 100), timeout_s=TIMEOUT_S, what="the first worker's outputs"
        )
        new_app, new_counts = make()
        new = Worker(new_app, transport=transport)
        new._store_directories = list  # type: ignore[method-assign]
        await new.start()  # fences the old one: same transactional id
        committed = await transport.committed("fence")
        await feed(transport, KEYS[100:])  # both read them: the old one finds out it is fenced
        with pytest.raises(ProducerFencedError):
            await asyncio.wait_for(old.run_until(asyncio.Event()), TIMEOUT_S)
        await wait_until_async(
            lambda: all_out(transport, len(KEYS)), timeout_s=TIMEOUT_S, what="the new outputs"
        )
        with pytest.raises(ProducerFencedError):
            await old.commit()  # never again
        await old.stop()  # no final commit either
        assert await transport.committed("fence") != committed  # the new one's
        assert_each_result_once(await read_all(transport, "out"), KEYS)
        assert dict(new_counts.items()) == dict(Counter(KEYS))
        await new.stop()

    asyncio.run(main())


def test_repartitioned_count_is_exactly_once_too(make_app):
    """group_by: the forwarded records go through the repartition topic in the
    transaction, and are read read_committed from it."""
    app = make_app(processing_guarantee="exactly_once")
    clicks = app.topic("clicks", partitions=PARTITIONS)
    out = app.topic("out", key_type=str, value_type=int, partitions=PARTITIONS)
    counts = app.Table("counts", default=int)

    @app.agent(clicks)
    async def count(stream):
        async for value in stream.group_by(lambda v: v["k"], name="k"):
            counts[value["k"]] += 1
            await out.send(key=value["k"], value=counts[value["k"]])

    async def main():
        transport = eos_transport(app)
        await transport.start()
        await transport.ensure_topic("clicks", PARTITIONS)
        for p in range(PARTITIONS):  # keys spread over every partition, unkeyed
            rows = [(None, f'{{"k":"{k}"}}'.encode(), 1_000, ()) for k in KEYS[p::PARTITIONS]]
            await transport.append(TopicPartition("clicks", p), encode_batch(rows))
        async with Worker(app, transport=transport):
            await wait_until_async(
                lambda: all_out(transport, len(KEYS)), timeout_s=TIMEOUT_S, what="every output"
            )
            assert dict(counts.items()) == dict(Counter(KEYS))
            assert_each_result_once(await read_all(transport, "out"), KEYS)
            assert await read_uncommitted(transport, "test-count-k-repartition") == len(KEYS)

    asyncio.run(main())


def test_table_writes_wait_for_the_commit_and_go_with_an_abort():
    """A table partition under a transaction: flushed writes are readable
    (items(), the cache) but reach the store, with their changelog offset, only
    on apply_pending(); discard_uncommitted() leaves the store as it was."""
    from stores import MemoryStore
    from streams.table import TablePartition

    store = MemoryStore()
    store.apply({b"a": b"1"}, 0)
    part = TablePartition(
        store, TopicPartition("c", 0), str.encode, bytes.decode, str.encode, bytes.decode
    )
    appended: list[list] = []

    async def append(tp, records):
        appended.append(records)
        return 10

    async def main():
        part.set("a", "2")
        part.set("b", "1")
        assert await part.flush(None, 1 << 20, append) == 2  # type: ignore[arg-type]
        assert appended and store.persisted_offset() == 0 and store.get(b"b") is None
        assert dict(part.items()) == {"a": "2", "b": "1"}
        part.discard_uncommitted()  # the transaction aborted
        assert dict(part.items()) == {"a": "1"} and part.get("a") == "1"
        part.set("b", "3")
        await part.flush(None, 1 << 20, append)  # type: ignore[arg-type]
        part.apply_pending()  # the transaction committed
        assert store.persisted_offset() == 10 and store.get(b"b") == b"3"
        assert dict(part.items()) == {"a": "1", "b": "3"}

    asyncio.run(main())


@pytest.mark.parametrize("broker_url", ["kafka"], indirect=True)
def test_fenced_worker_stops_on_kafka(broker_url, tmp_path):
    """Two workers of one transactional id in a group on a broker: the second
    fences the first, whose next transaction is refused; it stops (leaving the
    group), and the second ends with every result once."""

    def make(name: str) -> tuple[streams.App, streams.Table]:
        app = streams.App(
            "fence",
            broker=broker_url,
            data_dir=str(tmp_path / name),
            store="memory://",
            processing_guarantee="exactly_once",
            commit_interval_s=0.05,
            session_timeout_s=2.0,
            worker_name="w1",
        )
        return app, keyed_count(app)

    async def main():
        reader = open_transport(broker_url, isolation_level="read_committed")
        await reader.start()
        await feed(reader, KEYS[:100])
        old_app, _ = make("old")
        old = Worker(old_app)
        await old.start()
        await wait_until_async(
            lambda: all_out(reader, 100), timeout_s=TIMEOUT_S, what="the first worker's outputs"
        )
        new_app, _ = make("new")
        new = Worker(new_app)
        await new.start()  # fences the old one: same transactional id
        await feed(reader, KEYS[100:])  # the old one's next transaction is refused
        with pytest.raises(ProducerFencedError):
            await asyncio.wait_for(old.run_until(asyncio.Event()), TIMEOUT_S)
        await old.stop()  # leaves the group: the new one takes every partition
        await wait_until_async(
            lambda: all_out(reader, len(KEYS)), timeout_s=TIMEOUT_S, what="the new outputs"
        )
        assert_each_result_once(await read_all(reader, "out"), KEYS)
        await new.stop()
        await reader.stop()

    asyncio.run(main())


def test_take_buffers_are_forgotten_with_an_aborted_transaction(make_app):
    """Values stream.take() buffered when a transaction aborts come again with
    the rewind: each input once in the output, and no list is handled while a
    commit cuts."""
    app = make_app(processing_guarantee="exactly_once")
    words = app.topic("words", key_type=str, value_type=str, partitions=PARTITIONS)
    out = app.topic("out", key_type=str, value_type=int, partitions=PARTITIONS)
    seen: list[int] = []

    @app.agent(words)
    async def batches(stream):
        async for values in stream.take(7, within=1.0):
            for value in values:
                seen.append(1)
                await out.send(key=value, value=1)

    async def main():
        transport = eos_transport(app)
        await transport.start()
        await transport.ensure_topic("words", PARTITIONS)
        for p in range(PARTITIONS):
            rows = [(None, f"w{p}-{i}".encode(), 1_000, ()) for i in range(50)]
            await transport.append(TopicPartition("words", p), encode_batch(rows))
        async with Worker(app, transport=transport) as worker:
            commits = worker.transactions
            assert commits is not None
            real_commit, failed = commits.writer.commit, []
            total = 50 * PARTITIONS
            full = total - total % 7  # then one value waits in take()'s buffer

            async def commit_failing_once(offsets, group):
                if len(seen) >= full and not failed:  # the leftover is buffered now
                    failed.append(offsets)
                    raise TransactionAbortableError("injected by the test")
                await real_commit(offsets, group)

            commits.writer.commit = commit_failing_once  # type: ignore[method-assign]
            await wait_until_async(
                lambda: all_out(transport, total), timeout_s=TIMEOUT_S, what="every output"
            )
            assert failed and commits.aborts == 1
            results = await read_all(transport, "out")
            assert sorted(results) == sorted(
                f"w{p}-{i}".encode() for p in range(PARTITIONS) for i in range(50)
            )
            assert all(v == [1] for v in results.values())  # once each
            assert len(seen) > total  # the aborted ones were handled, then again

    asyncio.run(main())
