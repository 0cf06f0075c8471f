"""Transactions on the embedded log: EmbeddedTxnWriter over the in-process
TransactionCoordinator, and read_committed fetches of EmbeddedTransport."""

from __future__ import annotations

import asyncio

import pytest

from runtime.client.errors import ProducerFencedError
from runtime.client.group import ConsumerGroupMetadata
from runtime.log.records import decode_batches, encode_batch
from runtime.transport import EmbeddedTransport
from runtime.types import TopicPartition

TP = TopicPartition("t", 0)
GROUP = ConsumerGroupMetadata("g")
SOURCE = TopicPartition("src", 0)


def records(*values: str) -> list:
    return [(None, v.encode(), 1_000, ()) for v in values]


async def values(transport: EmbeddedTransport, tp: TopicPartition = TP) -> list[str]:
    seen, position = [], 0
    _, end = await transport.offsets(tp)
    while position < end:
        data = await transport.fetch(tp, position, max_wait_s=0)
        if not data:
            break
        batch = decode_batches(data)
        seen += [r.value.decode() for r in batch]
        position = batch[-1].offset + 1
    return seen


def run(coro):
    return asyncio.run(coro)


def test_read_committed_sees_a_transaction_only_once_it_commits(tmp_path):
    async def main():
        async with EmbeddedTransport(
            "log://", tmp_path, isolation_level="read_committed"
        ) as transport:
            await transport.create_topic("t", 1)
            await transport.create_topic("src", 1)
            writer = transport.transactional_writer("w", transaction_timeout_ms=10_000)
            await writer.start()
            await writer.append(TP, records("a", "b"))
            assert await values(transport) == []
            assert await transport.offsets(TP) == (0, 0)  # the LSO: the open transaction's start
            assert await transport.committed("g") == {}
            await writer.commit({SOURCE: 7}, GROUP)
            assert await values(transport) == ["a", "b"]
            assert await transport.committed("g") == {SOURCE: 7}
            await writer.close()

    run(main())


def test_aborted_batches_are_skipped_and_later_ones_seen(tmp_path):
    async def main():
        async with EmbeddedTransport(
            "log://", tmp_path, isolation_level="read_committed"
        ) as transport:
            await transport.create_topic("t", 1)
            writer = transport.transactional_writer("w", transaction_timeout_ms=10_000)
            await writer.start()
            for i in range(3):  # a run of aborted batches longer than one fetch round
                await writer.append(TP, records(f"x{i}"))
            await writer.abort()
            assert await transport.fetch(TP, 0, max_wait_s=0) == b""
            await transport.append(TP, encode_batch(records("plain")))
            await writer.append(TP, records("c"))
            await writer.commit({}, GROUP)
            assert await values(transport) == ["plain", "c"]
            await writer.close()

    run(main())


def test_a_second_writer_of_an_id_fences_the_first(tmp_path):
    async def main():
        async with EmbeddedTransport(
            "log://", tmp_path, isolation_level="read_committed"
        ) as transport:
            await transport.create_topic("t", 1)
            old = transport.transactional_writer("w", transaction_timeout_ms=10_000)
            await old.start()
            await old.append(TP, records("zombie"))
            new = transport.transactional_writer("w", transaction_timeout_ms=10_000)
            await new.start()  # aborts what the old one left open
            with pytest.raises(ProducerFencedError):
                await old.append(TP, records("late"))
            with pytest.raises(ProducerFencedError):
                await old.commit({SOURCE: 1}, GROUP)
            await new.append(TP, records("fresh"))
            await new.commit({}, GROUP)
            assert await values(transport) == ["fresh"]
            assert await transport.committed("g") == {}
            await new.close()

    run(main())


def test_a_restart_aborts_what_a_crash_left_open(tmp_path):
    async def crash():
        transport = EmbeddedTransport("log://", tmp_path, isolation_level="read_committed")
        await transport.start()
        await transport.create_topic("t", 1)
        writer = transport.transactional_writer("w", transaction_timeout_ms=10_000)
        await writer.start()
        await writer.append(TP, records("lost"))
        await transport.stop()  # no commit, no abort: as a SIGKILL leaves it

    async def restart():
        async with EmbeddedTransport(
            "log://", tmp_path, isolation_level="read_committed"
        ) as transport:
            assert (await transport.offsets(TP))[1] == 0  # stuck at the open transaction
            writer = transport.transactional_writer("w", transaction_timeout_ms=10_000)
            await writer.start()
            assert (await transport.offsets(TP))[1] == 2  # its abort marker is past it
            assert await values(transport) == []
            await writer.close()

    run(crash())
    run(restart())


