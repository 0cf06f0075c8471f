"""send_soon's result: an asyncio future made only when someone waits on it."""

from __future__ import annotations

import asyncio

import pytest

import streams
from runtime.producer import Producer
from runtime.types import TopicPartition
from streams.pending_send import PendingSend
from streams.topic import RecordMetadata

TP = TopicPartition("out", 0)


def _app() -> tuple[streams.App, streams.Topic]:
    app = streams.App("pending-send", broker="memory://")
    return app, app.topic("out", key_type=str, value_type=str, partitions=4)


async def _test_awaited_send_soon_gives_the_records_metadata() -> None:
    app, out = _app()
    async with app:
        first = out.send_soon("k", "a", timestamp=12.5)
        second = out.send_soon("k", "b", timestamp=13.0)
        meta = await second
        assert await first == RecordMetadata("out", meta.partition, meta.offset - 1, 12_500)
        assert meta.timestamp_ms == 13_000
        assert (await out.send_and_wait("k", "c")).offset == meta.offset + 1
        assert (await (await out.send("k", "d"))).offset == meta.offset + 2


async def _test_gather_wait_and_wait_for_take_it_as_a_future() -> None:
    app, out = _app()
    async with app:
        sent = [out.send_soon(f"k{i}", "v", partition=1) for i in range(5)]
        assert all(asyncio.isfuture(p) for p in sent)
        metas = await asyncio.gather(*sent)
        assert [m.offset for m in metas] == list(range(5))
        more = out.send_soon("k", "v", partition=1)
        done, pending = await asyncio.wait([more], timeout=30)
        assert done == {more} and not pending
        assert more.result().offset == 5
        assert (await asyncio.wait_for(out.send_soon("k", "v", partition=1), 30)).offset == 6


async def _test_unawaited_sends_make_no_future_and_are_stored() -> None:
    app, out = _app()
    async with app:
        sent = [out.send_soon(f"k{i}", "v", partition=2) for i in range(100)]
        await out._wiring.producer.flush()
        assert all(p.done() for p in sent)
        assert all(p._future is None for p in sent)
        assert [p.result().offset for p in sent] == list(range(100))


async def _test_callbacks_get_the_pending_send_and_can_be_removed() -> None:
    app, out = _app()
    async with app:
        heard: list[object] = []
        kept, dropped = out.send_soon("k", "v"), out.send_soon("k", "w")
        kept.add_done_callback(heard.append)
        dropped.add_done_callback(heard.append)
        assert dropped.remove_done_callback(heard.append) == 1
        await asyncio.gather(kept, dropped)
        await asyncio.sleep(0)  # done callbacks run on the loop's next turn
        assert heard == [kept]
        late: list[object] = []
        kept.add_done_callback(late.append)  # on a settled record: called soon, as asyncio does
        await asyncio.sleep(0)
        assert late == [kept]


async def _test_a_failed_batch_fails_the_record_and_the_next_flush() -> None:
    async def refuse(tp: TopicPartition, records: list) -> int:
        raise OSError("disk full")

    producer = Producer(None, append=refuse)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    watched, unwatched = PendingSend(loop, "out", 0, 1), PendingSend(loop, "out", 0, 2)
    producer.send_nowait(TP, b"k", b"v", 1, settle=watched)
    producer.send_nowait(TP, b"k", b"w", 2, settle=unwatched)
    waiting = asyncio.ensure_future(asyncio.wait_for(watched, 30))
    with pytest.raises(OSError, match="disk full"):
        await producer.flush()
    with pytest.raises(OSError, match="disk full"):
        await waiting
    assert isinstance(unwatched.exception(), OSError)
    with pytest.raises(OSError, match="disk full"):
        await unwatched  # its future, made after the failure, fails too
    with pytest.raises(OSError):
        unwatched.result()


async def _test_not_yet_stored_says_so() -> None:
    pending = PendingSend(asyncio.get_running_loop(), "out", 0, 1)
    assert not pending.done() and not pending.cancelled() and not pending.cancel()
    with pytest.raises(asyncio.InvalidStateError):
        pending.result()
    with pytest.raises(asyncio.InvalidStateError):
        pending.exception()
    pending.set_result(7)
    assert pending.result() == RecordMetadata("out", 0, 7, 1)
    assert "stored" in repr(pending)


def test_awaited_send_soon_gives_the_records_metadata() -> None:
    asyncio.run(_test_awaited_send_soon_gives_the_records_metadata())


def test_gather_wait_and_wait_for_take_it_as_a_future() -> None:
    asyncio.run(_test_gather_wait_and_wait_for_take_it_as_a_future())


def test_unawaited_sends_make_no_future_and_are_stored() -> None:
    asyncio.run(_test_unawaited_sends_make_no_future_and_are_stored())


def test_callbacks_get_the_pending_send_and_can_be_removed() -> None:
    asyncio.run(_test_callbacks_get_the_pending_send_and_can_be_removed())


def test_a_failed_batch_fails_the_record_and_the_next_flush() -> None:
    asyncio.run(_test_a_failed_batch_fails_the_record_and_the_next_flush())


def test_not_yet_stored_says_so() -> None:
    asyncio.run(_test_not_yet_stored_says_so())
