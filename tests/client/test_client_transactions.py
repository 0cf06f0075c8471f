"""Our transactional producer against an in-process broker: commit and abort as a
read_committed reader sees them, misuse, fencing (a newer instance, a timeout),
failed sends, offsets committed with a transaction, and a lost EndTxn answer."""

from __future__ import annotations

import pytest
from client_helpers import CuttingProxy, broker, cluster, run
from waiting import wait_until_async

from runtime.broker.server import Address
from runtime.broker.transactions import TransactionSettings
from runtime.client import (
    ConsumerGroupMetadata,
    GroupMember,
    KafkaError,
    ProducerFencedError,
    TransactionAbortableError,
    TransactionAbortedError,
    TransactionalProducer,
    TransactionFatalError,
    TransactionState,
    TransactionStateError,
)
from runtime.client.cluster import TRANSACTION
from runtime.client.consumer import Consumer
from runtime.errors import ProducerFencedError as LogProducerFencedError
from runtime.log.records import decode_batches, iter_batches
from runtime.protocol.codes import ApiKey, ErrorCode
from runtime.types import TopicPartition

OUT = [TopicPartition("out", 0), TopicPartition("out", 1)]
FAST = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 100, "rebalance_timeout_ms": 3000}


async def read_all(c, tps, isolation: str = "read_committed") -> list[bytes | None]:
    """Every value of `tps` up to the end a reader of that isolation level reaches."""
    async with Consumer(c, isolation_level=isolation, auto_offset_reset="earliest") as consumer:
        consumer.assign(tps)
        ends = await consumer.list_offsets(tps, -1)
        values: list[bytes | None] = []
        for _ in range(100):
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                return values
            for tp, data in (await consumer.fetch(max_wait_ms=50)).items():
                values += [r.value for r in decode_batches(data) if r.offset >= positions[tp]]
    raise AssertionError(f"did not reach {ends}: read {values}")


async def txn_state(c, transactional_id: str) -> str:
    node = await c.coordinator(transactional_id, key_type=TRANSACTION)
    answer = await c.request(
        node, ApiKey.DESCRIBE_TRANSACTIONS, {"transactional_ids": [transactional_id]}
    )
    return answer["transaction_states"][0]["transaction_state"]


def test_committed_records_are_seen_whole_aborted_ones_only_read_uncommitted():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("out", 2)
            async with TransactionalProducer(c, "commit-abort") as producer:
                await producer.init_transactions()
                assert producer.state is TransactionState.READY
                await producer.begin_transaction()
                for i in range(6):
                    await producer.send(OUT[i % 2], b"committed-%d" % i)
                await producer.commit_transaction()
                await producer.begin_transaction()
                for i in range(4):
                    await producer.send(OUT[i % 2], b"aborted-%d" % i)
                await producer.flush()
                await producer.abort_transaction()
                pid, epoch = producer.producer_id, producer.producer_epoch
            committed = sorted(await read_all(c, OUT))
            assert committed == sorted(b"committed-%d" % i for i in range(6))
            everything = await read_all(c, OUT, "read_uncommitted")
            assert sorted(everything) == sorted(committed + [b"aborted-%d" % i for i in range(4)])
            for tp in OUT:  # data batches: transactional, with our id, epoch and sequences
                data = b.transport.log.read(tp, 0, 1 << 20)
                headers = [h for _, h in iter_batches(data) if not h.is_control]
                assert all(h.is_transactional for h in headers)
                assert {(h.producer_id, h.producer_epoch) for h in headers} == {(pid, epoch)}
                assert [h.base_sequence for h in headers] == [0, 3]

    run(main())


def test_misuse_raises_a_state_error_and_leaves_the_producer_usable():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("out", 2)
            with pytest.raises(ValueError, match="transactional_id"):
                TransactionalProducer(c, "")
            with pytest.raises(ValueError, match="idempotent"):
                TransactionalProducer(c, "x", idempotent=False)
            async with TransactionalProducer(c, "misuse") as producer:
                with pytest.raises(TransactionStateError, match="init_transactions"):
                    await producer.begin_transaction()
                with pytest.raises(TransactionStateError, match="init_transactions"):
                    await producer.send(OUT[0], b"x")
                await producer.init_transactions()
                with pytest.raises(TransactionStateError, match="called before"):
                    await producer.init_transactions()
                with pytest.raises(TransactionStateError, match="begin_transaction"):
                    await producer.send(OUT[0], b"outside")
                with pytest.raises(TransactionStateError, match="begin_transaction"):
                    await producer.commit_transaction()
                with pytest.raises(TransactionStateError, match="begin_transaction"):
                    await producer.abort_transaction()
                with pytest.raises(TransactionStateError, match="begin_transaction"):
                    await producer.send_offsets_to_transaction({OUT[0]: 1}, "g")
                await producer.begin_transaction()
                with pytest.raises(TransactionStateError, match="is open"):
                    await producer.begin_transaction()
                await producer.send(OUT[0], b"fine")
                await producer.commit_transaction()
                # an empty transaction needs no coordinator at all
                await producer.begin_transaction()
                await producer.commit_transaction()
                await producer.begin_transaction()
                await producer.abort_transaction()
            assert await read_all(c, OUT) == [b"fine"]

    run(main())


