"""Our client against librdkafka's mock cluster: three brokers of a Kafka
implementation that is not ours, partition leaders on each of them, faults
injected through the mock's own API."""

from __future__ import annotations

import asyncio

from client_helpers import cluster, run
from mock_cluster import TRANSPORT_ERROR
from waiting import wait_until_async

from runtime.client.connection import Connection
from runtime.client.consumer import Consumer
from runtime.client.group import GroupMember
from runtime.client.producer import Producer
from runtime.log.records import decode_batches
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

PARTITIONS = 6


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.partition(":")
    return host, int(port)


async def _read_all(consumer: Consumer, tps: list[TopicPartition], want: int) -> dict:
    consumer.assign(tps)
    consumer.seek_to_beginning()
    got: dict[TopicPartition, list[bytes | None]] = {tp: [] for tp in tps}
    while sum(len(v) for v in got.values()) < want:
        for tp, data in (await consumer.fetch(max_wait_ms=200)).items():
            got[tp] += [r.value for r in decode_batches(data)]
    return got


def test_connection_handshakes_with_a_broker_that_is_not_ours(mock_cluster):
    async def main():
        host, port = _host_port(mock_cluster.bootstraps.split(",")[0])
        async with await Connection.open(host, port) as conn:
            assert conn.version(ApiKey.PRODUCE) == 8
            assert conn.version(ApiKey.FETCH) == 11
            answer = await conn.request(ApiKey.METADATA, {"topics": None})
            assert sorted(b["node_id"] for b in answer["brokers"]) == [1, 2, 3]

    run(main())


def test_produce_and_fetch_go_to_each_partitions_leader(mock_cluster):
    mock_cluster.create_topic("spread", PARTITIONS)
    mock_cluster.spread_leaders("spread", PARTITIONS)
    tps = [TopicPartition("spread", p) for p in range(PARTITIONS)]

    async def main():
        async with cluster(mock_cluster.bootstraps) as c:
            leaders = {tp: await c.leader_for(tp) for tp in tps}
            assert set(leaders.values()) == {1, 2, 3}
            async with Producer(c, linger_ms=1) as producer:
                futures = [
                    await producer.send(tp, f"{tp.partition}-{i}".encode())
                    for i in range(20)
                    for tp in tps
                ]
                offsets = await asyncio.gather(*futures)
            assert sorted(offsets) == sorted(list(range(20)) * PARTITIONS)
            async with Consumer(c, auto_offset_reset="earliest") as consumer:
                got = await _read_all(consumer, tps, 20 * PARTITIONS)
            for tp in tps:
                assert got[tp] == [f"{tp.partition}-{i}".encode() for i in range(20)]

    run(main())


# --- faults ----------------------------------------------------------------------


def _expected(tps: list[TopicPartition], rounds: int) -> dict[TopicPartition, list[bytes]]:
    return {tp: [f"{tp.partition}-{i}".encode() for i in range(rounds)] for tp in tps}


async def _produce_rounds(producer: Producer, tps: list[TopicPartition], rounds, between=None):
    futures = []
    for i in rounds:
        if between is not None:
            await between(i)
        futures += [await producer.send(tp, f"{tp.partition}-{i}".encode()) for tp in tps]
        await producer.flush()
    return await asyncio.gather(*futures)


def test_pushed_leader_and_timeout_errors_are_retried_without_duplicates(mock_cluster):
    mock_cluster.create_topic("faults", PARTITIONS)
    mock_cluster.spread_leaders("faults", PARTITIONS)
    tps = [TopicPartition("faults", p) for p in range(PARTITIONS)]

    async def between(i: int) -> None:
        if i == 5:
            mock_cluster.push_errors(
                ApiKey.PRODUCE,
                ErrorCode.NOT_LEADER_OR_FOLLOWER,
                ErrorCode.LEADER_NOT_AVAILABLE,
                ErrorCode.REQUEST_TIMED_OUT,
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                ErrorCode.FENCED_LEADER_EPOCH,
            )  # no dropped connection: the mock may have stored the batch and,
            # unlike Kafka, stores its retry again (same producer id and sequence)
        if i == 10:
            mock_cluster.push_errors(
                ApiKey.FETCH,
                ErrorCode.NOT_LEADER_OR_FOLLOWER,
                ErrorCode.FENCED_LEADER_EPOCH,
                TRANSPORT_ERROR,
            )

    async def main():
        async with cluster(mock_cluster.bootstraps) as c:
            async with Producer(c, linger_ms=1, retry_backoff_ms=10) as producer:
                await _produce_rounds(producer, tps, range(20), between)
            async with Consumer(c, auto_offset_reset="earliest") as consumer:
                got = await _read_all(consumer, tps, 20 * PARTITIONS)
            assert got == _expected(tps, 20)

    run(main(), timeout_s=60)


