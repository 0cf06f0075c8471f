"""send_soon's result: an asyncio future made only when someone waits on it."""

from __future__ import annotations

import asyncio

import pytest

import streams
from runtime.errors import RecordTooLargeError
from runtime.log.records import decode_batches
from runtime.producer import BatchOutcome, Producer
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
    watched = PendingSend(*producer.send_batched(TP, b"k", b"v", 1), 1)
    unwatched = PendingSend(*producer.send_batched(TP, b"k", b"w", 2), 2)
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
    outcome = BatchOutcome(TP)
    pending, next_one = PendingSend(outcome, 0, 1), PendingSend(outcome, 1, 2)
    assert not pending.done() and not pending.cancelled() and not pending.cancel()
    with pytest.raises(asyncio.InvalidStateError):
        pending.result()
    with pytest.raises(asyncio.InvalidStateError):
        pending.exception()
    waiting = asyncio.ensure_future(asyncio.wait_for(next_one, 30))
    await asyncio.sleep(0)
    outcome.settle(7)
    assert pending.result() == RecordMetadata("out", 0, 7, 1)
    assert await waiting == RecordMetadata("out", 0, 8, 2)
    assert "stored" in repr(pending)


async def _test_every_record_of_a_batch_gets_its_own_offset_in_order() -> None:
    # One outcome per batch: the records' offsets are its base plus their index,
    # across batches cut by batch_records_max, and in send order per partition.
    app = streams.App("pending-send-batches", broker="memory://")
    out = app.topic("out", key_type=str, value_type=str, partitions=2)
    async with app:
        producer = out._wiring.producer
        assert producer is not None
        producer._batch_records_max = 3
        sent = [out.send_soon(f"k{i}", f"v{i}", partition=i % 2) for i in range(14)]
        watched = sent[9]
        waiting = asyncio.ensure_future(asyncio.wait_for(watched, 30))
        await producer.flush()
        metas = [p.result() for p in sent]
        assert [m.offset for m in metas if m.partition == 0] == list(range(7))
        assert [m.offset for m in metas if m.partition == 1] == list(range(7))
        assert (await waiting).offset == 4 and (await waiting).partition == 1
        stored = await app.wiring.require_transport().fetch(TP, 0, max_bytes=1 << 20)
        assert stored  # what the offsets name is in the log, in order
        values = [(r.offset, r.value) for r in decode_batches(stored)]
        assert values == [(i // 2, f"v{i}".encode()) for i in range(0, 14, 2)]


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


def test_every_record_of_a_batch_gets_its_own_offset_in_order() -> None:
    asyncio.run(_test_every_record_of_a_batch_gets_its_own_offset_in_order())


async def _test_an_oversized_record_mid_batch_is_refused_and_loses_nothing_else() -> None:
    app = streams.App("pending-send-big", broker="memory://")
    out = app.topic(
        "out", value_serializer="raw", partitions=1, config={"max.message.bytes": "2000"}
    )
    async with app:
        before = [out.send_soon(value=b"a%d" % i) for i in range(3)]
        with pytest.raises(RecordTooLargeError) as info:
            out.send_soon(value=b"x" * 5000)
        assert (info.value.topic, info.value.partition) == ("out", 0)
        assert "2000" in str(info.value)
        after = [out.send_soon(value=b"b%d" % i) for i in range(2)]
        metas = await asyncio.gather(*before, *after)
        assert [m.offset for m in metas] == [0, 1, 2, 3, 4]
        stored = await app.wiring.require_transport().fetch(TopicPartition("out", 0), 0)
        assert [r.value for r in decode_batches(stored)] == [b"a0", b"a1", b"a2", b"b0", b"b1"]


def test_an_oversized_record_mid_batch_is_refused_and_loses_nothing_else() -> None:
    asyncio.run(_test_an_oversized_record_mid_batch_is_refused_and_loses_nothing_else())


async def _test_a_lowered_topic_limit_applies_to_the_next_record() -> None:
    producer = Producer(None, append=_stored)  # type: ignore[arg-type]
    producer.send_batched(TP, None, b"v" * 500, 1)
    producer.set_max_message_bytes(TP.topic, 300)
    with pytest.raises(RecordTooLargeError):
        producer.send_batched(TP, None, b"w" * 500, 2)
    outcome, index = producer.send_batched(TP, None, b"small", 3)
    await producer.flush()
    # The record buffered before the change goes out in its own batch.
    assert (outcome.base, index) == (1, 0)


async def _stored(tp: TopicPartition, records: list) -> int:
    first = _next_offset.get(tp, 0)
    _next_offset[tp] = first + len(records)
    return first


_next_offset: dict[TopicPartition, int] = {}


def test_a_lowered_topic_limit_applies_to_the_next_record() -> None:
    asyncio.run(_test_a_lowered_topic_limit_applies_to_the_next_record())