def test_a_second_instance_fences_the_first_on_its_next_send_and_commit():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("out", 2)
            zombie = TransactionalProducer(c, "fenced", linger_ms=0)
            successor = TransactionalProducer(c, "fenced")
            async with zombie, successor:
                await zombie.init_transactions()
                await zombie.begin_transaction()
                await zombie.send_and_wait(OUT[0], b"zombie")
                await successor.init_transactions()  # aborts the zombie's transaction
                async with successor.transaction():
                    await successor.send(OUT[0], b"successor")
                late = await zombie.send(OUT[0], b"late")
                with pytest.raises(ProducerFencedError) as info:
                    await late
                assert info.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
                assert isinstance(info.value, LogProducerFencedError)  # one class to catch
                assert zombie.state is TransactionState.FATAL
                with pytest.raises(ProducerFencedError):
                    await zombie.commit_transaction()
                with pytest.raises(ProducerFencedError):
                    await zombie.begin_transaction()
            assert await read_all(c, OUT) == [b"successor"]

            # fenced between sends: the commit itself is refused
            first, second = TransactionalProducer(c, "refused"), TransactionalProducer(c, "refused")
            async with first, second:
                await first.init_transactions()
                await first.begin_transaction()
                await first.send_and_wait(OUT[1], b"never")
                await second.init_transactions()
                with pytest.raises(ProducerFencedError) as info:
                    await first.commit_transaction()
                assert info.value.code == ErrorCode.PRODUCER_FENCED
            assert await read_all(c, [OUT[1]]) == []

    run(main())


def test_a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced():
    async def main():
        settings = TransactionSettings(abort_check_interval_ms=20)
        async with broker(transactions=settings) as b, cluster(b) as c:
            b.transport.log.create_topic("out", 2)
            async with TransactionalProducer(c, "slow", transaction_timeout_ms=200) as producer:
                await producer.init_transactions()
                await producer.begin_transaction()
                await producer.send_and_wait(OUT[0], b"too late")
                await wait_until_async(
                    lambda: _is(txn_state(c, "slow"), "CompleteAbort"),
                    timeout_s=10,
                    what="the coordinator to abort the overdue transaction",
                )
                with pytest.raises(ProducerFencedError, match="timeout"):
                    await producer.commit_transaction()
            assert await read_all(c, OUT) == []

    run(main())


async def _is(state, expected: str) -> bool:
    return await state == expected


def test_a_failed_send_makes_the_transaction_abortable_and_abort_bumps_the_epoch():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("small", 1, {"max.message.bytes": "2000"})
            tp = TopicPartition("small", 0)
            async with TransactionalProducer(c, "too-big", linger_ms=0) as producer:
                await producer.init_transactions()
                epoch = producer.producer_epoch
                await producer.begin_transaction()
                await producer.send_and_wait(tp, b"fits")
                with pytest.raises(KafkaError) as info:
                    await producer.send_and_wait(tp, b"x" * 5000)
                assert info.value.code == ErrorCode.MESSAGE_TOO_LARGE
                assert producer.state is TransactionState.ABORTABLE
                with pytest.raises(TransactionAbortableError, match="MESSAGE_TOO_LARGE"):
                    await producer.send(tp, b"more")
                with pytest.raises(TransactionAbortableError, match="aborted"):
                    await producer.commit_transaction()
                await producer.abort_transaction()
                assert producer.producer_epoch > epoch  # the sequences start afresh
                async with producer.transaction():
                    await producer.send(tp, b"next")
            assert await read_all(c, [tp]) == [b"next"]

    run(main())


