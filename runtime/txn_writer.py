"""Transactional writers: how a worker under exactly_once writes its records
and commits its consumed offsets, together or not at all.

    writer = transport.transactional_writer("tally-w1", transaction_timeout_ms=10_000)
    await writer.start()                     # fences older instances of "tally-w1"
    base = await writer.append(tp, records)  # opens a transaction if none is open
    await writer.commit(offsets, group)      # the records and the offsets, atomically
                                             # (group: whose offsets; None without any)
    await writer.abort()                     # or neither

`KafkaTxnWriter` (kafka://) sends through our TransactionalProducer; the
embedded log's (`runtime.embedded_txn.EmbeddedTxnWriter`) appends transactional
batches to the log in this process and asks an in-process TransactionCoordinator,
the broker's own, for everything else.

Errors (runtime.client.errors): TransactionAbortableError: abort, then go on
from the last commit; ProducerFencedError: a newer instance of the
transactional id took over, stop; any other error: stop.

Invariants:
- no append runs while a commit or an abort is under way: an append that comes
  meanwhile waits, and lands in the next transaction;
- a transaction is opened by the first append (or commit with offsets) after
  the last one ended, so a commit interval with nothing to commit costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from runtime.client.group import ConsumerGroupMetadata
from runtime.client.transactions import TransactionalProducer
from runtime.log.records import OutRecord
from runtime.types import TopicPartition

TRANSACTION_TIMEOUT_MS = 10_000  # Kafka Streams' default under exactly_once


class TransactionalWriter(Protocol):
    @property
    def transactional_id(self) -> str: ...
    async def start(self) -> None: ...
    async def append(self, tp: TopicPartition, records: Sequence[OutRecord]) -> int: ...
    async def commit(
        self, offsets: Mapping[TopicPartition, int], group: ConsumerGroupMetadata | None
    ) -> None: ...
    async def abort(self) -> None: ...
    async def close(self) -> None: ...


class EndGate:
    """Holds appends back while a transaction ends (see the invariants above)."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._appending = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    async def enter(self) -> None:
        while not self._open.is_set():
            await self._open.wait()
        self._appending += 1
        self._quiet.clear()

    def leave(self) -> None:
        self._appending -= 1
        if self._appending == 0:
            self._quiet.set()

    async def close(self) -> None:
        """Let no new append in, and wait for those under way."""
        self._open.clear()
        await self._quiet.wait()

    def reopen(self) -> None:
        self._open.set()


class KafkaTxnWriter:
    """A TransactionalWriter over a Kafka-protocol broker (EOS v2: the offsets go
    with the group metadata, so a member a rebalance replaced cannot commit)."""

    def __init__(self, producer: TransactionalProducer) -> None:
        self._producer = producer
        self._gate = EndGate()
        self._open = False

    @property
    def transactional_id(self) -> str:
        return self._producer.transactional_id

    async def start(self) -> None:
        await self._producer.init_transactions()

    async def append(self, tp: TopicPartition, records: Sequence[OutRecord]) -> int:
        await self._gate.enter()
        try:
            if not self._open:
                await self._producer.begin_transaction()
                self._open = True
            futures = [
                await self._producer.send(tp, value, key=key, headers=headers, timestamp_ms=ts)
                for key, value, ts, headers in records
            ]
            offsets = await asyncio.gather(*futures)
        finally:
            self._gate.leave()
        return offsets[0]

    async def commit(
        self, offsets: Mapping[TopicPartition, int], group: ConsumerGroupMetadata | None
    ) -> None:
        await self._gate.close()
        try:
            if not self._open and not offsets:
                return
            if not self._open:
                await self._producer.begin_transaction()
                self._open = True
            if offsets:
                if group is None:
                    raise ValueError("offsets are committed for a group: give its metadata")
                await self._producer.send_offsets_to_transaction(offsets, group)
            await self._producer.commit_transaction()
            self._open = False
        finally:
            self._gate.reopen()

    async def abort(self) -> None:
        await self._gate.close()
        try:
            if self._open:
                await self._producer.abort_transaction()
                self._open = False
        finally:
            self._gate.reopen()

    async def close(self) -> None:
        await self._producer.close()  # aborts an open transaction