def test_leaders_that_move_and_a_broker_down_lose_and_repeat_nothing(mock_cluster):
    mock_cluster.create_topic("moving", PARTITIONS)
    mock_cluster.spread_leaders("moving", PARTITIONS)
    tps = [TopicPartition("moving", p) for p in range(PARTITIONS)]

    async def between(i: int) -> None:
        if i == 4:  # every leader one broker on
            for p in range(PARTITIONS):
                mock_cluster.set_leader("moving", p, (p + 1) % 3 + 1)
        if i == 8:  # broker 2 fails: its partitions move to broker 1 (as a controller would)
            mock_cluster.broker_down(2)
            for p in range(PARTITIONS):
                mock_cluster.set_leader("moving", p, 1 if p % 2 else 3)
        if i == 14:
            mock_cluster.broker_up(2)
            mock_cluster.spread_leaders("moving", PARTITIONS)

    async def main():
        async with cluster(mock_cluster.bootstraps) as c:
            async with Producer(c, linger_ms=1, retry_backoff_ms=10) as producer:
                await _produce_rounds(producer, tps, range(20), between)
            async with Consumer(c, auto_offset_reset="earliest") as consumer:
                got = await _read_all(consumer, tps, 20 * PARTITIONS)
            assert got == _expected(tps, 20)

    run(main(), timeout_s=60)


def test_offsets_commit_through_a_moving_coordinator_and_its_errors(mock_cluster):
    mock_cluster.create_topic("commits", 3)
    mock_cluster.spread_leaders("commits", 3)
    tps = [TopicPartition("commits", p) for p in range(3)]

    async def main():
        async with cluster(mock_cluster.bootstraps) as c, Consumer(c) as consumer:
            mock_cluster.set_coordinator("g", 1)
            await consumer.commit("g", {tp: 1 for tp in tps})
            mock_cluster.set_coordinator("g", 3)  # moved: broker 1 says NOT_COORDINATOR
            mock_cluster.push_errors(
                ApiKey.OFFSET_COMMIT,
                ErrorCode.NOT_COORDINATOR,
                ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
                ErrorCode.REQUEST_TIMED_OUT,
            )
            await consumer.commit("g", {tp: 2 for tp in tps})
            mock_cluster.push_errors(
                ApiKey.OFFSET_FETCH, ErrorCode.NOT_COORDINATOR, TRANSPORT_ERROR
            )
            assert await consumer.committed("g", tps) == {tp: 2 for tp in tps}
            assert await c.coordinator("g") == 3

    run(main(), timeout_s=60)


def test_a_leader_down_for_a_while_is_reconnected_to_with_backoff(mock_cluster):
    mock_cluster.create_topic("outage", 3)
    mock_cluster.spread_leaders("outage", 3)
    tps = [TopicPartition("outage", p) for p in range(3)]

    async def main():
        async with cluster(mock_cluster.bootstraps) as c:
            async with Producer(c, linger_ms=1, retry_backoff_ms=10) as producer:
                await _produce_rounds(producer, tps, range(3))
                mock_cluster.broker_down(2)  # leads partition 1, which has no other replica
                sends = asyncio.ensure_future(_produce_rounds(producer, tps, range(3, 6)))
                await asyncio.sleep(1.5)  # the outage lasts this long
                assert not sends.done()
                mock_cluster.broker_up(2)
                await sends
            async with Consumer(c, auto_offset_reset="earliest") as consumer:
                got = await _read_all(consumer, tps, 6 * 3)
            assert got == _expected(tps, 6)

    run(main(), timeout_s=60)


def test_members_joining_at_once_all_get_partitions(mock_cluster):
    # (Members in one process sync before their leader does; in worker processes
    # a follower's SyncGroup may come after the leader's, which the mock refuses
    # with INVALID_REQUEST: tests/workers/test_cluster_workers.py meets that.)
    mock_cluster.create_topic("shared", 6)
    mock_cluster.spread_leaders("shared", 6)
    fast = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 200, "rebalance_timeout_ms": 3000}

    async def main():
        async with cluster(mock_cluster.bootstraps) as c:
            members = [GroupMember(c, "trio", ["shared"], **fast) for _ in range(3)]
            await asyncio.gather(*(m.start() for m in members))

            def shared_out() -> bool:
                owned = [m.assignment.partitions if m.assignment else () for m in members]
                flat = sorted(tp.partition for tps in owned for tp in tps)
                return all(owned) and flat == list(range(6))

            try:
                await wait_until_async(
                    shared_out,
                    timeout_s=30,
                    what=lambda: f"assignments {[m.assignment for m in members]}",
                )
            finally:
                for m in members:
                    await m.close()

    run(main(), timeout_s=60)
