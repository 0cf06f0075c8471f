"""A worker owns the directories of its tables' stores: a second worker on
them fails at start with DataDirLockedError naming the holder, on every
transport, and gets them once the first has stopped."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import streams
from runtime.errors import DataDirLockedError
from streams.worker import Worker


def counting_app(make_app, **kwargs) -> streams.App:
    app = make_app("locked", **kwargs)
    events = app.topic("events", key_type=str, value_type=int, partitions=2)
    counts = app.Table("counts", default=int, partitions=2)

    @app.agent(events)
    async def count(stream):
        async for event in stream.events():
            counts[event.key] += 1

    return app


async def second_start_fails(first: streams.App, second: streams.App, directory: Path) -> None:
    async with Worker(first):
        other = Worker(second)
        with pytest.raises(DataDirLockedError) as info:
            await other.start()
        assert str(directory) in str(info.value)
        assert f"holder pid {os.getpid()}" in str(info.value)
        assert second.wiring.transport is None  # nothing was started
    async with Worker(second):  # released by the first's stop
        pass


def test_second_worker_on_the_same_stores_fails_at_start(make_app, tmp_path):
    # rocksdb:// on memory:// too, whose default stores are in memory
    first = counting_app(make_app, store="rocksdb://")
    second = counting_app(make_app, store="rocksdb://")
    asyncio.run(second_start_fails(first, second, tmp_path / "data" / "stores"))


def test_a_store_directory_outside_the_data_dir_is_locked_too(make_app, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    first = counting_app(make_app, store=f"rocksdb://{elsewhere}", data_dir=str(tmp_path / "a"))
    second = counting_app(make_app, store=f"rocksdb://{elsewhere}", data_dir=str(tmp_path / "b"))
    if first.broker.startswith("log://"):  # each would own its log: give them one each
        first.broker, second.broker = f"log://{tmp_path / 'a-log'}", f"log://{tmp_path / 'b-log'}"
    asyncio.run(second_start_fails(first, second, elsewhere))


def test_a_failed_transport_start_releases_the_lock(make_app, tmp_path):
    class Refused(Exception):
        pass

    async def main() -> None:
        app = counting_app(make_app, store="rocksdb://")
        worker = Worker(app)

        async def refuse() -> None:
            raise Refused

        worker.transport.start = refuse  # type: ignore[method-assign]
        with pytest.raises(Refused):
            await worker.start()
        async with Worker(counting_app(make_app, store="rocksdb://")):
            pass

    asyncio.run(main())


@pytest.mark.parametrize("broker_url", ["kafka"], indirect=True)
def test_exactly_once_workers_of_one_data_dir_are_one_identity(make_app, tmp_path):
    """Under exactly_once the data directory holds the worker's name, and so its
    transactional id: a second worker on it (memory:// stores lock nothing else)
    fails at start rather than fence the first."""
    first = counting_app(make_app, store="memory://", processing_guarantee="exactly_once")
    second = counting_app(make_app, store="memory://", processing_guarantee="exactly_once")
    asyncio.run(second_start_fails(first, second, tmp_path / "data" / "worker"))