def test_recovery_waits_for_a_transaction_left_open_before_committed_writes(tmp_path, caplog):
    """A dropped worker's transaction open on a changelog hides, from read_committed
    readers, what its next owner committed after it. Recovery of an active
    partition waits for it to be decided; a store that applied those writes
    itself is kept, not rebuilt, while it stays open."""
    from waiting import wait_until_async

    from runtime.recovery import recover_store
    from stores import MemoryStore

    changelog = TopicPartition("c", 0)

    async def main():
        async with EmbeddedTransport(
            "log://", tmp_path, isolation_level="read_committed"
        ) as transport:
            await transport.create_topic("c", 1)
            zombie = transport.transactional_writer("zombie", transaction_timeout_ms=10_000)
            await zombie.start()
            await zombie.append(changelog, [(b"k", b"stale", 1_000, ())])
            owner = transport.transactional_writer("owner", transaction_timeout_ms=10_000)
            await owner.start()
            offset = await owner.append(changelog, [(b"k", b"1", 1_000, ())])
            await owner.commit({}, None)

            own = MemoryStore()
            own.apply({b"k": b"1"}, offset)
            result = await recover_store(transport, own, changelog)
            assert own.get(b"k") == b"1" and result.records == 0  # kept

            fresh = MemoryStore()
            recovery = asyncio.create_task(
                recover_store(transport, fresh, changelog, settle_s=30.0)
            )
            await wait_until_async(
                lambda: "a transaction is open" in caplog.text,
                timeout_s=10.0,
                what="recovery waiting for the open transaction",
            )
            assert not recovery.done()
            await zombie.abort()
            await recovery
            assert fresh.get(b"k") == b"1" and fresh.persisted_offset() == offset
            await owner.close()

    run(main())


def test_read_committed_committed_offsets_wait_for_a_pending_transaction(tmp_path):
    """Offsets a transaction holds, not yet decided, are waited for (KIP-447's
    stable offsets), so a reader starts from what that transaction leaves."""
    from runtime.log.offsets import Commit

    async def main():
        async with EmbeddedTransport(
            "log://", tmp_path, isolation_level="read_committed"
        ) as transport:
            await transport.create_topic("src", 1)
            coordinator = await transport.transaction_coordinator()
            code, pid, epoch = await coordinator.init_producer_id("w", 10_000)
            assert code == 0
            assert await coordinator.add_offsets("w", pid, epoch, "g") == 0
            offsets = {SOURCE: Commit(6, "")}
            assert await coordinator.txn_offset_commit("w", "g", pid, epoch, offsets) == 0
            assert await transport.committed("other-group") == {}  # not held: at once
            waiting = asyncio.ensure_future(transport.committed("g", [SOURCE]))
            await asyncio.sleep(0)  # it looks, finds the offsets pending, and waits
            assert not waiting.done()
            assert await coordinator.end_txn("w", pid, epoch, commit=True) == 0
            assert await asyncio.wait_for(waiting, 10.0) == {SOURCE: 6}

    run(main())


def test_a_broker_sharing_the_log_uses_its_one_transaction_coordinator(tmp_path):
    """A log:// worker serving its log: the broker decides transactions with the
    coordinator the worker's exactly_once commits use, not a second one over the
    same __transaction_state; and stopping the broker leaves it to the owner."""
    from runtime.broker.endpoints import Address
    from runtime.broker.limits import BrokerLimits
    from runtime.broker.server import Broker

    async def main() -> None:
        transport = EmbeddedTransport("log://", tmp_path, isolation_level="read_committed")
        await transport.start()
        try:
            await transport.create_topic("t", 1)
            owned = await transport.transaction_coordinator()
            broker = Broker(
                None,
                listen=Address("127.0.0.1", 0),
                transport=transport,
                limits=BrokerLimits(),
            )
            await broker.start()
            assert broker._transactions is owned
            await broker.stop()
            writer = transport.transactional_writer("after-broker", transaction_timeout_ms=10_000)
            await writer.start()  # the coordinator still serves its owner
            await writer.append(TP, records("kept"))
            await writer.commit({}, GROUP)
            await writer.close()
            assert await values(transport) == ["kept"]
        finally:
            await transport.stop()

    asyncio.run(main())