def test_abort_drops_unsent_records_and_close_aborts_an_open_transaction():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("out", 2)
            async with TransactionalProducer(c, "dropper", linger_ms=60_000) as producer:
                await producer.init_transactions()
                await producer.begin_transaction()
                futures = [await producer.send(OUT[0], b"unsent-%d" % i) for i in range(3)]
                await producer.abort_transaction()
                for future in futures:
                    with pytest.raises(TransactionAbortedError):
                        await future
                await producer.begin_transaction()
                await producer.send(OUT[1], b"open at close")
                await producer.flush()
                assert await txn_state(c, "dropper") == "Ongoing"
            assert producer.state is TransactionState.CLOSED
            assert await txn_state(c, "dropper") == "CompleteAbort"
            assert b.transport.log.offsets(OUT[0]) == (0, 0)  # nothing of the first went out
            assert await read_all(c, OUT) == []  # and the LSO is past the aborted one

    run(main())


def test_the_transaction_block_commits_or_aborts_on_an_error():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("out", 2)
            async with TransactionalProducer(c, "block") as producer:
                await producer.init_transactions()
                async with producer.transaction():
                    await producer.send(OUT[0], b"kept")
                with pytest.raises(RuntimeError, match="boom"):
                    async with producer.transaction():
                        await producer.send(OUT[0], b"dropped")
                        await producer.flush()
                        raise RuntimeError("boom")
                assert producer.state is TransactionState.READY
            assert await read_all(c, OUT) == [b"kept"]

    run(main())


def test_offsets_sent_with_a_transaction_are_committed_by_its_commit_only():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("in", 2)
            b.transport.log.create_topic("out", 2)
            inputs = [TopicPartition("in", 0), TopicPartition("in", 1)]
            async with (
                GroupMember(c, "ctp", ["in"], **FAST) as member,
                TransactionalProducer(c, "ctp-0") as producer,
            ):
                await producer.init_transactions()
                async with producer.transaction():
                    await producer.send(OUT[0], b"result")
                    await producer.send_offsets_to_transaction(
                        {inputs[0]: 5, inputs[1]: 7}, member.group_metadata()
                    )
                assert await member.committed(inputs) == {inputs[0]: 5, inputs[1]: 7}
                await producer.begin_transaction()
                await producer.send_offsets_to_transaction({inputs[0]: 9}, member.group_metadata())
                await producer.abort_transaction()
                assert await member.committed(inputs) == {inputs[0]: 5, inputs[1]: 7}
                # a group id alone commits without the generation check
                async with producer.transaction():
                    await producer.send_offsets_to_transaction({inputs[1]: 8}, "standalone")
            assert await read_all(c, OUT) == [b"result"]

    run(main())


def test_a_member_a_rebalance_replaced_cannot_commit_through_a_transaction():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("in", 2)
            tp = TopicPartition("in", 0)
            async with (
                GroupMember(c, "fence-me", ["in"], **FAST) as first,
                TransactionalProducer(c, "fence-me-0") as producer,
            ):
                await producer.init_transactions()
                stale = first.group_metadata()
                async with GroupMember(c, "fence-me", ["in"], **FAST):
                    await wait_until_async(
                        lambda: first.generation > stale.generation_id,
                        timeout_s=10,
                        what="the rebalance a second member causes",
                    )
                    await producer.begin_transaction()
                    with pytest.raises(TransactionAbortableError) as info:
                        await producer.send_offsets_to_transaction({tp: 3}, stale)
                    assert info.value.code == ErrorCode.ILLEGAL_GENERATION
                    assert producer.state is TransactionState.ABORTABLE
                    await producer.abort_transaction()
                    with pytest.raises(TransactionAbortableError) as info:
                        async with producer.transaction():
                            await producer.send_offsets_to_transaction(
                                {tp: 3},
                                ConsumerGroupMetadata("fence-me", stale.generation_id, "ghost"),
                            )
                    assert info.value.code == ErrorCode.UNKNOWN_MEMBER_ID
                assert await first.committed([tp]) == {}

    run(main())


