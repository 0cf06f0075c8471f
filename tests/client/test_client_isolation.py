"""read_committed reading: the batch filter on its own, then our consumer and the
kafka:// transport against a broker with transactions open, committed and aborted."""

from __future__ import annotations

import pytest
from client_helpers import bootstrap_of, broker, cluster, run

from runtime.client import Consumer, Producer, TransactionalProducer
from runtime.client.isolation import committed_batches, isolation_code
from runtime.kafka_transport import KafkaTransport
from runtime.log.records import (
    TRANSACTIONAL,
    decode_batches,
    encode_batch,
    encode_control_batch,
    iter_batches,
    set_base_offset,
)
from runtime.types import TopicPartition

TP = TopicPartition("mixed", 0)


def _batch(offset: int, value: bytes, pid: int = -1) -> bytes:
    attributes = TRANSACTIONAL if pid >= 0 else 0
    return bytes(
        encode_batch(
            [(None, value, 1000, ())],
            base_offset=offset,
            producer_id=pid,
            producer_epoch=0 if pid >= 0 else -1,
            base_sequence=offset if pid >= 0 else -1,
            attributes=attributes,
        )
    )


def _marker(offset: int, pid: int, *, commit: bool) -> bytes:
    marker = encode_control_batch(pid, 0, commit=commit, timestamp_ms=1000)
    set_base_offset(marker, offset)
    return bytes(marker)


def _values(data: bytes) -> list[tuple[int, bytes | None]]:
    return [(r.offset, r.value) for r in decode_batches(data)]


def test_aborted_batches_and_markers_are_dropped_and_the_position_passes_them():
    log = b"".join(
        [
            _batch(0, b"plain"),
            _batch(1, b"aborted-1", pid=7),
            _batch(2, b"committed", pid=8),
            _batch(3, b"aborted-2", pid=7),
            _marker(4, 7, commit=False),
            _marker(5, 8, commit=True),
            _batch(6, b"after-abort", pid=7),  # the same producer's next transaction
            _marker(7, 7, commit=True),
        ]
    )
    kept, next_offset = committed_batches(log, [(7, 1)], 0)
    assert _values(kept) == [(0, b"plain"), (2, b"committed"), (6, b"after-abort")]
    assert next_offset == 8
    assert all(not h.is_control for _, h in iter_batches(kept))


def test_a_fetch_that_starts_inside_an_aborted_transaction_still_drops_it():
    # the broker lists a transaction whose first offset is before the fetch offset
    log = _batch(3, b"aborted", pid=7) + _marker(4, 7, commit=False) + _batch(5, b"plain")
    kept, next_offset = committed_batches(log, [(7, 1)], 3)
    assert _values(kept) == [(5, b"plain")]
    assert next_offset == 6


def test_without_aborts_every_whole_batch_is_kept_and_a_torn_tail_is_not():
    whole = _batch(0, b"a") + _batch(1, b"b", pid=3)
    kept, next_offset = committed_batches(whole + _batch(2, b"c")[:-5], [], 0)
    assert kept == whole and next_offset == 2
    only_markers, next_offset = committed_batches(_marker(9, 3, commit=True), [], 9)
    assert only_markers == b"" and next_offset == 10
    assert committed_batches(b"", [], 4) == (b"", 4)


def test_isolation_level_names():
    assert isolation_code("read_committed") == 1 and isolation_code("read_uncommitted") == 0
    with pytest.raises(ValueError, match="isolation_level"):
        isolation_code("serializable")
    with pytest.raises(ValueError, match="isolation_level"):
        Consumer(None, isolation_level="committed")  # type: ignore[arg-type]


async def _read(consumer: Consumer, tp: TopicPartition, until: int) -> list[tuple[int, bytes]]:
    """Fetch until the position reaches `until` (or 50 rounds pass)."""
    got: list[tuple[int, bytes]] = []
    for _ in range(50):
        if await consumer.position(tp) >= until:
            break
        position = await consumer.position(tp)
        data = (await consumer.fetch(max_wait_ms=100)).get(tp, b"")
        got += [(o, v) for o, v in _values(data) if o >= position]
    return got


