"""A worker on log:// whose disk fills up: it stops with an error naming the
topic and partition, commits nothing past what it lost, and after space comes
back a restart brings every output and count to at least the truth.

The full disk is DiskFaults under the embedded log (unit level: a real full
disk is tests/broker/test_broker_full_disk.py), with a budget of bytes that runs
out while the agent is writing its table's changelog and its sink topic.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
import pytest
from waiting import wait_until_async

import streams
from runtime.errors import StorageError
from runtime.log.faults import DiskFaults
from runtime.log.manager import Log
from runtime.log.offsets import OffsetStore
from runtime.log.records import decode_batches
from runtime.types import TopicPartition
from streams.worker import Worker

EVENTS = 3000
PARTITIONS = 2
FREE_BYTES = 15_000  # room for some of the writes, not for all of them


def make_app(tmp_path) -> tuple[streams.App, streams.Topic, streams.Table]:
    app = streams.App(
        "full",
        broker=f"log://{tmp_path / 'log'}",
        data_dir=str(tmp_path),
        store="rocksdb://",
        commit_interval_s=0.02,
    )
    clicks = app.topic("clicks", key_type=str, value_type=int, partitions=PARTITIONS)
    echoed = app.topic("echoed", key_type=str, value_type=int, partitions=PARTITIONS)
    counts = app.Table("counts", default=int, partitions=PARTITIONS)

    @app.agent(clicks, sink=[echoed])
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += 1
            yield event.value
            if event.value % 100 == 0:  # spread the work over many commits
                await asyncio.sleep(0.005)

    return app, clicks, counts


def key_of(i: int) -> str:
    return f"k{i % 7}"


def _records(log: Log, tp: TopicPartition) -> list:
    start, end = log.offsets(tp)
    return decode_batches(log.read(tp, start, 1 << 30)) if end > start else []


def _check_nothing_committed_past_a_loss(path) -> int:
    """Every input event below the committed offset has its output in the sink."""
    with Log.open(path) as log:
        committed = OffsetStore(log).fetch("full")
        echoed = {
            orjson.loads(r.value)
            for p in range(PARTITIONS)
            for r in _records(log, TopicPartition("echoed", p))
        }
        covered = 0
        for p in range(PARTITIONS):
            tp = TopicPartition("clicks", p)
            offset = committed[tp].offset if tp in committed else 0
            inputs = [orjson.loads(r.value) for r in _records(log, tp) if r.offset < offset]
            assert set(inputs) <= echoed, f"{tp} committed to {offset} past lost outputs"
            covered += len(inputs)
        return covered


async def _all_committed(worker: Worker) -> bool:
    committed = await worker.transport.committed("full")
    for p in range(PARTITIONS):
        tp = TopicPartition("clicks", p)
        _, end = await worker.transport.offsets(tp)
        if committed.get(tp, 0) < end:
            return False
    return True


@pytest.mark.timeout(60)
def test_worker_stops_on_a_full_disk_and_a_restart_catches_up(tmp_path):
    async def write_the_truth() -> None:
        app, clicks, _ = make_app(tmp_path)
        async with app:
            for i in range(EVENTS):
                await clicks.send(key=key_of(i), value=i)

    async def run_out_of_space() -> StorageError:
        app, _, _ = make_app(tmp_path)
        faults = DiskFaults()
        with faults.installed():
            worker = Worker(app)
            faults.fill(FREE_BYTES)
            await worker.start()
            try:
                with pytest.raises(StorageError) as caught:
                    await asyncio.wait_for(worker.run_until(), 30)
                faults.free()  # space comes back while it stops: still no commit
            finally:
                await worker.stop()
        return caught.value

    async def restart() -> tuple[dict, set[int]]:
        app, _, counts = make_app(tmp_path)
        async with Worker(app) as worker:
            await wait_until_async(
                lambda: _all_committed(worker), timeout_s=30, what="every event committed"
            )
            table = counts.as_dict()
        with Log.open(tmp_path / "log") as log:
            echoed = {
                orjson.loads(r.value)
                for p in range(PARTITIONS)
                for r in _records(log, TopicPartition("echoed", p))
            }
        return table, echoed

    asyncio.run(write_the_truth())
    error = asyncio.run(run_out_of_space())
    assert error.topic in {"echoed", "full-counts-changelog", "__consumer_offsets"}
    assert error.partition in range(PARTITIONS)
    assert f"topic {error.topic!r} partition {error.partition}" in str(error)
    covered = _check_nothing_committed_past_a_loss(tmp_path / "log")
    assert covered < EVENTS, covered  # the disk ran out before the end
    print(f"committed before the disk filled: {covered} of {EVENTS} events")

    table, echoed = asyncio.run(restart())
    truth = Counter(key_of(i) for i in range(EVENTS))
    assert set(table) == set(truth)
    for key, n in truth.items():
        assert table[key] >= n, (key, table[key], n)  # at least once
    assert echoed >= set(range(EVENTS))


@pytest.mark.timeout(30)
def test_send_on_a_full_disk_raises_storage_error_to_the_sender(tmp_path):
    async def main() -> None:
        app, clicks, _ = make_app(tmp_path)
        faults = DiskFaults()
        with faults.installed(), pytest.raises(StorageError) as at_exit:
            async with app:
                await clicks.send_and_wait(key="a", value=1)
                faults.fill(0)
                with pytest.raises(StorageError) as caught:
                    await clicks.send_and_wait(key="a", value=2)
                assert caught.value.topic == "clicks"
                faults.free()
                metadata = await clicks.send_and_wait(key="a", value=3)
                assert metadata.offset == 1  # right after the acknowledged record
        # like every failed send, it is raised again when the app closes (its
        # flush), so that a send nobody awaited cannot fail silently
        assert at_exit.value is caught.value

    asyncio.run(main())