def test_an_end_txn_whose_answer_was_lost_is_retried_and_commits_once():
    async def main():
        proxy = CuttingProxy()
        await proxy.start()
        async with broker(advertise=Address("127.0.0.1", proxy.port)) as b:
            assert b.address is not None
            proxy.upstream = ("127.0.0.1", b.address.port)
            b.transport.log.create_topic("out", 2)
            async with (
                cluster(f"127.0.0.1:{proxy.port}") as c,
                TransactionalProducer(c, "lost-answer") as producer,
            ):
                await producer.init_transactions()
                await producer.begin_transaction()
                await producer.send(OUT[0], b"once")
                await producer.send(OUT[1], b"twice?")
                proxy.arm(ApiKey.END_TXN)  # the coordinator commits; its answer is lost
                await producer.commit_transaction()
                assert proxy.cuts == 1
                async with producer.transaction():
                    await producer.send(OUT[0], b"after")
            async with cluster(b) as direct:
                assert sorted(await read_all(direct, OUT)) == [b"after", b"once", b"twice?"]
                markers = [
                    h
                    for tp in OUT
                    for _, h in iter_batches(b.transport.log.read(tp, 0, 1 << 20))
                    if h.is_control
                ]
                assert len(markers) == 3  # one commit marker per partition per transaction
        await proxy.stop()

    run(main())


def test_fatal_is_final_and_names_its_cause():
    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("out", 2)
            async with (
                TransactionalProducer(c, "final") as first,
                TransactionalProducer(c, "final") as second,
            ):
                await first.init_transactions()
                await second.init_transactions()
                await first.begin_transaction()
                with pytest.raises(ProducerFencedError) as info:
                    await first.send_offsets_to_transaction({OUT[0]: 1}, "g")
                with pytest.raises(TransactionFatalError) as later:
                    await first.abort_transaction()
                assert later.value.__cause__ is info.value

    run(main())


def test_an_epoch_bump_never_takes_the_id_back_from_a_newer_instance():
    """After a send of unknown fate, abort bumps the epoch with the current id and
    epoch (KIP-360): if another instance took over meanwhile, the bump is refused
    rather than fencing the newer instance in turn."""

    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("out", 2)
            old = TransactionalProducer(c, "bumped")
            new = TransactionalProducer(c, "bumped")
            async with old, new:
                await old.init_transactions()
                current = (old.producer_id, old.producer_epoch)
                bumped = await old._requests.init_producer_id(current)
                assert bumped == (current[0], current[1] + 1)
                await new.init_transactions()
                with pytest.raises(ProducerFencedError):
                    await old._requests.init_producer_id(bumped)
                async with new.transaction():  # still the id's owner
                    await new.send(OUT[0], b"owner")
            assert await read_all(c, OUT) == [b"owner"]

    run(main())


def test_a_transaction_can_write_to_a_topic_the_broker_creates_on_first_use():
    async def main():
        async with broker(default_partitions=2) as b, cluster(b) as c:
            fresh = [TopicPartition("fresh", 1), TopicPartition("fresh", 0)]
            async with TransactionalProducer(c, "creator") as producer:
                await producer.init_transactions()
                async with producer.transaction():
                    await producer.send(fresh[0], b"by partition")
                    await producer.send("fresh", b"by key", key=b"k")
            assert sorted(await read_all(c, fresh)) == [b"by key", b"by partition"]

    run(main())


def test_a_stable_offset_fetch_waits_for_offsets_a_transaction_holds():
    """OffsetFetch v7 require_stable (KIP-447), as a read_committed KafkaTransport
    asks it: offsets sent with a transaction not yet decided answer
    UNSTABLE_OFFSET_COMMIT, so a new owner starts from what that transaction
    leaves, not from before it."""
    import asyncio

    from runtime.client.offsets import fetch_committed
    from runtime.kafka_transport import KafkaTransport

    async def main():
        async with broker() as b, cluster(b) as c:
            b.transport.log.create_topic("in", 1)
            tp = TopicPartition("in", 0)
            url = f"kafka://127.0.0.1:{b.address.port}"
            async with (
                TransactionalProducer(c, "stable-0") as producer,
                KafkaTransport(url, isolation_level="read_committed") as reader,
            ):
                await producer.init_transactions()
                await producer.begin_transaction()
                await producer.send_offsets_to_transaction({tp: 4}, "g")
                assert await fetch_committed(c, "g", [tp]) == {}  # not stable: nothing yet
                node = await c.coordinator("g")
                body = {"group_id": "g", "topics": [{"name": "in", "partition_indexes": [0]}]}
                answer = await c.request(
                    node, ApiKey.OFFSET_FETCH, {**body, "require_stable": True}
                )
                (partition,) = answer["topics"][0]["partitions"]
                assert partition["error_code"] == ErrorCode.UNSTABLE_OFFSET_COMMIT
                waiting = asyncio.ensure_future(reader.committed("g", [tp]))
                await asyncio.sleep(0)  # its first OffsetFetch goes out before the commit
                await producer.commit_transaction()
                assert await asyncio.wait_for(waiting, 20.0) == {tp: 4}

    run(main())