def test_interleaved_transactions_and_plain_records_read_committed_in_offset_order():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic(TP.topic, 1)
            a = TransactionalProducer(c, "interleaved-a", linger_ms=0)
            z = TransactionalProducer(c, "interleaved-z", linger_ms=0)
            async with a, z, Producer(c, linger_ms=0) as plain:
                await a.init_transactions()
                await z.init_transactions()
                await a.begin_transaction()
                await z.begin_transaction()
                await a.send_and_wait(TP, b"a1")
                await plain.send_and_wait(TP, b"p1")
                await z.send_and_wait(TP, b"z1")
                await a.send_and_wait(TP, b"a2")
                await plain.send_and_wait(TP, b"p2")
                await a.commit_transaction()
                await z.send_and_wait(TP, b"z2")
                await z.abort_transaction()
                await plain.send_and_wait(TP, b"p3")
            end = b.transport.log.offsets(TP)[1]
            async with Consumer(
                c, isolation_level="read_committed", auto_offset_reset="earliest"
            ) as consumer:
                consumer.assign([TP])
                got = await _read(consumer, TP, end)
                assert [v for _, v in got] == [b"a1", b"p1", b"a2", b"p2", b"p3"]
                assert [o for o, _ in got] == sorted(o for o, _ in got)
                assert await consumer.position(TP) == end  # past the last marker too
            async with Consumer(c, auto_offset_reset="earliest") as consumer:
                consumer.assign([TP])
                got = await _read(consumer, TP, end)
                assert [v for _, v in got] == [b"a1", b"p1", b"z1", b"a2", b"p2", b"z2", b"p3"]

    run(main())


def test_an_open_transaction_holds_read_committed_readers_at_the_last_stable_offset():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic(TP.topic, 1)
            async with (
                TransactionalProducer(c, "holder", linger_ms=0) as txn,
                Producer(c, linger_ms=0) as plain,
            ):
                await plain.send_and_wait(TP, b"before")
                await txn.init_transactions()
                await txn.begin_transaction()
                await txn.send_and_wait(TP, b"open")  # offset 1: the last stable offset
                await plain.send_and_wait(TP, b"after")
                committed = Consumer(
                    c, isolation_level="read_committed", auto_offset_reset="earliest"
                )
                uncommitted = Consumer(c, auto_offset_reset="latest")
                async with committed, uncommitted:
                    committed.assign([TP])
                    uncommitted.assign([TP])
                    assert await committed.list_offsets([TP], -1) == {TP: 1}
                    assert await uncommitted.position(TP) == 3
                    assert await _read(committed, TP, 1) == [(0, b"before")]
                    assert (await committed.fetch(max_wait_ms=50)).get(TP) is None
                    assert await committed.position(TP) == 1
                    assert committed.end_offset(TP) == 1
                    await txn.commit_transaction()
                    got = await _read(committed, TP, 4)
                    assert got == [(1, b"open"), (2, b"after")]
                    assert committed.end_offset(TP) == 4  # past the commit marker

    run(main())


def test_the_transport_reads_committed_and_never_rereads_what_it_skipped():
    async def main():
        async with broker() as b:
            b.transport.log.create_topic(TP.topic, 1)
            url = f"kafka://{bootstrap_of(b)}"
            async with KafkaTransport(url, isolation_level="read_committed") as transport:
                txn = transport.transactional_producer("skipped", linger_ms=0)
                async with txn, Producer(transport.cluster, linger_ms=0) as plain:
                    await txn.init_transactions()
                    await txn.begin_transaction()
                    for i in range(4):  # four batches, then the abort marker
                        await txn.send_and_wait(TP, b"aborted-%d" % i)
                    await txn.abort_transaction()
                    await plain.send_and_wait(TP, b"plain")
                assert await transport.offsets(TP) == (0, 6)
                # one batch per fetch: a caller that only moves past the batches it
                # gets must still get past the aborted ones, one fetch at a time
                position, got = 0, []
                for _ in range(10):
                    data = await transport.fetch(TP, position, max_bytes=1, max_wait_s=0.05)
                    batches = list(iter_batches(data))
                    if batches:
                        position = batches[-1][1].next_offset
                    got += [v for _, v in _values(data)]
                    if got:
                        break
                assert got == [b"plain"] and position == 6
            async with KafkaTransport(url) as transport:  # read_uncommitted: every batch
                data = await transport.fetch(TP, 0)
                assert len(list(iter_batches(data))) == 6

    run(main())
