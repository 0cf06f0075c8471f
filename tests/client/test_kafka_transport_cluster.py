"""kafka:// (KafkaTransport) on librdkafka's three-broker mock cluster: one Fetch
per broker for the partitions it leads, and fetch loops and appends that go on
through moving leaders, a broker down, and injected errors."""

from __future__ import annotations

import asyncio

from client_helpers import bootstrap_of, broker, run
from mock_cluster import TRANSPORT_ERROR

from runtime.kafka_transport import KafkaTransport
from runtime.log.records import decode_batches, encode_batch
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

PARTITIONS = 6


async def _fetch_loop(transport: KafkaTransport, tp: TopicPartition, want: int, got: dict) -> None:
    position = 0
    got[tp] = []
    while len(got[tp]) < want:
        data = await transport.fetch(tp, position, max_wait_s=0.3)
        for record in decode_batches(data):
            if record.offset >= position:
                got[tp].append(record.value)
                position = record.offset + 1


def _batch(value: bytes) -> bytes:
    return bytes(encode_batch([(None, value, 0, ())]))


def test_waiting_fetches_go_out_as_one_fetch_per_broker(mock_cluster):
    mock_cluster.create_topic("muxed", PARTITIONS)
    mock_cluster.spread_leaders("muxed", PARTITIONS)
    tps = [TopicPartition("muxed", p) for p in range(PARTITIONS)]

    async def main():
        async with KafkaTransport(mock_cluster.url) as transport:
            got: dict = {}
            loops = [asyncio.create_task(_fetch_loop(transport, tp, 10, got)) for tp in tps]
            for i in range(10):
                for tp in tps:
                    await transport.append(tp, _batch(f"{tp.partition}-{i}".encode()))
            await asyncio.wait_for(asyncio.gather(*loops), 30)
            assert got == {tp: [f"{tp.partition}-{i}".encode() for i in range(10)] for tp in tps}
            lanes = {key for key in transport.cluster._connections if key[1].startswith("fetch")}
            assert lanes == {(1, "fetch"), (2, "fetch"), (3, "fetch")}

    run(main(), timeout_s=60)


def test_fetch_loops_and_appends_go_on_through_moving_leaders_and_faults(mock_cluster):
    mock_cluster.create_topic("rough", PARTITIONS)
    mock_cluster.spread_leaders("rough", PARTITIONS)
    tps = [TopicPartition("rough", p) for p in range(PARTITIONS)]
    rounds = 24

    def fault(i: int) -> None:
        if i == 3:
            mock_cluster.push_errors(
                ApiKey.PRODUCE,
                ErrorCode.NOT_LEADER_OR_FOLLOWER,
                ErrorCode.REQUEST_TIMED_OUT,
                ErrorCode.LEADER_NOT_AVAILABLE,
            )  # no dropped connection: the mock may have stored the batch and,
            # unlike Kafka, stores its retry again (same producer id and sequence)
            mock_cluster.push_errors(ApiKey.FETCH, ErrorCode.FENCED_LEADER_EPOCH, TRANSPORT_ERROR)
        if i == 8:
            for p in range(PARTITIONS):
                mock_cluster.set_leader("rough", p, (p + 1) % 3 + 1)
        if i == 12:  # broker 3 fails; a controller would move its partitions
            mock_cluster.broker_down(3)
            for p in range(PARTITIONS):
                mock_cluster.set_leader("rough", p, p % 2 + 1)
        if i == 18:
            mock_cluster.broker_up(3)
            mock_cluster.spread_leaders("rough", PARTITIONS)

    async def main():
        async with KafkaTransport(mock_cluster.url) as transport:
            got: dict = {}
            loops = [asyncio.create_task(_fetch_loop(transport, tp, rounds, got)) for tp in tps]
            for i in range(rounds):
                await asyncio.to_thread(fault, i)
                await asyncio.gather(
                    *(transport.append(tp, _batch(f"{tp.partition}-{i}".encode())) for tp in tps)
                )
            await asyncio.wait_for(asyncio.gather(*loops), 60)
            want = {tp: [f"{tp.partition}-{i}".encode() for i in range(rounds)] for tp in tps}
            assert got == want

    run(main(), timeout_s=90)


def test_a_waiting_fetch_is_answered_by_its_own_partitions_news_or_its_wait():
    # one broker, so both partitions go in one Fetch (on librdkafka's mock, a
    # long-polling Fetch holds up the broker's other requests)
    quiet, busy = TopicPartition("news", 0), TopicPartition("news", 1)

    async def main():
        async with broker() as b:
            b.transport.log.create_topic("news", 2)
            async with KafkaTransport(f"kafka://{bootstrap_of(b)}") as transport:
                loop = asyncio.get_running_loop()
                started = loop.time()
                waiting = asyncio.create_task(transport.fetch(quiet, 0, max_wait_s=1.0))
                news = asyncio.create_task(transport.fetch(busy, 0, max_wait_s=1.0))
                await asyncio.sleep(0.1)
                await transport.append(busy, _batch(b"elsewhere"))
                data = await news
                assert loop.time() - started < 0.6  # at once, not at the end of the wait
                assert [r.value for r in decode_batches(data)] == [b"elsewhere"]
                assert not waiting.done()  # news of another partition does not end its wait
                assert await waiting == b""
                assert loop.time() - started >= 0.9
                assert transport._fetcher.requests <= 4

    run(main(), timeout_s=30)


def test_a_read_committed_fetch_reads_on_past_a_lone_transaction_marker(mock_cluster):
    # The mock answers one batch per partition, so each commit marker comes in an
    # answer of its own; read until an empty answer, as a table's recovery or a
    # reader of a topic's contents does, and every committed record is there.
    mock_cluster.create_topic("committed", 1)
    tp = TopicPartition("committed", 0)

    async def main():
        async with KafkaTransport(mock_cluster.url, isolation_level="read_committed") as transport:
            producer = transport.transactional_producer("marker-reader", linger_ms=0)
            await producer.init_transactions()
            for i in range(3):
                await producer.begin_transaction()
                await producer.send_and_wait(tp, f"v{i}".encode())
                await producer.commit_transaction()
            await producer.close()
            assert await transport.high_watermark(tp) == 6  # three records, three markers
            seen, position = [], 0
            while data := await transport.fetch(tp, position, max_wait_s=0):
                records = list(decode_batches(data))
                seen += [r.value for r in records if r.offset >= position]
                position = records[-1].offset + 1
            assert seen == [b"v0", b"v1", b"v2"]

    run(main(), timeout_s=30)
